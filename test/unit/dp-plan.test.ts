/** The DP plan of a round (shared/dp/plan.ts): noise per agent for the worst survivor set, refusals, headroom. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { DpPlanError, checkDpHeadroom, noiseStd, planDp } from '../../shared/dp/plan.js'
import { releasesEpsilon } from '../../shared/dp/accountant.js'
import { sampleSkellam } from '../../shared/dp/skellam.js'
import { mulberry32 } from '../../shared/prng.js'

const countsOnly = buildLayout(MonitorSpec.parse({
  model: 'dp',
  score: { bins: 64, sums: false },
  features: { x: { type: 'numeric', edges: [0, 1, 2], moments: false }, c: { type: 'categorical', categories: ['a', 'b'] } }
}))
const target = { epsilon: 1, delta: 1e-6 }

test('the plan spends at most the target, and the fewest survivors alone carry the whole noise', () => {
  const plan = planDp(countsOnly, target, 3)
  // counters (window, label class, score class, confusion or predicted-positive-unlabeled, the site indicator),
  // one score cell, two calibration counts, one bucket per feature
  assert.equal(plan.sensitivity.l1, 5 + 1 + 2 + 2)
  assert.ok(plan.epsilon <= 1 && plan.epsilon > 0.99, `ε = ${plan.epsilon}`)
  assert.ok(Math.abs(plan.muPerAgent * 3 - plan.muTotal) < 1e-9)
  // Two more survivors than planned: more noise, never less privacy.
  assert.ok(releasesEpsilon([{ mu: plan.muPerAgent * 5, sensitivity: plan.sensitivity }], target.delta) < plan.epsilon)
  // The summed noise of the minimum set has the planned variance 2·muTotal.
  const rnd = mulberry32(4)
  const uniform = (): number => rnd()
  const draws = Array.from({ length: 20_000 }, () => sampleSkellam(plan.muPerAgent, uniform) + sampleSkellam(plan.muPerAgent, uniform) + sampleSkellam(plan.muPerAgent, uniform))
  const variance = draws.reduce((s, x) => s + x * x, 0) / draws.length
  assert.ok(Math.abs(Math.sqrt(variance) / noiseStd(plan, 3) - 1) < 0.03, `std ${Math.sqrt(variance)} vs ${noiseStd(plan, 3)}`)
})

test('a refresh composes with the first release: the same target needs more noise, an exhausted budget is refused', () => {
  const first = planDp(countsOnly, { epsilon: 0.6, delta: 1e-6 }, 3)
  const refresh = planDp(countsOnly, target, 3, [{ mu: first.muTotal, sensitivity: first.sensitivity }])
  assert.ok(refresh.muTotal > planDp(countsOnly, target, 3).muTotal)
  assert.ok(refresh.epsilon <= 1)
  assert.throws(() => planDp(countsOnly, { epsilon: 0.5, delta: 1e-6 }, 3, [{ mu: first.muTotal, sensitivity: first.sensitivity }]),
    (err: unknown) => err instanceof DpPlanError && err.code === 'ERR_DP_BUDGET')
})

test('fixed-point sums are refused in DP mode, naming what to change', () => {
  const withSums = buildLayout(MonitorSpec.parse({ model: 'dp', features: { x: { type: 'numeric', edges: [0, 1] } } }))
  assert.throws(() => planDp(withSums, target, 3), (err: unknown) => err instanceof DpPlanError && err.code === 'ERR_DP_LAYOUT' && /score\.sums: false/.test(err.message))
})

test('headroom: counts of many agents plus the noise tail must stay in the signed 32-bit range', () => {
  const plan = planDp(countsOnly, target, 3)
  assert.doesNotThrow(() => checkDpHeadroom(countsOnly, plan, 100))
  assert.throws(() => checkDpHeadroom(countsOnly, plan, 600), (err: unknown) => err instanceof DpPlanError && err.code === 'ERR_DP_OVERFLOW')
})
