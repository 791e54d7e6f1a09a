/**
 * The DP plan of a round: from the layout, the target (ε, δ) and the fewest agents the round can finish with,
 * the Skellam parameter each agent adds to its count entries. Pure; every agent computes it for itself and
 * adds its own noise (the coordinator is never trusted to).
 *
 * Noise is sized for the worst allowed survivor set: dropped agents add none, so the noise of the
 * `minSurvivors` agents alone (max(t, minAgents, consistency quorum) — the fewest a round can unmask with)
 * must meet the target. Any larger survivor set only adds noise (Skellam sums are Skellam), so the sum is
 * at least as private; the report states the noise actually in it.
 */
import type { Layout } from '../stats/layout.js'
import { calibrateSkellam, releasesEpsilon, type SkellamRelease } from './accountant.js'
import { layoutSensitivity, rawSumEntries, type CountGroup } from './sensitivity.js'
import { skellamTailBound, type Sensitivity } from './skellam.js'

export interface DpTarget { epsilon: number, delta: number }

export class DpPlanError extends Error {
  override name = 'DpPlanError'
  constructor (readonly code: 'ERR_DP_LAYOUT' | 'ERR_DP_BUDGET' | 'ERR_DP_OVERFLOW', message: string) { super(message) }
}

export interface DpPlan {
  target: DpTarget
  /** The fewest agents whose noise the sum is guaranteed to hold. */
  minSurvivors: number
  /** Skellam parameter of the noise in the sum at `minSurvivors` agents (per count entry). */
  muTotal: number
  /** What each agent adds to each count entry: Sk(muPerAgent). */
  muPerAgent: number
  sensitivity: Sensitivity
  countGroups: CountGroup[]
  /**
   * The raw one-entry sums of a DP layout (log loss, Brier, score and moment sums), noised as a second release
   * with their own Skellam parameter; null when the layout has none.
   */
  sums: { muTotal: number, muPerAgent: number, sensitivity: Sensitivity, groups: Array<{ name: string, maxTerm: number }> } | null
  /** ε this round spends at δ (≤ target), composed with `previous` (earlier rounds over the same records). */
  epsilon: number
}

/**
 * The budget split between counts and sums: the sums' Skellam parameter is chosen so that their leading RDP
 * term (α·Δ₂²/4μ) is this fraction of the round's, the counts keeping the rest. Counts carry AUC, PR-AUC, the
 * threshold metrics and every drift figure, the sums only log loss, Brier, ECE and mean/std shifts, which
 * average over many records (their relative error falls as 1/records): a third is enough for them.
 */
export const DP_SUMS_SHARE = 1 / 3

/**
 * Plans the noise for one round. `previous`: releases already made over the same window's records (refresh
 * rounds compose); the target then bounds the window's total.
 */
export function planDp (layout: Layout, target: DpTarget, minSurvivors: number, previous: readonly SkellamRelease[] = []): DpPlan {
  if (!Number.isInteger(minSurvivors) || minSurvivors < 1) throw new RangeError(`minSurvivors must be a positive integer, got ${minSurvivors}`)
  const sens = layoutSensitivity(layout)
  if (sens.limbSums.length > 0) {
    throw new DpPlanError('ERR_DP_LAYOUT', `differential privacy covers count entries only: the spec has ${sens.limbSums.length} fixed-point sum(s) (set score.sums: false and moments: false on numeric features)`)
  }
  const sums = sens.sums
  // μ_sums = ratio · μ_counts makes the sums' leading RDP term DP_SUMS_SHARE of the total.
  const ratio = sums === null ? 0 : (sums.sensitivity.l2 / sens.counts.l2) ** 2 * (1 - DP_SUMS_SHARE) / DP_SUMS_SHARE
  const releases = (mu: number): SkellamRelease[] => [
    ...previous, { mu, sensitivity: sens.counts }, ...(sums !== null ? [{ mu: mu * ratio, sensitivity: sums.sensitivity }] : [])
  ]
  let muTotal: number
  try {
    muTotal = sums === null ? calibrateSkellam(target, sens.counts, previous) : calibrateReleases(target, releases)
  } catch (err) {
    throw new DpPlanError('ERR_DP_BUDGET', (err as Error).message)
  }
  const muPerAgent = muTotal / minSurvivors
  const epsilon = releasesEpsilon(releases(muTotal), target.delta)
  return {
    target, minSurvivors, muTotal, muPerAgent, sensitivity: sens.counts, countGroups: sens.countGroups, epsilon,
    sums: sums === null ? null : { muTotal: muTotal * ratio, muPerAgent: muTotal * ratio / minSurvivors, sensitivity: sums.sensitivity, groups: sums.groups }
  }
}

/** The smallest μ for which the releases built from it stay within (ε, δ): bisection on log μ. */
function calibrateReleases (target: DpTarget, releases: (mu: number) => SkellamRelease[]): number {
  const epsilonAt = (mu: number): number => releasesEpsilon(releases(mu), target.delta)
  let lo = 1e-6
  let hi = 1
  while (epsilonAt(hi) > target.epsilon) {
    lo = hi
    hi *= 4
    if (hi > 1e18) throw new RangeError(`no Skellam parameter reaches ε = ${target.epsilon}`)
  }
  for (let i = 0; i < 80 && hi / lo > 1 + 1e-9; i++) {
    const mid = Math.sqrt(lo * hi)
    if (epsilonAt(mid) > target.epsilon) lo = mid
    else hi = mid
  }
  return hi
}

/** Per entry of the layout, the Skellam parameter each agent adds: the counts' or, on a raw sum entry, the sums'. */
export function noiseMuPerEntry (layout: Layout, plan: Pick<DpPlan, 'muPerAgent' | 'sums'>): Float64Array {
  const mus = new Float64Array(layout.length).fill(plan.muPerAgent)
  if (plan.sums !== null) {
    const isSum = rawSumEntries(layout)
    for (let i = 0; i < mus.length; i++) if (isSum[i] === 1) mus[i] = plan.sums.muPerAgent
  }
  return mus
}

/** Standard deviation of the noise in one summed count entry when `survivors` agents each added Sk(muPerAgent). */
export function noiseStd (plan: Pick<DpPlan, 'muPerAgent'>, survivors: number): number {
  return Math.sqrt(2 * plan.muPerAgent * survivors)
}

/**
 * Checks that no summed entry leaves the signed 32-bit range the coordinator decodes (counts of `agents` agents
 * of up to layout.maxRecords each, plus noise), except with probability `failure`.
 */
export function checkDpHeadroom (layout: Layout, plan: Pick<DpPlan, 'muPerAgent' | 'sums'>, agents: number, failure = 2 ** -40): void {
  const noise = skellamTailBound(Math.max(plan.muPerAgent, plan.sums?.muPerAgent ?? 0) * agents, layout.length, failure)
  // A count entry holds at most maxRecords per agent, a raw sum entry maxRecords × its term (layout.maxEntry).
  const perAgent = plan.sums !== null ? layout.maxEntry : layout.maxRecords
  const worst = perAgent * agents + noise
  if (worst > 2 ** 31 - 1) {
    throw new DpPlanError('ERR_DP_OVERFLOW', `${agents} agents × ${perAgent} per entry plus noise up to ${noise} can reach ${worst}, beyond the signed 32-bit range of a summed entry (lower limits.maxRecordsPerAgent${plan.sums !== null ? ' or the sums\' precisionBits' : ''})`)
  }
}
