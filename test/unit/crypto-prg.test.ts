import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import { addMaskInPlace, expandMask } from '../../shared/crypto/prg.js'

const hexWords = (w: Uint32Array): string[] => [...w].map(x => x.toString(16).padStart(8, '0'))

test('PRG known-answer: AES-256-CTR(key = seed, iv = 0) keystream as little-endian u32', () => {
  // AES-256 of the zero block under the zero key is dc95c078a2408989ad48a21492842087 (FIPS-197 style KAT).
  assert.deepEqual(hexWords(expandMask(new Uint8Array(32), 4)), ['78c095dc', '898940a2', '14a248ad', '87208492'])
  const seed = new Uint8Array(32).map((_, i) => i)
  assert.deepEqual(hexWords(expandMask(seed, 8)), ['b60090f2', 'd09f492a', '6a9af3a9', '80772edd', 'ae765df0', 'e59fb94a', '319bf6a6', '3d36c248'])
  // Across the 64 KiB chunk boundary (word 16384).
  const long = expandMask(seed, 20_000)
  assert.deepEqual(hexWords(long.subarray(16_383, 16_385)), ['96e40522', '6a79c177'])
  assert.equal(long[19_999].toString(16), 'e4e37f5f')
})

test('PRG equals an independent CTR construction from AES-256-ECB counter blocks', () => {
  const seed = new Uint8Array(32).map((_, i) => 255 - i)
  const words = 16_384 + 37
  const blocks = Math.ceil(words / 4)
  const counters = new Uint8Array(16 * blocks)
  for (let b = 0; b < blocks; b++) new DataView(counters.buffer).setUint32(16 * b + 12, b, false) // 128-bit big-endian counter
  const ecb = createCipheriv('aes-256-ecb', seed, null).setAutoPadding(false)
  const stream = Buffer.concat([ecb.update(counters), ecb.final()])
  const expected = new Uint32Array(words)
  for (let i = 0; i < words; i++) expected[i] = stream.readUInt32LE(4 * i)
  assert.deepEqual(expandMask(seed, words), expected)
})

test('addMaskInPlace adds and subtracts mod 2^32 and the two cancel', () => {
  const seed = new Uint8Array(32).fill(7)
  const x = new Uint32Array([0, 1, 0xffffffff, 12345, 0x80000000])
  const y = new Uint32Array(x)
  addMaskInPlace(y, seed, 1)
  const mask = expandMask(seed, x.length)
  for (let i = 0; i < x.length; i++) assert.equal(y[i], (x[i] + mask[i]) % 2 ** 32)
  addMaskInPlace(y, seed, -1)
  assert.deepEqual(y, x)
})

test('PRG rejects seeds that are not 32 bytes', () => {
  assert.throws(() => expandMask(new Uint8Array(16), 4), /32-byte/)
  assert.throws(() => addMaskInPlace(new Uint32Array(4), new Uint8Array(33), 1), /32-byte/)
})
