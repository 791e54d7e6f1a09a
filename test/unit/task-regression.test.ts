/**
 * The regression task (issue 12 §2) through `fedmon evaluate`'s pipeline (layout → DuckDB scan → report body):
 * MAE, RMSE, R², bias, MAPE and the error quantiles equal scikit-learn/numpy on the pooled data within the
 * precision the report states; spec mistakes are ConfigErrors naming the field; the target-dependent entries are
 * exactly what a label refresh sums again; binary specs keep their layout and hash.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { evaluateLocal } from '../../shared/stats/evaluate.js'
import { MonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { buildTaskLayout, taskOfLayout } from '../../shared/stats/tasks/index.js'
import { type RegressionLayout, regressionCounterIndex } from '../../shared/stats/tasks/regression.js'
import { renderReport } from '../../shared/stats/render.js'
import type { Bounded } from '../../shared/report.js'
import { oracleMissing } from '../fixtures/stats/oracle.js'
import { regressionRecords, sklearnRegression } from '../fixtures/stats/regression.js'

const T0 = Date.UTC(2026, 0, 5)
const DAY = 86_400_000
const CURRENT = { from: T0 + 7 * DAY, to: T0 + 14 * DAY }
const REFERENCE = { from: T0, to: T0 + 7 * DAY }
const SPEC = {
  model: 'price',
  task: 'regression',
  prediction: { column: 'prediction' },
  target: { column: 'target', clip: [-100, 400], precisionBits: 16 },
  features: { x: { type: 'numeric', edges: [2, 4, 6, 8] } }
}
let dir: string
const current = regressionRecords(7, 3000, CURRENT.from, 7 * DAY, { shift: 2 })
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-regression-'))
  const lines = [...regressionRecords(5, 3000, REFERENCE.from, 7 * DAY), ...current].map(r => JSON.stringify(r))
  writeFileSync(join(dir, 'preds.jsonl'), lines.join('\n') + '\n')
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(SPEC))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

const within = (b: Bounded, want: number, slack: number, what: string): void => {
  assert.ok(b.value !== null && Math.abs(b.value - want) <= slack, `${what}: ${b.value} vs scikit-learn ${want} (±${slack})`)
  assert.ok((b.lower === null || b.lower <= want + 1e-12) && (b.upper === null || want <= b.upper + 1e-12), `${what}: ${want} outside [${b.lower}, ${b.upper}]`)
}

test('regression metrics of `fedmon evaluate` equal scikit-learn on the pooled data within the stated precision', { skip: oracleMissing() ?? false }, async () => {
  const report = await evaluateLocal({ specFile: join(dir, 'spec.json'), source: { path: join(dir, '*.jsonl') }, window: CURRENT, referenceWindow: REFERENCE, scan: scanWindowDetailed })
  const want = sklearnRegression(current)
  const p = report.performance as Record<string, any>
  const step = 500 / 2 ** 16
  assert.equal(p.precision.step, step)
  assert.equal(report.spec.task, 'regression')
  assert.equal(report.samples.labeled, want.n)
  assert.equal(report.samples.positives, null)
  within(p.mae, want.mae, step, 'MAE')
  within(p.rmse, want.rmse, step, 'RMSE')
  within(p.bias, want.bias, step, 'bias')
  within(p.r2, want.r2, 1e-3, 'R²')
  within(p.mape, want.mape, 2 ** -17, 'MAPE')
  assert.equal(p.counts.mapeCapped, 0)
  assert.ok(p.counts.targetNonZero < want.n && p.counts.targetNonZero > 0.9 * want.n)
  // quantiles: the bucket holds numpy's value, and the representative is within relative error α
  for (const [q, v] of Object.entries(want.quantiles)) within(p.error_quantiles[q], v, 0.01 * Math.abs(v) + 1e-6, `error q${q}`)
  for (const [q, v] of Object.entries(want.absQuantiles)) within(p.abs_error_quantiles[q], v, 0.01 * Math.abs(v) + 1e-6, `|error| q${q}`)
  // drift of prediction and target (shifted by 2 in x: both drift), as numeric features
  const drift = report.drift as Record<string, any>
  assert.equal(drift.prediction.status, 'drift')
  assert.equal(drift.target.status, 'drift')
  assert.equal(drift.features.x.status, 'drift')
  assert.equal(drift.score, null)
  const q = report.dataQuality as Record<string, any>
  assert.equal(q.prediction.missing + q.prediction.notNumeric, current.filter(r => typeof r.prediction !== 'number').length)
  assert.equal(q.target.missing, current.filter(r => r.target === null).length)
  // the terminal report names the metrics
  const text = renderReport(report, { color: false })
  for (const label of ['MAE', 'RMSE', 'R²', 'bias', 'MAPE', '(prediction)', '(target)', 'error p50']) assert.ok(text.includes(label), label)
  assert.ok(!text.includes('AUC'), 'a regression report shows no AUC')
})

test('values outside target.clip are clipped in the sums and counted', async () => {
  const file = join(dir, 'clip.jsonl')
  const rows = [{ p: 500, y: 10 }, { p: 10, y: -300 }, { p: 5, y: 5 }]
  writeFileSync(file, rows.map((r, i) => JSON.stringify({ ts: CURRENT.from + i, prediction: r.p, target: r.y })).join('\n') + '\n')
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec) as RegressionLayout
  const { vector } = await scanWindowDetailed({ spec, layout, source: { path: file }, window: CURRENT })
  assert.equal(vector[regressionCounterIndex(layout, 'pairs')], 3)
  assert.equal(vector[regressionCounterIndex(layout, 'predictionClipped')], 1)
  assert.equal(vector[regressionCounterIndex(layout, 'targetClipped')], 1)
  const body = taskOfLayout(layout).reportBody({ spec, layout, current: vector, reference: null })
  // clipped: |400 − 10| and |10 − (−100)| and 0 → MAE (390 + 110)/3
  const mae = (body.performance as Record<string, any>).mae as Bounded
  assert.ok(Math.abs((mae.value ?? NaN) - 500 / 3) <= 500 / 2 ** 16, String(mae.value))
})

test('targets change only the target-dependent entries (what a label refresh sums again)', async () => {
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec) as RegressionLayout
  const sub = new Set(taskOfLayout(layout).labelDependentEntries(layout))
  const withTargets = join(dir, 'with.jsonl'); const without = join(dir, 'without.jsonl')
  writeFileSync(withTargets, current.map(r => JSON.stringify(r)).join('\n') + '\n')
  writeFileSync(without, current.map(r => JSON.stringify({ ...r, target: null })).join('\n') + '\n')
  const a = (await scanWindowDetailed({ spec, layout, source: { path: withTargets }, window: CURRENT })).vector
  const b = (await scanWindowDetailed({ spec, layout, source: { path: without }, window: CURRENT })).vector
  let differing = 0
  for (let i = 0; i < layout.length; i++) {
    if (a[i] !== b[i]) { differing++; assert.ok(sub.has(i), `entry ${i} changed with the targets but is not label-dependent`) }
  }
  assert.ok(differing > 0)
  for (const c of ['recordsInWindow', 'predictionValid'] as const) assert.ok(!sub.has(regressionCounterIndex(layout, c)), c)
  assert.ok(!sub.has(layout.prediction.offset))
})

test('spec mistakes are ConfigErrors naming the field', () => {
  const bad: Array<[unknown, string]> = [
    [{ model: 'm', task: 'regression' }, 'target'],
    [{ model: 'm', task: 'ordinal' }, 'task'],
    [{ model: 'm', target: { clip: [0, 1] } }, 'target'],
    [{ model: 'm', task: 'regression', target: { clip: [1, 0] } }, 'target.clip'],
    [{ model: 'm', task: 'regression', target: { clip: [0, 1] }, score: { bins: 100 } }, 'score'],
    [{ model: 'm', task: 'regression', target: { clip: [0, 1], precisionBits: 30 } }, 'target.precisionBits']
  ]
  for (const [input, field] of bad) {
    assert.throws(() => parseMonitorSpec(input, 'spec.yaml'), (err: any) => err.name === 'ConfigError' && err.field === field && err.message.startsWith(`spec.yaml: ${field}:`), `${JSON.stringify(input)} → ${field}`)
  }
})

test('binary specs keep their layout, and a regression spec has no binary layout', () => {
  const binary = MonitorSpec.parse({ model: 'm' })
  assert.deepEqual(buildTaskLayout(binary), buildLayout(binary))
  assert.equal(taskOfLayout(buildTaskLayout(binary)).name, 'binary')
  assert.throws(() => buildLayout(parseMonitorSpec(SPEC)), { code: 'ERR_LAYOUT_TASK' })
  // the sums are sized for maxRecordsPerAgent at the spec's precision: 2^22 records × (2^16)^2 needs 54 bits → 4 limbs
  const layout = buildTaskLayout(parseMonitorSpec(SPEC)) as RegressionLayout
  assert.equal(layout.sums.errorSquares.limbs, 4)
  assert.equal(layout.sums.targetSum.limbs, 3)
})
