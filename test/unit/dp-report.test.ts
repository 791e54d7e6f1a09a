/**
 * The report of a DP round (shared/dp/report.ts): figures from the clamped noisy sums, and intervals that hold
 * the exact figures at (at least) their stated confidence over many noisy rounds.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex } from '../../shared/stats/layout.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { noisyReportBody } from '../../shared/dp/report.js'
import { planDp } from '../../shared/dp/plan.js'
import { addSkellamNoise } from '../../shared/dp/skellam.js'
import { mulberry32 } from '../../shared/prng.js'
import { renderReport } from '../../shared/stats/render.js'
import { renderReportSection } from '../../shared/report-html/report-page.js'
import type { Report } from '../../shared/report.js'

const spec = MonitorSpec.parse({
  model: 'dp-report',
  score: { bins: 50, sums: false },
  features: { x: { type: 'numeric', edges: [0, 1, 2, 3], moments: false } },
  privacy: { dp: { epsilon: 0.5, delta: 1e-6 } }
})
const layout = buildLayout(spec)

/** An exact summed vector: `n` labeled records, positives scoring higher; feature x shifted by `shift`. */
function exactVector (n: number, shift: number, seed: number): Uint32Array {
  const v = new Uint32Array(layout.length)
  const rnd = mulberry32(seed)
  const B = layout.score.bins
  for (let i = 0; i < n; i++) {
    const positive = rnd() < 0.3
    const s = Math.min(0.999, Math.max(0, (positive ? 0.6 : 0.4) + 0.25 * (rnd() + rnd() - 1)))
    const bin = Math.min(B - 1, Math.floor(s * B))
    v[layout.score.offset + (positive ? B : 0) + bin]++
    v[counterIndex(layout, 'recordsInWindow')]++
    v[counterIndex(layout, positive ? 'labelPositive' : 'labelNegative')]++
    v[counterIndex(layout, s >= 0.5 ? (positive ? 'tp' : 'fp') : (positive ? 'fn' : 'tn'))]++
    const f = layout.features[0]
    v[f.offset + Math.min(4, Math.floor(rnd() * 5 + shift))]++
  }
  return v
}

test('DP report: clamped counts, the privacy block, and intervals that cover the exact figures', () => {
  const minSurvivors = 3
  const survivors = 4
  const plan = planDp(layout, spec.privacy!.dp!, minSurvivors)
  const refExact = exactVector(20_000, 0, 1)
  const curExact = exactVector(20_000, 0.6, 2)
  const exact = computeReportBody({ spec, layout, current: curExact, reference: { vector: refExact, id: 'ref', window: null } })
  const rnd = mulberry32(77)
  const uniform = (): number => rnd()
  let aucCovered = 0
  let psiCovered = 0
  const trials = 40
  for (let t = 0; t < trials; t++) {
    const current = addSkellamNoise(Uint32Array.from(curExact), plan.muPerAgent * survivors, uniform)
    const reference = addSkellamNoise(Uint32Array.from(refExact), plan.muPerAgent * survivors, uniform)
    const { body, dp } = noisyReportBody({ spec, layout, current, reference: { vector: reference, id: 'ref', window: null, survivors }, survivors, minSurvivors })
    if (t === 0) {
      assert.equal(dp.mechanism, 'skellam')
      assert.ok(dp.epsilonSpent <= 0.5)
      assert.ok(Math.abs(dp.noiseStd - Math.sqrt(2 * plan.muPerAgent * survivors)) < 1e-9)
      assert.ok(Math.abs(dp.countError95 - 1.96 * dp.noiseStd) < 0.01)
      assert.equal(body.performance.auc.confidence, 0.95)
      assert.ok((body.performance.auc.noise ?? 0) > 0)
      // A count near zero never reads as negative.
      assert.ok(body.samples.unlabeled >= 0)
    }
    const auc = body.performance.auc
    if ((auc.lower as number) <= (exact.performance.auc.value as number) && (exact.performance.auc.value as number) <= (auc.upper as number)) aucCovered++
    const psi = body.drift.features.x.psi as number
    const hw = (body.drift.features.x.noise95 as { psi: number }).psi
    if (Math.abs(psi - (exact.drift.features.x.psi as number)) <= hw) psiCovered++
  }
  // 95 % intervals (AUC's also holds the binning bound): allow sampling slack over 40 trials.
  assert.ok(aucCovered >= 36, `AUC covered in ${aucCovered}/${trials}`)
  assert.ok(psiCovered >= 33, `PSI covered in ${psiCovered}/${trials}`)
})

test('the terminal report shows the noise: ± on counts and figures, the AUC as a confidence interval, ε and δ', () => {
  const plan = planDp(layout, spec.privacy!.dp!, 3)
  const rnd = mulberry32(3)
  const noisy = (v: Uint32Array): Uint32Array => addSkellamNoise(Uint32Array.from(v), plan.muPerAgent * 3, () => rnd())
  const { body, dp } = noisyReportBody({ spec, layout, current: noisy(exactVector(5000, 0.5, 8)), reference: { vector: noisy(exactVector(5000, 0, 9)), id: 'ref', window: null, survivors: 3 }, survivors: 3, minSurvivors: 3 })
  const report: Report = {
    id: 'report-1', round: { id: 'round-1', kind: 'current' }, window: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-08T00:00:00.000Z' },
    spec: { model: 'dp-report', hash: layout.specHash, vectorLength: layout.length }, agents: { invited: ['a', 'b', 'c'], included: ['a', 'b', 'c'], dropped: [] },
    ...body, alerts: [], privacy: { threshold: 3, minAgents: 3, dp }, createdAt: '2026-01-08T00:00:01.000Z'
  }
  const text = renderReport(report, { color: false })
  const pm = `±${Math.ceil(dp.countError95)}`
  assert.match(text, new RegExp(`samples +[\\d,]+ ${pm} records`))
  assert.match(text, /AUC \(ROC\) +\d\.\d{4} +\[\d\.\d{4}, \d\.\d{4}\] \(95 % CI\)/)
  assert.match(text, /precision @ 0\.5 +\d\.\d{4} ±0\.\d{3}/)
  assert.match(text, /x +numeric +\d\.\d{4} ±\d\.\d{3}/)
  assert.match(text, /differential privacy \(ε = 0\.5, δ = 0\.000001 per round; noise σ [\d.]+ per count/)
  // The HTML report page says the same.
  const html = renderReportSection(report).html
  assert.match(html, /95 % confidence interval \(noise and binning\)/)
  assert.match(html, /differential privacy \(ε = 0\.5, δ = 0\.000001 per round; every count carries noise of σ [\d.]+, ±\d+ at 95 %\)/)
})
