/**
 * Poisson sampling, the building block of Skellam noise.
 *
 * μ < 10: multiplication of uniforms (Knuth), O(μ) draws. μ ≥ 10: Hörmann's transformed rejection with
 * squeeze, PTRS ("The transformed rejection method for generating Poisson random variables", Insurance:
 * Mathematics and Economics 12, 1993) — the algorithm numpy uses — about 1.2 pairs of uniforms per sample at
 * any μ. Both are exact given exact uniforms; with 53-bit uniforms and double arithmetic the sampled law is
 * within a relative 2^-40 or so of Poisson(μ) on every outcome of non-negligible mass (rounding of log/exp).
 */
import type { UniformSource } from './random.js'

/** One Poisson(μ) sample, μ ≥ 0 finite. */
export function samplePoisson (mu: number, uniform: UniformSource): number {
  if (!(mu >= 0) || !Number.isFinite(mu)) throw new RangeError(`Poisson mean must be finite and ≥ 0, got ${mu}`)
  if (mu === 0) return 0
  return mu < 10 ? poissonMultiplication(mu, uniform) : poissonPtrs(mu, uniform)
}

function poissonMultiplication (mu: number, uniform: UniformSource): number {
  const limit = Math.exp(-mu)
  let k = 0
  let product = uniform()
  while (product > limit) {
    k++
    product *= uniform()
  }
  return k
}

/** Hörmann 1993, algorithm PTRS (constants as published). */
function poissonPtrs (mu: number, uniform: UniformSource): number {
  const sqrtMu = Math.sqrt(mu)
  const logMu = Math.log(mu)
  const b = 0.931 + 2.53 * sqrtMu
  const a = -0.059 + 0.02483 * b
  const logInvAlpha = Math.log(1.1239 + 1.1328 / (b - 3.4))
  const vr = 0.9277 - 3.6224 / (b - 2)
  for (;;) {
    const u = uniform() - 0.5
    const v = uniform()
    const us = 0.5 - Math.abs(u)
    const k = Math.floor((2 * a / us + b) * u + mu + 0.43)
    if (us >= 0.07 && v <= vr) return k
    if (k < 0 || (us < 0.013 && v > us)) continue
    if (Math.log(v) + logInvAlpha - Math.log(a / (us * us) + b) <= -mu + k * logMu - logFactorial(k)) return k
  }
}

const TABLE_SIZE = 1024
const LOG_FACTORIALS = (() => {
  const table = new Float64Array(TABLE_SIZE)
  for (let k = 2; k < TABLE_SIZE; k++) table[k] = table[k - 1] + Math.log(k)
  return table
})()
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI)

/** log(k!) for integer k ≥ 0: a table below 1024, Stirling's series (error < 1e-16 relative) above. */
export function logFactorial (k: number): number {
  if (k < TABLE_SIZE) return LOG_FACTORIALS[k]
  const x = k + 1
  const inv = 1 / x
  const inv2 = inv * inv
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + inv * (1 / 12 - inv2 * (1 / 360 - inv2 / 1260))
}
