import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { combineShares, combineSharesVerified, FIELD_PRIME, lagrangeAtZero, lagrangeCoefficients, splitSecret, type Share } from '../../shared/crypto/shamir.js'

const P = BigInt(FIELD_PRIME)
const modBig = (a: bigint): bigint => ((a % P) + P) % P
function inverseBig (a: bigint): bigint {
  // Fermat: a^(p−2) mod p, independent of the extended-Euclid code under test.
  let result = 1n
  let base = modBig(a)
  for (let e = P - 2n; e > 0n; e >>= 1n) {
    if ((e & 1n) === 1n) result = (result * base) % P
    base = (base * base) % P
  }
  return result
}

/** The textbook basis L_i(at) = Π_{j≠i} (at − x_j)/(x_i − x_j), one inversion per i, in BigInt. */
function referenceLagrange (at: number, xs: readonly number[]): number[] {
  return xs.map((xi, i) => {
    let num = 1n
    let den = 1n
    xs.forEach((xj, j) => {
      if (j === i) return
      num = modBig(num * BigInt(at - xj))
      den = modBig(den * BigInt(xi - xj))
    })
    return Number(modBig(num * inverseBig(den)))
  })
}

const xSet = fc.uniqueArray(fc.integer({ min: 1, max: FIELD_PRIME - 1 }), { minLength: 1, maxLength: 60 })

test('batch-inverted Lagrange coefficients equal the textbook ones (at 0 and at another point)', () => {
  fc.assert(fc.property(xSet, fc.integer({ min: 0, max: FIELD_PRIME - 1 }), (xs, at) => {
    assert.deepEqual([...lagrangeCoefficients(0, xs)], referenceLagrange(0, xs))
    assert.deepEqual([...lagrangeAtZero(xs)], referenceLagrange(0, xs))
    if (!xs.includes(at)) assert.deepEqual([...lagrangeCoefficients(at, xs)], referenceLagrange(at, xs))
    // at a holder's own x the basis is that holder's indicator
    assert.deepEqual([...lagrangeCoefficients(xs[at % xs.length], xs)], xs.map((_, i) => i === at % xs.length ? 1 : 0))
  }), { numRuns: 300 })
})

test('robust reconstruction still finds the secret and names the wrong shares after the rewrite', () => {
  fc.assert(fc.property(
    fc.integer({ min: 2, max: 30 }).chain(t => fc.record({
      t: fc.constant(t),
      extra: fc.integer({ min: 1, max: 6 }),
      secret: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      bad: fc.integer({ min: 0, max: 1000 })
    })),
    ({ t, extra, secret, bad }) => {
      const xs = Array.from({ length: t + extra }, (_, i) => 3 * i + 1)
      const shares: Share[] = splitSecret(secret, t, xs).map((share, i) => ({ x: xs[i], share }))
      const wrong = bad % shares.length
      shares[wrong] = { x: shares[wrong].x, share: shares[wrong].share.map((b, i) => i % 4 === 0 ? b ^ 1 : b) }
      const outcome = combineSharesVerified(shares, t, s => Buffer.from(s).equals(Buffer.from(secret)))
      assert.ok(outcome.ok)
      assert.deepEqual(outcome.secret, secret)
      if (wrong < t) assert.deepEqual(outcome.inconsistentXs, [xs[wrong]])
    }), { numRuns: 100 })
})

test('reconstruction with the largest coefficients and shares in the field stays exact (no rounding)', () => {
  // Holders near p make every product close to 2^52, where an inexact reduction would show.
  const xs = Array.from({ length: 47 }, (_, i) => FIELD_PRIME - 1 - 3 * i)
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), (secret, seed) => {
    const shares: Share[] = splitSecret(secret, 47, xs).map((share, i) => ({ x: xs[i], share }))
    const rotated = [...shares.slice(seed % 47), ...shares.slice(0, seed % 47)]
    assert.deepEqual(combineShares(rotated, 47), secret)
    const verified = combineSharesVerified(rotated, 47, s => Buffer.compare(s, secret) === 0)
    assert.ok(verified.ok)
  }), { numRuns: 60 })
})
