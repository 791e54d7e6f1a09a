import { readFileSync } from 'node:fs'
import { resolve, dirname, isAbsolute } from 'node:path'
import { parse as parseYaml } from 'yaml'
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

/** Parses YAML or JSON text (JSON is valid YAML) read from `file`; errors name the file. */
export function parseStructuredText (file: string, text: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: false })
  } catch (err) {
    throw new ConfigError(file, undefined, `not valid YAML/JSON: ${oneLine((err as Error).message.split('\n')[0])}`)
  }
}

/** Reads a YAML or JSON file into a plain value; errors name the file. */
export function readStructuredFile (file: string): unknown {
  return parseStructuredText(file, readConfigBytes(file).toString('utf8'))
}

/** Validates `value` against `schema`; the first issue becomes a ConfigError naming file and field. */
export function validateConfig<S extends z.ZodType> (file: string, schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const field = issue !== undefined ? oneLine(formatIssuePath(issue.path)) : undefined
    throw new ConfigError(file, field === '' ? '(top level)' : field, oneLine(issue?.message ?? 'invalid'))
  }
  return result.data
}

/** Reads and validates a config file in one step. */
export function loadConfigFile<S extends z.ZodType> (file: string, schema: S): z.infer<S> {
  return validateConfig(file, schema, readStructuredFile(file))
}

/** Resolves a path found inside a config file relative to that file's directory. */
export function resolveFrom (configFile: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(resolve(configFile)), p)
}
