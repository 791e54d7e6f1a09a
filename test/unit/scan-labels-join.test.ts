/**
 * Labels joined by prediction id (data.labels): the scan against an independent JavaScript model of the join —
 * per id the latest label ts wins (equal ts: the higher label class), a joined label overrides the log's own,
 * predictions without an id keep their own label, labels for ids no prediction has are counted locally only,
 * a label cutoff keeps only labels recorded by then — over JSONL, CSV and Parquet label files, with the window
 * rule intact (labels attach only to the window's predictions).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindowDetailed } from '../../agent/scan.js'
import { sqlString } from '../../agent/scan-sql.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, type CounterName } from '../../shared/stats/layout.js'
import { DataSource } from '../../shared/stats/data-source.js'
import { mulberry32 } from '../../shared/prng.js'

const T0 = Date.UTC(2026, 0, 5)
const DAY = 86_400_000
const WINDOW = { from: T0 + DAY, to: T0 + 2 * DAY }
const spec = MonitorSpec.parse({ model: 'labels', score: { bins: 20 }, threshold: 0.5, limits: { maxRecordsPerAgent: 100_000 } })
const layout = buildLayout(spec)

interface Pred { id?: string | number | null, ts: number, score: number, label?: unknown }
interface LabelRec { id?: string | number | null, label?: unknown, ts?: number | string | null }

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-labels-join-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

// ---- the independent model -------------------------------------------------------------------------------

/** 0 negative, 1 positive, 2 unlabeled, 3 invalid: the spec's rules for positive 1 (0/1/true/false). */
function classOf (v: unknown): 0 | 1 | 2 | 3 {
  if (v === undefined || v === null || v === '') return 2
  if (v === 1 || v === true || v === '1' || v === 'true') return 1
  if (v === 0 || v === false || v === '0' || v === 'false') return 0
  return 3
}
const idText = (id: unknown): string | null => (id === undefined || id === null || String(id).trim() === '' ? null : String(id).trim())
const tsMs = (ts: unknown): number | null => (typeof ts === 'number' ? ts : typeof ts === 'string' && !Number.isNaN(Date.parse(ts)) ? Date.parse(ts) : null)

interface Expected { counters: Partial<Record<CounterName, number>>, labels: { records: number, ids: number, duplicateIds: number, unknownIds: number, joined: number, withoutId: number, withoutLabel: number, afterCutoff: number } }

function model (preds: Pred[], labels: LabelRec[], cutoff?: number): Expected {
  const hasTs = labels.some(l => l.ts !== undefined && l.ts !== null)
  let withoutId = 0; let withoutLabel = 0; let afterCutoff = 0
  const latest = new Map<string, { ts: number, cls: number, n: number }>()
  for (const l of labels) {
    const id = idText(l.id)
    const cls = classOf(l.label)
    if (id === null) { withoutId++; continue }
    if (cls === 2) { withoutLabel++; continue }
    const t = tsMs(l.ts)
    if (cutoff !== undefined && hasTs && (t === null || t > cutoff)) { afterCutoff++; continue }
    const key = t ?? -Infinity
    const cur = latest.get(id)
    if (cur === undefined) latest.set(id, { ts: key, cls, n: 1 })
    else {
      cur.n++
      if (key > cur.ts || (key === cur.ts && cls > cur.cls)) { cur.ts = key; cur.cls = cls }
    }
  }
  const predIds = new Set(preds.map(p => idText(p.id)).filter(x => x !== null))
  const counters: Partial<Record<CounterName, number>> = { recordsInWindow: 0, labelNegative: 0, labelPositive: 0, labelUnlabeled: 0, labelInvalid: 0, tp: 0, fp: 0, tn: 0, fn: 0, predictedPositiveUnlabeled: 0 }
  const inc = (k: CounterName): void => { counters[k] = (counters[k] ?? 0) + 1 }
  let joined = 0
  for (const p of preds) {
    if (!(p.ts >= WINDOW.from && p.ts < WINDOW.to)) continue
    inc('recordsInWindow')
    const id = idText(p.id)
    const j = id !== null ? latest.get(id) : undefined
    if (j !== undefined) joined++
    const cls = j !== undefined ? j.cls : classOf(p.label)
    inc((['labelNegative', 'labelPositive', 'labelUnlabeled', 'labelInvalid'] as const)[cls])
    const predicted = p.score >= spec.threshold
    if (cls === 1) inc(predicted ? 'tp' : 'fn')
    else if (cls === 0) inc(predicted ? 'fp' : 'tn')
    else if (predicted) inc('predictedPositiveUnlabeled') // unlabeled or invalid: no confusion cell
  }
  return {
    counters,
    labels: {
      records: labels.length,
      ids: latest.size,
      duplicateIds: [...latest.values()].filter(v => v.n > 1).length,
      unknownIds: [...latest.keys()].filter(id => !predIds.has(id)).length,
      joined,
      withoutId,
      withoutLabel,
      afterCutoff
    }
  }
}

