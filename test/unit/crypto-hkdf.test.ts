import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hkdfSync, randomBytes } from 'node:crypto'
import { deriveKey, hkdfSha256, keyInfo, type KeyContext } from '../../shared/crypto/hkdf.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('RFC 5869 test case 1 (SHA-256, basic)', () => {
  const okm = hkdfSha256(hex('0b'.repeat(22)), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42)
  assert.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865')
})

test('RFC 5869 test case 2 (SHA-256, long inputs)', () => {
  const range = (a: number, b: number): Uint8Array => new Uint8Array(b - a).map((_, i) => a + i)
  const okm = hkdfSha256(range(0x00, 0x50), range(0x60, 0xb0), range(0xb0, 0x100), 82)
  assert.equal(toHex(okm), 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87')
})

test('RFC 5869 test case 3 (SHA-256, empty salt and info)', () => {
  const okm = hkdfSha256(hex('0b'.repeat(22)), new Uint8Array(0), new Uint8Array(0), 42)
  assert.equal(toHex(okm), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8')
})

test('matches node:crypto hkdfSync on random inputs', () => {
  for (let i = 0; i < 50; i++) {
    const ikm = randomBytes(32); const salt = randomBytes(i % 40); const info = randomBytes(i * 3); const len = 1 + (i * 7) % 100
    assert.deepEqual(hkdfSha256(ikm, salt, info, len), new Uint8Array(hkdfSync('sha256', ikm, salt, info, len)))
  }
})

test('domain separation: every context field changes the key; pairwise keys are symmetric, share keys directional', () => {
  const secret = new Uint8Array(randomBytes(32))
  const ctx: KeyContext = { protocol: 'fedmon-secagg/1', roundId: 'r1', specHash: 'ab'.repeat(32), vectorLength: 100 }
  const base = toHex(deriveKey(secret, 'pairwise-mask', ctx, 'alice', 'bob'))
  assert.equal(toHex(deriveKey(secret, 'pairwise-mask', ctx, 'bob', 'alice')), base)
  const variants = [
    deriveKey(secret, 'share-encryption', ctx, 'alice', 'bob'),
    deriveKey(secret, 'pairwise-mask', { ...ctx, roundId: 'r2' }, 'alice', 'bob'),
    deriveKey(secret, 'pairwise-mask', { ...ctx, specHash: 'cd'.repeat(32) }, 'alice', 'bob'),
    deriveKey(secret, 'pairwise-mask', { ...ctx, vectorLength: 101 }, 'alice', 'bob'),
    deriveKey(secret, 'pairwise-mask', { ...ctx, protocol: 'fedmon-secagg/2' }, 'alice', 'bob'),
    deriveKey(secret, 'pairwise-mask', ctx, 'alice', 'carol')
  ].map(toHex)
  assert.equal(new Set([base, ...variants]).size, variants.length + 1)
  assert.notEqual(toHex(deriveKey(secret, 'share-encryption', ctx, 'alice', 'bob')), toHex(deriveKey(secret, 'share-encryption', ctx, 'bob', 'alice')))
  // Length-prefixed fields: shifting a boundary between fields changes the encoding.
  assert.notDeepEqual(keyInfo('pairwise-mask', ctx, 'ab', 'c'), keyInfo('pairwise-mask', ctx, 'a', 'bc'))
})
