import { SecAggError } from './errors.js'
import { NeighbourGraph } from './graph.js'
import { PROTOCOL_VERSION } from './messages.js'
import type { KeyContext } from '../crypto/hkdf.js'
import type { GraphKind, Participant } from './types.js'

/** What server and agents both derive from the Announce: indexes, graph, threshold, key context. */
export class RoundLayout {
  readonly roundId: string
  readonly participants: Participant[]
  readonly graph: NeighbourGraph
  readonly t: number
  readonly vectorLength: number
  readonly keyContext: KeyContext
  private readonly indexById = new Map<string, number>()

  constructor (opts: { roundId: string, participants: Participant[], graph: GraphKind, k: number, t: number, vectorLength: number, specHash: string }) {
    this.roundId = opts.roundId
    this.participants = opts.participants
    opts.participants.forEach((p, i) => {
      if (this.indexById.has(p.id)) throw new SecAggError('ERR_BAD_PARAMS', `participant ${p.id} listed twice`)
      this.indexById.set(p.id, i)
    })
    const n = opts.participants.length
    if (opts.graph === 'full' && opts.k !== n - 1) throw new SecAggError('ERR_BAD_PARAMS', `full graph needs k = n - 1 = ${n - 1}, got ${opts.k}`)
    if (opts.graph === 'sparse' && (opts.k % 2 !== 0 || opts.k < 2 || opts.k >= n - 1)) {
      throw new SecAggError('ERR_BAD_PARAMS', `sparse graph needs an even k in [2, ${n - 2}], got ${opts.k}`)
    }
    if (!Number.isInteger(opts.t) || opts.t < 1 || opts.t > opts.k) throw new SecAggError('ERR_BAD_PARAMS', `threshold must be in [1, k = ${opts.k}], got ${opts.t}`)
    this.graph = new NeighbourGraph(opts.graph, n, opts.k, opts.roundId)
    this.t = opts.t
    this.vectorLength = opts.vectorLength
    this.keyContext = { protocol: PROTOCOL_VERSION, roundId: opts.roundId, specHash: opts.specHash, vectorLength: opts.vectorLength }
  }

  get n (): number { return this.participants.length }

  indexOf (id: string): number | undefined { return this.indexById.get(id) }

  idOf (index: number): string { return this.participants[index].id }

  /** Shamir x coordinate of a holder: its index + 1 (never 0). */
  shareX (index: number): number { return index + 1 }
}

/** Checks an index list from the wire: strictly ascending, in range, optionally a subset of `within`. */
export function assertIndexSet (list: readonly number[], n: number, what: string, within?: ReadonlySet<number>): void {
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
