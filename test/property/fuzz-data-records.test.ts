/**
 * Fuzzing the agent's scan with generated record mixes (issue 6): random mixes of good and bad records, written
 * as real JSONL and CSV files and scanned by the real DuckDB `scanWindow`. Every record lands in exactly one
 * data-quality class and the counts equal an independent model of the rules (agent/scan-sql.ts), so nothing is
 * silently dropped; odd strings (emoji, RTL, quotes, backslashes, NUL, SQL-looking text) are data, never SQL.
 * Records without a usable ts are only in the scan's local figure, never in the vector (the window rule of
 * shared/stats/layout.ts): the vector of a mix equals the vector of its in-window records alone. A UTF-8 BOM
 * in front of a file changes nothing.
 * Each run batches many records into one file because every scan starts a DuckDB instance.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { scanWindowDetailed, type ScanResult } from '../../agent/scan.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, type CounterName, type Layout } from '../../shared/stats/layout.js'

const T0 = Date.UTC(2025, 11, 1)
const DAY = 86400_000
const WINDOW = { from: T0, to: T0 + DAY }
const ODD = ['é🙂', 'עברית', "'); DROP TABLE w; --", 'quo"te', 'back\\slash', 'nul\u0000byte', 'a,b', 'tab\tinside', '👨‍👩‍👧']
const CATEGORIES = ['a', ...ODD.slice(0, 5)] // a NUL cannot be a category (the spec refuses it); it is data here
const spec = MonitorSpec.parse({
  model: 'fuzz',
  score: { bins: 32 },
  threshold: 0.5,
  features: {
    x: { type: 'numeric' },
    c: { type: 'categorical', categories: CATEGORIES },
    free: { type: 'categorical', categories: ['a'] }
  }
})
const layout = buildLayout(spec)
let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-fuzz-data-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** A field value: how it is written in JSONL (undefined = key absent) and in CSV (a raw cell), and what it means. */
interface Value<C> { json: unknown, csv: string, expect: C, jsonOnly?: boolean }
const ABSENT = Symbol('absent')
const v = <C>(json: unknown, expect: C, csv?: string, jsonOnly = false): Value<C> =>
  ({ json, csv: csv ?? (json === ABSENT || json === null ? '' : csvQuote(typeof json === 'string' ? json : JSON.stringify(json))), expect, jsonOnly })
function csvQuote (s: string): string { return `"${s.replace(/"/g, '""')}"` }

type TsClass = 'in' | 'out' | 'none'
const tsValue: fc.Arbitrary<Value<TsClass>> = fc.oneof(
  fc.integer({ min: 0, max: DAY - 1 }).map(k => v(T0 + k, 'in' as TsClass, String(T0 + k))),
  fc.integer({ min: 0, max: DAY - 1 }).map(k => v(new Date(T0 + k).toISOString(), 'in' as TsClass)),
  fc.integer({ min: 0, max: DAY - 1 }).map(k => v(String(T0 + k), 'in' as TsClass)),
  fc.integer({ min: 1, max: 10 * DAY }).map(k => v(T0 - k, 'out' as TsClass, String(T0 - k))),
  fc.constantFrom<Value<TsClass>>(
    v(1e308, 'out', '1e308'), v(ABSENT, 'none'), v(null, 'none'), v('not a time', 'none'), v('NaN', 'none'),
    v('Infinity', 'none'), v({}, 'none', undefined, true), v([T0], 'none', undefined, true), v(true, 'none', undefined, true))
)

type ScoreClass = 'valid' | 'missing' | 'notNumeric' | 'notFinite' | 'outOfRange'
const scoreValue: fc.Arbitrary<Value<ScoreClass>> = fc.oneof(
  fc.double({ min: 0, max: 1, noNaN: true }).map(s => v(s, 'valid' as ScoreClass, String(s))),
  fc.double({ min: 0, max: 1, noNaN: true }).map(s => v(String(s), 'valid' as ScoreClass)),
  fc.constantFrom<Value<ScoreClass>>(
    v(1.5, 'outOfRange', '1.5'), v(-0.1, 'outOfRange', '-0.1'), v(1e308, 'outOfRange', '1e308'), v(-1e308, 'outOfRange', '-1e308'),
    v('1e308', 'outOfRange'), v('NaN', 'notFinite'), v('Infinity', 'notFinite'), v('-Infinity', 'notFinite'),
    v('abc', 'notNumeric'), v('0,5', 'notNumeric'), v("'); DROP TABLE w; --", 'notNumeric'), v(ABSENT, 'missing'), v(null, 'missing'),
    v(true, 'notNumeric', undefined, true), v({ a: 1 }, 'notNumeric', undefined, true), v([0.5], 'notNumeric', undefined, true),
    v('', 'notNumeric', undefined, true))
)

