/**
 * Scheduled label refreshes (coordinator/refresh-scheduler.ts) over a real store with a fake clock: each
 * declared age runs once it is reached, oldest first after downtime, never twice (not across a restart either),
 * a refresh that fails for lack of a site is retried until schedule.labelRefreshDeadline, and a refresh already
 * made by hand is not made again. The store keeps versions: the latest stands in for its window.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openStore } from '../../coordinator/store.js'
import { RefreshScheduler, type DueRefresh } from '../../coordinator/refresh-scheduler.js'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

const DAY = 86_400_000
const HOUR = 3_600_000
const T0 = Date.UTC(2026, 0, 5)
const HASH = 'a'.repeat(64)
const silent = { info: () => {}, warn: () => {}, error: () => {} }

function save (store: ReturnType<typeof openStore>, id: string, week: number, version?: { number: number, first: string, ageMs: number }): Report {
  const window = { from: new Date(T0 + week * 7 * DAY).toISOString(), to: new Date(T0 + (week + 1) * 7 * DAY).toISOString() }
  const report = {
    id, round: { id: `round-${id}`, kind: 'current' }, window, spec: { model: 'm', hash: HASH, vectorLength: 1 },
    agents: { invited: [], included: [], dropped: [] }, samples: { count: 0, labeled: 0, positives: 0, unlabeled: 0 },
    performance: { auc: { value: null, lower: null, upper: null } }, drift: { reference: null, features: {}, score: null }, dataQuality: {}, alerts: [],
    privacy: { threshold: null, minAgents: null },
    version: version === undefined ? { number: 1, first: id, previous: null, refresh: null } : { number: version.number, first: version.first, previous: version.first, refresh: { age: '7d', ageMs: version.ageMs, cutoff: '', round: `round-${id}` } },
    createdAt: new Date().toISOString()
  } as unknown as Report
  const round = { id: `round-${id}`, kind: 'current', window, status: 'done', reportId: id, invited: [], included: [], dropped: [], failure: null, startedAt: window.to, finishedAt: null, timings: {}, scheduledWindowKey: null } as RoundOutcome
  store.saveReport(report, round)
  return report
}

function scheduler (store: ReturnType<typeof openStore>, clock: { now: number }, run: (due: DueRefresh) => Promise<void>): RefreshScheduler {
  return new RefreshScheduler({ store, specHash: HASH, agesMs: [7 * DAY, 30 * DAY], deadlineMs: 2 * DAY, retryEveryMs: HOUR, runRefresh: async d => { await run(d) }, logger: silent, now: () => clock.now })
}

test('each declared age runs once when reached, oldest first; failures for lack of a site are retried until the deadline', async () => {
  const store = openStore(':memory:')
  save(store, 'w0', 0)
  save(store, 'w1', 1)
  const clock = { now: T0 + 2 * 7 * DAY + 7 * DAY + HOUR } // week 1 + 7 d reached; week 0 + 7 d long past (beyond the deadline)
  const ran: string[] = []
  let fail: string | null = 'ERR_REFRESH_SET_MISMATCH'
  const s = scheduler(store, clock, async (d) => {
    ran.push(`${d.firstReportId}@${d.ageMs / DAY}d`)
    if (fail !== null) throw Object.assign(new Error('a site is offline'), { code: fail })
  })
  // week 0's 7 d refresh was due 8 days ago, beyond the 2 d deadline: not run; week 1's is due now
  assert.deepEqual(s.pending().map(d => `${d.firstReportId}@${d.ageMs / DAY}d`), ['w1@7d'])
  assert.equal(await s.runDue(), 1)
  const record = store.getScheduledWindow('refresh:w1:604800000')
  assert.equal(record?.state, 'retrying')
  assert.equal(record?.failure?.code, 'ERR_REFRESH_SET_MISMATCH')
  assert.equal(await s.runDue(), 0, 'the retry waits for its time')
  clock.now += HOUR
  fail = null
  assert.equal(await s.runDue(), 1)
  assert.equal(store.getScheduledWindow('refresh:w1:604800000')?.state, 'done')
  assert.deepEqual(ran, ['w1@7d', 'w1@7d'])
  // a restart: a new scheduler over the same store does not run it again
  const again = scheduler(store, clock, async () => { throw new Error('must not run') })
  assert.equal(await again.runDue(), 0)

  // the retries stop at the deadline, then the refresh is failed for good
  const clock2 = { now: T0 + 3 * 7 * DAY + 7 * DAY }
  save(store, 'w2', 2)
  const failing = scheduler(store, clock2, async () => { throw Object.assign(new Error('offline'), { code: 'ERR_REFRESH_SET_MISMATCH' }) })
  for (let i = 0; i < 60; i++) { await failing.runDue(); clock2.now += HOUR }
  const last = store.getScheduledWindow('refresh:w2:604800000')
  assert.equal(last?.state, 'failed')
  assert.ok(last!.attempts >= 48 && last!.attempts <= 49, `attempts ${last?.attempts}`)
  // a final refusal is not retried
  save(store, 'w3', 3)
  const clock3 = { now: T0 + 4 * 7 * DAY + 7 * DAY }
  const refused = scheduler(store, clock3, async () => { throw Object.assign(new Error('done by hand'), { code: 'ERR_REFRESH_DONE' }) })
  await refused.runDue()
  assert.equal(store.getScheduledWindow('refresh:w3:604800000')?.state, 'failed')
})

test('a refresh made by hand is not scheduled again; versions: the latest stands in for the window', async () => {
  const store = openStore(':memory:')
  save(store, 'v1', 0)
  save(store, 'later', 1)
  save(store, 'v2', 0, { number: 2, first: 'v1', ageMs: 7 * DAY })
  // the refreshed window keeps its place (before `later`), listed once, as its latest version
  assert.deepEqual(store.listReports({}).map(r => r.id), ['v2', 'later'])
  assert.equal(store.latestReport()?.id, 'later')
  assert.deepEqual(store.listVersions('v1').map(r => r.id), ['v1', 'v2'])
  assert.deepEqual(store.listVersions('v2').map(r => r.id), ['v1', 'v2'])
  const clock = { now: T0 + 7 * DAY + 8 * DAY }
  const s = scheduler(store, clock, async () => { throw new Error('must not run') })
  // week 0's 7 d refresh is due but was made by hand (v2); week 1's is not due yet
  assert.deepEqual(s.pending(), [])
  clock.now += 7 * DAY
  assert.deepEqual(s.pending().map(d => `${d.firstReportId}@${d.ageMs / DAY}d`), ['later@7d'])
})
