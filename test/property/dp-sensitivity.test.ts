/**
 * The layout's record sensitivity (shared/dp/sensitivity.ts) holds on the real scan: adding one random record
 * (good or malformed, in or out of the window) to a random data set changes every count entry by 0 or 1 and
 * at most `counts.l1` of them — and a fully labeled, valid record reaches that bound (it is not loose).
 * Each case scans two real JSONL files with DuckDB (agent/scan.ts).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { scanWindow } from '../../agent/scan.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, type Layout } from '../../shared/stats/layout.js'
import { buildTaskLayout } from '../../shared/stats/tasks/index.js'
import { countEntries, layoutSensitivity } from '../../shared/dp/sensitivity.js'

const T0 = Date.UTC(2025, 11, 1)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }
const spec = MonitorSpec.parse({
  model: 'dp-sensitivity',
  score: { bins: 16 },
  threshold: 0.5,
  calibration: { bins: 5 },
  features: {
    x: { type: 'numeric', edges: [-1, 0, 1] },
    c: { type: 'categorical', categories: ['a', 'b'] },
    y: { type: 'numeric' }
  }
})
const layout = buildLayout(spec)
const sensitivity = layoutSensitivity(layout)
const isCount = countEntries(layout)

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-dp-sens-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

const record = fc.record({
  ts: fc.oneof(fc.integer({ min: T0, max: T0 + DAY - 1 }), fc.constantFrom<unknown>(T0 - 5, 'never', null)),
  score: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom<unknown>(1.5, 'abc', null, 'NaN')),
  label: fc.constantFrom<unknown>(0, 1, null, 'maybe', true),
  x: fc.oneof(fc.double({ min: -3, max: 3, noNaN: true }), fc.constantFrom<unknown>(null, 'oops')),
  c: fc.constantFrom<unknown>('a', 'b', 'zzz', null),
  y: fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constantFrom<unknown>(null))
}, { requiredKeys: ['ts'] })

let files = 0
async function scan (records: unknown[]): Promise<Uint32Array> {
  const path = join(dir, `d${files++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  return await scanWindow({ spec, layout, source: { path, format: 'jsonl' }, window: WINDOW })
}

/** The changed count entries between two vectors, and the largest change. */
function countDiff (a: Uint32Array, b: Uint32Array): { l1: number, maxAbs: number } {
  let l1 = 0
  let maxAbs = 0
  for (let i = 0; i < a.length; i++) {
    if (isCount[i] === 0) continue
    const d = Math.abs(b[i] - a[i])
    l1 += d
    maxAbs = Math.max(maxAbs, d)
  }
  return { l1, maxAbs }
}

test('one record changes the count entries by at most the stated L1, each by at most 1 (real scan)', async () => {
  // counters: recordsInWindow, a label class, a score class, tp/fp/fn/tn or predictedPositiveUnlabeled, and the
  // site's indicator sitesWithRecords (flipped 0 ↔ 1 by a window's first record)
  assert.equal(sensitivity.counts.l1, 5 + 1 + 2 + 3)
  await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 0, maxLength: 30 }), record, async (base, extra) => {
    const without = await scan(base)
    const withIt = await scan([...base, extra])
    const { l1, maxAbs } = countDiff(without, withIt)
    assert.ok(maxAbs <= 1, `an entry changed by ${maxAbs}`)
    assert.ok(l1 <= sensitivity.counts.l1, `L1 ${l1} > ${sensitivity.counts.l1} for ${JSON.stringify(extra)}`)
  }), { numRuns: 25 })
})

test('the bound is reached by a labeled positive record with every feature present, the first of the window', async () => {
  const outside = [{ ts: T0 - 5, score: 0.2, label: 0, x: 0.5, c: 'a', y: 3 }]
  const extra = { ts: T0 + 2, score: 0.9, label: 1, x: -2, c: 'b', y: -4 }
  assert.equal(countDiff(await scan(outside), await scan([...outside, extra])).l1, sensitivity.counts.l1)
})

test('the per-site indicator: the window\'s first record flips it 0 → 1, any further record leaves it at 1', async () => {
  const at = counterIndex(layout, 'sitesWithRecords')
  const one = { ts: T0 + 1, score: 0.2, label: 1, x: 0.5, c: 'a', y: 3 }
  const [none, first, second] = [await scan([]), await scan([one]), await scan([one, { ...one, ts: T0 + 2 }])]
  assert.deepEqual([none[at], first[at], second[at]], [0, 1, 1])
  assert.equal(countDiff(first, second).l1, sensitivity.counts.l1 - 1, 'a second record touches every group but the indicator')
})

test('the fixed-point limb groups are set apart (their carries have no per-entry bound)', () => {
  // Legacy sums: log loss, Brier, Σs, Σs², per calibration bin Σs, and three moment sums per legacy numeric feature.
  assert.equal(sensitivity.limbSums.length, 4 + 5 + 3 * 2)
  const limbEntries = sensitivity.limbSums.reduce((n, fs) => n + fs.limbs, 0)
  assert.equal([...isCount].filter(v => v === 0).length, limbEntries)
})

test('segments: one record moves the overall entries and one cell per segment column, within the stated L1 (real scan)', async () => {
  const segSpec = MonitorSpec.parse({
    ...spec,
    score: { ...spec.score, sums: false },
    features: { x: { type: 'numeric', edges: [-1, 0, 1] }, c: { type: 'categorical', categories: ['a', 'b'] } },
    segments: [{ column: 'c', values: ['a', 'b'] }, { column: 'x', values: ['never'], drift: true }],
    privacy: { dp: { epsilon: 1, delta: 1e-6 } }
  })
  const segLayout = buildTaskLayout(segSpec) as Layout
  const sens = layoutSensitivity(segLayout)
  // overall: 5 counters + score + 2 calibration + 2 features = 10; column c: a performance-only cell (8) + its
  // site indicator; column x (drift: true): a cell with the features (10) + its indicator
  assert.equal(sens.counts.l1, 10 + (8 + 1) + (10 + 1))
  const segCount = countEntries(segLayout)
  await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 0, maxLength: 25 }), record, async (base, extra) => {
    const scanWith = async (records: unknown[]): Promise<Uint32Array> => {
      const path = join(dir, `s${files++}.jsonl`)
      writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
      return await scanWindow({ spec: segSpec, layout: segLayout, source: { path, format: 'jsonl' }, window: WINDOW })
    }
    const without = await scanWith(base)
    const withIt = await scanWith([...base, extra])
    let l1 = 0
    for (let i = 0; i < without.length; i++) {
      if (segCount[i] === 0) continue
      const d = Math.abs(withIt[i] - without[i])
      assert.ok(d <= 1, `entry ${i} changed by ${d}`)
      l1 += d
    }
    assert.ok(l1 <= sens.counts.l1, `L1 ${l1} > ${sens.counts.l1} for ${JSON.stringify(extra)}`)
  }), { numRuns: 20 })
})