type LabelClass = 'labelPositive' | 'labelNegative' | 'labelUnlabeled' | 'labelInvalid'
const labelValue: fc.Arbitrary<Value<LabelClass>> = fc.constantFrom<Value<LabelClass>>(
  v(1, 'labelPositive', '1'), v(true, 'labelPositive', 'true'), v('1', 'labelPositive'), v('TRUE', 'labelPositive'),
  v(0, 'labelNegative', '0'), v(false, 'labelNegative', 'false'), v('0', 'labelNegative'), v('false', 'labelNegative'),
  v(null, 'labelUnlabeled'), v(ABSENT, 'labelUnlabeled'), v('', 'labelUnlabeled'),
  v('maybe', 'labelInvalid'), v(2, 'labelInvalid', '2'), v(0.5, 'labelInvalid', '0.5'), v(-1, 'labelInvalid', '-1'),
  v({}, 'labelInvalid', undefined, true), v([1], 'labelInvalid', undefined, true)
)

type XClass = 'value' | 'missing' | 'invalid'
const xValue: fc.Arbitrary<Value<XClass>> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(x => v(x, 'value' as XClass, String(x))),
  fc.constantFrom<Value<XClass>>(
    v('3.5', 'value'), v(1e308, 'value', '1e308'), v(-1e308, 'value', '-1e308'), v(0, 'value', '0'),
    v('n/a', 'invalid'), v('NaN', 'invalid'), v('Infinity', 'invalid'), v(ABSENT, 'missing'), v(null, 'missing'),
    v({}, 'invalid', undefined, true), v(true, 'invalid', undefined, true), v('', 'invalid', undefined, true))
)

/** Categorical `c`: index into CATEGORIES, or 'other' / 'missing'. */
type CatClass = number | 'other' | 'missing'
const cValue: fc.Arbitrary<Value<CatClass>> = fc.oneof(
  fc.integer({ min: 0, max: CATEGORIES.length - 1 }).map(i => v(CATEGORIES[i], i as CatClass)),
  fc.constantFrom(...ODD.slice(5)).map(s => v(s, 'other' as CatClass)),
  fc.constantFrom<Value<CatClass>>(v(ABSENT, 'missing'), v(null, 'missing'), v(5, 'other', '5'), v('b', 'other'), v({ k: 'a' }, 'other', undefined, true))
)

/** Arbitrary unicode text for `free`: only the totals are checked (trimming rules differ between JS and SQL). */
const freeValue: fc.Arbitrary<Value<null>> = fc.string({ unit: 'grapheme', maxLength: 30 }).map(s => v(s, null))

interface Rec { ts: Value<TsClass>, score: Value<ScoreClass>, label: Value<LabelClass>, x: Value<XClass>, c: Value<CatClass>, free: Value<null> }
const record: fc.Arbitrary<Rec> = fc.record({ ts: tsValue, score: scoreValue, label: labelValue, x: xValue, c: cValue, free: freeValue })

function jsonLine (r: Rec): string {
  const o: Record<string, unknown> = {}
  const put = (target: Record<string, unknown>, k: string, val: Value<unknown>): void => { if (val.json !== ABSENT) target[k] = val.json }
  put(o, 'ts', r.ts); put(o, 'score', r.score); put(o, 'label', r.label)
  const features: Record<string, unknown> = {}
  put(features, 'x', r.x); put(features, 'c', r.c); put(features, 'free', r.free)
  o.features = features
  return JSON.stringify(o)
}

/** Broken JSONL lines; each must be counted as a record without a usable ts. */
const badLine = fc.constantFrom('not json', '{"ts": 1764547200000, "sco', '[1, 2, 3]', '42', 'null', '"just a string"', '{{{{', '}', '\u0001\u0002garbage\u007f', '{"ts": }')

interface Expected { counters: Partial<Record<CounterName, number>>, withoutTimestamp: number, x: Record<XClass, number>, c: Map<CatClass, number>, inWindow: number }
function expectedOf (recs: Rec[], badLines: number): Expected {
  const counters: Partial<Record<CounterName, number>> = {}
  const inc = (k: CounterName): void => { counters[k] = (counters[k] ?? 0) + 1 }
  const x: Record<XClass, number> = { value: 0, missing: 0, invalid: 0 }
  const c = new Map<CatClass, number>()
  let withoutTimestamp = badLines
  let inWindow = 0
  for (const r of recs) {
    if (r.ts.expect === 'none') { withoutTimestamp++; continue }
    if (r.ts.expect === 'out') continue
    inWindow++
    inc('recordsInWindow')
    inc(r.label.expect)
    inc(`score${r.score.expect[0].toUpperCase()}${r.score.expect.slice(1)}` as CounterName)
    x[r.x.expect]++
    c.set(r.c.expect, (c.get(r.c.expect) ?? 0) + 1)
    if (r.score.expect === 'valid') {
      const s = Number(r.score.json)
      const predicted = s >= spec.threshold
      if (r.label.expect === 'labelPositive') inc(predicted ? 'tp' : 'fn')
      else if (r.label.expect === 'labelNegative') inc(predicted ? 'fp' : 'tn')
      else if (predicted) inc('predictedPositiveUnlabeled')
    }
  }
  if (inWindow > 0) inc('sitesWithRecords') // the site indicator: 1 when the window holds any record
  return { counters, withoutTimestamp, x, c, inWindow }
}

