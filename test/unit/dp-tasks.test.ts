/**
 * Differential privacy over regression and multiclass specs (issue 15 §1 on issue 12's tasks):
 * - the spec's rules under privacy.dp name the field to change (coarse, clipped regression sums; a MAPE cap);
 * - a real SecAgg round (in-process, wire codec) over five sites' scanned regression vectors: each agent adds its
 *   own noise, and the report's MAE, RMSE, bias and R² from the noisy sum sit near the exact ones, each inside its
 *   widened interval, with ± bars;
 * - a multiclass report from five sites' noisy vectors: per-class, macro and weighted AUC from the signed counts,
 *   each exact figure inside its widened interval, accuracy and F1 with their bars;
 * - an agent that requires DP refuses a regression spec without it (the policy covers every task).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindow } from '../../agent/scan.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { parseMonitorSpec, type MonitorSpec } from '../../shared/stats/spec.js'
import { specHashOf } from '../../shared/stats/layout.js'
import { buildTaskLayout, type TaskLayout } from '../../shared/stats/tasks/index.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { noisyReportBody } from '../../shared/dp/report.js'
import { noiseMuPerEntry, planDp } from '../../shared/dp/plan.js'
import { addSkellamNoiseEach } from '../../shared/dp/skellam.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { mulberry32 } from '../../shared/prng.js'
import { ConfigError } from '../../shared/errors.js'
import type { Bounded } from '../../shared/report.js'
import { runRound, type HarnessAgent } from './adversary-harness.js'
import { regressionRecords } from '../fixtures/stats/regression.js'
import { multiclassRecords } from '../fixtures/stats/multiclass.js'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 0, 20, 12)
const WINDOW = { from: NOW - 8 * DAY, to: NOW - DAY }
const DP = { epsilon: 1, delta: 1e-6 }
const SITES = 5

const REGRESSION = {
  model: 'price-dp',
  task: 'regression',
  prediction: { column: 'prediction', edges: [0, 20, 40, 60] },
  // a clip close to the data: the squared terms' noise grows with (hi − lo)², against the targets' variance
  target: { column: 'target', clip: [0, 80], precisionBits: 6, edges: [0, 20, 40, 60] },
  error: { mapeCap: 10 },
  features: { x: { type: 'numeric', edges: [2, 4, 6, 8], moments: { clip: [0, 10], precisionBits: 6 } } },
  limits: { maxRecordsPerAgent: 20_000 },
  privacy: { dp: DP }
}

let dir: string
let coordinator: Identity
let identities: Identity[]
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-dp-tasks-'))
  ;({ coordinator, agents: identities } = await createIdentities(SITES, 21))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

let files = 0
async function scan (spec: MonitorSpec, layout: TaskLayout, records: unknown[]): Promise<Uint32Array> {
  const path = join(dir, `site${files++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  return await scanWindow({ spec, layout, source: { path, format: 'jsonl' }, window: WINDOW })
}

const sumOf = (vectors: Uint32Array[]): Uint32Array => {
  const out = new Uint32Array(vectors[0].length)
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i] = (out[i] + v[i]) >>> 0
  return out
}

/** The exact figure lies in the noisy figure's widened interval, and the noisy value is within 3 bars of it. */
function near (got: Bounded & { noise?: number, confidence?: number }, want: Bounded, what: string): void {
  assert.ok(got.value !== null && want.value !== null, `${what} is defined`)
  assert.equal(got.confidence, 0.95, `${what} is a 95 % confidence interval`)
  assert.ok((got.noise ?? 0) > 0, `${what} has a noise half-width`)
  assert.ok((got.lower ?? -Infinity) <= want.value && want.value <= (got.upper ?? Infinity), `${what}: exact ${want.value} outside [${got.lower}, ${got.upper}]`)
  assert.ok(Math.abs(got.value - want.value) <= 3 * (got.noise as number) + Math.abs((want.upper ?? want.value) - (want.lower ?? want.value)), `${what}: ${got.value} vs exact ${want.value} (±${got.noise})`)
}

test('the spec under privacy.dp: regression sums at most 2^8 levels and a MAPE cap at most 2^b, each error naming the field', () => {
  const fieldOf = (input: unknown): string | null => {
    try { parseMonitorSpec(input); return null } catch (err) { return err instanceof ConfigError ? (err.field ?? null) : String(err) }
  }
  assert.equal(fieldOf(REGRESSION), null)
  assert.equal(fieldOf({ ...REGRESSION, target: { ...REGRESSION.target, precisionBits: 16 } }), 'target.precisionBits')
  assert.equal(fieldOf({ ...REGRESSION, error: undefined }), 'error.mapeCap', 'the default cap (1000) outweighs the squared error at 6 bits')
  assert.equal(fieldOf({ ...REGRESSION, limits: undefined }), 'limits.maxRecordsPerAgent')
  const multiclass = { model: 'm', task: 'multiclass', classes: ['a', 'b'], limits: { maxRecordsPerAgent: 20_000 }, privacy: { dp: DP } }
  assert.equal(fieldOf(multiclass), 'score.sums', 'the legacy 24-bit loss sums are refused as for binary')
  assert.equal(fieldOf({ ...multiclass, score: { sums: { precisionBits: 6 } } }), null)
})

