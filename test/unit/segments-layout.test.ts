/**
 * Segments (issue 12 §3), layout and scan: the segmented layout is the overall layout unchanged followed by, per
 * cell, the task's layout plus one site indicator; each cell's slice of a real DuckDB scan equals the task's scan
 * of that cell's records alone (binary and regression); the label-dependent entries are the overall's plus each
 * cell's at its offset; specs without segments keep hash and layout; spec mistakes name the field.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { MonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { buildTaskLayout } from '../../shared/stats/tasks/index.js'
import { labelDependentEntries } from '../../shared/stats/label-entries.js'
import { segmentsOf, cellSlice, cellSpecOf, segmentCellCount } from '../../shared/stats/segments.js'
import { mulberry32 } from '../../shared/prng.js'
import { regressionRecords } from '../fixtures/stats/regression.js'

const T0 = Date.UTC(2026, 2, 2)
const HOUR = 3_600_000
const WINDOW = { from: T0, to: T0 + 10 * HOUR }
const REGIONS = ['north', 'south', 'west']
const BINARY = {
  model: 'seg',
  score: { bins: 16 },
  calibration: { bins: 4 },
  features: { x: { type: 'numeric', edges: [0, 1, 2] }, color: { type: 'categorical', categories: ['red', 'blue'] } },
  segments: [{ column: 'region', values: REGIONS }, { column: 'channel', values: ['web', 'app'], drift: true }]
}

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-segments-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

type Rec = Record<string, unknown>
let n = 0
function write (records: Rec[]): string {
  const path = join(dir, `d${n++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + (records.length > 0 ? '\n' : ''))
  return path
}

function binaryRecords (seed: number, rows: number): Rec[] {
  const rand = mulberry32(seed)
  const out: Rec[] = []
  for (let i = 0; i < rows; i++) {
    const r = rand()
    const region = r < 0.3 ? 'north' : r < 0.55 ? 'south' : r < 0.6 ? ' west ' : r < 0.8 ? 'east' : r < 0.9 ? null : 7 // trimmed, undeclared, missing, a number
    const channel = rand() < 0.5 ? 'web' : rand() < 0.7 ? 'app' : undefined
    const score = rand()
    const rec: Rec = {
      ts: T0 + Math.floor(rand() * 12 * HOUR) - HOUR, // some outside the window
      score: rand() < 0.03 ? 'bad' : score,
      label: rand() < 0.1 ? null : (rand() < score ? 1 : 0),
      features: { x: rand() * 3, color: rand() < 0.5 ? 'red' : 'green' }
    }
    if (region !== null) rec.region = region
    if (channel !== undefined) rec.channel = channel
    out.push(rec)
  }
  return out
}

/** The records a cell holds: its column's value, trimmed, is the cell's value (`other`: none of the declared ones). */
function inCell (r: Rec, column: string, values: string[], value: string): boolean {
  const v = r[column] === undefined || r[column] === null ? null : String(r[column]).trim()
  return value === 'other' ? (v === null || !values.includes(v)) : v === value
}

test('without segments: the same layout and spec hash; with them: overall unchanged, then cells × (task length + 1)', () => {
  const { segments: _s, ...plainDoc } = BINARY
  const plain = MonitorSpec.parse(plainDoc)
  const spec = MonitorSpec.parse(BINARY)
  assert.equal(specHashOf(plain), buildTaskLayout(plain).specHash)
  assert.deepEqual(buildTaskLayout(plain), buildLayout(plain))
  assert.notEqual(specHashOf(spec), specHashOf(plain), 'the hash covers the segments')
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)
  assert.ok(segments !== null)
  const base = buildLayout(plain)
  assert.equal(segments.offset, base.length)
  assert.equal(segments.cells.length, segmentCellCount(spec.segments))
  assert.equal(segments.cells.length, 4 + 3)
  const perf = buildLayout(cellSpecOf(spec, { drift: false })).length
  const withDrift = buildLayout(cellSpecOf(spec, { drift: true })).length
  assert.ok(perf < withDrift && withDrift === base.length)
  assert.equal(layout.length, base.length + 4 * (perf + 1) + 3 * (withDrift + 1))
  assert.deepEqual(segments.cells.map(c => `${c.column}=${c.value}`), ['region=north', 'region=south', 'region=west', 'region=other', 'channel=web', 'channel=app', 'channel=other'])
  // label-dependent: the overall's, then each cell's at its offset; no site indicator among them
  const entries = labelDependentEntries(layout)
  const overall = labelDependentEntries(base)
  assert.deepEqual([...entries.subarray(0, overall.length)], [...overall])
  let k = overall.length
  for (const c of segments.cells) {
    for (const i of labelDependentEntries(c.layout)) assert.equal(entries[k++], c.offset + i)
    assert.ok(!entries.includes(c.sitesIndex))
  }
  assert.equal(k, entries.length)
  assert.ok(entries.every((v, i) => i === 0 || v > entries[i - 1]), 'ascending')
})

