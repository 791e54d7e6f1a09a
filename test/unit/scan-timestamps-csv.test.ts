/**
 * Issue 14, data side: epoch timestamps in any unit, naive ISO read as UTC, one malformed CSV row counted as a
 * bad record (never a refused file), and a scan that fails turned into a decline reason that names the file
 * and the kind of problem. Real files, the real DuckDB scan.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { DuckDBInstance } from '@duckdb/node-api'
import { columnNamesFor, scanWindowDetailed, type ScanResult } from '../../agent/scan.js'
import { checkWindowData, scanFailureReason } from '../../agent/data-check.js'
import { sqlString } from '../../agent/scan-sql.js'
import { DataSource } from '../../shared/stats/data-source.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex } from '../../shared/stats/layout.js'

const HOUR = 3_600_000
const T = Date.UTC(2026, 3, 1) // 2026-04-01T00:00:00Z
const WINDOW = { from: T, to: T + HOUR }
const spec = parseMonitorSpec({ model: 'm', score: { bins: 10 }, features: { c: { type: 'categorical', categories: ['a', 'b'] } } })
const layout = buildLayout(spec)
let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-scan-ts-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

const inWindow = (r: ScanResult): number => r.vector[counterIndex(layout, 'recordsInWindow')]
const scan = async (source: DataSource): Promise<ScanResult> => await scanWindowDetailed({ spec, layout, source, window: WINDOW })
function file (name: string, text: string | Buffer): string {
  const f = join(dir, name)
  writeFileSync(f, text)
  return f
}
/** 20 records a minute apart from T, with ts written by `ts(ms)`. */
const csvRows = (ts: (ms: number) => string, n = 20): string[] => Array.from({ length: n }, (_, i) => `${ts(T + i * 60_000)},0.${i % 10},${i % 2},${i % 2 === 0 ? 'a' : 'b'}`)
const problemOf = (source: DataSource, r: ScanResult): string | null => checkWindowData({
  layout, vector: r.vector, recordsWithoutTimestamp: r.local.recordsWithoutTimestamp, timestamps: r.local.timestamps, tsUnit: source.columns?.tsUnit ?? 'auto',
  columns: columnNamesFor(spec, source), maxBadFraction: 0.05
}).problem

test('epoch seconds, milliseconds, microseconds and nanoseconds are detected by magnitude (tsUnit auto, the default)', async () => {
  const units: Array<[string, (ms: number) => string]> = [
    ['s', ms => String(ms / 1000)], ['ms', ms => String(ms)], ['us', ms => `${ms}000`], ['ns', ms => `${ms}000000`], ['s', ms => (ms / 1000 + 0.25).toFixed(2)]
  ]
  for (const [k, [unit, write]] of units.entries()) {
    const csv = await scan({ path: file(`${unit}-${k}.csv`, ['ts,score,label,c', ...csvRows(write)].join('\n') + '\n') })
    assert.equal(inWindow(csv), 20, `CSV, epoch ${unit}`)
    assert.deepEqual(csv.local.tsUnits, { [unit]: 20 }, `CSV, epoch ${unit}: the unit read is reported`)
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ ts: Number(write(T + i * 60_000)), score: 0.5, label: 1 }))
    const jsonl = await scan({ path: file(`${unit}-${k}.jsonl`, lines.join('\n') + '\n') })
    assert.equal(inWindow(jsonl), 20, `JSONL, epoch ${unit}`)
  }
  // Parquet with an integer column of epoch seconds
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  const pq = join(dir, 'seconds.parquet')
  await conn.run(`COPY (SELECT CAST(${T / 1000} + i * 60 AS BIGINT) AS ts, 0.5 AS score, 1 AS label FROM range(20) t(i)) TO ${sqlString(pq)} (FORMAT parquet)`)
  conn.closeSync(); db.closeSync()
  assert.equal(inWindow(await scan({ path: pq })), 20, 'Parquet BIGINT epoch seconds')
})

test('an explicit tsUnit is obeyed; the wrong one leaves the window empty and the reason names the likely cause, never a value', async () => {
  const seconds = file('explicit-s.csv', ['ts,score,label,c', ...csvRows(ms => String(ms / 1000))].join('\n') + '\n')
  assert.equal(inWindow(await scan({ path: seconds, columns: { tsUnit: 's' } })), 20)
  const wrong = { path: seconds, columns: { tsUnit: 'ms' as const } }
  const r = await scan(wrong)
  assert.equal(inWindow(r), 0)
  const problem = problemOf(wrong, r)
  assert.match(problem ?? '', /column `ts`: timestamps look like epoch seconds read as milliseconds.*data\.columns\.tsUnit/)
  assert.ok(!/\d{6,}/.test(problem ?? ''), `no data value in the reason: ${problem}`)
  // milliseconds declared as seconds land far in the future
  const millis = file('explicit-ms.csv', ['ts,score,label,c', ...csvRows(ms => String(ms))].join('\n') + '\n')
  const r2 = await scan({ path: millis, columns: { tsUnit: 's' } })
  assert.match(problemOf({ path: millis, columns: { tsUnit: 's' } }, r2) ?? '', /timestamps look like epoch milliseconds read as seconds/)
  // records elsewhere in time with the right unit: not a data problem (policy.minRecords speaks)
  const r3 = await scanWindowDetailed({ spec, layout, source: { path: millis }, window: { from: T + 10 * HOUR, to: T + 11 * HOUR } })
  assert.equal(checkWindowData({ layout, vector: r3.vector, recordsWithoutTimestamp: 0, timestamps: r3.local.timestamps, tsUnit: 'auto', columns: columnNamesFor(spec, { path: millis }), maxBadFraction: 0.05 }).problem, null)
  assert.throws(() => DataSource.parse({ path: 'x.csv', columns: { tsUnit: 'minutes' } }), /tsUnit/)
})

