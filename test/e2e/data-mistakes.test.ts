import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, T0, DAY, isoWindow, type SampleRecord } from './helpers/federation.js'
import { killAllDaemons, runCli } from './helpers/processes.js'
import type { LedgerEntry } from '../../agent/ledger.js'

/*
 * Issue 14, the data side as a real deployment lives it (coordinator and five agents as processes on loopback):
 * a good JSONL site; a CSV with epoch-second timestamps and tsUnit left at its default (read right: contributes);
 * a CSV with one malformed row among good ones (contributes, the row counted as bad); a CSV whose columns are
 * named `timestamp,prob,y` with no mapping; a data file DuckDB cannot read at all. The last two decline at once
 * with one line naming the cause, in `fedmon round run --wait` and in the stored outcome; the round does not
 * wait out a phase; their ledgers record no contribution for the window.
 */

const PHASE_TIMEOUT_MS = 30_000
const WINDOW = { from: T0, to: T0 + DAY }
const records: Record<string, SampleRecord[]> = {
  good: sampleRecords(1401, 300, { weeks: 1 }),
  seconds: sampleRecords(1402, 300, { weeks: 1 }),
  malformed: sampleRecords(1403, 300, { weeks: 1 }),
  renamed: sampleRecords(1404, 300, { weeks: 1 }),
  unreadable: sampleRecords(1405, 300, { weeks: 1 })
}
const csvRow = (r: SampleRecord, ts: string): string => [ts, r.score, r.label ?? '', r.features.x ?? '', r.features.colour ?? ''].join(',')
let fed: Federation | undefined

after(async () => {
  await killAllDaemons()
  if (fed !== undefined && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
})

/** Points `site`'s agent config at `file` (its own data dir), with `columns` if given. */
function useData (f: Federation, site: string, name: string, content: string | Buffer, columns?: Record<string, unknown>): void {
  const dir = join(f.root, 'data', site)
  unlinkSync(join(dir, 'preds.jsonl'))
  writeFileSync(join(dir, name), content)
  const config = JSON.parse(readFileSync(f.agentConfig(site), 'utf8')) as Record<string, unknown>
  config.data = { path: `data/${site}/${name}`, ...(columns !== undefined ? { columns } : {}) }
  writeFileSync(f.agentConfig(site), JSON.stringify(config, null, 1))
}

test('wrong column names and an unreadable file decline at once with the cause; epoch seconds and a malformed row contribute', async () => {
  const f = fed = await Federation.create({
    sites: Object.entries(records).map(([name, recs]) => ({ name, records: name === 'good' || name === 'seconds' || name === 'malformed' ? recs : [] })),
    privacy: { minAgents: 3, threshold: 2 }, // 3 survivors of 5: each keeps 2 surviving neighbours
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  const header = 'ts,score,label,x,colour'
  useData(f, 'seconds', 'preds.csv', [header, ...records.seconds.map(r => csvRow(r, String(r.ts / 1000)))].join('\n') + '\n')
  const rows = records.malformed.map(r => csvRow(r, String(r.ts)))
  rows.splice(7, 0, `${T0 + 1000},0.5,"1,0.3,red`) // an unterminated quote: DuckDB's sniffer refused the whole file
  useData(f, 'malformed', 'preds.csv', [header, ...rows].join('\n') + '\n')
  useData(f, 'renamed', 'preds.csv', ['timestamp,prob,y,x,colour', ...records.renamed.map(r => csvRow(r, String(r.ts)))].join('\n') + '\n')
  useData(f, 'unreadable', 'preds.parquet', 'PAR1 this is not a parquet file PAR1')

  await f.startCoordinator()
  const sites = Object.keys(records)
  for (const site of sites) f.startAgent(site)
  await f.waitForOnline(sites)

  const run = await f.runRound(isoWindow(WINDOW.from, WINDOW.to))
  assert.equal(run.code, 0, run.stderr)
  const report = JSON.parse(run.stdout) as { round: { id: string } }
  const outcome = await f.roundOutcome(report.round.id)
  // the epoch-second and the malformed-row sites are in, with exactly their window's records
  await f.assertExactReport(outcome, WINDOW, ['good', 'seconds', 'malformed'])

  const causes: Record<string, RegExp> = {
    renamed: /no usable timestamp in column `ts`.*check data\.columns\.ts/,
    unreadable: /cannot scan the data: data file \S*preds\.parquet cannot be read as Parquet/
  }
  const lines = run.stderr.split('\n').filter(l => l.includes('declined'))
  assert.equal(lines.length, 2, run.stderr)
  for (const [site, cause] of Object.entries(causes)) {
    const line = lines.filter(l => l.includes(f.ids[site]))
    assert.equal(line.length, 1, `one line for ${site}: ${run.stderr}`)
    assert.match(line[0], cause)
    const stored = outcome.declined?.find(d => d.agent === f.ids[site])
    assert.match(stored?.reason ?? '', cause, `the stored outcome says why ${site} declined`)
  }
  // A decline counts at once: the round never waited out a phase for the two sites
  const took = Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt)
  assert.ok(took < PHASE_TIMEOUT_MS, `round took ${took} ms, a phase timeout is ${PHASE_TIMEOUT_MS} ms`)

  await f.stopAll()
  for (const site of sites) {
    const show = await runCli(['ledger', 'show', '--config', f.agentConfig(site), '--json'])
    assert.equal(show.code, 0, show.stderr)
    const entries = (JSON.parse(show.stdout) as { entries: LedgerEntry[] }).entries
    const contributed = entries.filter(e => e.window.from === WINDOW.from && e.contributedAt !== null)
    assert.equal(contributed.length, site in causes ? 0 : 1, `${site}: ledger entries ${JSON.stringify(entries)}`)
  }
  // the malformed row shows in that site's own log, as a record without a usable ts
  assert.match(readFileSync(join(f.root, 'malformed.log'), 'utf8'), /"malformedRows":1/)
})
