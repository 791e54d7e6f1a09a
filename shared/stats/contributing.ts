/**
 * Contributing sites (issue 12 §3, design §8): how many of a round's included sites had at least one record in
 * the window — the sum of every agent's `sitesWithRecords` indicator (layout.ts). The secure sum reveals how many,
 * never which. A report whose figures come from fewer sites than the round's minAgents is not published by the
 * honest coordinator: "4 included" must not be one site's histogram.
 */
import { counterIndex, type Layout } from './layout.js'

/** The summed per-site indicator of `vector` (one local vector: 1 or 0). */
export function contributingSites (layout: Layout, vector: Uint32Array): number {
  return vector[counterIndex(layout, 'sitesWithRecords')]
}

export const ERR_TOO_FEW_CONTRIBUTORS = 'ERR_TOO_FEW_CONTRIBUTORS'

/**
 * Why a round's report must not be published for lack of contributing sites, or null when it may be.
 * `noise95`: under privacy.dp the indicator sum is a noisy count like every other (± this at 95 %); refusing on
 * the noisy figure itself would refuse honest rounds at random, so the round is refused only when its count is
 * below minAgents by more than the noise — fewer contributors established with 95 % confidence. Within the
 * noise it is published: the DP noise is then what protects a small cell (the report's count says ±).
 */
export function tooFewContributors (opts: { contributing: number, included: number, minAgents: number, noise95?: number }): { code: string, message: string } | null {
  const { contributing, included, minAgents, noise95 } = opts
  const margin = noise95 !== undefined ? Math.ceil(noise95) : 0
  if (contributing + margin >= minAgents) return null
  const count = noise95 !== undefined ? `a noisy count of ${contributing} (±${margin} at 95 %)` : `only ${contributing}`
  return {
    code: ERR_TOO_FEW_CONTRIBUTORS,
    message: `${count} of the ${included} included sites had records in the window, and the privacy policy needs at least ${minAgents} (privacy.minAgents): the figures would come from fewer sites than that, so no report is published`
  }
}
