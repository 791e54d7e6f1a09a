import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js'
import { generateX25519KeyPair, LowOrderPointError, x25519PublicKey, x25519SharedSecret } from '../../shared/crypto/x25519.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('RFC 7748 §6.1 Diffie-Hellman vector', () => {
  const alicePriv = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
  const alicePub = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
  const bobPriv = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')
  const bobPub = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
  assert.equal(toHex(x25519PublicKey(alicePriv)), alicePub)
  assert.equal(toHex(x25519PublicKey(bobPriv)), bobPub)
  assert.equal(toHex(x25519SharedSecret(alicePriv, hex(bobPub))), shared)
  assert.equal(toHex(x25519SharedSecret(bobPriv, hex(alicePub))), shared)
})

test('RFC 7748 §5.2 scalar multiplication vector', () => {
  const scalar = hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4')
  const u = hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c')
  assert.equal(toHex(x25519SharedSecret(scalar, u)), 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552')
})

test('node:crypto and @noble/curves agree on random key pairs', () => {
  for (let i = 0; i < 20; i++) {
    const a = generateX25519KeyPair()
    const b = generateX25519KeyPair()
    assert.deepEqual(a.publicKey, nobleX25519.getPublicKey(a.privateKey))
    assert.deepEqual(x25519SharedSecret(a.privateKey, b.publicKey), nobleX25519.getSharedSecret(a.privateKey, b.publicKey))
    assert.deepEqual(x25519SharedSecret(a.privateKey, b.publicKey), x25519SharedSecret(b.privateKey, a.publicKey))
  }
})

test('low-order public keys are rejected', () => {
  const priv = new Uint8Array(randomBytes(32))
  const lowOrder = [
    new Uint8Array(32), // u = 0
    hex('0100000000000000000000000000000000000000000000000000000000000000'), // u = 1
    hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'), // order 8
    hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f') // u = p - 1
  ]
  for (const point of lowOrder) assert.throws(() => x25519SharedSecret(priv, point), LowOrderPointError)
  assert.throws(() => x25519SharedSecret(priv, new Uint8Array(31)), TypeError)
})