// ---- data -----------------------------------------------------------------------------------------------

function generate (seed: number): { preds: Pred[], labels: LabelRec[] } {
  const r = mulberry32(seed)
  const preds: Pred[] = []
  for (let i = 0; i < 240; i++) {
    const u = r()
    preds.push({
      // some without an id; ids shared by two predictions now and then
      id: u < 0.1 ? null : `p${Math.floor(r() * 200)}`,
      ts: T0 + Math.floor(r() * 3 * DAY), // three days: labels for other windows' predictions too
      score: Math.round(r() * 1000) / 1000,
      label: r() < 0.5 ? null : r() < 0.5 ? 1 : 0
    })
  }
  const labels: LabelRec[] = []
  const values: unknown[] = [0, 1, 0, 1, 1, 0, 'maybe', null]
  for (let i = 0; i < 260; i++) {
    const u = r()
    labels.push({
      id: u < 0.05 ? null : `p${Math.floor(r() * 260)}`, // ids above 199 match no prediction
      label: values[Math.floor(r() * values.length)],
      // whole hours: equal ts for one id happen, so the tie rule is exercised
      ts: u > 0.97 ? null : T0 + Math.floor(r() * 4 * 24) * 3_600_000
    })
  }
  return { preds, labels }
}

const jsonl = (rs: unknown[]): string => rs.map(x => JSON.stringify(x)).join('\n') + '\n'
const csvCell = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? `"${v.replace(/"/g, '""')}"` : String(v))

async function duck (sql: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  try { await conn.run(sql) } finally { conn.closeSync(); db.closeSync() }
}

/** Writes the label records as `format` under a fresh directory; returns the glob. */
async function writeLabels (name: string, labels: LabelRec[], format: 'jsonl' | 'csv' | 'parquet', cols = { id: 'id', label: 'label', ts: 'ts' }): Promise<string> {
  const d = join(dir, name, 'labels')
  mkdirSync(d, { recursive: true })
  // two files: the scan unites them
  const half = Math.floor(labels.length / 2)
  const parts = [labels.slice(0, half), labels.slice(half)]
  const rename = (l: LabelRec): Record<string, unknown> => ({ [cols.id]: l.id, [cols.label]: l.label, [cols.ts]: l.ts })
  for (const [k, part] of parts.entries()) {
    if (format === 'jsonl') writeFileSync(join(d, `l${k}.jsonl`), jsonl(part.map(rename)))
    else if (format === 'csv') writeFileSync(join(d, `l${k}.csv`), `${cols.id},${cols.label},${cols.ts}\n` + part.map(l => [l.id, l.label, l.ts].map(csvCell).join(',')).join('\n') + '\n')
    else {
      // typed Parquet: id VARCHAR, label as text (it holds 'maybe'), ts BIGINT epoch ms
      const src = join(d, `l${k}.src.jsonl`)
      writeFileSync(src, jsonl(part.map(l => ({ id: l.id ?? null, label: l.label === null || l.label === undefined ? null : String(l.label), ts: l.ts ?? null }))))
      await duck(`COPY (SELECT id AS ${JSON.stringify(cols.id)}, label AS ${JSON.stringify(cols.label)}, ts AS ${JSON.stringify(cols.ts)} FROM read_json(${sqlString(src)}, format = 'newline_delimited', columns = {'id': 'VARCHAR', 'label': 'VARCHAR', 'ts': 'BIGINT'}))
        TO ${sqlString(join(d, `l${k}.parquet`))} (FORMAT parquet)`)
      rmSync(src)
    }
  }
  return join(d, `*.${format}`)
}

