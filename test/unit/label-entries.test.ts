/**
 * The label-dependent sub-layout (shared/stats/label-entries.ts) on the real scan: the same prediction records
 * scanned with none, some and all of their labels (joined by id, cut at different instants) differ only inside
 * the sub-layout — every other entry is label-independent and a refresh round never sums it again.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex } from '../../shared/stats/layout.js'
import { labelDependentEntries, mergeEntries, projectEntries } from '../../shared/stats/label-entries.js'
import { mulberry32 } from '../../shared/prng.js'

const T0 = Date.UTC(2026, 0, 5)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-label-entries-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

for (const [name, specInput] of [
  ['legacy sums', { model: 'm', score: { bins: 16 }, features: { age: { type: 'numeric', edges: [30, 50] }, region: { type: 'categorical', categories: ['n', 's'] } } }],
  ['clipped sums', { model: 'm', score: { bins: 16, sums: { precisionBits: 12 } }, features: { age: { type: 'numeric', edges: [30, 50], moments: { clip: [0, 100], precisionBits: 8 } } } }],
  ['no sums', { model: 'm', score: { bins: 16, sums: false }, features: { age: { type: 'numeric', edges: [30, 50], moments: false } } }]
] as const) {
  test(`labels change only the label-dependent entries (${name})`, async () => {
    const spec = MonitorSpec.parse(specInput)
    const layout = buildLayout(spec)
    const sub = labelDependentEntries(layout)
    const inSub = new Set(sub)
    // the sub-layout holds what it says: label classes and confusion, the whole histogram, calibration counts
    for (const c of ['labelPositive', 'labelUnlabeled', 'tp', 'predictedPositiveUnlabeled'] as const) assert.ok(inSub.has(counterIndex(layout, c)), c)
    for (const c of ['recordsInWindow', 'scoreValid', 'scoreMissing'] as const) assert.ok(!inSub.has(counterIndex(layout, c)), c)

    const rand = mulberry32(name.length)
    const preds: string[] = []
    const labels: string[] = []
    for (let i = 0; i < 400; i++) {
      const score = rand()
      preds.push(JSON.stringify({ id: `p${i}`, ts: T0 + Math.floor(rand() * DAY), score, features: { age: Math.floor(rand() * 90), region: rand() < 0.5 ? 'n' : 's' } }))
      if (rand() < 0.8) labels.push(JSON.stringify({ id: `p${i}`, label: rand() < score ? 1 : 0, ts: T0 + DAY + Math.floor(rand() * 30 * DAY) }))
    }
    const path = join(dir, `${name}.jsonl`)
    const labelPath = join(dir, `${name}-labels.jsonl`)
    writeFileSync(path, preds.join('\n') + '\n')
    writeFileSync(labelPath, labels.join('\n') + '\n')
    const scan = async (cutoff?: number): Promise<Uint32Array> => (await scanWindowDetailed({ spec, layout, source: { path, labels: { path: labelPath } }, window: WINDOW, ...(cutoff !== undefined ? { labelCutoff: cutoff } : {}) })).vector
    const none = await scan(WINDOW.to) // no label had arrived at the window's end
    const some = await scan(WINDOW.to + 7 * DAY)
    const all = await scan()
    assert.ok(none[counterIndex(layout, 'labelUnlabeled')] === 400)
    assert.ok(some[counterIndex(layout, 'labelUnlabeled')] < 400 && some[counterIndex(layout, 'labelUnlabeled')] > all[counterIndex(layout, 'labelUnlabeled')])
    let changedInside = 0
    for (const other of [some, all]) {
      for (let j = 0; j < layout.length; j++) {
        if (!inSub.has(j)) assert.equal(other[j], none[j], `entry ${j} is outside the sub-layout but changed with the labels`)
        else if (other[j] !== none[j]) changedInside++
      }
      // a refresh's sub-vector merged into the first scan rebuilds the later scan exactly
      assert.deepEqual(mergeEntries(none, sub, projectEntries(other, sub)), other)
    }
    assert.ok(changedInside > 20)
  })
}
