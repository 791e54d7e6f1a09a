import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Federation, sampleRecords, T0, DAY, type SampleRecord, dayWindows } from './helpers/federation.js'
import { exitWithin, killAllDaemons, killProcessGroup, waitFor, httpJson, sleep, type Daemon } from './helpers/processes.js'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

/*
 * Process faults on a real federation (loopback, built CLI): agents SIGKILLed after each message they send,
 * mid-round by timing, two at once, restarted mid-round, SIGSTOPped past the phase deadline; the coordinator
 * SIGKILLed early and late in a round and restarted. Every round must either finish with exactly the data of
 * the agents it reports as included, or be stored with a failure code; the next round (fresh window: agents
 * refuse overlapping windows) succeeds; after each coordinator kill the store passes `PRAGMA integrity_check`
 * and holds exactly the reports seen before.
 */

const CORE = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5']
const FLAKY = ['site-6', 'site-7']
const ALL = [...CORE, ...FLAKY]
const PHASE_TIMEOUT_MS = 3000
const WEEKS = 4
const records: Record<string, SampleRecord[]> = {}
// At least 200 records a week per site: every one-day window then holds more than the agents' default
// policy.minRecords (10) of each site's records.
for (const [i, name] of ALL.entries()) records[name] = sampleRecords(2000 + i, 200 + 10 * i, { weeks: WEEKS })

let fed: Federation
/** Every report the coordinator returned, in the order the rounds finished. */
const seenReports: Report[] = []

/** A fresh one-day window, never overlapping an earlier one (agents refuse overlaps: anti-differencing). */
const freshWindow = dayWindows(WEEKS * 7)

function countIn (site: string, w: { from: number, to: number }): number {
  return records[site].filter(r => r.ts >= w.from && r.ts < w.to).length
}

