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

const INV_P = 1 / P

/**
 * a·b mod p for a, b in [0, p): the product is < 2^52, exact in a double. The quotient estimate from one
 * floating multiplication is off by at most one, fixed by one compare — several times faster than `%` on
 * doubles, which matters in the O(t²) Lagrange denominators the coordinator computes once per agent.
 */
function mulMod (a: number, b: number): number {
  const product = a * b
  let r = product - Math.floor(product * INV_P) * P
  if (r < 0) r += P
  else if (r >= P) r -= P
  return r
}

/** a − b mod p for a, b in [0, p). */
function subMod (a: number, b: number): number {
  const d = a - b
  return d < 0 ? d + P : d
}

function inverse (a: number): number {
  // Extended Euclid on plain numbers (no tuple swaps: this runs once per Lagrange set, on the unmask path).
  let oldR = mod(a)
  let r = P
  let oldS = 1
  let s = 0
  while (r !== 0) {
    const q = Math.floor(oldR / r)
    const nextR = oldR - q * r
    oldR = r
    r = nextR
    const nextS = oldS - q * s
    oldS = s
    s = nextS
  }
  if (oldR !== 1) throw new ShamirError('ERR_SHAMIR_ZERO', 'no inverse of 0')
  return mod(oldS)
}

function assertXs (xs: readonly number[]): void {
  // Strictly increasing (the coordinator's order) proves distinct in one pass; otherwise a Set.
  let increasing = true
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]
    if (!Number.isInteger(x) || x <= 0 || x >= P) throw new ShamirError('ERR_SHAMIR_X', `share x must be an integer in [1, ${P}), got ${x}`)
    if (i > 0 && x <= xs[i - 1]) increasing = false
  }
  if (increasing) return
  const seen = new Set<number>()
  for (const x of xs) {
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
      for (let j = t - 2; j >= 0; j--) {
        acc = mulMod(acc, x) + coefficients[base + j]
        if (acc >= P) acc -= P
      }
      view.setUint32(4 * c, acc, true)
    }
    shares.push(share)
  }
  coefficients.fill(0)
  return shares
}

/** Cached coefficient sets by a hash of their xs (collisions are told apart by comparing the xs). */
const lagrangeCache = new Map<number, Array<{ xs: number[], lambdas: Float64Array }>>()
const MAX_CACHED_SETS = 4096
let cachedSets = 0

function hashXs (xs: readonly number[]): number {
  let h = 0x811c9dc5 ^ xs.length
  for (const x of xs) h = Math.imul(h ^ x, 0x01000193) ^ (x >>> 16)
  return h >>> 0
}

/** Lagrange coefficients for interpolation at 0 over the given xs, cached per (ordered) x-set. */
export function lagrangeAtZero (xs: readonly number[]): Float64Array {
  const key = hashXs(xs)
  const bucket = lagrangeCache.get(key)
  if (bucket !== undefined) {
    for (const entry of bucket) {
      if (entry.xs.length === xs.length && entry.xs.every((x, i) => x === xs[i])) return entry.lambdas
    }
  }
  assertXs(xs)
  const lambdas = lagrangeCoefficients(0, xs)
  if (cachedSets >= MAX_CACHED_SETS) { lagrangeCache.clear(); cachedSets = 0 }
  const entry = { xs: [...xs], lambdas }
  const list = lagrangeCache.get(key)
  if (list === undefined) lagrangeCache.set(key, [entry])
  else list.push(entry)
  cachedSets++
  return lambdas
}

/**
 * Lagrange basis values L_i(at) = Π_{j≠i} (at − x_j)/(x_i − x_j) over distinct, non-zero xs (uncached).
 * The coordinator rebuilds one secret per agent over a holder set of its own, so this runs ~n times per
 * round: numerators from prefix/suffix products (O(t)), denominators in O(t²) multiplications, and a single
 * modular inversion for all of them (Montgomery's batch inversion) instead of t.
 */
