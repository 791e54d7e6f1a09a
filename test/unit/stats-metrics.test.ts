import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chiSquareHomogeneity, jensenShannon, hellinger, gammaQ, wasserstein1 } from '../../shared/stats/drift.js'
import { rocAucBounds, expectedCalibrationError, thresholdMetrics } from '../../shared/stats/performance.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { renderReport } from '../../shared/stats/render.js'
import type { Report } from '../../shared/report.js'
import { oracleMissing, python } from '../fixtures/stats/oracle.js'

test('chi-square, JS distance, gamma Q and Wasserstein against scipy', (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const cases = [[[10, 20, 30, 0], [12, 18, 25, 5]], [[1000, 1, 0], [900, 50, 3]], [[5, 5], [9, 1]], [[300, 200, 100, 50, 7], [280, 230, 90, 60, 2]]]
  const truth = python(`
from scipy.stats import chi2_contingency, wasserstein_distance
from scipy.spatial.distance import jensenshannon
from scipy.special import gammaincc
out = []
for r, c in data['cases']:
    keep = [i for i in range(len(r)) if r[i] + c[i] > 0]
    t = np.array([[r[i] for i in keep], [c[i] for i in keep]])
    s, p, dof, _ = chi2_contingency(t, correction=False)
    out.append({'chi2': s, 'p': p, 'dof': int(dof), 'js': float(jensenshannon(r, c, base=2)),
      'w': float(wasserstein_distance(list(range(len(r))), list(range(len(r))), r, c))})
print(json.dumps({'cases': out, 'q': [float(gammaincc(a, x)) for a, x in data['gq']]}))
`, { cases, gq: [[0.5, 0.1], [1.5, 4], [10, 3], [10, 30], [200, 180], [2.5, 0.01]] })
  cases.forEach(([r, c], i) => {
    const got = chiSquareHomogeneity(r, c)
    assert.ok(got !== null)
    assert.ok(Math.abs(got.statistic - truth.cases[i].chi2) < 1e-9 * Math.max(1, truth.cases[i].chi2))
    assert.equal(got.dof, truth.cases[i].dof)
    assert.ok(Math.abs(got.pValue - truth.cases[i].p) < 1e-9, `p ${got.pValue} vs ${truth.cases[i].p}`)
    assert.ok(Math.abs((jensenShannon(r, c) ?? NaN) - truth.cases[i].js) < 1e-12)
    assert.ok(Math.abs((wasserstein1(r, c, r.map((_, k) => k)) ?? NaN) - truth.cases[i].w) < 1e-12)
  })
  const gq = [[0.5, 0.1], [1.5, 4], [10, 3], [10, 30], [200, 180], [2.5, 0.01]]
  gq.forEach(([a, x], i) => { assert.ok(Math.abs(gammaQ(a, x) - truth.q[i]) < 1e-10, `Q(${a}, ${x})`) })
})

test('metric edge cases', () => {
  assert.deepEqual(rocAucBounds([0, 0], [3, 4]), { value: null, lower: null, upper: null })
  assert.deepEqual(rocAucBounds([5], [5]), { value: 0.5, lower: 0, upper: 1 }) // one bin: all pairs tied
  assert.deepEqual(rocAucBounds([5, 0], [0, 5]), { value: 1, lower: 1, upper: 1 })
  assert.equal(expectedCalibrationError([]), null)
  assert.deepEqual(thresholdMetrics({ tp: 0, fp: 0, fn: 0, tn: 0 }), { precision: null, recall: null, f1: null, accuracy: null, specificity: null })
  assert.equal(jensenShannon([1, 0], [1, 0]), 0)
  assert.equal(hellinger([1, 0], [0, 1]), 1)
  assert.equal(chiSquareHomogeneity([5, 0], [3, 0]), null)
})

test('renderReport: aligned plain text without colour, ANSI status colours with it', () => {
  const spec = MonitorSpec.parse({ model: 'render', score: { bins: 10 }, features: { x: { type: 'numeric', edges: [0, 1] }, c: { type: 'categorical', categories: ['a'] } } })
  const layout = buildLayout(spec)
  const cur = new Uint32Array(layout.length); const ref = new Uint32Array(layout.length)
  cur[0] = 10; ref[0] = 10
  for (let b = 0; b < 10; b++) { cur[layout.score.offset + b] = 3; cur[layout.score.offset + 10 + b] = b; ref[layout.score.offset + b] = 5 }
  const x = layout.features.find(f => f.name === 'x')!
  cur[x.offset + 2] = 10; ref[x.offset] = 10
  const body = computeReportBody({ spec, layout, current: cur, reference: { vector: ref, id: 'r1', window: { from: '2025-12-01T00:00:00.000Z', to: '2025-12-08T00:00:00.000Z' } } })
  const report: Report = {
    id: 'rep-1', round: { id: 'round-1', kind: 'current' }, window: { from: '2025-12-08T00:00:00.000Z', to: '2025-12-15T00:00:00.000Z' },
    spec: { model: 'render', hash: layout.specHash, vectorLength: layout.length }, agents: { invited: ['a', 'b'], included: ['a'], dropped: ['b'] },
    ...body, alerts: [{ rule: 'auc', metric: 'performance.auc.value', value: 0.6, threshold: 0.7, kind: 'below', message: 'AUC below 0.7', firedAt: '2025-12-15T00:00:00.000Z' }],
    privacy: { threshold: 2, minAgents: 1 }, createdAt: '2025-12-15T00:00:00.000Z'
  }
  const plain = renderReport(report, { color: false })
  assert.doesNotMatch(plain, /\x1b\[/)
  for (const s of ['AUC (ROC)', 'PR-AUC', 'log loss', 'Brier', 'ECE', 'precision @ 0.5', 'F1 @ 0.5', 'accuracy @ 0.5', '1 included, 1 dropped', 'AUC below 0.7', 'render', 'r1']) assert.ok(plain.includes(s), s)
  const driftRows = plain.split('\n').filter(l => /^\s+(x|c|\(score\))\s/.test(l))
  assert.equal(driftRows.length, 3)
  assert.equal(new Set(driftRows.map(l => l.length)).size, 1, 'drift rows are aligned')
  assert.match(driftRows[0], /drift$|ok$|warn$|unknown$/)
  const coloured = renderReport(report, { color: true })
  assert.match(coloured, /\x1b\[31mdrift\x1b\[0m/)
})
