// Issue 14 (first step): a site whose column mapping is wrong declines with a reason that names the column,
// instead of contributing zero or garbage records and using up the window. Real files, the real DuckDB scan,
// the real client and ledger.
import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { columnNamesFor, scanWindowDetailed } from '../../agent/scan.js'
import { checkWindowData } from '../../agent/data-check.js'
import { ContributionLedger } from '../../agent/ledger.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import type { DataSource } from '../../shared/stats/data-source.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { runRound, sentTypes, type HarnessAgent } from './adversary-harness.js'
import type { Decline } from '../../shared/secagg/messages.js'

const HOUR = 3_600_000
const T = Date.UTC(2026, 3, 1)
const WINDOW = { from: T, to: T + HOUR }
const spec = parseMonitorSpec({ model: 'm', score: { bins: 20 }, features: { age: { type: 'numeric', edges: [30, 50] }, region: { type: 'categorical', categories: ['n', 's'] } } })
const layout = buildLayout(spec)
let dir: string
let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { dir = mkdtempSync(join(tmpdir(), 'fedmon-data-check-')); ids = await createIdentities(4, 1404) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

function csv (name: string, header: string, row: (i: number) => string, rows = 40): string {
  const file = join(dir, name)
  writeFileSync(file, [header, ...Array.from({ length: rows }, (_, i) => row(i))].join('\n') + '\n')
  return file
}

async function problemOf (source: DataSource): Promise<string | null> {
  const { vector, local } = await scanWindowDetailed({ spec, layout, source, window: WINDOW })
  return checkWindowData({ layout, vector, recordsWithoutTimestamp: local.recordsWithoutTimestamp, columns: columnNamesFor(spec, source), maxBadFraction: 0.05 }).problem
}

const at = (i: number): number => T + i * 60_000

test('the data check names the column and the kind of problem, never a value; good data passes', async () => {
  const good = csv('good.csv', 'ts,score,label,age,region', i => `${at(i)},${(i % 10) / 10 + 0.05},${i % 2},${20 + i},${i % 2 ? 'n' : 's'}`)
  assert.equal(await problemOf({ path: good }), null)
  // The trial's case: other column names and no mapping. Nothing falls in the window; the timestamp is named.
  const renamed = csv('renamed.csv', 'timestamp,prob,y,age,region', i => `${at(i)},0.5,${i % 2},${20 + i},n`)
  assert.match(await problemOf({ path: renamed }) ?? '', /no usable timestamp in column `ts`.*check data.columns.ts/)
  // The ts is mapped, the score is not: every score missing.
  const scoreless = await problemOf({ path: renamed, columns: { ts: 'timestamp' } })
  assert.match(scoreless ?? '', /^column `score`: 100 % of the window's records have no usable score \(missing\).*check data.columns.score/)
  // Scores out of range (percentages) and labels that are not 0/1.
  const percents = csv('percents.csv', 'ts,score,label,age,region', i => `${at(i)},${40 + i},${i % 2},30,n`)
  assert.match(await problemOf({ path: percents }) ?? '', /column `score`: .* \(outside \[0, 1\]\)/)
  const words = csv('words.csv', 'ts,score,label,age,region', i => `${at(i)},0.5,${i % 2 ? 'yes' : 'no'},30,n`)
  assert.match(await problemOf({ path: words }) ?? '', /^column `label`: 100 % of the window's records have a label that is not 0, 1/)
  // A feature whose column is not there at all: data quality the report shows, not a reason to decline; the
  // agent's own log names it.
  const noAge = csv('no-age.csv', 'ts,score,label,years,region', i => `${at(i)},0.5,${i % 2},30,n`)
  assert.equal(await problemOf({ path: noAge }), null)
  const warningsOf = async (source: DataSource): Promise<string[]> => {
    const { vector, local } = await scanWindowDetailed({ spec, layout, source, window: WINDOW })
    return checkWindowData({ layout, vector, recordsWithoutTimestamp: local.recordsWithoutTimestamp, columns: columnNamesFor(spec, source), maxBadFraction: 0.05 }).warnings
  }
  assert.deepEqual(await warningsOf({ path: noAge }), ['feature age: column `age` is missing in every record of the window (is data.columns.features mapped?)'])
  assert.deepEqual(await warningsOf({ path: noAge, columns: { features: { age: 'years' } } }), [])
  // A few bad records (2 of 40 = 5 %) are data, not a mapping problem.
  const fewBad = csv('few-bad.csv', 'ts,score,label,age,region', i => `${at(i)},${i < 2 ? 'n/a' : '0.5'},${i % 2},30,n`)
  assert.equal(await problemOf({ path: fewBad }), null)
  // The message carries no value of the data (the reason is sent to the coordinator).
  for (const text of [scoreless, await problemOf({ path: percents })]) assert.ok(!/\b4\d\b|0\.5/.test(text ?? ''), text ?? '')
})

test('a site with unusable data declines with the reason and keeps the window open in its ledger', async () => {
  const ledger = ContributionLedger.open(join(dir, 'ledger'))
  const renamed = join(dir, 'renamed.csv')
  const problem = await problemOf({ path: renamed, columns: { ts: 'timestamp' } })
  assert.ok(problem !== null)
  const roster = new Set(ids.agents.map(a => a.id))
  const agents: HarnessAgent[] = ids.agents.map((identity, i) => ({ identity, roster, input: new Uint32Array(8).fill(i), records: 40, guard: i === 0 ? ledger : undefined, problem: i === 0 ? problem : undefined }))
  const res = runRound({ roundId: 'bad-mapping', coordinator: ids.coordinator, agents, dim: 8, window: WINDOW, now: T + 2 * HOUR, minAgents: 2 })
  assert.equal(res.status, 'done')
  assert.ok(!res.result!.included.includes(ids.agents[0].id))
  assert.ok(!sentTypes(res, ids.agents[0].id).includes('masked-input'))
  const decline = res.transcript.find(d => d.from === ids.agents[0].id && d.message.type === 'decline')?.message as Decline | undefined
  assert.match(decline?.reason ?? '', /data for the window is unusable, not contributing: column `score`: 100 %/)
  assert.ok(ledger.entries().every(e => e.contributedAt === null), 'the window stays open: fix the mapping and run the round again')
})
