import { readFileSync } from 'node:fs'
import { resolve, dirname, isAbsolute } from 'node:path'
import { parse as parseYaml, YAMLError } from 'yaml'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'

/** Formats a zod issue path like `features.age.edges[2]`. */
export function formatIssuePath (path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out
}

/** Escapes control characters (a key may hold a newline), so an error message stays one line. */
export function oneLine (s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Why a file cannot be read, in a few words ('file not found', 'cannot read (EACCES)'). */
export function readFailure (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`
}

/** Reads a file's bytes; a failure is a ConfigError naming the file. */
export function readConfigBytes (file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new ConfigError(file, undefined, readFailure(err))
  }
}

/** Parses YAML or JSON text (JSON is valid YAML) read from `file`; errors name the file, and the line and column. */
export function parseStructuredText (file: string, text: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: false })
  } catch (err) {
    const reason = oneLine((err as Error).message.split('\n')[0])
    const at = err instanceof YAMLError ? lineAndColumn(text, err.pos[0]) : null
    throw new ConfigError(file, undefined, `not valid YAML/JSON${at !== null ? ` at line ${at.line}, column ${at.column}` : ''}: ${reason}`)
  }
}

/** 1-based line and column of a character offset (columns count UTF-16 units, as the yaml package does). */
function lineAndColumn (text: string, offset: number): { line: number, column: number } | null {
  if (!Number.isInteger(offset) || offset < 0 || offset > text.length) return null
  const before = text.slice(0, offset)
  const lineStart = before.lastIndexOf('\n') + 1
  return { line: before.split('\n').length, column: offset - lineStart + 1 }
}

/** Reads a YAML or JSON file into a plain value; errors name the file. */
export function readStructuredFile (file: string): unknown {
  return parseStructuredText(file, readConfigBytes(file).toString('utf8'))
}

/**
 * Validates `value` against `schema`; the first issue becomes a ConfigError naming file and field. An unknown
 * key names itself as the field and, when a key the schema knows at that level is close, suggests it.
 */
export function validateConfig<S extends z.ZodType> (file: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value)
  if (!result.success) {
    // An unknown key first: a misspelt required key also shows up as that key missing, and the typo is the cause.
    const issue = result.error.issues.find(i => i.code === 'unrecognized_keys') ?? result.error.issues[0]
    if (issue?.code === 'unrecognized_keys' && issue.keys.length > 0) {
      const key = issue.keys[0]
      const field = oneLine(formatIssuePath([...issue.path, key === '' ? '""' : key])) // an empty key still names a place
      throw new ConfigError(file, field, unknownKeyMessage(key, knownKeysAt(schema, issue.path)))
    }
    const field = issue !== undefined ? oneLine(formatIssuePath(issue.path)) : undefined
    throw new ConfigError(file, field === '' ? '(top level)' : field, oneLine(issue?.message ?? 'invalid'))
  }
  return result.data
}

/**
 * "unknown key; did you mean "minAgents"?" when one known key is close (a typo: case, or an edit distance of
 * one, two for longer keys), else the keys allowed there (a short list) or just "unknown key".
 */
export function unknownKeyMessage (key: string, known: readonly string[]): string {
  const close = closestKey(key, known)
  if (close !== null) return `unknown key; did you mean ${JSON.stringify(close)}?`
  if (known.length > 0 && known.length <= 16) return `unknown key (allowed here: ${known.join(', ')})`
  return 'unknown key'
}

/** The known key `key` was most likely meant to be, or null when none is close enough to guess. */
export function closestKey (key: string, known: readonly string[]): string | null {
  let best: { name: string, distance: number } | null = null
  for (const name of known) {
    const distance = key.toLowerCase() === name.toLowerCase() ? 0 : editDistance(key, name)
    const allowed = Math.min(name.length, key.length) <= 4 ? 1 : 2
    if (distance <= allowed && (best === null || distance < best.distance)) best = { name, distance }
  }
  return best?.name ?? null
}

/** zod v4's definition record, read only for what the walk below needs. */
interface SchemaDef {
  type: string
  shape?: Record<string, z.ZodType>
  innerType?: z.ZodType
  in?: z.ZodType
  element?: z.ZodType
  options?: z.ZodType[]
  valueType?: z.ZodType
  items?: z.ZodType[]
  left?: z.ZodType
  right?: z.ZodType
  getter?: () => z.ZodType
}
const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def

/** The schema itself, through wrappers (optional, default, pipe, lazy...) and into every option of a union. */
function unwrap (schema: z.ZodType, depth = 0): z.ZodType[] {
  if (depth > 32) return []
  const def = defOf(schema)
  switch (def.type) {
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
      return def.innerType !== undefined ? unwrap(def.innerType, depth + 1) : []
    case 'pipe': return def.in !== undefined ? unwrap(def.in, depth + 1) : []
    case 'lazy': return def.getter !== undefined ? unwrap(def.getter(), depth + 1) : []
    case 'union': return (def.options ?? []).flatMap(o => unwrap(o, depth + 1))
    case 'intersection': return [def.left, def.right].flatMap(o => o !== undefined ? unwrap(o, depth + 1) : [])
    default: return [schema]
  }
}

/** The keys the schema knows for the object at `path` (several candidates through unions), in schema order. */
export function knownKeysAt (schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let here = unwrap(schema)
  for (const part of path) {
    here = here.flatMap((s) => {
      const def = defOf(s)
      if (def.type === 'object' && typeof part === 'string' && def.shape !== undefined && Object.hasOwn(def.shape, part)) return unwrap(def.shape[part])
      if (def.type === 'array' && typeof part === 'number' && def.element !== undefined) return unwrap(def.element)
      if (def.type === 'tuple' && typeof part === 'number' && def.items?.[part] !== undefined) return unwrap(def.items[part])
      if (def.type === 'record' && def.valueType !== undefined) return unwrap(def.valueType)
      return []
    })
  }
  const keys = new Set<string>()
  for (const s of here) {
    const def = defOf(s)
    if (def.type === 'object' && def.shape !== undefined) for (const k of Object.keys(def.shape)) keys.add(k)
  }
  return [...keys]
}

/** Reads and validates a config file in one step. */
export function loadConfigFile<S extends z.ZodType> (file: string, schema: S): z.infer<S> {
  return validateConfig(file, schema, readStructuredFile(file))
}

/** Resolves a path found inside a config file relative to that file's directory. */
export function resolveFrom (configFile: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(resolve(configFile)), p)
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost one each. */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}