function featureOf (l: Layout, name: string): Layout['features'][number] {
  const f = l.features.find(g => g.name === name)
  assert.ok(f !== undefined)
  return f
}
const sum = (a: Uint32Array, from: number, n: number): number => { let s = 0; for (let i = from; i < from + n; i++) s += a[i]; return s }

function checkVector (vec: Uint32Array, e: Expected, what: string): void {
  assert.equal(vec.length, layout.length)
  const at = (k: CounterName): number => vec[counterIndex(layout, k)]
  for (const k of layout.counters.names) assert.equal(at(k), e.counters[k] ?? 0, `${what}: counter ${k}`)
  // every record in the window is in exactly one class of each partition
  const n = at('recordsInWindow')
  assert.equal(at('labelNegative') + at('labelPositive') + at('labelUnlabeled') + at('labelInvalid'), n, `${what}: label classes`)
  assert.equal(at('scoreValid') + at('scoreMissing') + at('scoreNotNumeric') + at('scoreNotFinite') + at('scoreOutOfRange'), n, `${what}: score classes`)
  assert.equal(sum(vec, layout.score.offset, 3 * layout.score.bins), at('scoreValid'), `${what}: score histogram`)
  const x = featureOf(layout, 'x')
  assert.ok(x.type === 'numeric')
  assert.equal(vec[x.offset + x.missingIndex], e.x.missing, `${what}: x missing`)
  assert.equal(vec[x.offset + x.invalidIndex], e.x.invalid, `${what}: x invalid`)
  assert.equal(sum(vec, x.offset, x.valueBuckets), e.x.value, `${what}: x values`)
  const c = featureOf(layout, 'c')
  assert.ok(c.type === 'categorical')
  CATEGORIES.forEach((_, i) => { assert.equal(vec[c.offset + i], e.c.get(i) ?? 0, `${what}: c category ${JSON.stringify(CATEGORIES[i])}`) })
  assert.equal(vec[c.offset + c.otherIndex], e.c.get('other') ?? 0, `${what}: c other`)
  assert.equal(vec[c.offset + c.missingIndex], e.c.get('missing') ?? 0, `${what}: c missing`)
  const free = featureOf(layout, 'free')
  assert.equal(sum(vec, free.offset, free.length), n, `${what}: free buckets`)
}

let runId = 0
const BOM = '\uFEFF'
const scanFile = async (file: string, text: string): Promise<ScanResult> => {
  writeFileSync(file, text)
  return await scanWindowDetailed({ spec, layout, source: { path: file }, window: WINDOW })
}

test('JSONL: random mixes of good, bad and malformed records are each counted in exactly one class', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(record, { minLength: 1, maxLength: 250 }),
    fc.array(fc.tuple(fc.nat(), badLine), { maxLength: 6 }),
    async (recs, bad) => {
      const lines = recs.map(jsonLine)
      for (const [pos, line] of bad) lines.splice(pos % (lines.length + 1), 0, line)
      const file = join(dir, `mix ${runId++} 'q".jsonl`)
      const { vector, local } = await scanFile(file, lines.join('\n') + '\n')
      const e = expectedOf(recs, bad.length)
      checkVector(vector, e, file)
      assert.equal(local.recordsWithoutTimestamp, e.withoutTimestamp, `${file}: local count of records without ts`)
    }), { numRuns: 30, includeErrorInReport: true })
})