test('regression in a real SecAgg round: every agent noises its scanned vector; MAE, RMSE, bias and R² near the exact ones, inside widened intervals', async () => {
  const spec = parseMonitorSpec(REGRESSION)
  const layout = buildTaskLayout(spec)
  const inputs = await Promise.all(Array.from({ length: SITES }, async (_, i) => await scan(spec, layout, regressionRecords(40 + i, 12_000, WINDOW.from, 7 * DAY))))
  const agents: HarnessAgent[] = identities.map((identity, i) => {
    const rnd = mulberry32(500 + i)
    return { identity, input: inputs[i], noiseSource: () => rnd() }
  })
  const res = runRound({ roundId: 'dp-regression', coordinator, agents, dim: layout.length, window: WINDOW, now: NOW, specHash: specHashOf(spec), spec: canonicalJson(spec), threshold: 3, minAgents: 3, maxEntry: layout.maxEntry })
  assert.equal(res.status, 'done', res.failure?.message)
  const exactSum = sumOf(inputs)
  const plan = res.clients.get(identities[0].id)!.dpPlan!
  assert.ok(plan !== null && plan.sums !== null, 'the regression sums are noised as a second release')
  const noise = Array.from(res.result!.sum, (v, i) => (v - exactSum[i]) | 0)
  assert.ok(noise.filter(x => x !== 0).length > 0.9 * noise.length, 'almost every entry carries noise')

  const exact = computeReportBody({ spec, layout, current: exactSum, reference: null }).performance as Record<string, Bounded>
  const { body, dp } = noisyReportBody({ spec, layout, current: res.result!.sum, reference: null, survivors: SITES, minSurvivors: plan.minSurvivors })
  assert.ok(dp.sums !== undefined && dp.sums.noiseStd > 0)
  // each sum group is its own release: the linear sums' noise is far below the squares' (in proportion to maxTerm)
  const groupStd = (name: string): number => dp.sums!.groups.find(g => g.name === name)!.noiseStd
  assert.ok(Math.abs(groupStd('error sum of squares') / groupStd('error (positive or negative part)') - 4096 / 64) < 1e-6)
  const perf = body.performance as Record<string, any>
  for (const key of ['mae', 'rmse', 'bias', 'r2']) near(perf[key], exact[key], key)
  // at 60,000 records the noise costs MAE well under a percent
  assert.ok(Math.abs(perf.mae.value - exact.mae.value!) / exact.mae.value! < 0.01, `MAE ${perf.mae.value} vs ${exact.mae.value}`)
  assert.equal(typeof perf.noise95['error_quantiles.p50'], 'number', 'quantiles have bars too')
  assert.ok(perf.noise95.mape > 0)
})

test('multiclass from five noisy sites: per-class, macro and weighted AUC from the signed counts, accuracy and F1 with their bars', async () => {
  const spec = parseMonitorSpec({
    model: 'animals-dp',
    task: 'multiclass',
    classes: ['cat', 'dog', 'bird'],
    scores: { column: 'scores' },
    score: { bins: 20, sums: { precisionBits: 6 } },
    calibration: { bins: 5 },
    features: { x: { type: 'numeric', edges: [2, 4, 6, 8], moments: { clip: [0, 10], precisionBits: 6 } } },
    limits: { maxRecordsPerAgent: 20_000 },
    privacy: { dp: DP }
  })
  const layout = buildTaskLayout(spec)
  const vectors = await Promise.all(Array.from({ length: SITES }, async (_, i) => await scan(spec, layout, multiclassRecords(70 + i, 12_000, WINDOW.from, 7 * DAY))))
  const exactSum = sumOf(vectors)
  const plan = planDp(layout, DP, 3)
  const mus = noiseMuPerEntry(layout, plan)
  const rnd = mulberry32(8)
  const noisy = sumOf(vectors.map(v => addSkellamNoiseEach(Uint32Array.from(v), mus, () => rnd())))
  const exact = computeReportBody({ spec, layout, current: exactSum, reference: null }).performance as Record<string, any>
  const { body } = noisyReportBody({ spec, layout, current: noisy, reference: null, survivors: SITES, minSurvivors: 3 })
  const perf = body.performance as Record<string, any>
  near(perf.macro_auc, exact.macro_auc, 'macro AUC')
  near(perf.weighted_auc, exact.weighted_auc, 'weighted AUC')
  for (const c of ['cat', 'dog', 'bird']) near(perf.per_class[c].auc, exact.per_class[c].auc, `${c} AUC`)
  assert.deepEqual(perf.auc, perf.macro_auc, 'the headline AUC is the macro AUC, with the same interval')
  for (const key of ['accuracy', 'macro_f1', 'log_loss', 'per_class.dog.f1']) {
    const bar = perf.noise95[key]
    assert.ok(typeof bar === 'number' && bar > 0, `${key} has a bar`)
  }
  assert.ok(Math.abs(perf.accuracy - exact.accuracy) <= 3 * perf.noise95.accuracy, `accuracy ${perf.accuracy} vs ${exact.accuracy}`)
})

test('an agent that requires DP refuses a regression spec without it', async () => {
  const { privacy: _privacy, ...plainInput } = REGRESSION
  const plain = parseMonitorSpec(plainInput)
  const layout = buildTaskLayout(plain)
  const agents: HarnessAgent[] = identities.map(identity => ({ identity, input: new Uint32Array(layout.length), policy: { dp: { required: true } } }))
  const res = runRound({ roundId: 'dp-required', coordinator, agents, dim: layout.length, window: WINDOW, now: NOW, specHash: specHashOf(plain), spec: canonicalJson(plain), threshold: 3, minAgents: 3, maxEntry: layout.maxEntry })
  assert.equal(res.status, 'failed')
  assert.ok(res.rejected.some(r => r.code === 'ERR_POLICY' && /requires differential privacy/.test(r.message)), JSON.stringify(res.rejected.slice(0, 2)))
})
