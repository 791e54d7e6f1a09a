/**
 * Contributing sites (issue 12 §3, design §8): how many of a round's included sites had at least one record in
 * the window — the sum of every agent's `sitesWithRecords` indicator (layout.ts). The secure sum reveals how many,
 * never which. A report whose figures come from fewer sites than the round's minAgents is not published by the
 * honest coordinator: "4 included" must not be one site's histogram.
 */
import { taskOfLayout, type TaskLayout } from './tasks/index.js'
import { skellamTailBound } from '../dp/skellam.js'

/** The summed per-site indicator of `vector` (one local vector: 1 or 0). Every task's layout has one. */
export function contributingSites (layout: TaskLayout, vector: Uint32Array): number {
  return taskOfLayout(layout).sitesWithRecords(layout, vector)
}

export const ERR_TOO_FEW_CONTRIBUTORS = 'ERR_TOO_FEW_CONTRIBUTORS'

/** Under DP, the chance that noise alone takes the count of a round with ≥ minAgents contributing sites to a refusal. */
export const NOISY_REFUSAL_FAILURE = 1e-6
/** The two-sided 95 % normal quantile (shared/dp/report.ts countError95 = Z95 · σ). */
const Z95 = 1.959964

/**
 * Why a round's report must not be published for lack of contributing sites, or null when it may be.
 * `noise95`: under privacy.dp the indicator sum is a noisy count like every other (± this at 95 %); refusing on
 * the noisy figure itself would refuse honest rounds at random, so the round is refused only when its count is
 * below minAgents by more than the noise can explain: the Skellam tail bound at failure NOISY_REFUSAL_FAILURE
 * (≈ 5σ), not the 95 % half-width — a refused round uses up its window at every included site for good, so an
 * honest round with minAgents contributing sites must not be refused 2.5 % of the time. Within the noise it is
 * published: the DP noise is then what protects a small cell (the report's count says ±).
 */
export function tooFewContributors (opts: { contributing: number, included: number, minAgents: number, noise95?: number }): { code: string, message: string } | null {
  const { contributing, included, minAgents, noise95 } = opts
  // σ = noise95 / z95; the summed noise is Sk(μ) with variance 2μ
  const margin = noise95 !== undefined ? skellamTailBound((noise95 / Z95) ** 2 / 2, 1, NOISY_REFUSAL_FAILURE) : 0
  if (contributing + margin >= minAgents) return null
  const count = noise95 !== undefined ? `a noisy count of ${contributing} (±${Math.ceil(noise95)} at 95 %, below by more than the noise can explain)` : `only ${contributing}`
  return {
    code: ERR_TOO_FEW_CONTRIBUTORS,
    message: `${count} of the ${included} included sites had records in the window, and the privacy policy needs at least ${minAgents} (privacy.minAgents): the figures would come from fewer sites than that, so no report is published`
  }
}