test('JSONL: the vector depends only on the window\'s records; a UTF-8 BOM changes nothing', async () => {
  // v1 summed the undated count, the same in every window, so differencing two disjoint rounds revealed it.
  await fc.assert(fc.asyncProperty(
    fc.array(record, { minLength: 1, maxLength: 120 }),
    fc.array(fc.tuple(fc.nat(), badLine), { maxLength: 4 }),
    async (recs, bad) => {
      const lines = recs.map(jsonLine)
      for (const [pos, line] of bad) lines.splice(pos % (lines.length + 1), 0, line)
      const text = lines.join('\n') + '\n'
      const mix = await scanFile(join(dir, `iso ${runId++}.jsonl`), text)
      const inWindowOnly = recs.filter(r => r.ts.expect === 'in').map(jsonLine)
      const alone = await scanFile(join(dir, `iso ${runId++}.jsonl`), inWindowOnly.length > 0 ? inWindowOnly.join('\n') + '\n' : '')
      assert.deepEqual(Array.from(mix.vector), Array.from(alone.vector), 'out-of-window, undated and malformed lines leave every entry unchanged')
      assert.equal(alone.local.recordsWithoutTimestamp, 0)
      const bom = await scanFile(join(dir, `iso ${runId++} bom.jsonl`), BOM + text)
      assert.deepEqual(Array.from(bom.vector), Array.from(mix.vector), 'BOM: same vector')
      assert.equal(bom.local.recordsWithoutTimestamp, mix.local.recordsWithoutTimestamp, 'BOM: same local count')
    }), { numRuns: 15, includeErrorInReport: true })
})

test('CSV: random mixes incl. short rows, extra columns and quoted commas are each counted in exactly one class', async () => {
  const csvRecord = record.filter(r => [r.ts, r.score, r.label, r.x, r.c].every(val => val.jsonOnly !== true))
  await fc.assert(fc.asyncProperty(
    fc.array(fc.tuple(csvRecord, fc.constantFrom('exact', 'short', 'extra')), { minLength: 1, maxLength: 250 }),
    async (rows) => {
      const header = 'ts,score,label,x,c,free'
      const lines = rows.map(([r, shape]) => {
        const cells = [r.ts.csv, r.score.csv, r.label.csv, r.x.csv, r.c.csv, csvQuote(String(r.free.json))]
        // a short row ends after `c`: its `free` is missing; an extra row carries two unnamed cells
        if (shape === 'short') return cells.slice(0, 5).join(',')
        if (shape === 'extra') return [...cells, 'x,y', '"z,w"'].join(',')
        return cells.join(',')
      })
      const text = header + '\n' + lines.join('\n') + '\n'
      const file = join(dir, `mix ${runId++}.csv`)
      const { vector, local } = await scanFile(file, text)
      const e = expectedOf(rows.map(([r]) => r), 0)
      checkVector(vector, e, file)
      assert.equal(local.recordsWithoutTimestamp, e.withoutTimestamp, `${file}: local count of records without ts`)
      const bom = await scanFile(join(dir, `mix ${runId++} bom.csv`), BOM + text)
      assert.deepEqual(Array.from(bom.vector), Array.from(vector), 'BOM: same vector')
      assert.equal(bom.local.recordsWithoutTimestamp, local.recordsWithoutTimestamp, 'BOM: same local count')
    }), { numRuns: 25, includeErrorInReport: true })
})

test('CSV: a malformed row (unterminated quote) among random rows is one record without ts; every other row reads as in the intact file', async () => {
  const csvRecord = record.filter(r => [r.ts, r.score, r.label, r.x, r.c].every(val => val.jsonOnly !== true))
  const broken = fc.constantFrom(`${T0 + 5},0.5,"1,a`, `"${T0 + 6},0.5,1,a`, `${T0 + 7},0.5,1,a,"free`)
  await fc.assert(fc.asyncProperty(
    fc.array(fc.tuple(csvRecord, fc.constantFrom('exact', 'short', 'extra')), { minLength: 1, maxLength: 120 }), fc.nat(), broken,
    async (rows, pos, bad) => {
      const lines = rows.map(([r, shape]) => {
        const cells = [r.ts.csv, r.score.csv, r.label.csv, r.x.csv, r.c.csv, csvQuote(String(r.free.json))]
        if (shape === 'short') return cells.slice(0, 5).join(',')
        if (shape === 'extra') return [...cells, 'x,y', '"z,w"'].join(',')
        return cells.join(',')
      })
      const intact = await scanFile(join(dir, `intact ${runId++}.csv`), 'ts,score,label,x,c,free\n' + lines.join('\n') + '\n')
      lines.splice(pos % (lines.length + 1), 0, bad)
      const mixed = await scanFile(join(dir, `broken ${runId++}.csv`), 'ts,score,label,x,c,free\n' + lines.join('\n') + '\n')
      assert.deepEqual(Array.from(mixed.vector), Array.from(intact.vector), 'the good rows read as in the intact file')
      assert.equal(mixed.local.recordsWithoutTimestamp, intact.local.recordsWithoutTimestamp + 1)
      assert.equal(mixed.local.malformedRows, 1)
    }), { numRuns: 15, includeErrorInReport: true })
})
