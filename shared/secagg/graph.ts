import { createHash } from 'node:crypto'
import { expandMask } from '../crypto/prg.js'
import type { GraphKind } from './types.js'

/**
 * The neighbour graph over participant indexes 0..n-1. Full: everyone. Sparse: a Harary graph H(k, n) on a
 * random permutation of the participants derived from the round id (Bell et al. 2020): each agent is
 * joined to the k/2 agents on either side of it on the permuted ring. Server and agents derive the same
 * graph from the Announce alone.
 */
export class NeighbourGraph {
  readonly n: number
  readonly k: number
  readonly kind: GraphKind
  private readonly order: Uint32Array // position on the ring → participant index
  private readonly position: Uint32Array // participant index → position on the ring

  constructor (kind: GraphKind, n: number, k: number, roundId: string) {
    this.kind = kind
    this.n = n
    this.k = kind === 'full' ? n - 1 : k
    if (kind === 'sparse' && (k % 2 !== 0 || k < 2 || k >= n - 1)) throw new RangeError(`sparse graph needs an even k in [2, n-2], got k=${k}, n=${n}`)
    this.order = new Uint32Array(n)
    this.position = new Uint32Array(n)
    for (let i = 0; i < n; i++) this.order[i] = i
    if (kind === 'sparse') {
      const seed = createHash('sha256').update(`fedmon-secagg/1 graph|${roundId}`).digest()
      const words = expandMask(new Uint8Array(seed), 2 * n)
      for (let i = n - 1; i > 0; i--) {
        // 53 random bits per draw: the modulo bias is below 2^-39 for n <= 10,000.
        const r = (words[2 * i] * 2 ** 21 + (words[2 * i + 1] >>> 11)) % (i + 1)
        const tmp = this.order[i]; this.order[i] = this.order[r]; this.order[r] = tmp
      }
    }
    for (let p = 0; p < n; p++) this.position[this.order[p]] = p
  }

  /** Neighbour indexes of participant i, ascending. */
  neighbours (i: number): number[] {
    const out: number[] = []
    if (this.kind === 'full') {
      for (let j = 0; j < this.n; j++) if (j !== i) out.push(j)
      return out
    }
    const p = this.position[i]
    const half = this.k / 2
    for (let d = 1; d <= half; d++) {
      out.push(this.order[(p + d) % this.n], this.order[(p - d + this.n) % this.n])
    }
    return out.sort((a, b) => a - b)
  }

  areNeighbours (i: number, j: number): boolean {
    if (i === j) return false
    if (this.kind === 'full') return true
    const d = Math.abs(this.position[i] - this.position[j])
    return Math.min(d, this.n - d) <= this.k / 2
  }
}
