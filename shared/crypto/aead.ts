import { createCipheriv, createDecipheriv } from 'node:crypto'

/**
 * AES-256-GCM for Shamir shares. Each key is derived (HKDF, see hkdf.ts 'share-encryption') for one
 * (round, sender → recipient) pair and encrypts exactly one message, so the 12-byte nonce is fixed at zero.
 * Associated data binds round id, sender and recipient. Output: ciphertext ‖ 16-byte tag.
 */

export const AEAD_TAG_BYTES = 16
const ZERO_NONCE = new Uint8Array(12)

export class AeadError extends Error {
  readonly code = 'ERR_BAD_CIPHERTEXT'
  constructor (message: string) {
    super(message)
    this.name = 'AeadError'
  }
}

function assertKey (key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError('AEAD key must be 32 bytes')
}

export function shareAssociatedData (roundId: string, sender: string, recipient: string): Uint8Array {
  return new TextEncoder().encode(['fedmon-secagg/1 shares', roundId, sender, recipient].map(f => `${f.length}:${f}`).join('|'))
}

export function aeadSeal (key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array, nonce: Uint8Array = ZERO_NONCE): Uint8Array {
  assertKey(key)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(associatedData)
  const body = cipher.update(plaintext)
  const rest = cipher.final()
  const tag = cipher.getAuthTag()
  const out = new Uint8Array(body.length + rest.length + tag.length)
  out.set(body, 0)
  out.set(rest, body.length)
  out.set(tag, body.length + rest.length)
  return out
}

/** Decrypts and authenticates; throws AeadError on any tampering or wrong key/associated data. */
export function aeadOpen (key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array, nonce: Uint8Array = ZERO_NONCE): Uint8Array {
  assertKey(key)
  if (sealed.length < AEAD_TAG_BYTES) throw new AeadError('ciphertext shorter than the tag')
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAAD(associatedData)
  decipher.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_BYTES))
  const body = decipher.update(sealed.subarray(0, sealed.length - AEAD_TAG_BYTES))
  try {
    const rest = decipher.final()
    return new Uint8Array(Buffer.concat([body, rest]))
  } catch {
    throw new AeadError('ciphertext does not authenticate')
  }
}
