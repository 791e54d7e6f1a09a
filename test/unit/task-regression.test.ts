/**
 * The regression task (issue 12 §2): spec errors name the field; MAE, RMSE and R² of a scanned and summed
 * vector equal scikit-learn's on the pooled data within the stated precision; bias, MAPE and error quantiles
 * against numpy; the label-dependent entries (target and error) are exactly what a missing target changes.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { MonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { sumVectors } from '../../shared/stats/evaluate.js'
import { labelDependentEntries } from '../../shared/stats/label-entries.js'
import { renderReport } from '../../shared/stats/render.js'
import { ConfigError } from '../../shared/errors.js'
import { mulberry32 } from '../../shared/prng.js'
import { oracleMissing, python } from '../fixtures/stats/oracle.js'

const T0 = Date.UTC(2026, 0, 5)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }
const BITS = 20
const spec = parseMonitorSpec({
  model: 'house-prices',
  task: 'regression',
  prediction: { column: 'yhat' },
  target: { column: 'y', clip: [-50, 150], precisionBits: BITS },
  features: { rooms: { type: 'numeric', moments: false } },
  limits: { maxRecordsPerAgent: 100_000 }
})
const layout = buildLayout(spec)

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-regression-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

interface Row { ts: number, yhat: number | null, y: number | null, rooms: number }
function site (seed: number, n: number): Row[] {
  const rnd = mulberry32(seed)
  return Array.from({ length: n }, (_, i) => {
    const y = Math.round((rnd() * 120 - 10) * 1000) / 1000
    const yhat = Math.round((y + (rnd() - 0.4) * 20) * 1000) / 1000
    return { ts: T0 + Math.floor(i * DAY / n), yhat, y: i % 17 === 0 ? 0 : y, rooms: 1 + Math.floor(rnd() * 6) }
  })
}
async function scan (name: string, rows: Row[]): Promise<Uint32Array> {
  const path = join(dir, `${name}.jsonl`)
  writeFileSync(path, rows.map(r => JSON.stringify({ ts: r.ts, yhat: r.yhat, y: r.y, features: { rooms: r.rooms } })).join('\n') + '\n')
  return (await scanWindowDetailed({ spec, layout, source: { path }, window: WINDOW })).vector
}

test('regression spec errors name the field', () => {
  const bad = (value: unknown, field: string, message: RegExp): void => {
    assert.throws(() => parseMonitorSpec(value, 'spec.yaml'), (err: unknown) => err instanceof ConfigError && err.field === field && message.test(err.message) && err.message.includes('spec.yaml'))
  }
  bad({ model: 'm', task: 'regression', prediction: { column: 'p' } }, 'target', /regression needs target/)
  bad({ model: 'm', task: 'regression', target: { column: 'y', clip: [0, 1] } }, 'prediction', /regression needs prediction/)
  bad({ model: 'm', task: 'ranking' }, 'task', /binary.*multiclass.*regression/)
  bad({ model: 'm', task: 'multiclass' }, 'task', /not supported yet/)
  bad({ model: 'm', target: { column: 'y', clip: [0, 1] } }, 'target', /only with task: regression/)
  bad({ model: 'm', task: 'regression', prediction: { column: 'p' }, target: { column: 'y', clip: [1, 0] } }, 'target.clip', /lo < hi/)
})

test('a binary spec keeps its hash and layout (no task key = binary)', () => {
  const plain = MonitorSpec.parse({ model: 'm' })
  const explicit = buildLayout(MonitorSpec.parse({ model: 'm', task: 'binary' }))
  assert.equal(buildLayout(plain).task.kind, 'binary')
  assert.equal(explicit.length, buildLayout(plain).length)
})

test('MAE, RMSE, R², bias, MAPE and error quantiles of two sites equal scikit-learn/numpy on the pooled data', { skip: oracleMissing() ?? false }, async () => {
  const a = site(1, 3000); const b = site(2, 2000)
  const sum = sumVectors([await scan('a', a), await scan('b', b)], layout.length)
  const body = computeReportBody({ spec, layout, current: sum, reference: { vector: sumVectors([await scan('a-ref', site(3, 2000))], layout.length), id: null, window: null } })
  const pooled = [...a, ...b]
  const ref = python(`
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
y = np.array(data['y'], dtype=float); p = np.array(data['p'], dtype=float); e = p - y
nz = y != 0
print(json.dumps({'mae': mean_absolute_error(y, p), 'rmse': float(np.sqrt(mean_squared_error(y, p))), 'r2': r2_score(y, p),
  'bias': float(e.mean()), 'mape': float(np.mean(np.minimum(np.abs(e[nz]) / np.abs(y[nz]), 100))),  # target.mapeCap (default 100)
  'q': [float(np.quantile(e, q, method='lower')) for q in (0.05, 0.5, 0.95)]}))`, { y: pooled.map(r => r.y), p: pooled.map(r => r.yhat) })
  const perf = body.performance as any
  const step = 200 / 2 ** BITS
  const near = (got: number, want: number, tol: number, what: string): void => assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want} (tol ${tol})`)
  near(perf.mae.value, ref.mae, step, 'mae'); assert.ok(perf.mae.lower <= ref.mae && ref.mae <= perf.mae.upper)
  near(perf.rmse.value, ref.rmse, step, 'rmse'); assert.ok(perf.rmse.lower <= ref.rmse && ref.rmse <= perf.rmse.upper)
  near(perf.bias.value, ref.bias, step, 'bias')
  near(perf.r2, ref.r2, 1e-4, 'r2')
  near(perf.mape, ref.mape, 1e-3 * ref.mape, 'mape')
  assert.equal(perf.counts.pairs, pooled.length)
  const alpha = perf.errorQuantiles.relativeError
  for (const [i, q] of [0.05, 0.5, 0.95].entries()) {
    const got = perf.errorQuantiles.quantiles[String(q)]
    near(got, ref.q[i], alpha * Math.abs(ref.q[i]) + step, `error quantile ${q}`)
  }
  const drift = body.drift as any
  assert.ok(drift.features['(prediction)'] !== undefined && drift.features['(target)'] !== undefined, 'prediction and target drift')
  assert.ok(drift.features.rooms !== undefined)
  const text = renderReport({ id: 'x', round: { id: 'x', kind: 'local', durationMs: 0 }, window: { from: '', to: '' }, spec: { model: 'm', hash: layout.specHash, vectorLength: layout.length }, agents: { invited: [], included: ['a'], dropped: [] }, ...body, alerts: [], privacy: { threshold: null, minAgents: null }, createdAt: '' } as any, { color: false })
  assert.match(text, /MAE/); assert.match(text, /RMSE/); assert.match(text, /R²/); assert.doesNotMatch(text, /AUC/)
})

test('label-dependent entries: exactly what the targets change', async () => {
  const rows = site(4, 500)
  const withTargets = await scan('t', rows)
  const without = await scan('u', rows.map(r => ({ ...r, y: null })))
  const dependent = new Set(labelDependentEntries(layout))
  for (let i = 0; i < layout.length; i++) {
    if (withTargets[i] !== without[i]) assert.ok(dependent.has(i), `entry ${i} changed without being label-dependent`)
  }
  assert.ok(dependent.size < layout.length)
})

test('agent policy: a regression reads its prediction and target columns and its sums obey maxSumPrecisionBits', async () => {
  const { columnsReadBy, checkSumsPolicy } = await import('../../shared/secagg/policy.js')
  assert.deepEqual(columnsReadBy(spec).sort(), ['rooms', 'y', 'yhat'])
  assert.throws(() => checkSumsPolicy({ maxSumPrecisionBits: 16 }, { spec, layout }), /20 bits.*target\.precisionBits/)
  assert.throws(() => checkSumsPolicy({ allowSums: false }, { spec, layout }), /regression/)
  checkSumsPolicy({ maxSumPrecisionBits: 20 }, { spec, layout })
})
