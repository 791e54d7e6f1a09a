/**
 * Robustness of the agent's scan against damaged and odd files (issue 6): truncated and corrupted Parquet,
 * non-finite and huge values, invalid UTF-8, very long and deeply nested lines, unterminated CSV quotes, file
 * names with spaces and quotes. Each file is either scanned with every record counted, or refused with a
 * FedmonError naming it — never a crash, a hang or another exception type.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindow, scanWindowDetailed, type ScanResult } from '../../agent/scan.js'
import { sqlString } from '../../agent/scan-sql.js'
import { FedmonError } from '../../shared/errors.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, type CounterName } from '../../shared/stats/layout.js'

const WINDOW = { from: 0, to: 1e15 }
const spec = MonitorSpec.parse({ model: 'robust', score: { bins: 16 }, features: { x: { type: 'numeric' }, c: { type: 'categorical', categories: ['a'] } } })
const layout = buildLayout(spec)
let dir: string
let parquet: Buffer
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-scan-robust-'))
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  for (const [name, codec] of [['snappy.parquet', 'snappy'], ['plain.parquet', 'uncompressed']]) {
    await conn.run(`COPY (SELECT 1000 + i AS ts,
        CASE WHEN i % 7 = 0 THEN 'NaN'::DOUBLE WHEN i % 11 = 0 THEN 'inf'::DOUBLE WHEN i % 13 = 0 THEN 1e308 ELSE i / 3000.0 END AS score,
        i % 2 AS label, CASE WHEN i % 5 = 0 THEN 1e308 WHEN i % 17 = 0 THEN '-inf'::DOUBLE ELSE i END AS x,
        CASE WHEN i % 3 = 0 THEN 'a' ELSE '''); DROP TABLE w; --' END AS c
      FROM range(3000) t(i)) TO ${sqlString(join(dir, name))} (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE 500)`)
  }
  conn.closeSync(); db.closeSync()
  parquet = readFileSync(join(dir, 'plain.parquet'))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

const at = (v: Uint32Array, k: CounterName): number => v[counterIndex(layout, k)]
const scan = async (path: string): Promise<Uint32Array> => await scanWindow({ spec, layout, source: { path }, window: WINDOW })

/** Resolves to a consistent vector (with the local figures), or rejects with a FedmonError naming `file`. */
async function countedOrRefused (file: string): Promise<ScanResult | FedmonError> {
  try {
    const r = await scanWindowDetailed({ spec, layout, source: { path: file }, window: WINDOW })
    const v = r.vector
    assert.equal(v.length, layout.length)
    const n = at(v, 'recordsInWindow')
    assert.equal(at(v, 'labelNegative') + at(v, 'labelPositive') + at(v, 'labelUnlabeled') + at(v, 'labelInvalid'), n)
    assert.equal(at(v, 'scoreValid') + at(v, 'scoreMissing') + at(v, 'scoreNotNumeric') + at(v, 'scoreNotFinite') + at(v, 'scoreOutOfRange'), n)
    return r
  } catch (err) {
    assert.ok(err instanceof FedmonError, `expected a FedmonError, got ${String(err)}`)
    assert.ok(err.message.includes(file), `the error names the file: ${err.message}`)
    assert.ok(!err.message.includes('\n'), 'one line')
    return err
  }
}

test('Parquet with NaN, ±inf and 1e308: every row counted in its class', async () => {
  for (const name of ['snappy.parquet', 'plain.parquet']) {
    const v = await scan(join(dir, name))
    const range = Array.from({ length: 3000 }, (_, i) => i)
    const notFinite = range.filter(i => i % 7 === 0 || i % 11 === 0).length
    const outOfRange = range.filter(i => !(i % 7 === 0 || i % 11 === 0) && i % 13 === 0).length
    assert.deepEqual([at(v, 'recordsInWindow'), at(v, 'scoreNotFinite'), at(v, 'scoreOutOfRange'), at(v, 'scoreValid')], [3000, notFinite, outOfRange, 3000 - notFinite - outOfRange])
    const x = layout.features.find(f => f.name === 'x')
    const c = layout.features.find(f => f.name === 'c')
    assert.ok(x?.type === 'numeric' && c?.type === 'categorical')
    assert.equal(v[x.offset + x.invalidIndex], range.filter(i => i % 5 !== 0 && i % 17 === 0).length, '-inf is invalid')
    assert.equal(v[c.offset], 1000, 'category a')
    assert.equal(v[c.offset + c.otherIndex], 2000, 'the SQL-looking category is data')
  }
})

