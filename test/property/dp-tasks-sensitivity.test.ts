/**
 * Differential privacy for regression and multiclass specs (issue 15 §1 over issue 12's tasks): each task's
 * record sensitivity (Task.dpSensitivity, read off its layout) holds on the real scan. Adding one random record
 * (good or malformed, in or out of the window) to a random data set changes every count entry by 0 or 1 and at
 * most `counts.l1` of them, and each raw sum entry by at most its maxTerm, the sums together by at most their
 * stated L1 and L2 — and a valid record, the window's first, reaches the count bound (it is not loose).
 * Each case scans two real JSONL files with DuckDB (agent/scan.ts).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { scanWindow } from '../../agent/scan.js'
import { parseMonitorSpec, type MonitorSpec } from '../../shared/stats/spec.js'
import { buildTaskLayout, taskOfLayout, type TaskLayout } from '../../shared/stats/tasks/index.js'
import { countEntries, layoutSensitivity, rawSumEntries } from '../../shared/dp/sensitivity.js'
import type { FixedSum } from '../../shared/stats/fixed-point.js'

const T0 = Date.UTC(2025, 11, 1)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }
const DP = { epsilon: 1, delta: 1e-6 }

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-dp-tasks-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

let files = 0
async function scan (spec: MonitorSpec, layout: TaskLayout, records: unknown[]): Promise<Uint32Array> {
  const path = join(dir, `d${files++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  return await scanWindow({ spec, layout, source: { path, format: 'jsonl' }, window: WINDOW })
}

interface Case { name: string, spec: MonitorSpec, record: fc.Arbitrary<Record<string, unknown>>, full: Record<string, unknown>, countL1: number }

const ts = fc.oneof(fc.integer({ min: T0, max: T0 + DAY - 1 }), fc.constantFrom<unknown>(T0 - 5, 'never', null))
const x = fc.oneof(fc.double({ min: -5, max: 5, noNaN: true }), fc.constantFrom<unknown>(null, 'oops'))

const regression: Case = {
  name: 'regression',
  spec: parseMonitorSpec({
    model: 'dp-price',
    task: 'regression',
    prediction: { column: 'prediction', edges: [0, 50, 100] },
    target: { column: 'target', clip: [-10, 200], precisionBits: 6 },
    error: { mapeCap: 20, alpha: 0.05, range: [0.01, 1000] },
    features: { x: { type: 'numeric', edges: [-1, 0, 1], moments: { clip: [-3, 3], precisionBits: 4 } }, c: { type: 'categorical', categories: ['a', 'b'] } },
    limits: { maxRecordsPerAgent: 10_000 },
    privacy: { dp: DP }
  }),
  record: fc.record({
    ts,
    // zero, out-of-clip, tiny and huge values: the clipped, capped and sketch-edge paths
    prediction: fc.oneof(fc.double({ min: -50, max: 300, noNaN: true }), fc.constantFrom<unknown>(0, 1e9, 'n/a', null, 'NaN')),
    target: fc.oneof(fc.double({ min: -50, max: 300, noNaN: true }), fc.constantFrom<unknown>(0, 1e-6, null, 'late')),
    x,
    c: fc.constantFrom<unknown>('a', 'b', 'zzz', null)
  }, { requiredKeys: ['ts'] }),
  // a pair with both values outside the clip, a non-zero target and a capped MAPE term (261/11 > 20): every counter
  full: { ts: T0 + 2, prediction: 250, target: -11, x: 2, c: 'b' },
  // 9 counters, the prediction's and the target's distributions, the error sketch, 2 features
  countL1: 9 + 1 + 1 + 1 + 2
}

const CLASSES = ['cat', 'dog', 'bird']
const probabilities = fc.oneof(
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })).map(([a, b]) => {
    const p0 = a; const p1 = (1 - a) * b
    return { cat: p0, dog: p1, bird: Math.max(0, 1 - p0 - p1) }
  }),
  fc.constantFrom<unknown>(null, { cat: 'n/a', dog: 0.5, bird: 0.5 }, { cat: 0.9, dog: 0.9, bird: 0.9 }, { cat: 1.5, dog: 0, bird: 0 })
)
const multiclass: Case = {
  name: 'multiclass',
  spec: parseMonitorSpec({
    model: 'dp-animals',
    task: 'multiclass',
    classes: CLASSES,
    scores: { column: 'scores' },
    score: { bins: 10, sums: { precisionBits: 6 } },
    calibration: { bins: 5 },
    features: { x: { type: 'numeric', edges: [-1, 0, 1], moments: { clip: [-3, 3], precisionBits: 4 } } },
    limits: { maxRecordsPerAgent: 10_000 },
    privacy: { dp: DP }
  }),
  record: fc.record({ ts, scores: probabilities, label: fc.constantFrom<unknown>('cat', 'dog', 'bird', null, 'fish'), x }, { requiredKeys: ['ts'] }),
  // probabilities that do not sum to 1, labelled with the predicted class (a correct count too): every counter group
  full: { ts: T0 + 2, scores: { cat: 0.7, dog: 0.2, bird: 0.2 }, label: 'cat', x: 0.5 },
  // 6 counters, predicted class, one bin per class (3), confusion, 2 calibration counts, 1 feature
  countL1: 6 + 1 + 3 + 1 + 2 + 1
}

for (const c of [regression, multiclass]) {
  const layout = buildTaskLayout(c.spec)
  const sens = layoutSensitivity(layout)
  const isCount = countEntries(layout)
  const isSum = rawSumEntries(layout)
  const maxTermAt = new Map<number, number>(taskOfLayout(layout).fixedSums(layout).map((fs: FixedSum) => [fs.offset, fs.maxTerm]))

  test(`${c.name}: every sum is one raw entry under privacy.dp, and the stated count L1 is the scan's`, () => {
    assert.equal(sens.limbSums.length, 0, 'no limb groups left')
    assert.ok(sens.sums !== null && sens.sums.groups.length > 0)
    assert.equal([...isSum].filter(v => v === 1).length, maxTermAt.size)
    assert.equal(sens.counts.l1, c.countL1)
  })

  test(`${c.name}: one record moves the counts and the raw sums within the stated bounds (real scan)`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(c.record, { minLength: 0, maxLength: 25 }), c.record, async (base, extra) => {
      const without = await scan(c.spec, layout, base)
      const withIt = await scan(c.spec, layout, [...base, extra])
      let countL1 = 0; let sumL1 = 0; let sumL2 = 0
      for (let i = 0; i < without.length; i++) {
        const d = Math.abs(withIt[i] - without[i])
        if (isSum[i] === 1) {
          assert.ok(d <= (maxTermAt.get(i) ?? 0), `sum entry ${i} moved by ${d} > its maxTerm ${maxTermAt.get(i)} for ${JSON.stringify(extra)}`)
          sumL1 += d; sumL2 += d * d
        } else {
          assert.equal(isCount[i], 1)
          assert.ok(d <= 1, `count entry ${i} changed by ${d} for ${JSON.stringify(extra)}`)
          countL1 += d
        }
      }
      assert.ok(countL1 <= sens.counts.l1, `count L1 ${countL1} > ${sens.counts.l1} for ${JSON.stringify(extra)}`)
      assert.ok(sumL1 <= (sens.sums?.sensitivity.l1 ?? 0), `sums L1 ${sumL1} > ${sens.sums?.sensitivity.l1}`)
      assert.ok(Math.sqrt(sumL2) <= (sens.sums?.sensitivity.l2 ?? 0) + 1e-9, `sums L2 ${Math.sqrt(sumL2)} > ${sens.sums?.sensitivity.l2}`)
    }), { numRuns: 20 })
  })

  test(`${c.name}: the count bound is reached by a valid record, the window's first`, async () => {
    const outside = [{ ...c.full, ts: T0 - 5 }]
    const without = await scan(c.spec, layout, outside)
    const withIt = await scan(c.spec, layout, [...outside, c.full])
    let l1 = 0
    for (let i = 0; i < without.length; i++) if (isCount[i] === 1) l1 += Math.abs(withIt[i] - without[i])
    assert.equal(l1, sens.counts.l1)
  })
}
