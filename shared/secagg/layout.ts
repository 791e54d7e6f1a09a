import { SecAggError } from './errors.js'
import { NeighbourGraph } from './graph.js'
import { PROTOCOL_VERSION } from './messages.js'
import type { KeyContext } from '../crypto/hkdf.js'
import type { GraphKind, Participant } from './types.js'

/** What server and agents both derive from the Announce: indexes, graph, threshold, key context. */
export class RoundLayout {
  readonly roundId: string
  readonly participants: Participant[]
  readonly t: number
  readonly vectorLength: number
  readonly keyContext: KeyContext
  /** Only for a participant list not in canonical order (else indexOf is a binary search: no O(n) map per agent). */
  private readonly indexById: Map<string, number> | null
  private graphValue: NeighbourGraph | null
  private readonly graphSpec: { kind: GraphKind, k: number }

  constructor (opts: { roundId: string, participants: Participant[], graph: GraphKind, k: number, t: number, vectorLength: number, specHash: string }) {
    this.roundId = opts.roundId
    this.participants = opts.participants
    if (participantsInCanonicalOrder(opts.participants)) {
      this.indexById = null // strictly ascending ids: no duplicates, and indexOf can bisect
    } else {
      const byId = this.indexById = new Map<string, number>()
      opts.participants.forEach((p, i) => {
        if (byId.has(p.id)) throw new SecAggError('ERR_BAD_PARAMS', `participant ${p.id} listed twice`)
        byId.set(p.id, i)
      })
    }
    const n = opts.participants.length
    if (opts.graph === 'full' && opts.k !== n - 1) throw new SecAggError('ERR_BAD_PARAMS', `full graph needs k = n - 1 = ${n - 1}, got ${opts.k}`)
    if (opts.graph === 'sparse' && (opts.k % 2 !== 0 || opts.k < 2 || opts.k >= n - 1)) {
      throw new SecAggError('ERR_BAD_PARAMS', `sparse graph needs an even k in [2, ${n - 2}], got ${opts.k}`)
    }
    if (!Number.isInteger(opts.t) || opts.t < 1 || opts.t > opts.k) throw new SecAggError('ERR_BAD_PARAMS', `threshold must be in [1, k = ${opts.k}], got ${opts.t}`)
    this.graphSpec = { kind: opts.graph, k: opts.k }
    this.graphValue = new NeighbourGraph(opts.graph, n, opts.k, opts.roundId)
    this.t = opts.t
    this.vectorLength = opts.vectorLength
    this.keyContext = { protocol: PROTOCOL_VERSION, roundId: opts.roundId, specHash: opts.specHash, vectorLength: opts.vectorLength }
  }

  get n (): number { return this.participants.length }

  /** The neighbour graph (O(n) words); rebuilt from the Announce's fields if released. */
  get graph (): NeighbourGraph {
    return this.graphValue ??= new NeighbourGraph(this.graphSpec.kind, this.n, this.graphSpec.k, this.roundId)
  }

  /**
   * Drops the graph's O(n) permutation: an agent needs only its own neighbours, computed once. (An in-process
   * simulation of n agents would otherwise hold n permutations of n entries.)
   */
  releaseGraph (): void { this.graphValue = null }

  indexOf (id: string): number | undefined {
    if (this.indexById !== null) return this.indexById.get(id)
    const list = this.participants
    let lo = 0
    let hi = list.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const at = list[mid].id
      if (at === id) return mid
      if (at < id) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  idOf (index: number): string { return this.participants[index].id }

  /** Shamir x coordinate of a holder: its index + 1 (never 0). */
  shareX (index: number): number { return index + 1 }
}

/** Checks an index list from the wire: strictly ascending, in range, optionally a subset of `within`. */
export function assertIndexSet (list: readonly number[], n: number, what: string, within?: { has (i: number): boolean }): void {
  for (let i = 0; i < list.length; i++) {
    if (list[i] >= n) throw new SecAggError('ERR_BAD_MESSAGE', `${what}: index ${list[i]} out of range`)
    if (i > 0 && list[i] <= list[i - 1]) throw new SecAggError('ERR_BAD_MESSAGE', `${what}: indexes must be strictly ascending`)
    if (within !== undefined && !within.has(list[i])) throw new SecAggError('ERR_CONSISTENCY', `${what}: index ${list[i]} not in the expected set`)
  }
}

export const sameSet = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i])

/** Participants must be listed in ascending peer-id order (code-unit order), each once. */
export function participantsInCanonicalOrder (participants: readonly Participant[]): boolean {
  for (let i = 1; i < participants.length; i++) if (!(participants[i - 1].id < participants[i].id)) return false
  return true
}

/**
 * A set of participant indexes as n bits: what an agent keeps of the round's O(n) sets (masking set U2,
 * survivor set U3) — n/8 bytes rather than an array or Set of up to n numbers.
 */
export class IndexBitmap {
  readonly size: number
  private readonly bits: Uint8Array

  constructor (n: number, members: readonly number[]) {
    this.bits = new Uint8Array((n + 7) >>> 3)
    for (const i of members) this.bits[i >>> 3] |= 1 << (i & 7)
    this.size = members.length
  }

  has (i: number): boolean { return i >= 0 && (i >>> 3) < this.bits.length && (this.bits[i >>> 3] & (1 << (i & 7))) !== 0 }

  /** True when `list` (strictly ascending, as assertIndexSet checks) is exactly this set. */
  equalsList (list: readonly number[]): boolean {
    if (list.length !== this.size) return false
    for (const i of list) if (!this.has(i)) return false
    return true
  }
}