test('truncated and corrupted Parquet: refused with a FedmonError naming the file, or counted', async () => {
  let refused = 0
  const cuts = [0, 4, 8, 100, parquet.length >> 1, parquet.length - 9, parquet.length - 1]
  for (const cut of cuts) {
    const file = join(dir, `trunc ${cut}.parquet`)
    writeFileSync(file, parquet.subarray(0, cut))
    if (await countedOrRefused(file) instanceof FedmonError) refused++
  }
  assert.equal(refused, cuts.length, 'a truncated Parquet file has no footer: always refused')
  let seed = 7
  const rand = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32 }
  for (let k = 0; k < 16; k++) {
    const b = Buffer.from(parquet)
    for (let j = 0; j < 1 + (k % 4) * 3; j++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256)
    const file = join(dir, `corrupt ${k}.parquet`)
    writeFileSync(file, b)
    await countedOrRefused(file)
  }
  const garbage = join(dir, 'garbage.parquet')
  writeFileSync(garbage, 'PAR1 not parquet at all PAR1')
  assert.ok(await countedOrRefused(garbage) instanceof FedmonError)
})

test('JSONL: invalid UTF-8, very long and deeply nested lines are counted, never fatal', async () => {
  const ok = (ts: number): string => JSON.stringify({ ts, score: 0.5, label: 1, features: { c: 'a' } })
  const utf8 = join(dir, 'bad utf8.jsonl')
  writeFileSync(utf8, Buffer.concat([Buffer.from(ok(1) + '\n'), Buffer.from([0x7b, 0x22, 0x74, 0x73, 0x22, 0x3a, 0x32, 0x2c, 0x22, 0x63, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d, 0x0a, 0xff, 0x00, 0x0a]), Buffer.from(ok(3) + '\n')]))
  const u = await countedOrRefused(utf8)
  assert.ok(!(u instanceof FedmonError))
  assert.equal(at(u.vector, 'recordsInWindow') + u.local.recordsWithoutTimestamp, 4)
  assert.ok(at(u.vector, 'recordsInWindow') >= 2)

  let deep: unknown = 1
  for (let i = 0; i < 300; i++) deep = [deep]
  const long = join(dir, 'long "lines".jsonl')
  writeFileSync(long, [ok(1), JSON.stringify({ ts: 2, score: 0.5, label: 1, features: { c: 'z'.repeat(2_000_000), x: deep } }), ok(3)].join('\n') + '\n')
  const l = await countedOrRefused(long)
  assert.ok(!(l instanceof FedmonError))
  assert.equal(at(l.vector, 'recordsInWindow') + l.local.recordsWithoutTimestamp, 3)
})

test('CSV: a row with an unterminated quote or invalid UTF-8 is one malformed record, the others are read; empty and header-only files count nothing', async () => {
  const quote = join(dir, "it's broken.csv")
  writeFileSync(quote, 'ts,score,label,c\n1,0.5,1,"unterminated\n2,0.5,1,a\n')
  const q = await countedOrRefused(quote)
  assert.ok(!(q instanceof FedmonError), String(q))
  assert.deepEqual([at(q.vector, 'recordsInWindow'), q.local.recordsWithoutTimestamp, q.local.malformedRows], [1, 1, 1])
  const bytes = join(dir, 'bytes.csv')
  writeFileSync(bytes, Buffer.concat([Buffer.from('ts,score,label,c\n1,0.5,1,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n2,0.5,1,a\n')]))
  await countedOrRefused(bytes)
  for (const [name, text] of [['empty.csv', ''], ['header only.csv', 'ts,score,label,c\n'], ['empty.jsonl', ''], ['blank lines.jsonl', '\n\n\n']]) {
    writeFileSync(join(dir, name), text)
    const r = await countedOrRefused(join(dir, name))
    if (!(r instanceof FedmonError)) assert.equal(at(r.vector, 'recordsInWindow') + r.local.recordsWithoutTimestamp, 0, name)
  }
})

