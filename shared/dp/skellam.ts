/**
 * The Skellam mechanism (Agarwal, Kairouz, Liu, "The Skellam Mechanism for Differentially Private Federated
 * Learning", NeurIPS 2021): every agent adds Sk(μᵢ) = Poisson(μᵢ) − Poisson(μᵢ) to each entry of its integer
 * vector before masking, so the secure sum carries Sk(Σμᵢ) and no party ever sees a less noisy figure.
 *
 * Why Skellam and not the distributed discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021): a sum of
 * independent Skellams is exactly Skellam, so the noise in the unmasked sum has a known law whatever survivor
 * set the round ends with — the accounting needs no "sum of discrete Gaussians is nearly discrete Gaussian"
 * slack, which grows as per-agent noise shrinks (many agents, small σ each). The discrete Gaussian's tighter
 * RDP matters little at the noise levels monitoring needs (μ in the tens to thousands), where the Skellam
 * bound is within a few per cent of the Gaussian's.
 */
import { samplePoisson } from './poisson.js'
import type { UniformSource } from './random.js'

/** How much one record can change a vector, in entries: the sum of |changes| and the root of their squares. */
export interface Sensitivity { l1: number, l2: number }

/**
 * Rényi DP of the Skellam mechanism with noise Sk(μ) per entry (variance 2μ) at integer order α > 1
 * (Agarwal et al. 2021, Theorem 3.5):
 *   ε(α) ≤ α·Δ₂²/(4μ) + min( ((2α − 1)·Δ₂² + 6·Δ₁) / (16μ²), 3·Δ₁/(4μ) ).
 * The first term is the Gaussian mechanism's at the same variance; the second is the price of integers.
 */
export function skellamRdp (alpha: number, mu: number, { l1, l2 }: Sensitivity): number {
  if (!(alpha > 1)) throw new RangeError(`Rényi order must exceed 1, got ${alpha}`)
  if (!(mu > 0)) throw new RangeError(`Skellam parameter must be > 0, got ${mu}`)
  const l2sq = l2 * l2
  return alpha * l2sq / (4 * mu) + Math.min(((2 * alpha - 1) * l2sq + 6 * l1) / (16 * mu * mu), 3 * l1 / (4 * mu))
}

/** One Sk(μ) sample. */
export function sampleSkellam (mu: number, uniform: UniformSource): number {
  return samplePoisson(mu, uniform) - samplePoisson(mu, uniform)
}

/**
 * Adds independent Sk(μ) noise to every entry, modulo 2^32 like the secure sum itself (a negative draw wraps;
 * the coordinator reads the summed entry as a signed value). In place; returns the vector.
 */
export function addSkellamNoise (vector: Uint32Array, mu: number, uniform: UniformSource): Uint32Array {
  if (mu === 0) return vector
  for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] + sampleSkellam(mu, uniform)) >>> 0
  return vector
}

/** addSkellamNoise with a parameter per entry (counts and raw sums of a DP layout take different ones). In place. */
export function addSkellamNoiseEach (vector: Uint32Array, mus: Float64Array, uniform: UniformSource): Uint32Array {
  if (mus.length !== vector.length) throw new RangeError(`${mus.length} noise parameters for ${vector.length} entries`)
  for (let i = 0; i < vector.length; i++) if (mus[i] > 0) vector[i] = (vector[i] + sampleSkellam(mus[i], uniform)) >>> 0
  return vector
}

/**
 * A bound x with P(max over `entries` entries of |Sk(μ)| ≥ x) ≤ failure: Sk(μ) is a sum of independent
 * centred Poisson parts with variance 2μ and jumps of 1, so Bernstein gives
 * P(|Sk| ≥ x) ≤ 2·exp(−x² / (2(2μ + x/3))); a union bound over the entries finishes it.
 */
export function skellamTailBound (mu: number, entries: number, failure: number): number {
  if (mu === 0) return 0
  const l = Math.log(2 * entries / failure)
  return Math.ceil(l / 3 + Math.sqrt(l * l / 9 + 4 * mu * l))
}
