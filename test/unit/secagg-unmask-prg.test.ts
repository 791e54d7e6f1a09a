import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto'
import fc from 'fast-check'
import { addMaskInPlace, expandMask, MaskAccumulator } from '../../shared/crypto/prg.js'
import { generateX25519KeyPair, x25519PrivateKeyObject, x25519PublicKey, x25519PublicKeyObject } from '../../shared/crypto/x25519.js'
import { x25519PrivateKeyObjectFromJwk, x25519PublicKeyFast } from '../../shared/secagg/unmask.js'

/** The PRG written the slow, obvious way: one cipher call, one scalar add per word. */
function referenceMask (seed: Uint8Array, length: number): Uint32Array {
  const stream = createCipheriv('aes-256-ctr', seed, new Uint8Array(16)).update(new Uint8Array(4 * length))
  const out = new Uint32Array(length)
  for (let i = 0; i < length; i++) out[i] = stream.readUInt32LE(4 * i)
  return out
}

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
// Lengths around the SIMD block (16 words) and the keystream chunk (16384 words).
const lengthArb = fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 16_370, max: 16_400 }), fc.integer({ min: 32_760, max: 32_800 }))

test('MaskAccumulator equals the scalar reference Σ sign·PRG(seed) mod 2^32', () => {
  fc.assert(fc.property(lengthArb, fc.array(fc.tuple(seedArb, fc.constantFrom(1 as const, -1 as const)), { minLength: 1, maxLength: 5 }), (length, jobs) => {
    const expected = new Uint32Array(length)
    for (const [seed, sign] of jobs) {
      const mask = referenceMask(seed, length)
      for (let i = 0; i < length; i++) expected[i] += sign * mask[i]
    }
    const acc = new MaskAccumulator(length)
    for (const [seed, sign] of jobs) acc.add(seed, sign)
    assert.deepEqual(acc.values(), expected)
    const target = new Uint32Array(length).fill(0xfffffff0)
    acc.addTo(target)
    for (let i = 0; i < length; i++) assert.equal(target[i], (expected[i] + 0xfffffff0) % 2 ** 32)
    acc.wipe()
    assert.ok(acc.values().every(v => v === 0), 'wipe() clears the sum')
  }), { numRuns: 30 })
})

test('addMaskInPlace on unaligned subarrays equals the reference and leaves the rest untouched', () => {
  fc.assert(fc.property(seedArb, fc.integer({ min: 0, max: 40 }), lengthArb, fc.constantFrom(1 as const, -1 as const), (seed, start, length, sign) => {
    const backing = new Uint32Array(start + length + 3).map((_, i) => (i * 2654435761) >>> 0)
    const before = backing.slice()
    addMaskInPlace(backing.subarray(start, start + length), seed, sign)
    const mask = referenceMask(seed, length)
    for (let i = 0; i < backing.length; i++) {
      const inside = i >= start && i < start + length
      assert.equal(backing[i], inside ? (before[i] + sign * mask[i - start]) >>> 0 : before[i])
    }
  }), { numRuns: 30 })
  assert.deepEqual(expandMask(new Uint8Array(32).fill(3), 5), referenceMask(new Uint8Array(32).fill(3), 5))
})

test('MaskAccumulator rejects bad seeds and mismatched targets', () => {
  const acc = new MaskAccumulator(10)
  assert.throws(() => acc.add(new Uint8Array(31), 1), /32-byte/)
  assert.throws(() => acc.addTo(new Uint32Array(11)), RangeError)
  assert.throws(() => new MaskAccumulator(-1), TypeError)
})

test('the JWK private-key import gives the same public key and shared secrets as the DER import', () => {
  for (let i = 0; i < 20; i++) {
    const own = generateX25519KeyPair()
    const peer = generateX25519KeyPair()
    assert.deepEqual(x25519PublicKeyFast(own.privateKey), x25519PublicKey(own.privateKey))
    assert.deepEqual(x25519PublicKeyFast(own.privateKey), own.publicKey)
    const fast = diffieHellman({ privateKey: x25519PrivateKeyObjectFromJwk(own.privateKey), publicKey: x25519PublicKeyObject(peer.publicKey) })
    // The reference: the PKCS#8 DER import (RFC 8410), independent of the JWK path.
    const der = (key: Uint8Array) => createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), key]), format: 'der', type: 'pkcs8' })
    const slow = diffieHellman({ privateKey: der(own.privateKey), publicKey: createPublicKey(der(peer.privateKey)) })
    assert.deepEqual(fast, slow)
    assert.deepEqual(diffieHellman({ privateKey: x25519PrivateKeyObject(own.privateKey), publicKey: x25519PublicKeyObject(peer.publicKey) }), slow)
    assert.equal(x25519PrivateKeyObjectFromJwk, x25519PrivateKeyObject, 'one implementation (moved to shared/crypto/x25519.ts)')
  }
  assert.throws(() => x25519PrivateKeyObjectFromJwk(new Uint8Array(31)), TypeError)
})