before(async () => {
  fed = await Federation.create({
    sites: ALL.map(name => ({ name, records: records[name] })),
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  await fed.startCoordinator()
  for (const site of CORE) fed.startAgent(site)
  await fed.waitForOnline(CORE)
})

let passed = 0
const TESTS = 6

after(async () => {
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

/** Waits until exactly `sites` are online at the coordinator (a killed agent's disconnect has been seen). */



/**
 * The invariant of every round: done with a report whose counts are exactly those of the agents it says it
 * included (and they were invited), or failed/aborted with a stored failure code. Returns the report, if any.
 */
async function assertRoundSound (outcome: RoundOutcome, window: { from: number, to: number }): Promise<Report | null> {
  if (outcome.status !== 'done') {
    assert.ok(outcome.status === 'failed' || outcome.status === 'aborted', `status ${outcome.status}`)
    assert.equal(typeof outcome.failure?.code, 'string', 'a failed round stores its failure code')
    assert.ok((outcome.failure?.message ?? '').length > 0, 'and a reason')
    assert.equal(outcome.reportId, null)
    return null
  }
  const { status, body } = await httpJson(`${fed.api}/v1/reports/${outcome.reportId as string}`)
  assert.equal(status, 200)
  const report = body as Report
  for (const id of report.agents.included) assert.ok(report.agents.invited.includes(id), 'included agents were invited')
  const included = report.agents.included.map(id => fed.siteOf(id) as string)
  const want = included.reduce((n, s) => n + countIn(s, window), 0)
  assert.equal(report.samples.count, want, `samples.count is the sum over the included sites ${included.join(', ')}`)
  assert.equal(report.window.from, new Date(window.from).toISOString())
  seenReports.push(report)
  return report
}

/** Runs a round on a fresh window that must finish with exactly `sites` included. */
async function cleanRound (sites: string[]): Promise<Report> {
  await fed.waitForOnlineExactly(sites)
  const window = freshWindow()
  const outcome = await fed.roundOutcome(await fed.startRound(window))
  assert.equal(outcome.status, 'done', `clean round: ${JSON.stringify(outcome.failure)}`)
  const report = await assertRoundSound(outcome, window) as Report
  assert.deepEqual(report.agents.included.map(id => fed.siteOf(id)).sort(), [...sites].sort())
  assert.deepEqual(report.agents.dropped, [])
  return report
}

/** One diagnostic line per round, for the README's table (`node --test` prints them). */
function note (t: { diagnostic: (msg: string) => void }, what: string, report: Report | null, outcome?: RoundOutcome): void {
  const sites = (ids: string[]): string => ids.map(id => fed.siteOf(id)?.replace('site-', '') ?? id).join(',')
  if (report !== null) t.diagnostic(`${what}: done, included [${sites(report.agents.included)}] dropped [${sites(report.agents.dropped)}], samples ${report.samples.count}, ${report.round.durationMs} ms`)
  else t.diagnostic(`${what}: ${outcome?.status} ${outcome?.failure?.code ?? ''}`)
}

function logSays (d: Daemon, roundId: string, what: string): boolean {
  return d.log().split('\n').some(l => l.includes(what) && l.includes(roundId))
}

/**
 * Opens the store file read-only (the coordinator is dead): integrity ok, exactly the reports seen so far —
 * plus, at most, the report of `interruptedRound` when the kill came just after it was committed.
 */
function assertStoreIntact (interruptedRound?: string): void {
  const db = new Database(join(fed.root, 'coordinator.db'), { readonly: true, fileMustExist: true })
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
    const rows = db.prepare('SELECT id, round_id AS roundId, body FROM reports ORDER BY seq').all() as Array<{ id: string, roundId: string, body: string }>
    if (rows.length === seenReports.length + 1 && rows.at(-1)?.roundId === interruptedRound) rows.pop()
    assert.deepEqual(rows.map(r => r.id), seenReports.map(r => r.id), 'the stored reports are exactly the ones seen')
    for (const [i, row] of rows.entries()) assert.deepEqual(JSON.parse(row.body), seenReports[i], `report ${row.id} unchanged`)
    const running = db.prepare("SELECT count(*) FROM rounds WHERE status = 'running'").pluck().get() as number
    assert.ok(running <= 1, 'at most the interrupted round is marked running')
  } finally {
    db.close()
  }
}

async function assertApiReportsIntact (): Promise<void> {
  const { body } = await httpJson(`${fed.api}/v1/reports?last=1000`)
  const listed = (body.reports as Report[]).map(r => r.id).sort()
  assert.deepEqual(listed, seenReports.map(r => r.id).sort())
  for (const r of seenReports) assert.deepEqual((await httpJson(`${fed.api}/v1/reports/${r.id}`)).body, r)
}

test('baseline: a round over the 5 core agents counts exactly their records', async (t) => {
  note(t, 'baseline', await cleanRound(CORE))
  passed++
})

// Every message type an agent sends, in protocol order: the agent SIGKILLs itself once it has sent it.
const PHASES = ['advertise-keys', 'shares', 'share-receipt', 'masked-input', 'consistency-signature', 'unmask-shares'] as const
const BEFORE_MASKED_INPUT = new Set<string>(['advertise-keys', 'shares', 'share-receipt'])

test('an agent SIGKILLed after each message it sends: every round completes over the survivors with exactly their data', async (t) => {
  for (const phase of PHASES) {
    const victim = fed.startAgent('site-6', { FEDMON_TEST_EXIT_AFTER: phase })
    await fed.waitForOnlineExactly([...CORE, 'site-6'])
    const window = freshWindow()
    const outcome = await fed.roundOutcome(await fed.startRound(window))
    assert.equal(outcome.status, 'done', `${phase}: ${JSON.stringify(outcome.failure)}`)
    assert.equal((await exitWithin(victim, 60_000)).signal, 'SIGKILL', `${phase}: the hook killed the agent`)
    const report = await assertRoundSound(outcome, window) as Report
    for (const s of CORE) assert.ok(report.agents.included.includes(fed.ids[s]), `${phase}: ${s} included`)
    // Without its masked input the coordinator has nothing of the victim to add.
    if (BEFORE_MASKED_INPUT.has(phase)) assert.ok(!report.agents.included.includes(fed.ids['site-6']), `${phase}: victim not included`)
    note(t, `killed after ${phase}`, report, outcome)
  }
  passed++
})

test('two agents SIGKILLed at once (after ShareKeys and after their masked input), then one by timing mid-round', async (t) => {
  const a = fed.startAgent('site-6', { FEDMON_TEST_EXIT_AFTER: 'shares' })
  const b = fed.startAgent('site-7', { FEDMON_TEST_EXIT_AFTER: 'masked-input' })
  await fed.waitForOnlineExactly(ALL)
  const window = freshWindow()
  const outcome = await fed.roundOutcome(await fed.startRound(window))
  assert.equal((await exitWithin(a, 60_000)).signal, 'SIGKILL')
  assert.equal((await exitWithin(b, 60_000)).signal, 'SIGKILL')
  assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
  const report = await assertRoundSound(outcome, window) as Report
  assert.ok(!report.agents.included.includes(fed.ids['site-6']))
  for (const s of CORE) assert.ok(report.agents.included.includes(fed.ids[s]))
  note(t, 'two killed (shares, masked-input)', report, outcome)

  // Mid-round by timing: both flaky agents SIGKILLed from outside as soon as they accepted the Announce.
  const c = fed.startAgent('site-6')
  const d = fed.startAgent('site-7')
  await fed.waitForOnlineExactly(ALL)
  const window2 = freshWindow()
  const roundId = await fed.startRound(window2)
  await waitFor('the flaky agents to accept the round', () => logSays(c, roundId, 'round accepted') && logSays(d, roundId, 'round accepted'), { intervalMs: 20 })
  killProcessGroup(c, 'SIGKILL')
  killProcessGroup(d, 'SIGKILL')
  const outcome2 = await fed.roundOutcome(roundId)
  note(t, 'two killed from outside after the Announce', await assertRoundSound(outcome2, window2), outcome2)
  assert.equal(outcome2.status, 'done', JSON.stringify(outcome2.failure))
  passed++
})

test('an agent restarted mid-round, and one SIGSTOPped past the phase deadline then resumed, take part in the next round', async (t) => {
  const restarted = fed.startAgent('site-6')
  const stopped = fed.startAgent('site-7')
  await fed.waitForOnlineExactly(ALL)
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  await waitFor('site-6 to hold its shares', () => logSays(restarted, roundId, 'shares received'), { intervalMs: 20 })
  killProcessGroup(restarted, 'SIGKILL')
  await restarted.exited
  const again = fed.startAgent('site-6') // same key and state dir: its ledger survives the restart
  await waitFor('site-7 to accept the round', () => logSays(stopped, roundId, 'round accepted'), { intervalMs: 20 })
  killProcessGroup(stopped, 'SIGSTOP')
  try {
    const outcome = await fed.roundOutcome(roundId)
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    const report = await assertRoundSound(outcome, window) as Report
    for (const s of CORE) assert.ok(report.agents.included.includes(fed.ids[s]))
    assert.ok(!report.agents.included.includes(fed.ids['site-7']), 'the stopped agent sent nothing after the Announce')
    note(t, 'site-6 restarted after ShareKeys, site-7 SIGSTOPped after the Announce', report, outcome)
    await sleep(PHASE_TIMEOUT_MS) // well past its deadline
  } finally {
    killProcessGroup(stopped, 'SIGCONT')
  }
  assert.equal(stopped.child.exitCode, null, 'the resumed agent is still running')
  assert.equal(again.child.exitCode, null, 'the restarted agent is running')
  note(t, 'next round after SIGCONT', await cleanRound(ALL))
  passed++
})

test('the coordinator SIGKILLed early and late in a round: the store is intact, the round is stored as aborted, the next round succeeds', async (t) => {
  const agents = ALL.map(s => fed.daemons[s])
  const cases: Array<{ name: string, when: (roundId: string) => boolean }> = [
    { name: 'after the Announce', when: id => agents.every(a => logSays(a, id, 'round accepted')) },
    { name: 'after ShareKeys, once every local vector is ready', when: id => agents.every(a => logSays(a, id, 'shares received') && logSays(a, id, 'local vector ready')) }
  ]
  for (const { name, when } of cases) {
    await fed.waitForOnlineExactly(ALL)
    const roundId = await fed.startRound(freshWindow())
    await waitFor(`${name} (round ${roundId})`, () => when(roundId), { intervalMs: 20 })
    killProcessGroup(fed.daemons.coordinator, 'SIGKILL')
    await fed.daemons.coordinator.exited
    assertStoreIntact(roundId)
    await fed.startCoordinator()
    const outcome = (await httpJson(`${fed.api}/v1/rounds/${roundId}`)).body as RoundOutcome
    if (outcome.status === 'done') {
      // The kill came after the report was committed: then it must be whole and consistent.
      await assertRoundSound(outcome, { from: Date.parse(outcome.window.from), to: Date.parse(outcome.window.to) })
    } else {
      assert.equal(outcome.status, 'aborted', `${name}: ${JSON.stringify(outcome)}`)
      assert.equal(outcome.failure?.code, 'ERR_COORDINATOR_RESTART')
    }
    note(t, `coordinator killed ${name}`, null, outcome)
    await assertApiReportsIntact()
    note(t, 'next round after the restart', await cleanRound(ALL))
  }
  passed++
})

test('after all the faults every daemon is still serving and no report was lost', async () => {
  killProcessGroup(fed.daemons.coordinator, 'SIGKILL')
  await fed.daemons.coordinator.exited
  assertStoreIntact()
  await fed.startCoordinator()
  await assertApiReportsIntact()
  for (const s of ALL) assert.equal(fed.daemons[s].child.exitCode, null, `${s} running`)
  assert.ok(seenReports.length >= 13, `${seenReports.length} reports`)
  passed++
})
