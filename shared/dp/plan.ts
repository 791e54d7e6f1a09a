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
import { layoutSensitivity, type CountGroup } from './sensitivity.js'
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
  /** ε this round spends at δ (≤ target), composed with `previous` (earlier rounds over the same records). */
  epsilon: number
}

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
  let muTotal: number
  try {
    muTotal = calibrateSkellam(target, sens.counts, previous)
  } catch (err) {
    throw new DpPlanError('ERR_DP_BUDGET', (err as Error).message)
  }
  const muPerAgent = muTotal / minSurvivors
  const epsilon = releasesEpsilon([...previous, { mu: muTotal, sensitivity: sens.counts }], target.delta)
  return { target, minSurvivors, muTotal, muPerAgent, sensitivity: sens.counts, countGroups: sens.countGroups, epsilon }
}

/** Standard deviation of the noise in one summed count entry when `survivors` agents each added Sk(muPerAgent). */
export function noiseStd (plan: Pick<DpPlan, 'muPerAgent'>, survivors: number): number {
  return Math.sqrt(2 * plan.muPerAgent * survivors)
}

/**
 * Checks that no summed entry leaves the signed 32-bit range the coordinator decodes (counts of `agents` agents
 * of up to layout.maxRecords each, plus noise), except with probability `failure`.
 */
export function checkDpHeadroom (layout: Layout, plan: Pick<DpPlan, 'muPerAgent'>, agents: number, failure = 2 ** -40): void {
  const noise = skellamTailBound(plan.muPerAgent * agents, layout.length, failure)
  const worst = layout.maxRecords * agents + noise
  if (worst > 2 ** 31 - 1) {
    throw new DpPlanError('ERR_DP_OVERFLOW', `${agents} agents × ${layout.maxRecords} records plus noise up to ${noise} can reach ${worst}, beyond the signed 32-bit range of a summed entry (lower limits.maxRecordsPerAgent)`)
  }
}
