import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MonitorSpec, loadMonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, maxAgentsFor, counterIndex, fixedSumsOf, momentSumsOf, COUNTERS, LAYOUT_VERSION, specHashOf } from '../../shared/stats/layout.js'
import { canonicalJson, sha256Hex } from '../../shared/stats/canonical.js'
import { sketchMapping } from '../../shared/stats/sketch.js'
import { writeLimbs, readFixedSum, LIMB_MAX } from '../../shared/stats/fixed-point.js'
import { ConfigError } from '../../shared/errors.js'

const base = {
  model: 'credit-risk',
  score: { column: 'score', bins: 1000, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.5,
  features: {
    age: { type: 'numeric' },
    income: { type: 'numeric', edges: [0, 20000, 40000, 80000] },
    region: { type: 'categorical', categories: ['north', 'south', 'east', 'west', 'islands'] }
  },
  drift: { psi: { warn: 0.1, alert: 0.25 } }
}

// Pinned: the same spec must give this hash on every machine and in every release of layout v3.
const PINNED_HASH = 'dd8f006f10b92e02e4692e6ad7037cd165e139aa4265258dc51d93b4110714fa'
// The same spec's hash under layout v2 (before the per-site indicator sitesWithRecords): v3 must never reuse it.
const V2_HASH = '3968584eefb4dcef10ff11b353993b731db513a205be7fe519889302c9707c62'
// The same spec's hash under layout v1 (which summed the undated-record count): v2 must never reuse it.
const V1_HASH = '46e6302ead0511f403eb29077f3c7ca3ba94f62425c60988b33488c7c6899d08'

test('layout: same spec gives the same layout and a pinned hash', () => {
  const a = buildLayout(MonitorSpec.parse(base))
  const b = buildLayout(MonitorSpec.parse(structuredClone(base)))
  assert.equal(a.specHash, b.specHash)
  assert.equal(a.length, b.length)
  assert.deepEqual(a.features.map(f => [f.name, f.offset, f.length]), b.features.map(f => [f.name, f.offset, f.length]))
  assert.match(a.specHash, /^[0-9a-f]{64}$/)
  assert.equal(a.specHash, PINNED_HASH)
})

test('layout: a spec without the sums options keeps the layout it had before them (pinned offsets)', () => {
  // Pinned from the layout before issue 10.3 (commit b27b1dd): stored references and rounds in flight depend on it.
  // Layout v3 appended one counter (sitesWithRecords): every offset after the counters moved by one, and the
  // version line in the hash keeps a v2 vector from ever being read with these offsets.
  const layout = buildLayout(MonitorSpec.parse(base))
  assert.equal(layout.length, 7974)
  assert.equal(layout.calibration.countsOffset, 3029)
  assert.deepEqual(fixedSumsOf(layout).map(f => [f.offset, f.limbs]), [[3016, 4], [3020, 3], [3023, 3], [3026, 3], [3049, 3], [3052, 3], [3055, 3], [3058, 3], [3061, 3], [3064, 3], [3067, 3], [3070, 3], [3073, 3], [3076, 3], [7924, 5], [7929, 5], [7934, 8], [7949, 5], [7954, 5], [7959, 8]])
  assert.deepEqual(layout.features.map(f => f.offset), [3079, 7942, 7967])
  // the options change the hash and drop or shrink the sums they govern, nothing else
  const withOptions = structuredClone(base) as any
  withOptions.score.sums = { precisionBits: 8 }
  withOptions.features.age.moments = false
  withOptions.features.income.moments = { clip: [0, 1e5], precisionBits: 8 }
  const changed = buildLayout(MonitorSpec.parse(withOptions))
  assert.notEqual(changed.specHash, layout.specHash)
  assert.deepEqual(changed.features.map(f => f.length), layout.features.map(f => f.length))
  assert.ok(changed.sums.kind === 'fixed' && changed.sums.precisionBits === 8 && !changed.sums.legacy)
  const income = changed.features.find(f => f.name === 'income')
  assert.ok(income?.type === 'numeric' && income.moments.kind === 'clipped' && income.moments.step === 1e5 / 256)
  // one record adds at most 2^8 to Σu and 2^16 to Σu² (the sensitivity a DP noise scale needs), 2^22 records fit 2 and 3 limbs
  assert.deepEqual([income.moments.sum.maxTerm, income.moments.sumSquares.maxTerm, income.moments.sum.limbs, income.moments.sumSquares.limbs], [256, 65536, 2, 3])
  assert.equal(changed.features.find(f => f.name === 'age')?.type === 'numeric' && (changed.features.find(f => f.name === 'age') as any).moments.kind, 'off')
})

test('layout version: bound into the spec hash, so a v1 or v2 vector or reference never passes for a v3 one', () => {
  const spec = MonitorSpec.parse(base)
  const canonical = canonicalJson(spec)
  assert.equal(LAYOUT_VERSION, 'fedmon-layout-v3')
  assert.equal(sha256Hex(`fedmon-layout-v1\n${canonical}`), V1_HASH, 'v1 hashed the version line and the canonical spec')
  assert.equal(sha256Hex(`fedmon-layout-v2\n${canonical}`), V2_HASH, 'so did v2')
  assert.equal(specHashOf(spec), sha256Hex(`${LAYOUT_VERSION}\n${canonical}`), 'v3 hashes the same way: only the version line changed')
  assert.notEqual(specHashOf(spec), V1_HASH)
  assert.notEqual(specHashOf(spec), V2_HASH)
  assert.equal(buildLayout(spec).version, LAYOUT_VERSION)
})

test('layout: key order in the spec does not matter', () => {
  const reordered = {
    features: { region: base.features.region, income: base.features.income, age: base.features.age },
    drift: base.drift, threshold: 0.5, label: { positive: 1, column: 'label' }, score: { scale: 'linear', bins: 1000, column: 'score' }, model: 'credit-risk'
  }
  const a = buildLayout(MonitorSpec.parse(base)); const b = buildLayout(MonitorSpec.parse(reordered))
  assert.equal(a.specHash, b.specHash)
  assert.deepEqual(a.features.map(f => f.offset), b.features.map(f => f.offset))
})

test('layout: every change to the spec changes the hash', () => {
  const h0 = buildLayout(MonitorSpec.parse(base)).specHash
  const mutations: Array<(s: any) => void> = [
    s => { s.model = 'credit-risk-2' },
    s => { s.score.bins = 1001 },
    s => { s.score.scale = 'logit' },
    s => { s.score.column = 'p' },
    s => { s.label.positive = 'yes' },
    s => { s.threshold = 0.4 },
    s => { s.features.income.edges = [0, 20000, 40000, 80001] },
    s => { s.features.region.categories = ['north', 'south', 'east', 'west'] },
    s => { s.features.age.alpha = 0.02 },
    s => { s.features.extra = { type: 'numeric' } },
    s => { delete s.features.age },
    s => { s.drift.psi.warn = 0.11 },
    s => { s.limits = { maxRecordsPerAgent: 1000 } },
    s => { s.score.sums = false },
    s => { s.score.sums = { precisionBits: 8 } },
    s => { s.features.income.moments = false },
    s => { s.features.income.moments = { clip: [0, 1e5], precisionBits: 8 } },
    s => { s.features.income.moments = { clip: [0, 1e5], precisionBits: 9 } }
  ]
  const seen = new Set([h0])
  for (const [i, m] of mutations.entries()) {
    const s = structuredClone(base) as any
    m(s)
    const h = buildLayout(MonitorSpec.parse(s)).specHash
    assert.ok(!seen.has(h), `mutation ${i} must change the hash`)
    seen.add(h)
  }
})

test('layout: segments tile the vector without overlap; maxEntry bounds counts and limbs', () => {
  const layout = buildLayout(MonitorSpec.parse(base))
  const used = new Uint8Array(layout.length)
  const mark = (offset: number, n: number, what: string): void => {
    for (let i = offset; i < offset + n; i++) { assert.equal(used[i], 0, `${what} overlaps at ${i}`); used[i] = 1 }
  }
  mark(layout.counters.offset, COUNTERS.length, 'counters')
  mark(layout.score.offset, 3 * layout.score.bins, 'score')
  const sums = layout.sums
  assert.ok(sums.kind === 'fixed' && sums.legacy && sums.precisionBits === 24)
  for (const fs of [sums.logLoss, sums.brier, sums.scoreSum, sums.scoreSumSquares, ...sums.calibration]) mark(fs.offset, fs.limbs, 'fixed sum')
  mark(layout.calibration.countsOffset, 2 * layout.calibration.bins, 'calibration')
  for (const f of layout.features) {
    mark(f.offset, f.length, f.name)
    if (f.type === 'numeric') {
      assert.equal(f.moments.kind, 'exact')
      for (const fs of momentSumsOf(f.moments)) mark(fs.offset, fs.limbs, `${f.name} moments`)
    }
  }
  assert.ok(used.every(u => u === 1), 'every entry belongs to a segment')
  assert.equal(layout.maxEntry, 2 ** 22)
  assert.equal(maxAgentsFor(layout), 1023)
  assert.equal(counterIndex(layout, 'recordsInWindow'), layout.counters.offset)
  // log loss: 2^22 records × 36.04 × 2^24 < 2^52 → 4 limbs; squares of |x| ≤ 1e12 at 2^16 need 8
  assert.equal(sums.logLoss.limbs, 4)
  const age = layout.features.find(f => f.name === 'age')
  assert.ok(age !== undefined && age.type === 'numeric' && age.moments.kind === 'exact' && age.moments.sumSquares.limbs === 8)
})

test('fixed point: limbs round-trip and summed limbs never wrap for 2^16 agents', () => {
  const layout = buildLayout(MonitorSpec.parse(base))
  assert.ok(layout.sums.kind === 'fixed')
  const fs = layout.sums.logLoss
  const v = new Uint32Array(layout.length)
  const maxSum = (1n << BigInt(16 * fs.limbs)) - 1n
  writeLimbs(v, fs, maxSum)
  for (let i = 0; i < fs.limbs; i++) assert.equal(v[fs.offset + i], LIMB_MAX)
  assert.ok(LIMB_MAX * 2 ** 16 < 2 ** 32)
  const w = new Uint32Array(layout.length)
  writeLimbs(w, fs, 123456789n * (1n << 24n) + 5n)
  assert.equal(readFixedSum(w, fs), 123456789 + 5 / 2 ** 24)
  assert.throws(() => { writeLimbs(w, fs, maxSum + 1n) }, RangeError)
})

test('sketch: buckets are ordered, contiguous, and hold their values within relative accuracy alpha', () => {
  const m = sketchMapping(0.01, 1e-9, 1e12)
  const { lower, upper, representative } = m.buckets()
  assert.equal(lower.length, m.valueBuckets)
  for (let i = 1; i < lower.length; i++) assert.ok(lower[i] >= upper[i - 1] - 1e-9 * Math.abs(upper[i - 1]), `bucket ${i} is ordered`)
  for (const v of [1e-9, 3.7e-5, 0.5, 1, 2, 37, 1234.5, 9.99e11, 1e12, -1e-9, -0.25, -42, -1e12]) {
    const i = m.indexOf(v)
    assert.ok(i > 0 && i < m.valueBuckets - 1, `${v} in a log bucket`)
    assert.ok(Math.abs(representative[i] - v) <= 0.0101 * Math.abs(v), `${v}: representative ${representative[i]} within alpha`)
  }
  assert.equal(m.indexOf(0), m.zeroIndex)
  assert.equal(m.indexOf(1e-12), m.zeroIndex + 1)
  assert.equal(m.indexOf(-1e-12), m.zeroIndex - 1)
  assert.equal(m.indexOf(2e12), m.valueBuckets - 1)
  assert.equal(m.indexOf(-2e12), 0)
  assert.ok(m.valueBuckets < 5000)
})

test('spec: defaults, canonical form, and bad specs name the field', () => {
  const s = MonitorSpec.parse({ model: 'm' })
  assert.equal(s.score.bins, 4096)
  assert.equal(s.limits.maxRecordsPerAgent, 2 ** 22)
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'] }), '{"a":[true,null,"x"],"b":1}')
  const bad: Array<[unknown, string]> = [
    [{ model: 'm', score: { column: 7 } }, 'score.column'],
    // values are trimmed before matching, so a padded category could never match: refused, naming the entry
    [{ model: 'm', features: { r: { type: 'categorical', categories: ['blue', ' red'] } } }, 'features.r.categories[1]'],
    [{ model: 'm', features: { r: { type: 'categorical', categories: ['red\t'] } } }, 'features.r.categories[0]'],
    [{ model: 'm', features: { r: { type: 'categorical', categories: [' '] } } }, 'features.r.categories[0]'],
    [{ model: 'm', score: { bins: 1 } }, 'score.bins'],
    [{ model: 'm', features: { age: { type: 'numeric', edges: [3, 2] } } }, 'features.age.edges'],
    [{ model: 'm', features: { r: { type: 'categorical', categories: ['a', 'a'] } } }, 'features.r.categories'],
    [{ model: 'm', features: { r: { type: 'text' } } }, 'features.r.type'],
    [{ model: 'm', threshold: 2 }, 'threshold'],
    [{ model: 'm', drift: { psi: { warn: 0.3, alert: 0.2 } } }, 'drift.psi'],
    [{ model: 'm', colour: 'x' }, 'colour'], // an unknown key is named as the field (shared/config/load.ts)
    [{ score: {} }, 'model']
  ]
  for (const [value, field] of bad) {
    assert.throws(() => parseMonitorSpec(value, 'spec.yaml'), (err: unknown) => err instanceof ConfigError && err.field === field && err.message.startsWith(`spec.yaml: ${field}`), `${JSON.stringify(value)} → ${field}`)
  }
  assert.throws(() => parseMonitorSpec({ model: 'm', features: { r: { type: 'categorical', categories: [' red'] } } }, 'spec.yaml'),
    /^ConfigError|spec\.yaml: features\.r\.categories\[0\]: category " red" starts or ends with whitespace.*write "red"/)
  // whitespace inside a category, and other Unicode spaces (not trimmed by the scan), stay allowed
  assert.deepEqual(MonitorSpec.parse({ model: 'm', features: { r: { type: 'categorical', categories: ['dark red', '\u00a0x'] } } }).features.r, { type: 'categorical', categories: ['dark red', '\u00a0x'] })
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-spec-'))
  writeFileSync(join(dir, 'spec.yaml'), 'model: m\nscore: {bins: 100, scale: logit}\nfeatures:\n  age: {type: numeric, edges: [1, 2]}\n')
  assert.equal(loadMonitorSpec(join(dir, 'spec.yaml')).score.scale, 'logit')
  writeFileSync(join(dir, 'bad.yaml'), 'model: m\nscore: {bins: many}\n')
  assert.throws(() => loadMonitorSpec(join(dir, 'bad.yaml')), /bad\.yaml: score\.bins/)
  assert.throws(() => loadMonitorSpec(join(dir, 'absent.yaml')), /absent\.yaml: file not found/)
  rmSync(dir, { recursive: true, force: true })
})
