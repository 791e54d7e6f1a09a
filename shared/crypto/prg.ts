import { createCipheriv } from 'node:crypto'
import { endianness } from 'node:os'

/**
 * PRG: a 32-byte seed → a stream of u32 words.
 *
 * Construction (pinned by known-answer vectors in test/unit/crypto-prg.test.ts):
 *   keystream = AES-256-CTR(key = seed, iv = 16 zero bytes) applied to zero bytes,
 *   word i     = little-endian u32 of keystream bytes [4i, 4i+4).
 * Seeds are single-use and already domain-separated by HKDF (pairwise) or fresh random (self mask),
 * so a fixed IV is safe. Every word is uniform mod 2^32, so no rejection sampling is needed.
 */

export const PRG_SEED_BYTES = 32
/** Keystream is produced in chunks of this many bytes so masking never allocates m-sized temporaries. */
const CHUNK_BYTES = 64 * 1024
const ZERO_IV = new Uint8Array(16)
const ZERO_CHUNK = new Uint8Array(CHUNK_BYTES)
const LITTLE_ENDIAN = endianness() === 'LE'

function assertSeed (seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== PRG_SEED_BYTES) {
    throw new TypeError(`PRG seed must be a ${PRG_SEED_BYTES}-byte Uint8Array`)
  }
}

/** Views keystream bytes as u32 words (little-endian), copying only when the buffer is misaligned or the host is big-endian. */
function asWords (chunk: Buffer, words: number): Uint32Array {
  if (LITTLE_ENDIAN && chunk.byteOffset % 4 === 0) return new Uint32Array(chunk.buffer, chunk.byteOffset, words)
  const out = new Uint32Array(words)
  for (let i = 0; i < words; i++) out[i] = chunk.readUInt32LE(4 * i)
  return out
}

/**
 * Adds (sign = 1) or subtracts (sign = -1) PRG(seed)[0..target.length) to target, in place, mod 2^32.
 * Uint32Array stores wrap modulo 2^32, so plain `+=` / `-=` is exact modular arithmetic.
 */
export function addMaskInPlace (target: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  assertSeed(seed)
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_IV)
  const total = target.length
  for (let offset = 0; offset < total;) {
    const words = Math.min(CHUNK_BYTES / 4, total - offset)
    const stream = asWords(cipher.update(ZERO_CHUNK.subarray(0, 4 * words)), words)
    if (sign === 1) {
      for (let i = 0; i < words; i++) target[offset + i] += stream[i]
    } else {
      for (let i = 0; i < words; i++) target[offset + i] -= stream[i]
    }
    offset += words
  }
}

/** PRG(seed) expanded to `length` words (tests and small uses; hot paths use addMaskInPlace). */
export function expandMask (seed: Uint8Array, length: number): Uint32Array {
  if (!Number.isInteger(length) || length < 0) throw new TypeError('length must be a non-negative integer')
  const out = new Uint32Array(length)
  addMaskInPlace(out, seed, 1)
  return out
}
