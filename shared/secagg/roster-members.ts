import { createHash } from 'node:crypto'
import type { Participant } from './types.js'

/**
 * The compact participant list of a large round (issue 15 §2): instead of every participant's id and addresses
 * (~86 bytes each, 860 KB at n = 10,000), the Announce carries the SHA-256 of the federation's roster and one bit
 * per roster member — 1.25 KB at 10,000. An agent holding the same roster (the digest says so) rebuilds the
 * participant list locally, in canonical order (sorted by peer id), and every participant is on its roster by
 * construction; it learns its neighbours' addresses from its key set. An agent whose roster differs refuses,
 * naming both digests.
 */

/**
 * Participants from which a coordinator that knows the roster sends the bitmap (SecAggServerOptions.roster): below,
 * the list is under ~86 KB and also serves agents whose roster is a superset of the coordinator's (during a roster
 * change), which the bitmap, bound to one roster's digest, does not.
 */
export const COMPACT_ANNOUNCE_FROM = 1000

/** The roster as a sorted id list with its digest. */
export interface SortedRoster { ids: readonly string[], digest: string }

/**
 * Kept per roster object. An agent's roster Set is refilled in place by a reload, so a cached entry of a Set is
 * used only while the Set still holds exactly its ids (same size, every id present: ~0.3 ms at 10,000 against
 * ~10 ms to sort and hash again).
 */
const cache = new WeakMap<object, SortedRoster>()

export function sortedRoster (roster: ReadonlySet<string> | readonly string[]): SortedRoster {
  const cached = cache.get(roster)
  if (cached !== undefined && (Array.isArray(roster) || (roster as ReadonlySet<string>).size === cached.ids.length && cached.ids.every(id => (roster as ReadonlySet<string>).has(id)))) return cached
  const ids = [...new Set(roster)].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  const hash = createHash('sha256').update('fedmon-roster/1\n')
  for (const id of ids) hash.update(`${id}\n`)
  const out = { ids, digest: hash.digest('hex') }
  cache.set(roster, out)
  return out
}

/** One bit per roster member (sorted order, LSB first): set for a participant. Every participant must be on the roster. */
export function membersBitmap (roster: SortedRoster, participants: readonly string[]): Uint8Array {
  const position = new Map(roster.ids.map((id, i) => [id, i]))
  const bits = new Uint8Array(Math.ceil(roster.ids.length / 8))
  for (const id of participants) {
    const i = position.get(id)
    if (i === undefined) throw new RangeError(`participant ${id} is not on the roster`)
    bits[i >> 3] |= 1 << (i & 7)
  }
  return bits
}

/** The last expansion of each bitmap object: a simulation hands one decoded Announce to thousands of clients. */
const expansions = new WeakMap<Uint8Array, { digest: string, participants: Participant[] }>()

/**
 * The participants a bitmap names (canonical order, no addresses); throws RangeError when it does not fit the
 * roster. The list is shared between calls for the same bitmap and roster: read it, do not change it.
 */
export function membersOf (roster: SortedRoster, bits: Uint8Array): Participant[] {
  const known = expansions.get(bits)
  if (known !== undefined && known.digest === roster.digest) return known.participants
  const participants = expandMembers(roster, bits)
  expansions.set(bits, { digest: roster.digest, participants })
  return participants
}

function expandMembers (roster: SortedRoster, bits: Uint8Array): Participant[] {
  if (bits.length !== Math.ceil(roster.ids.length / 8)) throw new RangeError(`a member bitmap of ${bits.length} bytes for a roster of ${roster.ids.length}`)
  const out: Participant[] = []
  for (let i = 0; i < roster.ids.length; i++) if ((bits[i >> 3] & (1 << (i & 7))) !== 0) out.push({ id: roster.ids[i], addrs: [] })
  if (roster.ids.length % 8 !== 0 && (bits[bits.length - 1] >> (roster.ids.length % 8)) !== 0) throw new RangeError('a member bitmap with bits beyond the roster')
  return out
}

/** Members named by the bitmap (its population count). */
export function memberCount (bits: Uint8Array): number {
  let n = 0
  for (const b of bits) { let x = b; while (x !== 0) { x &= x - 1; n++ } }
  return n
}
