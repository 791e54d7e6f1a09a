import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { AGENT_POLICY_DEFAULTS } from '../../shared/config/agent.js'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import type { Announce } from '../../shared/secagg/messages.js'
import { checkAnnouncePolicy, checkSpecPolicy, columnResolutions, scoreResolution, type AgentPolicy } from '../../shared/secagg/policy.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { buildLayout, clippedLevelOf, counterIndex, specHashOf, type Layout, type NumericFeatureLayout } from '../../shared/stats/layout.js'
import { readFixedSum, readFixedSumExact, writeLimbs } from '../../shared/stats/fixed-point.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { parseMonitorSpec, type MonitorSpec } from '../../shared/stats/spec.js'
import { signAnnounce } from './adversary-harness.js'

/**
 * Issue 10 item 3, "exact sums and narrow windows reveal single records": what a curious coordinator learns from
 * one site's vector when the spec is coarse in its counts but its sums are exact, or when several features read
 * one column — and which policy rule refuses each attack. Everything runs the real scan (DuckDB over a JSONL
 * file in a tmp dir), the real layout decode and the real policy checks.
 */

const HOUR = 3_600_000
const MINUTE = 60_000
const T = Date.UTC(2026, 0, 15, 12)
// The victim: the only record of its site in [T, T + 1 h).
const INCOME = 87654.32109
const SCORE = 0.734219873
let dir: string

function writeSite (name: string, income: number): string {
  const file = join(dir, name)
  const victim = { ts: T + 30_000, score: SCORE, label: 1, income, features: { income } }
  // the site's other records, all before T (outside the attacked window)
  const others = Array.from({ length: 50 }, (_, i) => ({ ts: T - (i + 1) * MINUTE, score: (i % 10) / 10, label: i % 2, income: 1000 * i, features: { income: 1000 * i } }))
  writeFileSync(file, [victim, ...others].map(r => JSON.stringify(r)).join('\n') + '\n')
  return file
}

let ids: { coordinator: Identity, agents: Identity[] }
let site: string
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-resolution-'))
  site = writeSite('site.jsonl', INCOME)
  ids = await createIdentities(3, 1003)
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

async function scan (spec: MonitorSpec, window: { from: number, to: number }, file = site): Promise<{ vector: Uint32Array, layout: Layout, records: number }> {
  const layout = buildLayout(spec)
  const { vector, local } = await scanWindowDetailed({ spec, layout, source: { path: file }, window })
  return { vector, layout, records: local.recordsInWindow }
}

const verified = (spec: MonitorSpec): { spec: MonitorSpec, layout: Layout } => ({ spec, layout: buildLayout(spec) })
const check = (policy: AgentPolicy, spec: MonitorSpec): void => { checkSpecPolicy(policy, verified(spec), { vectorLength: buildLayout(spec).length }) }