test('segment spec mistakes are ConfigErrors naming the field', () => {
  const bad = (segments: unknown, field: RegExp): void => {
    assert.throws(() => parseMonitorSpec({ model: 'm', segments }, 'spec.yaml'), (e: Error) => field.test(e.message) && e.message.includes('spec.yaml'), JSON.stringify(segments))
  }
  bad([{ column: 'region', values: ['a', 'a'] }], /segments\[0\]\.values.*distinct/)
  bad([{ column: 'region', values: [] }], /segments\[0\]\.values/)
  bad([{ column: '', values: ['a'] }], /segments\[0\]\.column/)
  bad([{ column: 'region', values: ['other'] }], /segments\[0\]\.values.*other/)
  bad([{ column: 'region', values: ['a'] }, { column: 'region', values: ['b'] }], /segments.*distinct/)
  bad([], /segments/)
  bad([{ column: 'region', values: ['a'], colour: 1 }], /segments\[0\]/)
  // segments under privacy.dp: the noise covers the cells (test/unit/dp-segments.test.ts); the DP sums rules hold in the cells too
  assert.doesNotThrow(() => parseMonitorSpec({ model: 'm', segments: [{ column: 'r', values: ['a'] }], privacy: { dp: { epsilon: 1, delta: 1e-6 } }, score: { sums: false } }, 'spec.yaml'))
  assert.throws(() => parseMonitorSpec({ model: 'm', privacy: { minCellSites: 0 } }, 'spec.yaml'), /privacy\.minCellSites/)
})

test('binary: each cell\'s slice of the scan equals the scan of the cell\'s records alone (real DuckDB)', async () => {
  const spec = MonitorSpec.parse(BINARY)
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)!
  const records = binaryRecords(11, 3000)
  // the records split over two files, as a site's logs are
  write(records.slice(0, 1500)); write(records.slice(1500))
  const whole = await scanWindowDetailed({ spec, layout, source: { path: join(dir, 'd[01].jsonl') }, window: WINDOW })
  const overall = await scanWindowDetailed({ spec: MonitorSpec.parse({ ...BINARY, segments: undefined }), layout: buildLayout(MonitorSpec.parse({ ...BINARY, segments: undefined })), source: { path: join(dir, 'd[01].jsonl') }, window: WINDOW })
  assert.deepEqual([...whole.vector.subarray(0, segments.offset)], [...overall.vector], 'the overall part is the unsegmented scan')
  let nonEmpty = 0
  for (const c of segments.cells) {
    const values = spec.segments!.find(s => s.column === c.column)!.values
    const mine = records.filter(r => inCell(r, c.column, values, c.value))
    const cellSpec = cellSpecOf(spec, c)
    const alone = await scanWindowDetailed({ spec: cellSpec, layout: buildTaskLayout(cellSpec), source: { path: write(mine) }, window: WINDOW })
    assert.deepEqual([...cellSlice(c, whole.vector)], [...alone.vector], `cell ${c.column}=${c.value}`)
    assert.equal(whole.vector[c.sitesIndex], alone.local.recordsInWindow > 0 ? 1 : 0)
    if (alone.local.recordsInWindow > 0) nonEmpty++
  }
  assert.equal(nonEmpty, segments.cells.length, 'every cell has records in this data')
})

test('a cell without records in the window: zeros and indicator 0', async () => {
  const spec = MonitorSpec.parse(BINARY)
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)!
  const path = write(binaryRecords(3, 200).map(r => ({ ...r, region: 'north', channel: 'web' })))
  const { vector } = await scanWindowDetailed({ spec, layout, source: { path }, window: WINDOW })
  for (const c of segments.cells) {
    const present = (c.column === 'region' && c.value === 'north') || (c.column === 'channel' && c.value === 'web')
    assert.equal(vector[c.sitesIndex], present ? 1 : 0, `${c.column}=${c.value}`)
    if (!present) assert.ok(cellSlice(c, vector).every(x => x === 0))
  }
})

