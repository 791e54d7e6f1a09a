import { createHmac } from 'node:crypto'

/**
 * HKDF-SHA256 (RFC 5869) and the protocol's domain-separated derivations. Every derived key binds the
 * protocol version, the purpose, the round id, the spec hash, the vector length and the ordered peer pair,
 * so a key can never be replayed across rounds, specs, layouts, directions or purposes.
 */

/**
 * RFC 5869 extract-then-expand with node:crypto HMAC-SHA256. Written out rather than `hkdfSync` because
 * that call costs ~2.5x more per small derivation here (33 µs vs 13 µs) and the server derives one key per
 * (dropped agent, neighbour) pair; the tests cross-check it against hkdfSync and the RFC vectors.
 */
export function hkdfSha256 (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new RangeError('HKDF length out of range')
  const prk = createHmac('sha256', salt.length === 0 ? new Uint8Array(32) : salt).update(ikm).digest()
  const out = new Uint8Array(length)
  let block: Uint8Array = new Uint8Array(0)
  for (let i = 1, filled = 0; filled < length; i++) {
    block = createHmac('sha256', prk).update(block).update(info).update(new Uint8Array([i])).digest()
    out.set(block.subarray(0, Math.min(block.length, length - filled)), filled)
    filled += block.length
  }
  prk.fill(0)
  return out
}

export type KeyPurpose = 'pairwise-mask' | 'share-encryption'

export interface KeyContext {
  protocol: string
  roundId: string
  specHash: string
  vectorLength: number
}

const encoder = new TextEncoder()
const SALT = encoder.encode('fedmon secagg hkdf salt v1')

/** The HKDF info string: length-prefixed fields, so no two contexts encode to the same bytes. */
export function keyInfo (purpose: KeyPurpose, ctx: KeyContext, first: string, second: string): Uint8Array {
  const fields = [ctx.protocol, purpose, ctx.roundId, ctx.specHash, String(ctx.vectorLength), first, second]
  return encoder.encode(fields.map(f => `${f.length}:${f}`).join('|'))
}

/**
 * Derives a 32-byte key from an X25519 shared secret.
 * - 'pairwise-mask': the pair is unordered (both ends derive the same seed), so it is sorted here.
 * - 'share-encryption': the pair is (sender, recipient), one key per direction.
 */
export function deriveKey (sharedSecret: Uint8Array, purpose: KeyPurpose, ctx: KeyContext, a: string, b: string): Uint8Array {
  const [first, second] = purpose === 'pairwise-mask' && b < a ? [b, a] : [a, b]
  return hkdfSha256(sharedSecret, SALT, keyInfo(purpose, ctx, first, second), 32)
}
