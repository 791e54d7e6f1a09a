import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { combineShares, combineSharesVerified, FIELD_PRIME, lagrangeAtZero, lagrangeCoefficients, splitSecret, type Share } from '../../shared/crypto/shamir.js'

/**
 * The coordinator's interpolation (batched inversion, multiply-and-correct reduction) against the textbook
 * Lagrange formula in BigInt: L_i(at) = Π_{j≠i} (at − x_j) · (x_i − x_j)^(−1) mod p.
 */

const P = BigInt(FIELD_PRIME)
const modP = (a: bigint): bigint => ((a % P) + P) % P
function powMod (base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = modP(base)
  for (let e = exp; e > 0n; e >>= 1n) {
    if ((e & 1n) === 1n) result = result * b % P
    b = b * b % P
  }
  return result
}
function referenceBasis (at: number, xs: readonly number[]): number[] {
  return xs.map((xi, i) => {
    let num = 1n
    let den = 1n
    xs.forEach((xj, j) => {
      if (j === i) return
      num = modP(num * modP(BigInt(at) - BigInt(xj)))
      den = modP(den * modP(BigInt(xi) - BigInt(xj)))
    })
    return Number(num * powMod(den, P - 2n) % P)
  })
}

/** Distinct holder xs anywhere in the field (large ones stress the reduction), at most 60 of them. */
const xsArb = fc.uniqueArray(fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 1, max: FIELD_PRIME - 1 })), { minLength: 1, maxLength: 60 })

test('lagrangeCoefficients equals the textbook formula (BigInt) at 0, at any field element and at a holder x', () => {
  fc.assert(fc.property(xsArb, fc.integer({ min: 0, max: FIELD_PRIME - 1 }), fc.nat(), (xs, at, pick) => {
    assert.deepEqual([...lagrangeCoefficients(0, xs)], referenceBasis(0, xs))
    assert.deepEqual([...lagrangeAtZero(xs)], referenceBasis(0, xs))
    if (!xs.includes(at)) assert.deepEqual([...lagrangeCoefficients(at, xs)], referenceBasis(at, xs))
    const holder = pick % xs.length
    assert.deepEqual([...lagrangeCoefficients(xs[holder], xs)], xs.map((_, i) => i === holder ? 1 : 0))
  }), { numRuns: 300 })
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
