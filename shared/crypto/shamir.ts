import { randomFillSync } from 'node:crypto'

/**
 * t-of-n Shamir secret sharing of 32-byte secrets over GF(p), p = 2^26 − 5 (prime).
 *
 * The secret is cut into 11 chunks of 3 bytes (the last one 2 bytes), each shared with its own random
 * polynomial. p < 2^26 keeps every product below 2^52, so field arithmetic is exact in plain JS numbers
 * (no BigInt: share generation is O(k·t) per secret and sits on the client's path). Holders are identified by
 * x in [1, p), which allows far more than 10,000 participants. A share is 11 field elements as
 * little-endian u32 (44 bytes). Reconstruction interpolates at 0 with Lagrange coefficients cached per
 * x-set and checks that every chunk decodes in range, which catches wrong shares with probability ~1 − 2^-30.
 */

export const FIELD_PRIME = 67_108_859
export const SECRET_BYTES = 32
export const CHUNK_BYTES = 3
export const CHUNKS = Math.ceil(SECRET_BYTES / CHUNK_BYTES) // 11
export const SHARE_BYTES = CHUNKS * 4

export class ShamirError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'ShamirError'
    this.code = code
  }
}

export interface Share { x: number, share: Uint8Array }

const P = FIELD_PRIME

function mod (a: number): number {
  const r = a % P
  return r < 0 ? r + P : r
}

function inverse (a: number): number {
  let [oldR, r] = [mod(a), P]
  let [oldS, s] = [1, 0]
  while (r !== 0) {
    const q = Math.floor(oldR / r);
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s]
  }
  if (oldR !== 1) throw new ShamirError('ERR_SHAMIR_ZERO', 'no inverse of 0')
  return mod(oldS)
}

function assertXs (xs: readonly number[]): void {
  const seen = new Set<number>()
  for (const x of xs) {
    if (!Number.isInteger(x) || x <= 0 || x >= P) throw new ShamirError('ERR_SHAMIR_X', `share x must be an integer in [1, ${P}), got ${x}`)
    if (seen.has(x)) throw new ShamirError('ERR_SHAMIR_DUPLICATE_X', `duplicate share x ${x}`)
    seen.add(x)
  }
}

function secretChunk (secret: Uint8Array, c: number): number {
  let v = 0
  for (let b = Math.min(SECRET_BYTES, (c + 1) * CHUNK_BYTES) - 1; b >= c * CHUNK_BYTES; b--) v = v * 256 + secret[b]
  return v
}

/** Uniform field elements by rejection sampling on 26-bit words. */
function randomFieldElements (count: number): Float64Array {
  const out = new Float64Array(count)
  const words = new Uint32Array(Math.max(16, count + (count >> 3)))
  let filled = 0
  while (filled < count) {
    randomFillSync(words)
    for (let i = 0; i < words.length && filled < count; i++) {
      const v = words[i] & 0x3ffffff
      if (v < P) out[filled++] = v
    }
  }
  words.fill(0)
  return out
}

/** Splits a 32-byte secret into one share per x; any `threshold` of them reconstruct it, fewer reveal nothing. */
export function splitSecret (secret: Uint8Array, threshold: number, xs: readonly number[]): Uint8Array[] {
  if (!(secret instanceof Uint8Array) || secret.length !== SECRET_BYTES) throw new ShamirError('ERR_SHAMIR_SECRET', `secret must be ${SECRET_BYTES} bytes`)
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw new ShamirError('ERR_SHAMIR_THRESHOLD', `threshold must be in [1, ${xs.length}], got ${threshold}`)
  }
  assertXs(xs)
  const t = threshold
  // coefficients[c * t + j]: coefficient j of chunk c's polynomial; j = 0 is the secret chunk.
  const coefficients = randomFieldElements(CHUNKS * t)
  for (let c = 0; c < CHUNKS; c++) coefficients[c * t] = secretChunk(secret, c)
  const shares: Uint8Array[] = []
  for (const x of xs) {
    const share = new Uint8Array(SHARE_BYTES)
    const view = new DataView(share.buffer)
    for (let c = 0; c < CHUNKS; c++) {
      const base = c * t
      let acc = coefficients[base + t - 1]
      for (let j = t - 2; j >= 0; j--) acc = (acc * x + coefficients[base + j]) % P
      view.setUint32(4 * c, acc, true)
    }
    shares.push(share)
  }
  coefficients.fill(0)
  return shares
}

const lagrangeCache = new Map<string, Float64Array>()
const MAX_CACHED_SETS = 4096

/** Lagrange coefficients for interpolation at 0 over the given xs, cached per (ordered) x-set. */
export function lagrangeAtZero (xs: readonly number[]): Float64Array {
  const key = xs.join(',')
  const cached = lagrangeCache.get(key)
  if (cached !== undefined) return cached
  assertXs(xs)
  const out = new Float64Array(xs.length)
  for (let i = 0; i < xs.length; i++) {
    let num = 1
    let den = 1
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue
      num = (num * xs[j]) % P
      den = (den * mod(xs[j] - xs[i])) % P
    }
    out[i] = (num * inverse(den)) % P
  }
  if (lagrangeCache.size >= MAX_CACHED_SETS) lagrangeCache.clear()
  lagrangeCache.set(key, out)
  return out
}

/**
 * Reconstructs the secret from the first `threshold` shares given. Throws when fewer are given, on zero or
 * duplicate x, on malformed shares, or when the interpolated chunks are out of range (inconsistent shares).
 */
export function combineShares (shares: readonly Share[], threshold: number): Uint8Array {
  if (!Number.isInteger(threshold) || threshold < 1) throw new ShamirError('ERR_SHAMIR_THRESHOLD', 'threshold must be a positive integer')
  if (shares.length < threshold) {
    throw new ShamirError('ERR_SHAMIR_TOO_FEW', `need ${threshold} shares to reconstruct, got ${shares.length}`)
  }
  const used = shares.slice(0, threshold)
  for (const s of used) {
    if (!(s.share instanceof Uint8Array) || s.share.length !== SHARE_BYTES) throw new ShamirError('ERR_SHAMIR_SHARE', `share must be ${SHARE_BYTES} bytes`)
  }
  const lambdas = lagrangeAtZero(used.map(s => s.x))
  const views = used.map(s => new DataView(s.share.buffer, s.share.byteOffset, s.share.byteLength))
  const secret = new Uint8Array(SECRET_BYTES)
  for (let c = 0; c < CHUNKS; c++) {
    let acc = 0
    for (let i = 0; i < used.length; i++) {
      const y = views[i].getUint32(4 * c, true)
      if (y >= P) throw new ShamirError('ERR_SHAMIR_SHARE', 'share element out of field range')
      acc = (acc + (lambdas[i] * y) % P) % P
    }
    const width = Math.min(SECRET_BYTES, (c + 1) * CHUNK_BYTES) - c * CHUNK_BYTES
    if (acc >= 2 ** (8 * width)) throw new ShamirError('ERR_SHAMIR_INCONSISTENT', 'shares are inconsistent (chunk out of range)')
    for (let b = 0; b < width; b++) {
      secret[c * CHUNK_BYTES + b] = acc % 256
      acc = Math.floor(acc / 256)
    }
  }
  return secret
}
