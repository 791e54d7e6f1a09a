import type { KeyObject } from 'node:crypto'
import { deriveKey, type KeyContext } from '../crypto/hkdf.js'
import { MaskAccumulator } from '../crypto/prg.js'
import { x25519PrivateKeyObject, x25519PublicKey, x25519PublicKeyObject, x25519SharedSecret } from '../crypto/x25519.js'

/**
 * The coordinator's unmasking work, separated from the state machine so it can run in the calling thread
 * (computeUnmaskCorrection) or on a worker pool (computeUnmaskInWorkers, unmask-pool.ts). Both return the
 * same correction bit for bit: sums mod 2^32 do not depend on the order of their terms.
 *
 * correction = Σ_seeds sign·PRG(seed) + Σ_dropped Σ_peers sign·PRG(HKDF(X25519(sk_dropped, pk_peer)))  (mod 2^32)
 * and the server's output is masked sum + correction.
 */

export type MaskSign = 1 | -1

/** One dropped agent's reconstructed s-key and the survivors whose pairwise mask with it must be removed. */
export interface PairwiseUnmask {
  /** The dropped agent's peer id (HKDF binds the ordered pair of ids). */
  id: string
  /** Reconstructed X25519 private key (32 bytes). */
  secretKey: Uint8Array
  peers: Array<{ id: string, publicKey: Uint8Array, sign: MaskSign }>
}

export interface UnmaskWork {
  vectorLength: number
  keyContext: KeyContext
  /** Seeds expanded as they are (the survivors' reconstructed self-mask seeds b_u). */
  seeds: Array<{ seed: Uint8Array, sign: MaskSign }>
  pairwise: PairwiseUnmask[]
}

/** Kept under their former names (one implementation, in shared/crypto/x25519.ts: the fast JWK import). */
export { x25519PrivateKeyObject as x25519PrivateKeyObjectFromJwk, x25519PublicKey as x25519PublicKeyFast }

/** Number of mask expansions the work needs (its cost, to the first order). */
export function unmaskExpansions (work: UnmaskWork): number {
  return work.seeds.length + work.pairwise.reduce((n, p) => n + p.peers.length, 0)
}

/**
 * Expands and accumulates masks into one accumulator; caches the survivors' public KeyObjects across
 * dropped agents (each survivor neighbours several dropped agents; the import costs about a third of the DH).
 */
export class UnmaskAccumulator {
  private readonly acc: MaskAccumulator
  private readonly keyContext: KeyContext
  private readonly publicKeys = new Map<string, KeyObject>()

  constructor (vectorLength: number, keyContext: KeyContext) {
    this.acc = new MaskAccumulator(vectorLength)
    this.keyContext = keyContext
  }

  addSeed (seed: Uint8Array, sign: MaskSign): void {
    this.acc.add(seed, sign)
  }

  addPairwise (job: PairwiseUnmask): void {
    const privateKey = x25519PrivateKeyObject(job.secretKey)
    for (const peer of job.peers) {
      let publicKey = this.publicKeys.get(peer.id)
      if (publicKey === undefined) {
        publicKey = x25519PublicKeyObject(peer.publicKey)
        this.publicKeys.set(peer.id, publicKey)
      }
      const shared = x25519SharedSecret(privateKey, publicKey)
      const seed = deriveKey(shared, 'pairwise-mask', this.keyContext, job.id, peer.id)
      this.acc.add(seed, peer.sign)
      shared.fill(0)
      seed.fill(0)
    }
  }

  values (): Uint32Array { return this.acc.values() }

  addTo (target: Uint32Array): void { this.acc.addTo(target) }

  wipe (): void {
    this.acc.wipe()
    this.publicKeys.clear()
  }
}

/** The correction in the calling thread (synchronous; ~0.2 ms of CPU per expansion of 100k words). */
export function computeUnmaskCorrection (work: UnmaskWork): Uint32Array {
  const acc = new UnmaskAccumulator(work.vectorLength, work.keyContext)
  try {
    for (const { seed, sign } of work.seeds) acc.addSeed(seed, sign)
    for (const job of work.pairwise) acc.addPairwise(job)
    return acc.values()
  } finally {
    acc.wipe()
  }
}

/** Overwrites every secret in the work (seeds and s-keys) with zeros. */
export function wipeUnmaskWork (work: Pick<UnmaskWork, 'seeds' | 'pairwise'>): void {
  for (const { seed } of work.seeds) seed.fill(0)
  for (const job of work.pairwise) job.secretKey.fill(0)
}
