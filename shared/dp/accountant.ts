/**
 * Rényi-DP accounting: per-round Skellam releases compose by adding their RDP curves (Mironov 2017), and a
 * curve converts to (ε, δ) with the conversion of Canonne, Kamath, Steinke (NeurIPS 2020, Prop. 12) — the
 * one `dp_accounting` and TensorFlow Privacy use:
 *   ε = min over α of  ε(α) + log(1 − 1/α) − (log δ + log α) / (α − 1).
 * Integer orders only: the Skellam bound is stated for them.
 */
import { skellamRdp, type Sensitivity } from './skellam.js'

/** The Rényi orders the accountant evaluates: 2 … 256, then sparser to 4096 (tiny ε needs large orders). */
export const RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 255 }, (_, i) => i + 2),
  288, 320, 384, 448, 512, 640, 768, 1024, 1536, 2048, 3072, 4096
]

/** One Skellam release: noise Sk(mu) per entry on a vector a record changes by at most `sensitivity`. */
export interface SkellamRelease { mu: number, sensitivity: Sensitivity }

/** The composed RDP curve of releases over the same records (refresh rounds of one window). */
export function composedRdp (releases: readonly SkellamRelease[]): number[] {
  return RDP_ORDERS.map(alpha => releases.reduce((sum, r) => sum + skellamRdp(alpha, r.mu, r.sensitivity), 0))
}

/** The smallest ε the curve certifies at δ, and the order that gives it. */
export function rdpToDp (curve: readonly number[], delta: number): { epsilon: number, order: number } {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`δ must be in (0, 1), got ${delta}`)
  let best = { epsilon: Infinity, order: RDP_ORDERS[0] }
  for (let i = 0; i < RDP_ORDERS.length; i++) {
    const alpha = RDP_ORDERS[i]
    const epsilon = curve[i] + Math.log1p(-1 / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1)
    if (epsilon < best.epsilon) best = { epsilon, order: alpha }
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order }
}

/** (ε, δ) of a set of releases over the same records. */
export function releasesEpsilon (releases: readonly SkellamRelease[], delta: number): number {
  return rdpToDp(composedRdp(releases), delta).epsilon
}

/**
 * The smallest Skellam parameter μ (total, in the sum) for which one release at `sensitivity`, composed after
 * `previous` releases over the same records, stays within (ε, δ). Bisection on log μ: ε falls as μ grows.
 */
export function calibrateSkellam (target: { epsilon: number, delta: number }, sensitivity: Sensitivity, previous: readonly SkellamRelease[] = []): number {
  if (!(target.epsilon > 0)) throw new RangeError(`ε must be > 0, got ${target.epsilon}`)
  const epsilonAt = (mu: number): number => releasesEpsilon([...previous, { mu, sensitivity }], target.delta)
  if (previous.length > 0 && releasesEpsilon(previous, target.delta) >= target.epsilon) {
    throw new RangeError(`the earlier releases already spend ε = ${releasesEpsilon(previous, target.delta).toFixed(3)} ≥ ${target.epsilon}`)
  }
  let lo = 1e-6
  let hi = 1
  while (epsilonAt(hi) > target.epsilon) {
    lo = hi
    hi *= 4
    if (hi > 1e18) throw new RangeError('no Skellam parameter reaches this ε')
  }
  for (let i = 0; i < 80 && hi / lo > 1 + 1e-9; i++) {
    const mid = Math.sqrt(lo * hi)
    if (epsilonAt(mid) > target.epsilon) lo = mid
    else hi = mid
  }
  return hi
}
