import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { checkSpecPolicy, type AgentPolicy } from '../../shared/secagg/policy.js'
import { buildLayout, counterIndex, type NumericFeatureLayout } from '../../shared/stats/layout.js'
import { readFixedSum } from '../../shared/stats/fixed-point.js'
import { parseMonitorSpec, type MonitorSpec } from '../../shared/stats/spec.js'

/**
 * Issue 10 item 3, "exact sums and narrow windows reveal single records": what a curious coordinator learns from
 * one site's vector when the spec is coarse but the sums are exact, and when several features read one column.
 * Everything runs the real scan (DuckDB over a JSONL file) and decodes with the real layout.
 */

const T = Date.UTC(2026, 0, 15, 12)
const MINUTE = 60_000
// The victim: one record in a one-minute window.
const INCOME = 87654.32109
const SCORE = 0.734219873
let dir: string
let file: string

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-resolution-'))
  file = join(dir, 'preds.jsonl')
  const victim = { ts: T + 30_000, score: SCORE, label: 1, income: INCOME, features: { income: INCOME } }
  // other records of the site, all outside the attacked minute
  const others = Array.from({ length: 50 }, (_, i) => ({ ts: T - (i + 1) * MINUTE, score: (i % 10) / 10, label: i % 2, income: 1000 * i, features: { income: 1000 * i } }))
  writeFileSync(file, [victim, ...others].map(r => JSON.stringify(r)).join('\n') + '\n')
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

async function scan (spec: MonitorSpec): Promise<{ vector: Uint32Array, layout: ReturnType<typeof buildLayout> }> {
  const layout = buildLayout(spec)
  const { vector } = await scanWindowDetailed({ spec, layout, source: { path: file }, window: { from: T, to: T + MINUTE } })
  return { vector, layout }
}

/** The review's policy: bucket counts only. */
const FINDING_POLICY: AgentPolicy = { maxBucketsPerFeature: 4, maxScoreBins: 2 }
/** Coarse in every count: 2 score bins, 2 calibration bins, threshold on a bin edge, income in 2 buckets. */
const COARSE = parseMonitorSpec({
  model: 'coarse', score: { bins: 2 }, calibration: { bins: 2 }, threshold: 0.5,
  features: { income: { type: 'numeric', edges: [50000] } }
})

test('attack (a): a one-record window under a coarse spec gives the record\'s income, score and label exactly', async () => {
  const layout = buildLayout(COARSE)
  checkSpecPolicy(FINDING_POLICY, { spec: COARSE, layout }, { vectorLength: layout.length }) // the spec passes
  const { vector: v } = await scan(COARSE)
  assert.equal(v[counterIndex(layout, 'recordsInWindow')], 1)
  const income = layout.features[0] as NumericFeatureLayout
  const recovered = readFixedSum(v, income.sumPositive) - readFixedSum(v, income.sumNegative)
  const score = readFixedSum(v, layout.scoreSum)
  assert.ok(Math.abs(recovered - INCOME) <= 2 ** -17, `income ${recovered}`)
  assert.ok(Math.abs(score - SCORE) <= 2 ** -25, `score ${score}`)
  assert.equal(v[counterIndex(layout, 'labelPositive')], 1)
  console.log(`attack (a) recovered income ${recovered}, score ${score}, label 1 from a spec with ${income.valueBuckets} income buckets and ${layout.score.bins} score bins`)
})

/** Four features on one column, each within 13 buckets, their edges offset by a quarter step. */
const OFFSET_EDGES = parseMonitorSpec({
  model: 'offset', score: { bins: 2 }, calibration: { bins: 2 },
  features: Object.fromEntries([0, 1, 2, 3].map(j => [`f${j}`, { type: 'numeric', column: 'income', edges: Array.from({ length: 10 }, (_, k) => 10_000 * k + 2500 * j) }]))
})

test('attack (b): four features on one column combine 40 edges under a per-feature limit of 13 buckets', async () => {
  const layout = buildLayout(OFFSET_EDGES)
  checkSpecPolicy({ maxBucketsPerFeature: 13 }, { spec: OFFSET_EDGES, layout }, { vectorLength: layout.length })
  const { vector: v } = await scan(OFFSET_EDGES)
  let lo = -Infinity; let hi = Infinity
  for (const f of layout.features as NumericFeatureLayout[]) {
    const b = Array.from(v.subarray(f.offset, f.offset + f.valueBuckets)).findIndex(n => n === 1)
    lo = Math.max(lo, f.lower[b]); hi = Math.min(hi, f.upper[b])
  }
  assert.ok(lo <= INCOME && INCOME < hi && hi - lo === 2500, `income in [${lo}, ${hi})`)
  console.log(`attack (b) pinned the income to [${lo}, ${hi}) with 13-bucket features (each alone: a 10000 wide bucket)`)
})

test('attack (c): no policy rule bounds the precision of the sums', () => {
  const layout = buildLayout(COARSE)
  for (const policy of [FINDING_POLICY, { maxBucketsPerFeature: 1024, maxScoreBins: 4096, allowedColumns: ['score', 'label', 'income'] }]) {
    checkSpecPolicy(policy, { spec: COARSE, layout }, { vectorLength: layout.length })
  }
  console.log(`attack (c) moments at 2^-${(layout.features[0] as NumericFeatureLayout).sumPositive.scaleBits}, score sums at 2^-${layout.scoreSum.scaleBits} accepted by every policy`)
})
