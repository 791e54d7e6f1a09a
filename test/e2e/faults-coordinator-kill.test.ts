import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Federation, sampleRecords, isoWindow, T0, DAY, type SampleRecord, dayWindows } from './helpers/federation.js'
import { killAllDaemons, stopDaemon, httpJson } from './helpers/processes.js'
import { Packr } from 'msgpackr'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

/*
 * The coordinator killed at the dangerous moments of a round's end, aimed with its test hook
 * FEDMON_TEST_EXIT_AT (coordinator/rounds.ts): `unmask-start` (unmask handed to the worker pool),
 * `unmask-done` (correction applied, report computed, nothing stored), `report-stored` (right after the
 * one commit of report + round + reference vector + current reference + included agents). After each kill,
 * with the coordinator down, the store file is opened read-only: integrity ok, every earlier report
 * byte-identical, and the interrupted round either without report and still `running` (aborted
 * `ERR_COORDINATOR_RESTART` once restarted) or with its whole, exact report and the round `done`. Then the
 * coordinator restarts without the hook, the API agrees with the store, and the next round is exact.
 * Also: a round that loses too many agents (SIGKILLed after their share receipts) fails before unmasking,
 * with its counts, and reveals nothing.
 */

const CORE = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5']
const PHASE_TIMEOUT_MS = 3000
const WEEKS = 2
const records: Record<string, SampleRecord[]> = {}
// At least 200 records a week per site: every one-day window then holds more than the agents' default
// policy.minRecords (10) of each site's records.
for (const [i, name] of CORE.entries()) records[name] = sampleRecords(3000 + i, 200 + 10 * i, { weeks: WEEKS })

let fed: Federation
const seenReports: Report[] = []
let coordinatorStarts = 0
let dumpFile = ''

const freshWindow = dayWindows(WEEKS * 7)

function countIn (sites: string[], w: { from: number, to: number }): number {
  return sites.reduce((n, s) => n + records[s].filter(r => r.ts >= w.from && r.ts < w.to).length, 0)
}

/** Starts the coordinator (optionally with the exit hook); every start dumps its inbound frames to a file of its own. */
async function startCoordinator (env: Record<string, string> = {}): Promise<void> {
  dumpFile = join(fed.root, `frames-${++coordinatorStarts}.bin`)
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile, ...env })
}