function writePreds (name: string, preds: Pred[]): string {
  const d = join(dir, name)
  mkdirSync(d, { recursive: true })
  writeFileSync(join(d, 'preds.jsonl'), jsonl(preds))
  return join(d, 'preds.jsonl')
}

function assertMatches (got: Awaited<ReturnType<typeof scanWindowDetailed>>, want: Expected, what: string): void {
  for (const [k, n] of Object.entries(want.counters)) assert.equal(got.vector[counterIndex(layout, k as CounterName)], n, `${what}: ${k}`)
  const l = got.local.labels
  assert.ok(l !== undefined, `${what}: the scan reports the label source`)
  for (const [k, n] of Object.entries(want.labels)) assert.equal((l as any)[k], n, `${what}: labels.${k}`)
}

// ---- tests ----------------------------------------------------------------------------------------------

for (const format of ['jsonl', 'csv', 'parquet'] as const) {
  test(`join from ${format} label files equals the model (latest ts wins, unknown ids local, own labels kept without id)`, async () => {
    for (const seed of [1, 2, 3]) {
      const { preds, labels } = generate(seed * 10 + format.length)
      const path = writePreds(`${format}-${seed}`, preds)
      const labelPath = await writeLabels(`${format}-${seed}`, labels, format)
      const source: DataSource = { path, labels: { path: labelPath } }
      const want = model(preds, labels)
      assert.ok(want.labels.duplicateIds > 0 && want.labels.unknownIds > 0 && want.labels.joined > 0, 'the fixture exercises duplicates, unknown ids and joins')
      assertMatches(await scanWindowDetailed({ spec, layout, source, window: WINDOW }), want, `${format} seed ${seed}`)
      // the label cutoff (refresh rounds): only labels recorded by then count
      const cutoff = WINDOW.to + 12 * 3_600_000
      const cut = model(preds, labels, cutoff)
      assert.ok(cut.labels.afterCutoff > 0 && cut.labels.joined < want.labels.joined, 'the cutoff drops some labels')
      assertMatches(await scanWindowDetailed({ spec, layout, source, window: WINDOW, labelCutoff: cutoff }), cut, `${format} seed ${seed} cutoff`)
    }
  })
}

test('the precedence: a joined label overrides the log\'s own label; no id or no label record keeps the own label', async () => {
  const preds: Pred[] = [
    { id: 'a', ts: WINDOW.from + 1, score: 0.9, label: 0 }, // joined 1 overrides own 0 → tp
    { id: 'b', ts: WINDOW.from + 2, score: 0.9, label: 1 }, // no label record → own 1 → tp
    { ts: WINDOW.from + 3, score: 0.1, label: 1 }, // no id → own 1 → fn
    { id: 'c', ts: WINDOW.from + 4, score: 0.1 }, // own none, joined 0 → tn
    { id: 7, ts: WINDOW.from + 5, score: 0.9 }, // numeric id matches the text "7" → joined 0 → fp
    { id: 'd', ts: WINDOW.from - 1, score: 0.9, label: 0 } // outside the window: never counted
  ]
  const labels: LabelRec[] = [
    { id: 'a', label: 0, ts: T0 }, { id: 'a', label: 1, ts: T0 + 5 }, // latest wins: 1
    { id: 'c', label: 0, ts: T0 }, { id: '7', label: 0, ts: T0 },
    { id: 'd', label: 1, ts: T0 }, // known id, other window: joins nothing in this one, not unknown
    { id: 'zz', label: 1, ts: T0 } // unknown id
  ]
  const path = writePreds('precedence', preds)
  const source: DataSource = { path, labels: { path: await writeLabels('precedence', labels, 'jsonl') } }
  const got = await scanWindowDetailed({ spec, layout, source, window: WINDOW })
  const c = (k: CounterName): number => got.vector[counterIndex(layout, k)]
  assert.deepEqual({ tp: c('tp'), fn: c('fn'), tn: c('tn'), fp: c('fp'), records: c('recordsInWindow') }, { tp: 2, fn: 1, tn: 1, fp: 1, records: 5 })
  assert.equal(got.local.labels?.unknownIds, 1)
  assert.equal(got.local.labels?.joined, 3)
  assert.deepEqual(got.local.labels && { ...got.local.labels, files: undefined }, { ...model(preds, labels).labels, files: undefined, predictionsWithoutId: 1, cutoffApplied: false })
})