function refused (run: () => unknown, why: RegExp): void {
  assert.throws(run, (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && why.test(e.message), `expected ERR_POLICY matching ${why}`)
}

/** The review's policy: bucket counts only. */
const FINDING_POLICY: AgentPolicy = { maxBucketsPerFeature: 4, maxScoreBins: 2 }
/**
 * The agent's defaults after issue 10 (AGENT_POLICY_DEFAULTS plus the minRecords and minWindowMs defaults that
 * another branch adds to it), with the review's bucket limits. The per-column limit and the effective score
 * resolution need no entry: they follow maxBucketsPerFeature and maxScoreBins.
 */
const DEFAULTS: AgentPolicy = { ...AGENT_POLICY_DEFAULTS, minRecords: 10, minWindowMs: HOUR, ...FINDING_POLICY }
/** What a site that shares sums adds: no sum finer than 2^8 levels per record (spec.ts, policy.ts). */
const SUMS_POLICY: AgentPolicy = { ...DEFAULTS, maxSumPrecisionBits: 8 }

/** Coarse in every count: 2 score bins, 2 calibration bins, threshold on their edge, income in 2 buckets. */
const COARSE_DOC = {
  model: 'coarse', score: { bins: 2 }, calibration: { bins: 2 }, threshold: 0.5,
  features: { income: { type: 'numeric', edges: [50000] } }
}
const COARSE = parseMonitorSpec(COARSE_DOC)
/** The same counts, with the sums the site's policy accepts: 8 bits each, income clipped into [0, 200000]. */
const COARSE_SUMS = parseMonitorSpec({
  ...COARSE_DOC,
  score: { bins: 2, sums: { precisionBits: 8 } },
  features: { income: { type: 'numeric', edges: [50000], moments: { clip: [0, 200_000], precisionBits: 8 } } }
})

test('attack (a): a one-record window under a coarse spec gives the record\'s income, score and label exactly', async () => {
  check(FINDING_POLICY, COARSE) // the review's bucket limits let the spec through
  const { vector: v, layout } = await scan(COARSE, { from: T, to: T + MINUTE })
  assert.equal(v[counterIndex(layout, 'recordsInWindow')], 1)
  const income = layout.features[0] as NumericFeatureLayout
  assert.ok(income.moments.kind === 'exact' && layout.sums.kind === 'fixed')
  const recovered = readFixedSum(v, income.moments.sumPositive) - readFixedSum(v, income.moments.sumNegative)
  const score = readFixedSum(v, layout.sums.scoreSum)
  assert.ok(Math.abs(recovered - INCOME) <= 2 ** -17, `income ${recovered}`)
  assert.ok(Math.abs(score - SCORE) <= 2 ** -25, `score ${score}`)
  assert.equal(v[counterIndex(layout, 'labelPositive')], 1)
})

test('attack (a) refused: the window rule, the minimum records, and the sums rule each stop it', async () => {
  const coarse = verified(COARSE)
  const now = T + HOUR + 1000
  const announce = (window: { from: number, to: number }): Announce & { participants: Array<{ id: string, addrs: string[] }> } => signAnnounce(ids.coordinator, {
    type: 'announce', roundId: `r-${window.to - window.from}`, protocol: 'fedmon-secagg/1', coordinator: ids.coordinator.id,
    participants: ids.agents.map((a, i) => ({ id: a.id, addrs: [`/memory/${i}`] })), window, specHash: specHashOf(COARSE),
    vectorLength: coarse.layout.length, maxEntry: coarse.layout.maxEntry, minAgents: 2, threshold: 2, degree: 2, graph: 'full',
    phaseTimeoutMs: 10_000, issuedAt: now, reference: false, spec: canonicalJson(COARSE)
  })
  // 1. the one-minute window: refused at the Announce by the default minWindowMs
  refused(() => { checkAnnouncePolicy(DEFAULTS, announce({ from: T, to: T + MINUTE }), now) }, /window of 60000 ms is shorter than this agent's minimum 3600000 ms/)
  // 2. an hour holding the same single record: the Announce passes, the input is refused by minRecords (ERR_POLICY)
  const hour = { from: T, to: T + HOUR }
  const client = SecAggClient.fromAnnounce({ self: ids.agents[0].id, coordinator: ids.coordinator.id, sign: ids.agents[0].sign, verify: verifyPeerSignature, policy: DEFAULTS, roster: new Set(ids.agents.map(a => a.id)) }, ids.coordinator.id, announce(hour), now)
  const { vector, records } = await scan(COARSE, hour)
  assert.equal(records, 1)
  refused(() => client.setInput(vector, now, { records }), /the window holds fewer of this agent's records than its minimum 10/)
  // 3. a site that shares sums only at 8 bits refuses the spec itself, whatever the window holds
  refused(() => { check(SUMS_POLICY, COARSE) }, /score and loss sums are at 2\^-24 per record \(no score.sums in the spec\), this agent allows at most 2\^-8/)
})

test('attack (a) with the sums a policy accepts: a lone record\'s income is known only to its 2^8-level step', async () => {
  check(SUMS_POLICY, COARSE_SUMS)
  const window = { from: T, to: T + MINUTE } // even if the window and record rules were off
  const { vector: v, layout } = await scan(COARSE_SUMS, window)
  const income = layout.features[0] as NumericFeatureLayout
  const m = income.moments
  assert.ok(m.kind === 'clipped' && layout.sums.kind === 'fixed')
  const level = readFixedSum(v, m.sum)
  assert.equal(level, clippedLevelOf(m, INCOME))
  const recovered = m.lo + m.step * level
  assert.ok(Math.abs(recovered - INCOME) <= m.step / 2 && Math.abs(recovered - INCOME) > 1, `income ${recovered} within ±${m.step / 2}, not exact`)
  const score = readFixedSum(v, layout.sums.scoreSum)
  assert.ok(Math.abs(score - SCORE) <= 2 ** -9 && score !== SCORE, `score ${score}`)
  // another income in the same step gives the very same vector: the coordinator cannot tell them apart
  const other = INCOME + (INCOME > recovered ? -m.step / 4 : m.step / 4)
  assert.equal(clippedLevelOf(m, other), level)
  const twin = await scan(COARSE_SUMS, window, writeSite('twin.jsonl', other))
  assert.deepEqual(Array.from(twin.vector), Array.from(v))
  // the report states the precision and clip it used
  const body = computeReportBody({ spec: COARSE_SUMS, layout, current: v, reference: null })
  const sums = (body.dataQuality as any).sums
  assert.deepEqual(sums.moments.income, { state: 'clipped', precisionBits: 8, step: 781.25, clip: [0, 200000], note: sums.moments.income.note })
  assert.equal(sums.score.precisionBits, 8)
  assert.match(String((body.performance as any).fixedPoint), /rounded to multiples of 2\^-8.*income: moments clipped into \[0, 200000\] at 2\^8 levels/)
})

/** Four features on one column, each within 13 buckets, their edges offset by a quarter step. */
const OFFSET_EDGES = parseMonitorSpec({
  model: 'offset', score: { bins: 2 }, calibration: { bins: 2 },
  features: Object.fromEntries([0, 1, 2, 3].map(j => [`f${j}`, { type: 'numeric', column: 'income', edges: Array.from({ length: 10 }, (_, k) => 10_000 * k + 2500 * j) }]))
})

test('attack (b): four features on one column combine 40 edges under a per-feature limit of 13: refused per column', async () => {
  const layout = buildLayout(OFFSET_EDGES)
  assert.ok(layout.features.every(f => f.length === 13))
  // what the combination gives when a policy lets it through: the income within a 2500 wide bucket
  const wide: AgentPolicy = { maxBucketsPerFeature: 13, maxBucketsPerColumn: 43 }
  check(wide, OFFSET_EDGES)
  const { vector: v } = await scan(OFFSET_EDGES, { from: T, to: T + MINUTE })
  let lo = -Infinity; let hi = Infinity
  for (const f of layout.features as NumericFeatureLayout[]) {
    const b = Array.from(v.subarray(f.offset, f.offset + f.valueBuckets)).findIndex(n => n === 1)
    lo = Math.max(lo, f.lower[b]); hi = Math.min(hi, f.upper[b])
  }
  assert.ok(lo <= INCOME && INCOME < hi && hi - lo === 2500, `income in [${lo}, ${hi})`)
  assert.deepEqual(columnResolutions(verified(OFFSET_EDGES)), [{ column: 'income', features: ['f0', 'f1', 'f2', 'f3'], cuts: 40, categories: 0, buckets: 43 }])
  // the per-feature limit now bounds each column too; an explicit per-column limit does the same
  refused(() => { check({ maxBucketsPerFeature: 13 }, OFFSET_EDGES) }, /column income is read by features f0, f1, f2, f3: together 40 distinct cut points, 43 buckets; this agent allows at most 13 per column \(policy.maxBucketsPerFeature, which also bounds each column\)/)
  refused(() => { check({ maxBucketsPerColumn: 42 }, OFFSET_EDGES) }, /column income .* 43 buckets; this agent allows at most 42 per column \(policy.maxBucketsPerColumn\)/)
  // a feature's name and another's `column` are one column; repeating the same edges adds nothing
  const same = parseMonitorSpec({ model: 'same', features: { income: { type: 'numeric', edges: [1, 2] }, copy: { type: 'numeric', column: 'income', edges: [1, 2] }, age: { type: 'numeric', edges: [3, 4] } } })
  check({ maxBucketsPerFeature: 5 }, same)
  refused(() => { check({ maxBucketsPerFeature: 5 }, parseMonitorSpec({ model: 'x', features: { income: { type: 'numeric', edges: [1, 2] }, copy: { type: 'numeric', column: 'income', edges: [1.5] } } })) }, /column income is read by features copy, income: together 3 distinct cut points, 6 buckets/)
  // categories of several features on one column are counted as their union
  const cats = parseMonitorSpec({ model: 'c', features: { a: { type: 'categorical', column: 'zip', categories: ['1', '2', '3'] }, b: { type: 'categorical', column: 'zip', categories: ['3', '4', '5'] } } })
  refused(() => { check({ maxBucketsPerColumn: 6 }, cats) }, /column zip is read by features a, b: together 5 distinct categories, 7 buckets/)
  check({ maxBucketsPerColumn: 7 }, cats)
})

test('attack (b) on the score: calibration bins and the threshold refine a 2-bin histogram: refused by maxScoreBins', () => {
  const fine = parseMonitorSpec({ model: 's', score: { bins: 2 }, calibration: { bins: 100 }, threshold: 0.375 })
  assert.deepEqual(scoreResolution(verified(fine)), { bins: 101, sources: ['2 score bins', '100 calibration bins', 'threshold 0.375'] })
  refused(() => { check({ maxScoreBins: 2 }, fine) }, /splits the score into 101 bins \(2 score bins, 100 calibration bins, threshold 0.375 together\), this agent allows at most 2/)
  // nested edges add nothing: 64 bins, 8 calibration bins, threshold 0.5
  assert.equal(scoreResolution(verified(parseMonitorSpec({ model: 's', score: { bins: 64 }, calibration: { bins: 8 } }))).bins, 64)
  refused(() => { check({ maxScoreBins: 4 }, parseMonitorSpec({ model: 's', score: { bins: 4 }, calibration: { bins: 4 }, features: { s: { type: 'numeric', column: 'score', edges: [0.1] } } })) }, /5 bins .*feature s/)
})

test('attack (c): the sums rule refuses specs asking for finer sums than the site allows, naming the feature and the rule', () => {
  const doc = (income: unknown, sums: unknown = { precisionBits: 8 }): MonitorSpec => parseMonitorSpec({ ...COARSE_DOC, score: { bins: 2, sums }, features: { income: { type: 'numeric', edges: [50000], ...(income !== undefined ? { moments: income } : {}) } } })
  const policy: AgentPolicy = { maxSumPrecisionBits: 8 }
  refused(() => { check(policy, doc(undefined)) }, /feature income: moments are unclipped \(exact Σx, Σx² at 2\^-16, clamped only at ±1000000000000\), this agent requires clipped sums of at most 2\^8 levels \(policy.maxSumPrecisionBits\)/)
  refused(() => { check(policy, doc({ clip: [0, 1e6], precisionBits: 20 })) }, /feature income: moments at 20 bits \(steps of 0.95367431640625 over \[0, 1000000\]\), this agent allows at most 8 bits \(policy.maxSumPrecisionBits\)/)
  refused(() => { check(policy, doc(false, { precisionBits: 12 })) }, /score and loss sums are at 2\^-12 per record, this agent allows at most 2\^-8/)
  check(policy, doc({ clip: [0, 1e6], precisionBits: 8 }))
  check(policy, doc(false, false))
  // two clipped sums of one column would place a record between their clips
  const twice = parseMonitorSpec({ model: 't', score: { sums: false }, features: { a: { type: 'numeric', column: 'income', edges: [1], moments: { clip: [0, 50000], precisionBits: 0 } }, b: { type: 'numeric', column: 'income', edges: [1], moments: { clip: [0, 90000], precisionBits: 0 } } } })
  refused(() => { check(policy, twice) }, /column income: features a, b each sum its values/)
  // allowSums: false takes counts only
  refused(() => { check({ allowSums: false }, doc({ clip: [0, 1e6], precisionBits: 1 }, false)) }, /the spec sums record values: feature income's moments \(set moments: false\); this agent contributes no sums \(policy.allowSums: false\)/)
  refused(() => { check({ allowSums: false }, COARSE) }, /the score and loss sums \(set score.sums: false\), feature income's moments/)
  check({ allowSums: false }, doc(false, false))
  // a policy without sums rules keeps accepting the legacy spec (its layout and hash are unchanged)
  check({ ...FINDING_POLICY, allowSums: true }, COARSE)
})

test('item 7.2 (documented limitation): per-limb sums tell the carries (0 to n − 1 per limb boundary) beyond the total', () => {
  const spec = parseMonitorSpec({ model: 'limbs', score: { bins: 2, sums: { precisionBits: 8 } } })
  const layout = buildLayout(spec)
  assert.ok(layout.sums.kind === 'fixed')
  const fs = layout.sums.logLoss
  const vectorOf = (S: bigint): Uint32Array => { const v = new Uint32Array(layout.length); writeLimbs(v, fs, S); return v }
  const sum = (vs: Uint32Array[]): Uint32Array => vs.reduce((a, v) => a.map((x, i) => x + v[i]))
  const T = 3n * 2n ** 16n + 10n
  // the same total from one agent, or from two agents whose low limbs carry: the decode agrees, limb 0 does not
  const alone = sum([vectorOf(T), vectorOf(0n)]); const split = sum([vectorOf(2n ** 16n + 40000n), vectorOf(2n ** 17n - 39990n)])
  assert.equal(readFixedSumExact(alone, fs), T); assert.equal(readFixedSumExact(split, fs), T)
  assert.deepEqual([alone[fs.offset], split[fs.offset]], [10, 10 + 2 ** 16])
  // what limb 0 adds to T: R_1 = Σ_u (S_u mod 2^16) = (T mod 2^16) + 2^16·c with c the carries, 0 ≤ c ≤ n − 1
  for (const v of [alone, split]) {
    const c = (BigInt(v[fs.offset]) - (T % 2n ** 16n)) / 2n ** 16n
    assert.ok(c >= 0n && c <= 1n && BigInt(v[fs.offset]) === (T % 2n ** 16n) + c * 2n ** 16n)
  }
})