test('naive ISO timestamps (no offset) are read as UTC, in CSV, JSONL and Parquet; offsets are honoured', async () => {
  const iso = (ms: number): string => new Date(ms).toISOString().replace('Z', '')
  const space = (ms: number): string => iso(ms).replace('T', ' ')
  // 00:00..00:19 naive: inside [T, T+1h) only if read as UTC (any other zone shifts them by hours)
  assert.equal(inWindow(await scan({ path: file('naive.csv', ['ts,score,label,c', ...csvRows(iso)].join('\n') + '\n') })), 20)
  assert.equal(inWindow(await scan({ path: file('naive-space.csv', ['ts,score,label,c', ...csvRows(space)].join('\n') + '\n') })), 20)
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ ts: iso(T + i * 60_000), score: 0.5, label: 1 }))
  assert.equal(inWindow(await scan({ path: file('naive.jsonl', lines.join('\n') + '\n') })), 20)
  const offset = (ms: number): string => new Date(ms + 2 * HOUR).toISOString().replace('Z', '+02:00')
  assert.equal(inWindow(await scan({ path: file('offset.csv', ['ts,score,label,c', ...csvRows(offset)].join('\n') + '\n') })), 20)
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  await conn.run("SET TimeZone = 'America/New_York'") // the writer's zone must not matter for a naive TIMESTAMP
  const pq = join(dir, 'naive.parquet')
  await conn.run(`COPY (SELECT TIMESTAMP '2026-04-01 00:00:00' + to_minutes(i) AS ts, 0.5 AS score, 1 AS label FROM range(20) t(i)) TO ${sqlString(pq)} (FORMAT parquet)`)
  conn.closeSync(); db.closeSync()
  assert.equal(inWindow(await scan({ path: pq })), 20)
})

test('one malformed CSV row (unterminated quote, invalid UTF-8) is counted as a bad record; the good rows are read', async () => {
  const good = csvRows(ms => String(ms))
  const cases: Array<[string, Buffer]> = [
    ['unterminated quote', Buffer.from(['ts,score,label,c', ...good.slice(0, 10), `${T + 30_000},0.5,"1,a`, ...good.slice(10)].join('\n') + '\n')],
    ['unterminated quote, CRLF', Buffer.from(['ts,score,label,c', ...good.slice(0, 10), `${T + 30_000},0.5,1,"a`, ...good.slice(10)].join('\r\n') + '\r\n')],
    ['unterminated quote, BOM, gzip', gzipSync(Buffer.from('\uFEFF' + ['"ts",score,label,c', ...good.slice(0, 10), `${T + 30_000},0.5,"1,a`, ...good.slice(10)].join('\n') + '\n'))],
    ['invalid UTF-8', Buffer.concat([Buffer.from(['ts,score,label,c', ...good.slice(0, 10), ''].join('\n')), Buffer.from([0x31, 0x2c, 0xff, 0xfe, 0x0a]), Buffer.from(good.slice(10).join('\n') + '\n')])]
  ]
  for (const [what, bytes] of cases) {
    const r = await scan({ path: file(`${what}.csv${what.includes('gzip') ? '.gz' : ''}`, bytes) })
    assert.equal(inWindow(r), 20, `${what}: every good row counted`)
    assert.equal(r.local.recordsWithoutTimestamp, 1, `${what}: the bad row is a record without a usable ts`)
    assert.equal(r.local.malformedRows, 1, `${what}: and counted as malformed`)
    const c = layout.features[0]
    assert.equal(r.vector[c.offset] + r.vector[c.offset + 1], 20, `${what}: the fields of good rows read as before`)
  }
  // quoted fields (commas, doubled quotes, empty) in the robust reading mean what they mean in the strict one
  const quoted = ['ts,score,label,c', `${T},"0.5",1,"a"`, `${T + 1},0.5,"1",""`, `${T + 2},0.5,0,"b,""x"""`, `${T + 3},,0,`]
  const strict = await scan({ path: file('quoted.csv', quoted.join('\n') + '\n') })
  const robust = await scan({ path: file('quoted-broken.csv', [...quoted, `${T + 4},0.5,"0,b`].join('\n') + '\n') })
  assert.equal(robust.local.malformedRows, 1)
  assert.deepEqual(Array.from(robust.vector), Array.from(strict.vector))
})

test('a scan failure becomes a decline reason naming the file and the kind of problem, never DuckDB\'s text', async () => {
  const garbage = file('garbage.parquet', 'PAR1 this is no parquet file, secret=42 PAR1')
  const err = await scan({ path: garbage }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof Error)
  const reason = scanFailureReason(err, { path: garbage })
  assert.match(reason, /garbage\.parquet/)
  assert.match(reason, /cannot be read as Parquet/)
  assert.ok(!reason.includes('secret') && !reason.includes(err.message), reason)
  const none = scanFailureReason(await scan({ path: join(dir, 'nothing-*.csv') }).then(() => null, (e: unknown) => e), { path: join(dir, 'nothing-*.csv') })
  assert.match(none, /no data file matches .*nothing-\*\.csv/)
})