test('file names with spaces, quotes, unicode and glob characters are read, never spliced into SQL', async () => {
  const line = JSON.stringify({ ts: 1, score: 0.5, label: 1 }) + '\n'
  for (const name of ["it's \"quoted\".jsonl", 'spaces  and é🙂.jsonl', "x'); DROP TABLE w; --.jsonl", 'br[1].jsonl', 'a,b;c.jsonl']) {
    const file = join(dir, name)
    writeFileSync(file, line)
    const v = await countedOrRefused(file)
    assert.ok(!(v instanceof FedmonError), `${name}: ${String(v)}`)
    assert.equal(at(v.vector, 'recordsInWindow'), 1, name)
  }
})

test('a UTF-8 BOM at the start of a file scans exactly like the same file without it (JSONL, gzip JSONL, CSV, TSV)', async () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf])
  const rec = (ts: number, c: string): Record<string, unknown> => ({ ts, score: ts / 10, label: ts % 2, features: { x: ts, c } })
  const lines = [rec(1, 'a'), rec(2, 'b'), rec(3, 'a')].map(r => JSON.stringify(r))
  const cases: Array<{ name: string, text: string, gzip?: boolean }> = [
    { name: 'plain.jsonl', text: lines.join('\n') + '\n' },
    { name: 'torn.jsonl', text: lines.join('\n') + '\n{"ts": 4, "sco' }, // BOM and a malformed line: both readers' fallbacks
    { name: 'first-only.jsonl', text: lines[0] }, // the BOM line is the only record
    { name: 'zipped.jsonl.gz', text: lines.join('\n') + '\n', gzip: true },
    { name: 'table.csv', text: 'ts,score,label,x,c\n1,0.1,1,1,a\n2,0.2,0,2,b\n' },
    { name: 'quoted.csv', text: '"ts","score","label","x","c"\n1,0.1,1,1,a\n' },
    { name: 'table.tsv', text: 'ts\tscore\tlabel\tx\tc\n1\t0.1\t1\t1\ta\n' }
  ]
  const { gzipSync } = await import('node:zlib')
  for (const c of cases) {
    const write = (file: string, bytes: Buffer): void => { writeFileSync(file, c.gzip === true ? gzipSync(bytes) : bytes) }
    write(join(dir, `nobom-${c.name}`), Buffer.from(c.text))
    write(join(dir, `bom-${c.name}`), Buffer.concat([BOM, Buffer.from(c.text)]))
    const plain = await countedOrRefused(join(dir, `nobom-${c.name}`))
    const bom = await countedOrRefused(join(dir, `bom-${c.name}`))
    assert.ok(!(plain instanceof FedmonError) && !(bom instanceof FedmonError), `${c.name}: ${String(plain)} ${String(bom)}`)
    assert.ok(at(plain.vector, 'recordsInWindow') >= 1, c.name)
    assert.deepEqual(Array.from(bom.vector), Array.from(plain.vector), `${c.name}: same vector`)
    assert.deepEqual(bom.local, plain.local, `${c.name}: same local figures`)
  }
  // a glob mixing files with and without a BOM
  const both = await countedOrRefused(join(dir, '*bom-plain.jsonl'))
  assert.ok(!(both instanceof FedmonError))
  assert.equal(at(both.vector, 'recordsInWindow'), 6)
  assert.equal(both.local.recordsWithoutTimestamp, 0)
})

