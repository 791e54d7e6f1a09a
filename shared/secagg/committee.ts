import { createHash } from 'node:crypto'
import { expandMask } from '../crypto/prg.js'

/**
 * The consistency committee of a round (params.committeeQuorum): `size` participant indexes drawn by a
 * permutation derived from the round id in its own domain (not the graph's), so the server and every agent
 * derive the same committee from the Announce alone. Everyone when size ≥ n. A partial Fisher–Yates shuffle:
 * O(size) work after O(n) setup.
 */
export function committeeMembers (n: number, size: number, roundId: string): ReadonlySet<number> {
  const key = `${n}|${size}|${roundId}`
  if (last?.key === key) return last.members
  const members = drawCommittee(n, size, roundId)
  last = { key, members }
  return members
}

/** The last committee drawn: every client of a simulated round (and the server) asks for the same one. */
let last: { key: string, members: ReadonlySet<number> } | null = null

function drawCommittee (n: number, size: number, roundId: string): ReadonlySet<number> {
  if (size >= n) return new Set(Array.from({ length: n }, (_, i) => i))
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  const seed = createHash('sha256').update(`fedmon-secagg/1 committee|${roundId}`).digest()
  const words = expandMask(new Uint8Array(seed), 2 * size)
  const out = new Set<number>()
  for (let i = 0; i < size; i++) {
    // 53 random bits per draw: the modulo bias is below 2^-39 for n <= 10,000 (as the graph's shuffle).
    const r = i + (words[2 * i] * 2 ** 21 + (words[2 * i + 1] >>> 11)) % (n - i)
    const tmp = order[i]; order[i] = order[r]; order[r] = tmp
    out.add(order[i])
  }
  return out
}
