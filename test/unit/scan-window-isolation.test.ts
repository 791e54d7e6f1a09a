/**
 * The window rule of the vector layout (shared/stats/layout.ts): every entry depends only on the records of the
 * round's window. Layout v1 also summed `recordsWithoutTimestamp` (records with no usable ts, JSONL lines that
 * are not JSON) — the same figure in every scan of the same files — so two rounds over DISJOINT windows, which
 * the contribution ledger allows, with participant sets one agent apart, revealed that agent's count by
 * subtraction. These tests would have caught it: undated records leave every entry unchanged, and the
 * differencing attempt through real SecAgg rounds with ledgers yields sums that do not depend on them at all.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindowDetailed, type ScanResult } from '../../agent/scan.js'
import { sqlString } from '../../agent/scan-sql.js'
import { ContributionLedger } from '../../agent/ledger.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, COUNTERS, LAYOUT_VERSION } from '../../shared/stats/layout.js'
import { createIdentities } from '../../shared/secagg/simulate.js'
import { runRound, sumOf, type HarnessAgent } from './adversary-harness.js'

const HOUR = 3_600_000
const NOW = Date.UTC(2026, 0, 20, 12)
const W1 = { from: NOW - 6 * HOUR, to: NOW - 4 * HOUR }
const W2 = { from: NOW - 4 * HOUR, to: NOW - 2 * HOUR } // disjoint from W1: the ledger accepts both
const spec = MonitorSpec.parse({
  model: 'isolation',
  score: { bins: 8 },
  calibration: { bins: 4 },
  features: { x: { type: 'numeric', edges: [0, 10] }, colour: { type: 'categorical', categories: ['red', 'blue'] } },
  limits: { maxRecordsPerAgent: 10_000 }
})
const layout = buildLayout(spec)
let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-window-isolation-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

interface Rec { ts?: unknown, score?: unknown, label?: unknown, x?: unknown, colour?: unknown }
/** `n` records in `w`, the same shape in every window (so two windows' vectors are equal). */
const dated = (w: { from: number }, n: number, seed: number): Rec[] => Array.from({ length: n }, (_, i) => ({
  ts: w.from + 1000 * i, score: ((i * 7 + seed) % 10) / 10, label: (i + seed) % 3 === 0 ? 1 : 0, x: (i % 13) - 1, colour: ['red', 'blue', 'green'][i % 3]
}))
/** Records no window holds: ts missing, null, junk or NaN, with values that would land in every kind of entry. */
const undated = (n: number): Rec[] => Array.from({ length: n }, (_, i) => ({
  ...(i % 4 === 0 ? {} : { ts: [null, 'not a time', 'NaN'][i % 3] }), score: i % 2 === 0 ? 0.9 : 'abc', label: i % 2, x: i % 2 === 0 ? 5 : 'n/a', colour: 'red'
}))
const jsonl = (recs: Rec[], junk: string[] = []): string =>
  [...recs.map(({ x, colour, ...r }) => JSON.stringify({ ...r, features: { x, colour } })), ...junk].map(l => l + '\n').join('')
const cell = (v: unknown): string => (v === undefined || v === null ? '' : String(v))
const csv = (recs: Rec[]): string => 'ts,score,label,x,colour\n' + recs.map(r => [r.ts, r.score, r.label, r.x, r.colour].map(cell).join(',') + '\n').join('')

const scan = async (path: string, window: { from: number, to: number }): Promise<ScanResult> =>
  await scanWindowDetailed({ spec, layout, source: { path }, window })

test('layout v2 and later: no entry counts records outside the window', () => {
  assert.equal(LAYOUT_VERSION, 'fedmon-layout-v3')
  assert.ok(!(COUNTERS as readonly string[]).includes('recordsWithoutTimestamp'))
})