test('JSONL lines that are JSON but no object ([1], 42, null) count as undated lines, never derail the other records', async () => {
  const file = join(dir, 'non-objects.jsonl')
  writeFileSync(file, ['[1]', JSON.stringify({ ts: 1, score: 0.5, label: 1 }), '42', 'null', '"text"', JSON.stringify({ ts: 2, score: 0.5, label: 0 })].join('\n') + '\n')
  const r = await countedOrRefused(file)
  assert.ok(!(r instanceof FedmonError))
  assert.equal(at(r.vector, 'recordsInWindow'), 2)
  assert.equal(r.local.recordsWithoutTimestamp, 4)
})

test('category and label values are trimmed of ASCII whitespace (spaces, tabs, CR/LF) before matching', async () => {
  const file = join(dir, 'padded.csv')
  writeFileSync(file, 'ts,score,label,c\n1,0.5," 1\t",a\n2,0.5,1," a"\n3,0.5,1,"a\t"\n5,0.5,1," b"\n6,0.5,1,"\u00a0a"\n7,0.5,1," \t"\n')
  const lines = join(dir, 'padded.jsonl') // JSON strings can carry CR, LF, VT and FF
  writeFileSync(lines, [{ c: '\ta \r\n' }, { c: '\u000ba\f' }, { c: 'a' }, { c: '\n' }, { c: '\u00a0a' }].map((r, i) => JSON.stringify({ ts: i, score: 0.5, label: ' true ', features: r })).join('\n') + '\n')
  const c = layout.features.find(f => f.name === 'c')
  assert.ok(c?.type === 'categorical')
  const r = await countedOrRefused(file)
  assert.ok(!(r instanceof FedmonError))
  assert.equal(at(r.vector, 'labelPositive'), 6, '" 1\\t" is the positive label')
  assert.equal(r.vector[c.offset], 3, 'a, " a", "a\\t"')
  assert.equal(r.vector[c.offset + c.otherIndex], 2, '" b", and a no-break space, which is not trimmed')
  assert.equal(r.vector[c.offset + c.missingIndex], 1, 'whitespace only: missing')
  const j = await countedOrRefused(lines)
  assert.ok(!(j instanceof FedmonError))
  assert.equal(at(j.vector, 'labelPositive'), 5, '" true " is the positive label')
  assert.deepEqual([j.vector[c.offset], j.vector[c.offset + c.otherIndex], j.vector[c.offset + c.missingIndex]], [3, 1, 1])
})

test('JSONL strings DuckDB would read as dates ("-Infinity", "2025-12-01", "epoch") get the same class alone as next to numbers', async () => {
  // DuckDB's JSON inference reads a column of only such strings as DATE: a record's class then depended on
  // the other records of the file (found by the window-isolation property: "-Infinity" alone was "not numeric").
  const lines = (score: unknown, x: unknown): string => JSON.stringify({ ts: 5000, score, label: 1, features: { x, c: 'a' } })
  for (const value of ['-Infinity', 'Infinity', '2025-12-01', 'epoch', '12:00:00']) {
    writeFileSync(join(dir, 'dates-alone.jsonl'), lines(value, value) + '\n')
    writeFileSync(join(dir, 'dates-mixed.jsonl'), lines(value, value) + '\n' + JSON.stringify({ ts: 1e308, score: 0.5, label: 0, features: { x: 3, c: 'a' } }) + '\n')
    const alone = await scan(join(dir, 'dates-alone.jsonl'))
    const mixed = await scan(join(dir, 'dates-mixed.jsonl'))
    assert.deepEqual(Array.from(alone), Array.from(mixed), `${value}: the out-of-window record changes nothing`)
    const expected: CounterName = value.endsWith('Infinity') ? 'scoreNotFinite' : 'scoreNotNumeric'
    assert.equal(at(alone, expected), 1, `${value}: ${expected}`)
  }
})
