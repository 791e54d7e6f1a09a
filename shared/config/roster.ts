/**
 * The federation's roster file: the peer ids of the sites that take part, one file that every site and the
 * coordinator's operator receive out of band. The coordinator admits exactly these peers; each agent joins
 * only rounds whose participants are all on its own copy, so the coordinator alone cannot add members
 * (identities of its own making, "sybils", that would input zeros and leave one real site in the "sum").
 *
 *   agents:
 *     - 12D3KooW...                        # a bare peer id
 *     - { id: 12D3KooW..., name: site-b }  # or with a name, for people reading logs
 *
 * A bare list (without `agents:`) is accepted too; YAML or JSON. An agent may pin the file's sha-256
 * (`federation.rosterSha256`), so a roster swapped on its disk is refused rather than trusted.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError } from '../errors.js'
import { isPeerIdString } from '../identity.js'
import { parseStructuredText, readFailure, oneLine, closestKey } from './load.js'

export interface FederationRoster {
  /** The roster file (absolute when the config's path was resolved). */
  file: string
  /** sha-256 of the file's bytes, lowercase hex: what `federation.rosterSha256` pins. */
  sha256: string
  /** The peer ids, in file order, each once. (Names of `{ id, name }` entries are for people reading the file.) */
  ids: readonly string[]
}

/** Where a roster file was named: a config file and its field, so a missing file is reported there. */
export interface RosterReference { file: string, field: string }

const MAX_NAME_CHARS = 128

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Validates a parsed roster document. Errors are ConfigErrors naming `file` and the entry at fault
 * (`agents[2]`, or `[2]` for a bare list).
 */
export function parseRoster (file: string, doc: unknown): string[] {
  let entries: unknown[]
  let prefix: string
  if (Array.isArray(doc)) {
    entries = doc
    prefix = ''
  } else if (doc !== null && typeof doc === 'object') {
    const keys = Object.keys(doc)
    const unknown = keys.find(k => k !== 'agents')
    if (unknown !== undefined) {
      const meant = closestKey(unknown, ['agents'])
      throw new ConfigError(file, oneLine(unknown), meant !== null ? `unknown key; did you mean "${meant}"?` : 'unknown key (a roster file holds `agents:`, a list of peer ids)')
    }
    const agents = (doc as { agents?: unknown }).agents
    if (!Array.isArray(agents)) throw new ConfigError(file, 'agents', 'expected a list of peer ids')
    entries = agents
    prefix = 'agents'
  } else {
    throw new ConfigError(file, '(top level)', 'expected `agents:` with a list of peer ids, or a list of peer ids')
  }
  if (entries.length === 0) throw new ConfigError(file, prefix === '' ? '(top level)' : prefix, 'the roster lists no peer id')
  const ids: string[] = []
  const seen = new Map<string, number>()
  entries.forEach((entry, i) => {
    const field = `${prefix}[${i}]`
    const isObject = entry !== null && typeof entry === 'object' && !Array.isArray(entry)
    let id: unknown = entry
    let name: unknown
    if (isObject) {
      const unknown = Object.keys(entry).find(k => k !== 'id' && k !== 'name')
      if (unknown !== undefined) {
        const meant = closestKey(unknown, ['id', 'name'])
        throw new ConfigError(file, `${field}.${oneLine(unknown)}`, meant !== null ? `unknown key; did you mean "${meant}"? (an entry is a peer id, or { id, name })` : 'unknown key (an entry is a peer id, or { id, name })')
      }
      ;({ id, name } = entry as { id?: unknown, name?: unknown })
      if (id === undefined) throw new ConfigError(file, `${field}.id`, 'required: the peer id (12D3Koo...)')
      // eslint-disable-next-line no-control-regex
      if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS || /[\u0000-\u001f\u007f]/.test(name))) {
        throw new ConfigError(file, `${field}.name`, `expected a printable name of at most ${MAX_NAME_CHARS} characters`)
      }
    }
    if (typeof id !== 'string' || !isPeerIdString(id)) throw new ConfigError(file, isObject ? `${field}.id` : field, 'not a libp2p peer id (12D3Koo...)')
    const earlier = seen.get(id)
    if (earlier !== undefined) throw new ConfigError(file, field, `duplicate peer id (also ${prefix}[${earlier}])`)
    seen.set(id, i)
    ids.push(id)
  })
  return ids
}

/**
 * Reads a roster file, checks its hash against `sha256` when pinned, and validates it. The bytes are read
 * once: what was hashed is what was parsed. A file that cannot be read or does not match the pin is
 * reported at `from` (the config field naming it); mistakes inside the file name the roster file.
 */
export function loadRosterFile (file: string, opts: { sha256?: string, from?: RosterReference, pinField?: string } = {}): FederationRoster {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    if (opts.from === undefined) throw new ConfigError(file, undefined, readFailure(err))
    throw new ConfigError(opts.from.file, opts.from.field, `roster file ${oneLine(file)}: ${readFailure(err)}`)
  }
  const sha256 = sha256Hex(bytes)
  if (opts.sha256 !== undefined && opts.sha256.toLowerCase() !== sha256) {
    throw new ConfigError(opts.from?.file ?? file, opts.pinField ?? 'rosterSha256',
      `roster file ${oneLine(file)} has sha-256 ${sha256}, not the pinned ${opts.sha256.toLowerCase()} (a changed roster comes with a new pin)`)
  }
  const ids = parseRoster(file, parseStructuredText(file, bytes.toString('utf8')))
  return { file, sha256, ids }
}