export function lagrangeCoefficients (at: number, xs: readonly number[]): Float64Array {
  const t = xs.length
  const out = new Float64Array(t)
  if (t === 0) return out
  const a = mod(at)
  // prefix[i] = Π_{j<i} (at − x_j); the suffix product is carried in the loop below.
  const prefix = new Float64Array(t + 1)
  prefix[0] = 1
  for (let j = 0; j < t; j++) prefix[j + 1] = mulMod(prefix[j], subMod(a, xs[j]))
  const dens = new Float64Array(t)
  for (let i = 0; i < t; i++) {
    const xi = xs[i]
    let den = 1
    for (let j = 0; j < i; j++) den = mulMod(den, subMod(xi, xs[j]))
    for (let j = i + 1; j < t; j++) den = mulMod(den, subMod(xi, xs[j]))
    if (den === 0) throw new ShamirError('ERR_SHAMIR_DUPLICATE_X', `duplicate share x ${xi}`)
    dens[i] = den
  }
  // Batch inversion: running[i] = d_0 ⋯ d_{i−1}; one inverse of the total, then peel one factor per step.
  const running = new Float64Array(t)
  let total = 1
  for (let i = 0; i < t; i++) { running[i] = total; total = mulMod(total, dens[i]) }
  let inv = inverse(total)
  let suffix = 1
  for (let i = t - 1; i >= 0; i--) {
    const invDen = mulMod(inv, running[i])
    inv = mulMod(inv, dens[i])
    out[i] = mulMod(mulMod(prefix[i], suffix), invDen)
    suffix = mulMod(suffix, subMod(a, xs[i]))
  }
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

/** What combineSharesVerified found: the accepted secret and who agreed with it, or that nothing was accepted. */
export type VerifiedCombination =
  | {
    ok: true
    secret: Uint8Array
    /** The x of the t shares the accepted secret was interpolated from. */
    usedXs: number[]
    /**
     * Shares that contradict the accepted polynomial (wrong shares): filled only when the first t shares did not
     * verify (the fast path checks nothing more), and only when `canonical` says the secret identifies its polynomial.
     */
    inconsistentXs: number[]
    /** Candidate subsets tried (1 when the first t shares verified). */
    attempts: number
  }
  | { ok: false, attempts: number, /** true when every candidate subset was tried (not cut by the cap). */ exhausted: boolean }

export interface VerifiedCombineOptions {
  /** At most this many t-subsets are interpolated and checked (default 512). */
  maxAttempts?: number
  /**
   * Whether an accepted secret pins the polynomial exactly (default: always). When false for a secret (e.g. an
   * X25519 key that is not in clamped form, which `accept` cannot tell from its clamped twins), no share is
   * reported inconsistent.
   */
  canonical?: (secret: Uint8Array) => boolean
}

const DEFAULT_MAX_ATTEMPTS = 512

/**
 * Robust reconstruction: interpolates t-subsets of the shares (in the given order) until `accept` (a check
 * against a commitment: hash, public key) takes the secret. Order of candidates: the first t shares; then every
 * subset that leaves out one share of the first t + 1, then two of the first t + 2, and so on — so e wrong
 * shares among the first t + e are always found within Σ_{r≤e} C(t + r − 1, r) attempts (t + 1 for a single
 * one), up to `maxAttempts`. Shares listed last (known-bad holders) are used last. Candidates that decode out of
 * range are skipped without calling `accept`; rejected candidates are wiped. After a search (the first subset
 * failed), every share is checked against the accepted polynomial, which names the wrong ones.
 */
export function combineSharesVerified (shares: readonly Share[], threshold: number, accept: (secret: Uint8Array) => boolean, options: VerifiedCombineOptions = {}): VerifiedCombination {
  if (!Number.isInteger(threshold) || threshold < 1) throw new ShamirError('ERR_SHAMIR_THRESHOLD', 'threshold must be a positive integer')
  if (shares.length < threshold) throw new ShamirError('ERR_SHAMIR_TOO_FEW', `need ${threshold} shares to reconstruct, got ${shares.length}`)
  assertXs(shares.map(s => s.x))
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  const t = threshold
  // Parse once into one flat array (no per-share allocation: the coordinator parses ~n·k shares per round);
  // a malformed share (wrong size, element out of the field) is wrong whatever the subset: set aside.
  const ys = new Uint32Array(shares.length * CHUNKS)
  // good[i].at: offset of its CHUNKS elements in ys (offsets, not subarrays: creating views costs more than the math).
  const good: Array<{ x: number, at: number }> = []
  const malformed: number[] = []
  for (const s of shares) {
    const at = good.length * CHUNKS
    if (parseShareInto(s.share, ys, at)) good.push({ x: s.x, at })
    else malformed.push(s.x)
  }
  const m = good.length
  let attempts = 0
  const tryIndexes = (indexes: number[]): Uint8Array | null => {
    attempts++
    const xs = indexes.map(i => good[i].x)
    const lambdas = attempts === 1 ? lagrangeAtZero(xs) : lagrangeCoefficients(0, xs)
    const secret = interpolateSecret(ys, indexes.map(i => good[i].at), lambdas)
    if (secret === null) return null
    if (accept(secret)) return secret
    secret.fill(0)
    return null
  }
  const found = (indexes: number[], secret: Uint8Array): VerifiedCombination => {
    const usedXs = indexes.map(i => good[i].x)
    let inconsistentXs: number[] = []
    if (attempts > 1 || malformed.length > 0) {
      inconsistentXs = [...malformed]
      if (options.canonical?.(secret) ?? true) {
        const used = new Set(indexes)
        const basis = indexes.map(i => good[i].at)
        for (let j = 0; j < m; j++) {
          if (used.has(j)) continue
          const expected = evaluateAt(good[j].x, usedXs, ys, basis)
          if (!expected.every((v, c) => v === ys[good[j].at + c])) inconsistentXs.push(good[j].x)
        }
      } else {
        inconsistentXs = []
      }
    }
    return { ok: true, secret, usedXs, inconsistentXs, attempts }
  }
  if (m < t) return { ok: false, attempts, exhausted: true }
  // r = number of shares left out of the first t + r; candidates always include share t + r − 1 (new ones only).
  for (let r = 0; r <= m - t; r++) {
    const window = t + r - 1 // choose the r left-out shares among indexes [0, window)
    const leftOut = Array.from({ length: r }, (_, i) => i)
    for (;;) {
      if (attempts >= maxAttempts) return { ok: false, attempts, exhausted: false }
      const skip = new Set(leftOut)
      const indexes: number[] = []
      for (let i = 0; i <= window; i++) if (!skip.has(i)) indexes.push(i)
      const secret = tryIndexes(indexes)
      if (secret !== null) return found(indexes, secret)
      if (!nextCombination(leftOut, window)) break
    }
  }
  return { ok: false, attempts, exhausted: true }
}

/** Advances `combo` (increasing indexes in [0, limit)) to the next r-combination; false after the last. */
function nextCombination (combo: number[], limit: number): boolean {
  const r = combo.length
  let i = r - 1
  while (i >= 0 && combo[i] === limit - r + i) i--
  if (i < 0) return false
  combo[i]++
  for (let j = i + 1; j < r; j++) combo[j] = combo[j - 1] + 1
  return true
}

/** Reads a share's little-endian field elements into `out`; false when malformed (size, element ≥ p). */
function parseShareInto (share: Uint8Array, out: Uint32Array, at: number): boolean {
  if (!(share instanceof Uint8Array) || share.length !== SHARE_BYTES) return false
  for (let c = 0, b = 0; c < CHUNKS; c++, b += 4) {
    const v = (share[b] | (share[b + 1] << 8) | (share[b + 2] << 16) | (share[b + 3] << 24)) >>> 0
    if (v >= P) return false
    out[at + c] = v
  }
  return true
}

/** Σ λ_i·y_i per chunk, decoded to the 32-byte secret; null when a chunk is out of its byte range. */
function interpolateSecret (ys: Uint32Array, offsets: readonly number[], lambdas: Float64Array): Uint8Array | null {
  const secret = new Uint8Array(SECRET_BYTES)
  for (let c = 0; c < CHUNKS; c++) {
    let acc = 0
    // Each term is < 2^26, so up to 2^26 of them sum exactly in a double: reduce once.
    for (let i = 0; i < offsets.length; i++) acc += mulMod(lambdas[i], ys[offsets[i] + c])
    acc %= P
    const width = Math.min(SECRET_BYTES, (c + 1) * CHUNK_BYTES) - c * CHUNK_BYTES
    if (acc >= 2 ** (8 * width)) { secret.fill(0); return null }
    for (let b = 0; b < width; b++) {
      secret[c * CHUNK_BYTES + b] = acc % 256
      acc = Math.floor(acc / 256)
    }
  }
  return secret
}

/** The shared polynomials (one per chunk) through (xs, ys), evaluated at `at`. */
function evaluateAt (at: number, xs: readonly number[], ys: Uint32Array, offsets: readonly number[]): Uint32Array {
  const basis = lagrangeCoefficients(at, xs)
  const out = new Uint32Array(CHUNKS)
  for (let c = 0; c < CHUNKS; c++) {
    let acc = 0
    for (let i = 0; i < offsets.length; i++) acc += mulMod(basis[i], ys[offsets[i] + c])
    acc %= P
    out[c] = acc
  }
  return out
}
