import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { AeadError, aeadOpen, aeadSeal, shareAssociatedData } from '../../shared/crypto/aead.js'

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('AES-256-GCM vectors (GCM spec test cases 13 and 14: zero key, zero 96-bit nonce)', () => {
  const key = new Uint8Array(32)
  assert.equal(toHex(aeadSeal(key, new Uint8Array(0), new Uint8Array(0))), '530f8afbc74536b9a963b4f1c4cb738b')
  assert.equal(toHex(aeadSeal(key, new Uint8Array(16), new Uint8Array(0))), 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919')
})

test('seal/open round trip; any change to ciphertext, key or associated data is rejected', () => {
  const key = new Uint8Array(randomBytes(32))
  const ad = shareAssociatedData('round-1', 'alice', 'bob')
  const plaintext = new Uint8Array(randomBytes(88))
  const sealed = aeadSeal(key, plaintext, ad)
  assert.equal(sealed.length, 88 + 16)
  assert.deepEqual(aeadOpen(key, sealed, ad), plaintext)
  const flipped = new Uint8Array(sealed); flipped[5] ^= 1
  assert.throws(() => aeadOpen(key, flipped, ad), AeadError)
  const tagFlipped = new Uint8Array(sealed); tagFlipped[sealed.length - 1] ^= 1
  assert.throws(() => aeadOpen(key, tagFlipped, ad), AeadError)
  assert.throws(() => aeadOpen(new Uint8Array(randomBytes(32)), sealed, ad), AeadError)
  assert.throws(() => aeadOpen(key, sealed, shareAssociatedData('round-2', 'alice', 'bob')), AeadError)
  assert.throws(() => aeadOpen(key, sealed, shareAssociatedData('round-1', 'bob', 'alice')), AeadError)
  assert.throws(() => aeadOpen(key, sealed.subarray(0, 10), ad), AeadError)
})
