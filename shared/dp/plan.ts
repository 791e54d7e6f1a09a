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
import type { TaskLayout } from '../stats/tasks/index.js'
import { calibrateSkellam, releasesEpsilon, type SkellamRelease } from './accountant.js'
import { layoutSensitivity, type CountGroup } from './sensitivity.js'
import { skellamTailBound, type Sensitivity } from './skellam.js'

export interface DpTarget { epsilon: number, delta: number }

/** One sum group's release: its entries and the Skellam parameter in the sum (`muTotal`) and per agent. */
export interface DpSumGroup { name: string, maxTerm: number, entries: number[], muTotal: number, muPerAgent: number }

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
   * The raw one-entry sums of a DP layout (log loss, Brier, score, error and moment sums), each group its own
   * Skellam release with a parameter in proportion to its maxTerm² (every group gets the same share of the sums'
   * budget, so a linear sum with small terms is not drowned in the noise a sum of squares needs); null without.
   * `muPerAgent` is the largest group's.
   */
  sums: { muTotal: number, muPerAgent: number, sensitivity: Sensitivity, groups: DpSumGroup[] } | null
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
export function planDp (layout: TaskLayout, target: DpTarget, minSurvivors: number, previous: readonly SkellamRelease[] = []): DpPlan {
  if (!Number.isInteger(minSurvivors) || minSurvivors < 1) throw new RangeError(`minSurvivors must be a positive integer, got ${minSurvivors}`)
  const sens = layoutSensitivity(layout)
  if (sens.limbSums.length > 0) {
    throw new DpPlanError('ERR_DP_LAYOUT', `differential privacy cannot cover sums split into limbs: the layout has ${sens.limbSums.length} (build the layout from the spec with privacy.dp, where each sum is one raw entry, or set score.sums: false and moments: false on numeric features)`)
  }
  const groups = sens.sums?.groups ?? []
  // Group g's μ_g = k·Δ_g²·μ makes each group's leading RDP term (α·Δ_g²/4μ_g) the same, and all G of them
  // together DP_SUMS_SHARE of the round's (the counts keep the rest).
  const k = groups.length === 0 ? 0 : groups.length * (1 - DP_SUMS_SHARE) / DP_SUMS_SHARE / sens.counts.l2 ** 2
  const releases = (mu: number): SkellamRelease[] => [
    ...previous, { mu, sensitivity: sens.counts }, ...groups.map(g => ({ mu: mu * k * g.maxTerm ** 2, sensitivity: { l1: g.maxTerm, l2: g.maxTerm } }))
  ]
  let muTotal: number
  try {
    muTotal = groups.length === 0 ? calibrateSkellam(target, sens.counts, previous) : calibrateReleases(target, releases)
  } catch (err) {
    throw new DpPlanError('ERR_DP_BUDGET', (err as Error).message)
  }
  const muPerAgent = muTotal / minSurvivors
  const epsilon = releasesEpsilon(releases(muTotal), target.delta)
  const sumGroups = groups.map(g => ({ ...g, muTotal: muTotal * k * g.maxTerm ** 2, muPerAgent: muTotal * k * g.maxTerm ** 2 / minSurvivors }))
  const largest = sumGroups.reduce((m, g) => Math.max(m, g.muTotal), 0)
  return {
    target, minSurvivors, muTotal, muPerAgent, sensitivity: sens.counts, countGroups: sens.countGroups, epsilon,
    sums: sens.sums === null ? null : { muTotal: largest, muPerAgent: largest / minSurvivors, sensitivity: sens.sums.sensitivity, groups: sumGroups }
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

/** Per entry of the layout, the Skellam parameter each agent adds: the counts' or, on a raw sum entry, its group's. */
export function noiseMuPerEntry (layout: TaskLayout, plan: Pick<DpPlan, 'muPerAgent' | 'sums'>): Float64Array {
  const mus = new Float64Array(layout.length).fill(plan.muPerAgent)
  for (const g of plan.sums?.groups ?? []) for (const e of g.entries) mus[e] = g.muPerAgent
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
export function checkDpHeadroom (layout: TaskLayout, plan: Pick<DpPlan, 'muPerAgent' | 'sums'>, agents: number, failure = 2 ** -40): void {
  const noise = skellamTailBound(Math.max(plan.muPerAgent, plan.sums?.muPerAgent ?? 0) * agents, layout.length, failure)
  // A count entry holds at most maxRecords per agent, a raw sum entry maxRecords × its term (layout.maxEntry).
  const perAgent = plan.sums !== null ? layout.maxEntry : layout.maxRecords
  const worst = perAgent * agents + noise
  if (worst > 2 ** 31 - 1) {
    throw new DpPlanError('ERR_DP_OVERFLOW', `${agents} agents × ${perAgent} per entry plus noise up to ${noise} can reach ${worst}, beyond the signed 32-bit range of a summed entry (lower limits.maxRecordsPerAgent${plan.sums !== null ? ' or the sums\' precisionBits' : ''})`)
  }
}