test('regression: a cell\'s slice equals the regression scan of that cell\'s records alone', async () => {
  const doc = {
    model: 'price',
    task: 'regression',
    target: { column: 'target', clip: [-100, 400], precisionBits: 16 },
    features: { x: { type: 'numeric', edges: [2, 4, 6, 8] } },
    segments: [{ column: 'region', values: ['north', 'south'] }, { column: 'tier', values: ['gold'], drift: true }]
  }
  const spec = parseMonitorSpec(doc)
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)!
  const rand = mulberry32(5)
  const records: Rec[] = regressionRecords(9, 2000, WINDOW.from, 9 * HOUR).map(r => ({ ...r, region: rand() < 0.4 ? 'north' : rand() < 0.6 ? 'south' : 'east', tier: rand() < 0.5 ? 'gold' : null }))
  const path = write(records)
  const whole = await scanWindowDetailed({ spec, layout, source: { path }, window: WINDOW })
  for (const c of segments.cells) {
    const values = spec.segments!.find(s => s.column === c.column)!.values
    const cellSpec = cellSpecOf(spec, c)
    const alone = await scanWindowDetailed({ spec: cellSpec, layout: buildTaskLayout(cellSpec), source: { path: write(records.filter(r => inCell(r, c.column, values, c.value))) }, window: WINDOW })
    assert.deepEqual([...cellSlice(c, whole.vector)], [...alone.vector], `cell ${c.column}=${c.value}`)
    assert.equal(whole.vector[c.sitesIndex], 1)
  }
})

test('a segment column named after a feature reads that feature\'s column, with the site\'s mapping', async () => {
  const spec = MonitorSpec.parse({ ...BINARY, segments: [{ column: 'color', values: ['red', 'blue'] }] })
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)!
  // JSONL: the feature is nested (features.color); a CSV site maps it to its own column name
  const records = binaryRecords(11, 300).filter(r => typeof r.score === 'number')
  const nested = await scanWindowDetailed({ spec, layout, source: { path: write(records) }, window: WINDOW })
  const csv = join(dir, `mapped-${n++}.csv`)
  writeFileSync(csv, 'ts,score,label,x,colour\n' + records.map(r => {
    const f = r.features as { x: number, color: string }
    return `${r.ts as number},${r.score as number},${r.label === null ? '' : r.label as number},${f.x},${f.color}`
  }).join('\n') + '\n')
  const mapped = await scanWindowDetailed({ spec, layout, source: { path: csv, columns: { features: { color: 'colour' } } }, window: WINDOW })
  const inWindow = records.filter(r => (r.ts as number) >= WINDOW.from && (r.ts as number) < WINDOW.to)
  for (const c of segments.cells) {
    const count = inWindow.filter(r => ((r.features as { color: string }).color === c.value) || (c.value === 'other' && !['red', 'blue'].includes((r.features as { color: string }).color))).length
    assert.equal(cellSlice(c, nested.vector)[c.layout.counters.offset], count, `nested ${c.value}`)
    assert.deepEqual([...cellSlice(c, mapped.vector)], [...cellSlice(c, nested.vector)], `mapped ${c.value}`)
  }
})

test('scoreBins: a column\'s cells take their own score bins; each cell equals the scan of its records at those bins', async () => {
  const spec = MonitorSpec.parse({ ...BINARY, segments: [{ column: 'region', values: REGIONS, scoreBins: 4 }, { column: 'channel', values: ['web', 'app'] }] })
  const layout = buildTaskLayout(spec)
  const segments = segmentsOf(layout)!
  const coarse = segments.cells.find(c => c.column === 'region')!
  const fine = segments.cells.find(c => c.column === 'channel')!
  assert.ok(coarse.layout.length < fine.layout.length)
  assert.notEqual(specHashOf(spec), specHashOf(MonitorSpec.parse({ ...BINARY, segments: [{ column: 'region', values: REGIONS }, { column: 'channel', values: ['web', 'app'] }] })))
  const records = binaryRecords(21, 800)
  const path = write(records)
  const whole = await scanWindowDetailed({ spec, layout, source: { path }, window: WINDOW })
  for (const c of segments.cells.filter(c => c.column === 'region')) {
    const cellSpec = cellSpecOf(spec, c)
    assert.equal((cellSpec.score as { bins: number }).bins, 4)
    const alone = await scanWindowDetailed({ spec: cellSpec, layout: buildTaskLayout(cellSpec), source: { path: write(records.filter(r => inCell(r, 'region', REGIONS, c.value))) }, window: WINDOW })
    assert.deepEqual([...cellSlice(c, whole.vector)], [...alone.vector], `cell region=${c.value}`)
  }
  assert.throws(() => parseMonitorSpec({ model: 'p', task: 'regression', target: { clip: [0, 1] }, segments: [{ column: 'region', values: ['a'], scoreBins: 8 }] }), /segments\.0\.scoreBins/)
})