test('renamed label columns and an epoch-seconds label ts; labels for predictions outside the window change nothing', async () => {
  const { preds, labels } = generate(99)
  const path = writePreds('renamed', preds)
  const secs = labels.map(l => ({ ...l, ts: typeof l.ts === 'number' ? l.ts / 1000 : l.ts }))
  const labelPath = await writeLabels('renamed', secs, 'csv', { id: 'prediction_id', label: 'outcome', ts: 'recorded_at' })
  const source: DataSource = { path, labels: { path: labelPath, columns: { id: 'prediction_id', label: 'outcome', ts: 'recorded_at', tsUnit: 's' } } }
  assertMatches(await scanWindowDetailed({ spec, layout, source, window: WINDOW }), model(preds, labels), 'renamed columns')
  // labels only attach to the window's predictions: the same labels with every other window's predictions
  // removed from the logs give the same vector
  const onlyWindow = preds.filter(p => p.ts >= WINDOW.from && p.ts < WINDOW.to)
  const path2 = writePreds('renamed-only', onlyWindow)
  const a = await scanWindowDetailed({ spec, layout, source, window: WINDOW })
  const b = await scanWindowDetailed({ spec, layout, source: { ...source, path: path2 }, window: WINDOW })
  assert.deepEqual([...b.vector], [...a.vector])
})

test('a label source whose glob matches no file yet: no labels joined (late labels), the logs\' own labels count', async () => {
  const { preds } = generate(5)
  const path = writePreds('nolabels', preds)
  const got = await scanWindowDetailed({ spec, layout, source: { path, labels: { path: join(dir, 'nolabels', 'labels', '*.jsonl') } }, window: WINDOW })
  const plain = await scanWindowDetailed({ spec, layout, source: { path }, window: WINDOW })
  assert.deepEqual([...got.vector], [...plain.vector])
  assert.equal(got.local.labels?.files.length, 0)
  assert.equal(got.local.labels?.records, 0)
  assert.equal(plain.local.labels, undefined, 'no label source: no label figures')
})

test('an unreadable label file is an error naming it; data.labels keys are checked strictly', async () => {
  const path = writePreds('badlabels', generate(6).preds)
  mkdirSync(join(dir, 'badlabels', 'labels'), { recursive: true })
  writeFileSync(join(dir, 'badlabels', 'labels', 'x.parquet'), 'not parquet')
  await assert.rejects(scanWindowDetailed({ spec, layout, source: { path, labels: { path: join(dir, 'badlabels', 'labels', '*.parquet') } }, window: WINDOW }),
    (err: any) => err.name === 'ScanError' && err.code === 'ERR_SCAN_LABELS_READ' && /x\.parquet/.test(err.message) && /label/.test(err.reason))
  const typo = DataSource.safeParse({ path: 'x.jsonl', labels: { path: 'l.jsonl', columns: { idd: 'x' } } })
  assert.ok(!typo.success && typo.error.issues.some(i => i.path.join('.') === 'labels.columns' && /idd/.test(i.message)), JSON.stringify(typo.error?.issues))
  const fmt = DataSource.safeParse({ path: 'x.jsonl', labels: { path: 'l.txt', format: 'xml' } })
  assert.ok(!fmt.success && fmt.error.issues.some(i => i.path.join('.') === 'labels.format'))
  await assert.rejects(scanWindowDetailed({ spec, layout, source: { path, labels: { path: join(dir, 'l.txt') } }, window: WINDOW }), (err: any) => err.code === 'ERR_SCAN_FORMAT' && /data\.labels\.format/.test(err.message))
})
