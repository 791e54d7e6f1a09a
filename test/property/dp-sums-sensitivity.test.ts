/**
 * Differential privacy for fixed-point sums (issue 15): under privacy.dp every sum is one raw entry of clipped,
 * coarse per-record terms, and its noise is a second Skellam release with its own parameter.
 * - The spec's rules: clipped sums at most 2^8 levels, sized so an entry cannot wrap (errors name the field).
 * - The sums' sensitivity, read off the layout, holds on the real scan: adding one random record (good or
 *   malformed) changes each raw sum entry by at most its maxTerm, and the sums' L1/L2 by at most the stated
 *   bounds — while the count entries keep theirs (property test, fast-check, DuckDB scans).
 * - The plan composes the two releases within the target ε, the sums taking DP_SUMS_SHARE of the budget.
 * - A round's report: log loss, Brier and mean shifts from the noisy sums, near the exact ones, with ±.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { scanWindow } from '../../agent/scan.js'
import { MonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { ConfigError } from '../../shared/errors.js'
import { countEntries, layoutSensitivity, rawSumEntries } from '../../shared/dp/sensitivity.js'
import { DP_SUMS_SHARE, noiseMuPerEntry, planDp } from '../../shared/dp/plan.js'
import { releasesEpsilon } from '../../shared/dp/accountant.js'
import { noisyReportBody } from '../../shared/dp/report.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { addSkellamNoiseEach } from '../../shared/dp/skellam.js'
import { mulberry32 } from '../../shared/prng.js'

const T0 = Date.UTC(2025, 11, 1)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }
const DP = { epsilon: 1, delta: 1e-6 }
const specInput = {
  model: 'dp-sums',
  score: { bins: 16, sums: { precisionBits: 6 } },
  calibration: { bins: 5 },
  features: {
    x: { type: 'numeric', edges: [-1, 0, 1], moments: { clip: [-3, 3], precisionBits: 5 } },
    c: { type: 'categorical', categories: ['a', 'b'] }
  },
  limits: { maxRecordsPerAgent: 50_000 },
  privacy: { dp: DP }
}
const spec = MonitorSpec.parse(specInput)
const layout = buildLayout(spec)
const sens = layoutSensitivity(layout)
const isCount = countEntries(layout)
const isSum = rawSumEntries(layout)

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-dp-sums-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

test('the spec: DP takes clipped sums of at most 2^8 levels, sized so one entry cannot wrap', () => {
  const refuse = (over: Record<string, unknown>, field: string): void => {
    assert.throws(() => parseMonitorSpec({ ...specInput, ...over }, 'spec.yaml'), (e: unknown) => e instanceof ConfigError && e.field === field, field)
  }
  refuse({ score: { bins: 16 } }, 'score.sums') // legacy 24-bit sums
  refuse({ score: { bins: 16, sums: { precisionBits: 9 } } }, 'score.sums')
  refuse({ features: { x: { type: 'numeric', edges: [0] } } }, 'features.x.moments') // legacy unclipped moments
  refuse({ limits: { maxRecordsPerAgent: 2 ** 22 } }, 'limits.maxRecordsPerAgent')
  assert.doesNotThrow(() => parseMonitorSpec(specInput, 'spec.yaml'))
  // every sum is one raw entry; the layout's max entry is the largest sum's
  assert.equal(layout.sums.kind, 'fixed')
  if (layout.sums.kind === 'fixed') {
    assert.equal(layout.sums.logLoss.raw, true)
    assert.equal(layout.sums.logLoss.limbs, 1)
    assert.equal(layout.maxEntry, 50_000 * layout.sums.logLoss.maxTerm)
  }
  assert.ok(sens.sums !== null && sens.limbSums.length === 0)
})

const record = fc.record({
  ts: fc.oneof(fc.integer({ min: T0, max: T0 + DAY - 1 }), fc.constantFrom<unknown>(T0 - 5, 'never', null)),
  score: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom<unknown>(0, 1, 1.5, 'abc', null)),
  label: fc.constantFrom<unknown>(0, 1, null, 'maybe', true),
  features: fc.record({
    x: fc.oneof(fc.double({ min: -10, max: 10, noNaN: true }), fc.constantFrom<unknown>(null, 'oops', -3, 3)),
    c: fc.constantFrom<unknown>('a', 'b', 'zzz', null)
  }, { requiredKeys: [] })
}, { requiredKeys: ['ts'] })

let files = 0
async function scan (records: unknown[]): Promise<Uint32Array> {
  const path = join(dir, `d${files++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  return await scanWindow({ spec, layout, source: { path, format: 'jsonl' }, window: WINDOW })
}

test('one record moves each raw sum by at most its maxTerm, the sums within their L1/L2, the counts within theirs', async () => {
  const maxTermAt = new Map<number, number>()
  if (layout.sums.kind === 'fixed') for (const fs of [layout.sums.logLoss, layout.sums.brier, layout.sums.scoreSum, layout.sums.scoreSumSquares, ...layout.sums.calibration]) maxTermAt.set(fs.offset, fs.maxTerm)
  for (const f of layout.features) if (f.type === 'numeric' && f.moments.kind === 'clipped') { maxTermAt.set(f.moments.sum.offset, f.moments.sum.maxTerm); maxTermAt.set(f.moments.sumSquares.offset, f.moments.sumSquares.maxTerm) }
  await fc.assert(fc.asyncProperty(fc.array(record, { maxLength: 12 }), record, async (base, extra) => {
    const a = await scan(base)
    const b = await scan([...base, extra])
    let sumL1 = 0; let sumL2 = 0; let countL1 = 0
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(b[i] - a[i])
      if (isSum[i] === 1) {
        assert.ok(d <= maxTermAt.get(i)!, `sum entry ${i} moved by ${d} > ${maxTermAt.get(i)}`)
        sumL1 += d; sumL2 += d * d
      } else if (isCount[i] === 1) {
        assert.ok(d <= 1)
        countL1 += d
      }
    }
    assert.ok(sumL1 <= sens.sums!.sensitivity.l1 && Math.sqrt(sumL2) <= sens.sums!.sensitivity.l2 + 1e-9)
    assert.ok(countL1 <= sens.counts.l1)
  }), { numRuns: 25 })
})

test('the plan: the counts and each sum group are releases within the target ε; the sums take their share of the leading RDP term, group by group equally', () => {
  const plan = planDp(layout, DP, 3)
  assert.ok(plan.sums !== null && plan.sums.groups.length > 1)
  const composed = releasesEpsilon([{ mu: plan.muTotal, sensitivity: plan.sensitivity }, ...plan.sums.groups.map(g => ({ mu: g.muTotal, sensitivity: { l1: g.maxTerm, l2: g.maxTerm } }))], DP.delta)
  assert.ok(composed <= DP.epsilon + 1e-9 && composed > 0.99 * DP.epsilon, `composed ε ${composed}`)
  assert.ok(Math.abs(plan.epsilon - composed) < 1e-12)
  // leading terms Δ²/μ: every group the same, all of them together the sums' share of the total
  const lead = (l2: number, mu: number): number => l2 ** 2 / mu
  const groupLeads = plan.sums.groups.map(g => lead(g.maxTerm, g.muTotal))
  for (const l of groupLeads) assert.ok(Math.abs(l / groupLeads[0] - 1) < 1e-9)
  const sumsLead = groupLeads.reduce((a, b) => a + b, 0)
  const share = sumsLead / (sumsLead + lead(plan.sensitivity.l2, plan.muTotal))
  assert.ok(Math.abs(share - DP_SUMS_SHARE) < 1e-9, `share ${share}`)
  const mus = noiseMuPerEntry(layout, plan)
  const groupOf = new Map(plan.sums.groups.flatMap(g => g.entries.map(e => [e, g.muPerAgent] as const)))
  for (let i = 0; i < mus.length; i++) assert.equal(mus[i], isSum[i] === 1 ? groupOf.get(i) : plan.muPerAgent)
  // a spec without sums keeps the single release it had
  const countsOnly = buildLayout(MonitorSpec.parse({ ...specInput, score: { bins: 16, sums: false }, features: { c: specInput.features.c } }))
  assert.equal(planDp(countsOnly, DP, 3).sums, null)
})

test('a noisy report: log loss, Brier and the mean shift come from the noisy sums, near the exact figures, with their ±', async () => {
  const rand = mulberry32(7)
  const records = Array.from({ length: 60_000 }, () => {
    const score = rand()
    return { ts: T0 + Math.floor(rand() * DAY), score, label: rand() < score ? 1 : 0, features: { x: 4 * rand() - 2, c: rand() < 0.5 ? 'a' : 'b' } }
  })
  const vectors = [await scan(records.slice(0, 20_000)), await scan(records.slice(20_000, 40_000)), await scan(records.slice(40_000))]
  const exactSum = new Uint32Array(layout.length)
  for (const v of vectors) for (let i = 0; i < v.length; i++) exactSum[i] += v[i]
  const exact = computeReportBody({ spec, layout, current: exactSum, reference: { vector: exactSum, id: 'ref', window: null } })
  const plan = planDp(layout, DP, 3)
  const mus = noiseMuPerEntry(layout, plan)
  const noiseRand = mulberry32(99)
  const noisy = new Uint32Array(layout.length)
  for (const v of vectors) {
    const y = addSkellamNoiseEach(Uint32Array.from(v), mus, () => noiseRand())
    for (let i = 0; i < y.length; i++) noisy[i] = (noisy[i] + y[i]) >>> 0
  }
  const { body, dp } = noisyReportBody({ spec, layout, current: noisy, reference: { vector: exactSum, id: 'ref', window: null, survivors: null }, survivors: 3, minSurvivors: 3 })
  assert.ok(dp.sums !== undefined && dp.sums.noiseStd > dp.noiseStd)
  const perf = body.performance as unknown as Record<string, unknown> & { noise95: Record<string, number | null> }
  const exactPerf = exact.performance as Record<string, unknown>
  for (const key of ['log_loss', 'brier']) {
    const got = perf[key] as number
    const want = exactPerf[key] as number
    const bar = perf.noise95[key]
    assert.ok(typeof bar === 'number' && bar > 0, `${key} has a noise bar`)
    assert.ok(Math.abs(got - want) <= 3 * bar, `${key}: ${got} vs exact ${want} (±${bar})`)
    assert.ok(Math.abs(got - want) / want < 0.05, `${key} within 5 %: ${got} vs ${want}`)
  }
  assert.ok(typeof (body.drift.features.x.noise95 as { meanShift: number | null }).meanShift === 'number')
})