before(async () => {
  fed = await Federation.create({
    sites: CORE.map(name => ({ name, records: records[name] })),
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  await startCoordinator()
  for (const site of CORE) fed.startAgent(site)
  await fed.waitForOnline(CORE)
})

let passed = 0
const TESTS = 4

after(async () => {
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})




/** A report is exact: its sample count is the known number of records of exactly the agents it includes. */
function assertExact (report: Report, window: { from: number, to: number }): void {
  const included = report.agents.included.map(id => fed.siteOf(id) as string)
  for (const id of report.agents.included) assert.ok(report.agents.invited.includes(id))
  assert.equal(report.samples.count, countIn(included, window), `samples.count over ${included.join(', ')}`)
  assert.equal(report.window.from, new Date(window.from).toISOString())
  assert.equal(report.window.to, new Date(window.to).toISOString())
}

async function cleanRound (window = freshWindow()): Promise<Report> {
  await fed.waitForOnlineExactly(CORE)
  const outcome = await fed.roundOutcome(await fed.startRound(window))
  assert.equal(outcome.status, 'done', `clean round: ${JSON.stringify(outcome.failure)}`)
  const report = (await httpJson(`${fed.api}/v1/reports/${outcome.reportId as string}`)).body as Report
  assertExact(report, window)
  assert.deepEqual(report.agents.included.map(id => fed.siteOf(id)).sort(), CORE)
  seenReports.push(report)
  return report
}

interface StoreView {
  reports: Array<{ id: string, roundId: string, body: string }>
  round: RoundOutcome | null
  reference: { reportId: string } | null
  vectorOf: (reportId: string) => { specHash: string, length: number } | null
}

/** Opens the store read-only while the coordinator is down: integrity first, then what the checks need. */
function readStore (roundId: string): StoreView {
  const db = new Database(join(fed.root, 'coordinator.db'), { readonly: true, fileMustExist: true })
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
    const reports = db.prepare('SELECT id, round_id AS roundId, body FROM reports ORDER BY seq').all() as StoreView['reports']
    const roundBody = db.prepare('SELECT body FROM rounds WHERE id = ?').pluck().get(roundId) as string | undefined
    const ref = db.prepare('SELECT report_id AS reportId FROM current_reference').get() as { reportId: string } | undefined
    const vectors = new Map((db.prepare('SELECT report_id AS id, spec_hash AS specHash, length FROM reference_vectors').all() as Array<{ id: string, specHash: string, length: number }>).map(v => [v.id, v]))
    return {
      reports,
      round: roundBody === undefined ? null : JSON.parse(roundBody) as RoundOutcome,
      reference: ref ?? null,
      vectorOf: id => vectors.get(id) ?? null
    }
  } finally {
    db.close()
  }
}

async function assertApiAgreesWithStore (): Promise<void> {
  const { body } = await httpJson(`${fed.api}/v1/reports?last=1000`)
  assert.deepEqual((body.reports as Report[]).map(r => r.id), seenReports.map(r => r.id))
  for (const r of seenReports) assert.deepEqual((await httpJson(`${fed.api}/v1/reports/${r.id}`)).body, r)
}

/**
 * Runs one round with the coordinator set to die at `point`; checks the store while it is down and the API
 * once restarted without the hook. Returns the interrupted round's report when it was committed.
 */
async function killedRound (t: { diagnostic: (m: string) => void }, point: string, reference: boolean): Promise<Report | null> {
  await stopDaemon(fed.daemons.coordinator)
  await startCoordinator({ FEDMON_TEST_EXIT_AT: point })
  await fed.waitForOnlineExactly(CORE)
  const window = freshWindow()
  const roundId = await fed.startRound(window, { reference })
  const exit = await fed.daemons.coordinator.exited
  assert.equal(exit.signal, 'SIGKILL', `${point}: the hook killed the coordinator (${JSON.stringify(exit)})`)

  const view = readStore(roundId)
  const earlier = view.reports.filter(r => r.roundId !== roundId)
  assert.deepEqual(earlier.map(r => r.id), seenReports.map(r => r.id), `${point}: exactly the earlier reports`)
  for (const [i, row] of earlier.entries()) assert.deepEqual(JSON.parse(row.body), seenReports[i], `${point}: report ${row.id} unchanged`)
  const mine = view.reports.filter(r => r.roundId === roundId)
  assert.ok(view.round !== null, 'the round was stored when it started')
  let report: Report | null = null
  if (point === 'report-stored') {
    assert.equal(mine.length, 1, 'the report was committed before the kill')
    report = JSON.parse(mine[0].body) as Report
    assertExact(report, window)
    assert.deepEqual(report.agents.included.map(id => fed.siteOf(id)).sort(), CORE)
    assert.equal(view.round.status, 'done', 'committed with its report: the round is done')
    assert.equal(view.round.reportId, report.id)
    if (reference) {
      assert.deepEqual(view.reference, { reportId: report.id }, 'the reference report is the current reference')
      assert.equal(view.vectorOf(report.id)?.specHash, report.spec.hash, 'with its vector')
      assert.equal(view.vectorOf(report.id)?.length, report.spec.vectorLength)
    }
  } else {
    assert.deepEqual(mine, [], `${point}: nothing of the report was stored`)
    assert.equal(view.round.status, 'running', `${point}: the round row still says running`)
    assert.equal(view.round.reportId, null)
  }

  await startCoordinator()
  const outcome = (await httpJson(`${fed.api}/v1/rounds/${roundId}`)).body as RoundOutcome
  if (report !== null) {
    assert.equal(outcome.status, 'done')
    assert.equal(outcome.reportId, report.id)
    assert.deepEqual((await httpJson(`${fed.api}/v1/reports/${report.id}`)).body, report)
    seenReports.push(report)
  } else {
    assert.equal(outcome.status, 'aborted', JSON.stringify(outcome))
    assert.equal(outcome.failure?.code, 'ERR_COORDINATOR_RESTART')
    assert.equal((await httpJson(`${fed.api}/v1/reports/latest`)).body.id, seenReports.at(-1)?.id)
  }
  await assertApiAgreesWithStore()
  t.diagnostic(`killed at ${point}${reference ? ' (reference round)' : ''}: round ${outcome.status}${outcome.failure !== null ? ` ${outcome.failure.code}` : ''}, ${report !== null ? `report ${report.id} with ${report.samples.count} samples` : 'no report'}`)
  return report
}

test('a reference round whose coordinator dies right after the report commit: the reference is whole and in use after the restart', async (t) => {
  const reference = await killedRound(t, 'report-stored', true)
  assert.ok(reference !== null)
  const next = await cleanRound()
  assert.equal(next.drift.reference?.id, reference.id, 'the next current round compares against it')
  assert.ok(Object.keys(next.drift.features).length > 0, 'drift computed per feature')
  assert.deepEqual((await httpJson(`${fed.api}/v1/status`)).body.reference?.reportId, reference.id)
  t.diagnostic(`next round: ${next.samples.count} samples, drift vs ${reference.id}`)
  passed++
})

test('the coordinator SIGKILLed at unmask-start, unmask-done and report-stored: no report lost or half-written, next round exact', async (t) => {
  for (const point of ['unmask-start', 'unmask-done', 'report-stored']) {
    await killedRound(t, point, false)
    const next = await cleanRound()
    t.diagnostic(`next round after ${point}: done, ${next.samples.count} samples`)
  }
  passed++
})

/** Every message the coordinator received, decoded from the current dump (whole msgpack frames, appended). */
function receivedFrames (): Array<{ type: string, roundId: string }> {
  const values = new Packr({ useRecords: false, moreTypes: true }).unpackMultiple(readFileSync(dumpFile)) as Array<{ type: string, roundId: string }>
  assert.ok(values.length > 0)
  return values
}

test('a round left with fewer than t agents (three SIGKILLed after their share receipts) fails before unmasking, and the next one succeeds', async (t) => {
  const victims = CORE.slice(2)
  for (const site of victims) await stopDaemon(fed.daemons[site])
  const killed = victims.map(site => fed.startAgent(site, { FEDMON_TEST_EXIT_AFTER: 'share-receipt' }))
  await fed.waitForOnlineExactly(CORE)
  const window = freshWindow()
  const res = await fed.runRound(isoWindow(window.from, window.to))
  for (const d of killed) assert.equal((await d.exited).signal, 'SIGKILL')
  assert.notEqual(res.code, 0, 'no report')
  assert.equal(res.stderr.trim().split('\n').length, 1, `one error line: ${res.stderr}`)
  // Closed connections count at once (coordinator/rounds.ts disconnected): the round fails at the masking set
  // when the kills are seen before the share phase ends, else at the masked inputs — never later.
  assert.match(res.stderr, /failed: ERR_TOO_FEW_SURVIVORS: (masking set|masked inputs)\b.*\b[0-2] agents\b.*need at least max\(t, minAgents, consistency quorum\) = 3/)
  const printed = JSON.parse(res.stdout) as { roundId: string, status: string, failure: { code: string, message: string }, declined: unknown[] }
  assert.equal(printed.status, 'failed')
  assert.equal(printed.failure.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.deepEqual(printed.declined, [], 'killed agents do not decline: they drop')
  const outcome = (await httpJson(`${fed.api}/v1/rounds/${printed.roundId}`)).body as RoundOutcome
  assert.equal(outcome.status, 'failed')
  assert.deepEqual(outcome.failure, printed.failure)
  assert.equal(outcome.reportId, null)
  assert.ok(!('unmask' in outcome.timings) && !('consistency' in outcome.timings), `failed before the consistency check: ${JSON.stringify(outcome.timings)}`)
  await assertApiAgreesWithStore()
  // Nothing revealed: the coordinator received no unmask shares (nor consistency signatures) for this round.
  const frames = receivedFrames().filter(f => f.roundId === printed.roundId)
  const types = new Set(frames.map(f => f.type))
  assert.ok(types.has('share-receipt'), `frames seen: ${[...types].join(', ')}`)
  assert.ok(!types.has('unmask-shares') && !types.has('consistency-signature'), `frames seen: ${[...types].join(', ')}`)
  assert.ok(frames.filter(f => f.type === 'masked-input').length <= 2)
  t.diagnostic(`too few survivors: ${outcome.failure?.code} "${outcome.failure?.message}"`)

  for (const site of victims) fed.startAgent(site)
  const next = await cleanRound()
  t.diagnostic(`next round: done, ${next.samples.count} samples`)
  passed++
})

test('after every kill the daemons still serve and the store holds exactly the reports seen', async () => {
  await stopDaemon(fed.daemons.coordinator)
  const view = readStore('none')
  assert.deepEqual(view.reports.map(r => r.id), seenReports.map(r => r.id))
  for (const [i, row] of view.reports.entries()) assert.deepEqual(JSON.parse(row.body), seenReports[i])
  for (const s of CORE) assert.equal(fed.daemons[s].child.exitCode, null, `${s} running`)
  assert.equal(seenReports.length, 7)
  passed++
})
