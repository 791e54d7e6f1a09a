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
import { scanWindow } from '../../agent/scan.js'
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

/** Resolves to a consistent vector, or rejects with a FedmonError naming `file`. */
async function countedOrRefused (file: string): Promise<Uint32Array | FedmonError> {
  try {
    const v = await scan(file)
    assert.equal(v.length, layout.length)
    const n = at(v, 'recordsInWindow')
    assert.equal(at(v, 'labelNegative') + at(v, 'labelPositive') + at(v, 'labelUnlabeled') + at(v, 'labelInvalid'), n)
    assert.equal(at(v, 'scoreValid') + at(v, 'scoreMissing') + at(v, 'scoreNotNumeric') + at(v, 'scoreNotFinite') + at(v, 'scoreOutOfRange'), n)
    return v
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
  assert.equal(at(u, 'recordsInWindow') + at(u, 'recordsWithoutTimestamp'), 4)
  assert.ok(at(u, 'recordsInWindow') >= 2)

  let deep: unknown = 1
  for (let i = 0; i < 300; i++) deep = [deep]
  const long = join(dir, 'long "lines".jsonl')
  writeFileSync(long, [ok(1), JSON.stringify({ ts: 2, score: 0.5, label: 1, features: { c: 'z'.repeat(2_000_000), x: deep } }), ok(3)].join('\n') + '\n')
  const l = await countedOrRefused(long)
  assert.ok(!(l instanceof FedmonError))
  assert.equal(at(l, 'recordsInWindow') + at(l, 'recordsWithoutTimestamp'), 3)
})

test('CSV: an unterminated quote or invalid UTF-8 refuses the file by name; empty and header-only files count nothing', async () => {
  const quote = join(dir, "it's broken.csv")
  writeFileSync(quote, 'ts,score,label,c\n1,0.5,1,"unterminated\n2,0.5,1,a\n')
  assert.ok(await countedOrRefused(quote) instanceof FedmonError)
  const bytes = join(dir, 'bytes.csv')
  writeFileSync(bytes, Buffer.concat([Buffer.from('ts,score,label,c\n1,0.5,1,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n2,0.5,1,a\n')]))
  await countedOrRefused(bytes)
  for (const [name, text] of [['empty.csv', ''], ['header only.csv', 'ts,score,label,c\n'], ['empty.jsonl', ''], ['blank lines.jsonl', '\n\n\n']]) {
    writeFileSync(join(dir, name), text)
    const r = await countedOrRefused(join(dir, name))
    if (!(r instanceof FedmonError)) assert.equal(at(r, 'recordsInWindow') + at(r, 'recordsWithoutTimestamp'), 0, name)
  }
})

test('file names with spaces, quotes, unicode and glob characters are read, never spliced into SQL', async () => {
  const line = JSON.stringify({ ts: 1, score: 0.5, label: 1 }) + '\n'
  for (const name of ["it's \"quoted\".jsonl", 'spaces  and é🙂.jsonl', "x'); DROP TABLE w; --.jsonl", 'br[1].jsonl', 'a,b;c.jsonl']) {
    const file = join(dir, name)
    writeFileSync(file, line)
    const v = await countedOrRefused(file)
    assert.ok(!(v instanceof FedmonError), `${name}: ${String(v)}`)
    assert.equal(at(v, 'recordsInWindow'), 1, name)
  }
})