test('undated records, lines that are not JSON and other windows\' records leave every vector entry unchanged (JSONL, CSV, Parquet)', async () => {
  const base = [...dated(W1, 40, 1), ...dated(W2, 40, 1)]
  const files: Array<{ name: string, clean: string, dirty: string, undated: number }> = [
    { name: 'jsonl', clean: jsonl(base), dirty: jsonl([...undated(25), ...base, ...dated({ from: W2.to }, 30, 5)], ['not json', '{"ts": 17', '[1, 2]']), undated: 28 },
    { name: 'csv', clean: csv(base), dirty: csv([...base, ...undated(25), ...dated({ from: W1.from - 3 * HOUR }, 30, 2)]), undated: 25 }
  ]
  for (const f of files) {
    writeFileSync(join(dir, `clean.${f.name}`), f.clean)
    writeFileSync(join(dir, `dirty.${f.name}`), f.dirty)
  }
  // Parquet: the same records with ts as a TIMESTAMP column (NULL for the undated ones)
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  for (const name of ['clean', 'dirty']) {
    await conn.run(`COPY (SELECT CASE WHEN isfinite(TRY_CAST(ts AS DOUBLE)) THEN make_timestamp(CAST(TRY_CAST(ts AS DOUBLE) * 1000 AS BIGINT)) END AS ts, score, label, x, colour
      FROM read_csv(${sqlString(join(dir, `${name}.csv`))}, all_varchar = true)) TO ${sqlString(join(dir, `${name}.parquet`))} (FORMAT parquet)`)
  }
  conn.closeSync(); db.closeSync()
  files.push({ name: 'parquet', clean: '', dirty: '', undated: 25 })

  for (const f of files) {
    for (const window of [W1, W2]) {
      const clean = await scan(join(dir, `clean.${f.name}`), window)
      const dirty = await scan(join(dir, `dirty.${f.name}`), window)
      assert.equal(clean.vector[layout.counters.offset], 40, `${f.name}: 40 records in the window`)
      assert.deepEqual(Array.from(dirty.vector), Array.from(clean.vector), `${f.name}: every entry unchanged by records outside the window`)
      assert.equal(clean.local.recordsWithoutTimestamp, 0)
      assert.equal(dirty.local.recordsWithoutTimestamp, f.undated, `${f.name}: the local figure counts them`)
    }
    // the two windows hold records of the same shape: equal vectors, so any difference below is the attack's
    assert.deepEqual(Array.from((await scan(join(dir, `dirty.${f.name}`), W1)).vector), Array.from((await scan(join(dir, `dirty.${f.name}`), W2)).vector))
  }
})

test('differencing two disjoint-window rounds one agent apart reveals nothing of that agent\'s undated records', async () => {
  const ids = await createIdentities(4, 61)
  /** Agent 3 has undated records only (the v1 leak's target); agents 0-2 the same records in both windows. */
  const run = async (tag: string, undatedOfAgent3: number): Promise<{ first: Uint32Array, second: Uint32Array, local: number }> => {
    const inputs: Array<{ w1: Uint32Array, w2: Uint32Array }> = []
    let local = 0
    for (let i = 0; i < 4; i++) {
      const file = join(dir, `${tag}-site-${i}.jsonl`)
      writeFileSync(file, i < 3 ? jsonl([...dated(W1, 20 + i, i), ...dated(W2, 20 + i, i), ...undated(3)]) : jsonl(undated(undatedOfAgent3), ['torn {"ts']))
      const [a, b] = [await scan(file, W1), await scan(file, W2)]
      inputs.push({ w1: a.vector, w2: b.vector })
      if (i === 3) local = a.local.recordsWithoutTimestamp
    }
    const agents = (w: 'w1' | 'w2', n: number): HarnessAgent[] => ids.agents.slice(0, n).map((identity, i) => {
      const state = join(dir, `${tag}-ledger-${i}`)
      mkdirSync(state, { recursive: true })
      return { identity, input: inputs[i][w], guard: ContributionLedger.open(state) }
    })
    const common = { coordinator: ids.coordinator, dim: layout.length, maxEntry: layout.maxEntry, specHash: layout.specHash, threshold: 2 }
    const first = runRound({ ...common, roundId: `${tag}-1`, agents: agents('w1', 4), window: W1, now: NOW })
    const second = runRound({ ...common, roundId: `${tag}-2`, agents: agents('w2', 3), window: W2, now: NOW + 60_000 })
    assert.equal(first.status, 'done', first.failure?.message)
    assert.equal(second.status, 'done', `the ledger allows the disjoint window: ${second.failure?.message ?? ''}`)
    assert.deepEqual(first.result!.sum, sumOf(inputs.map(x => x.w1), layout.length))
    return { first: first.result!.sum, second: second.result!.sum, local }
  }
  const none = await run('k0', 0)
  const many = await run('k37', 37)
  assert.equal(many.local, 38, 'agent 3 has 37 undated records and one torn line: its own figure shows them')
  assert.equal(none.local, 1)
  // sum(W1, with agent 3) − sum(W2, without it): zero in every entry, whatever agent 3's undated records
  const diff = (r: { first: Uint32Array, second: Uint32Array }): number[] => Array.from(r.first, (v, j) => (v - r.second[j]) >>> 0)
  assert.deepEqual(diff(many), new Array(layout.length).fill(0), 'the two sums differ by nothing')
  assert.deepEqual(Array.from(many.first), Array.from(none.first), 'the coordinator\'s view does not depend on the undated count')
})
