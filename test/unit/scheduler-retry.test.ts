// The scheduler waits for its agents after a start (startupGrace), retries windows whose round could not
// start for lack of agents (schedule.retry, across a restart), records missed windows, and reports failures.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Scheduler, windowKey, roundFailedPayload, type ScheduledFailure } from '../../coordinator/scheduler.js'
import { openStore, SCHEMA_VERSION } from '../../coordinator/store.js'
import { FedmonError } from '../../shared/errors.js'

const H = 3_600_000
const M = 60_000
const quiet = { info () {}, warn () {}, error () {} }

function fakeClock (start: number): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

const tooFew = (): FedmonError => new FedmonError('only 0 agent(s) online, the privacy policy needs at least 3', 'ERR_TOO_FEW_AGENTS')

test('start-up grace: nothing runs until every agent is online or the grace is over', async () => {
  const store = openStore(':memory:')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12, 5))
  let online = false
  const ran: number[] = []
  const scheduler = new Scheduler({
    schedule: { every: '1h', delay: '0s', startupGrace: '60s' },
    store, now: clock.now, maxCatchUp: 1, logger: quiet,
    allAgentsOnline: () => online,
    runWindow: async (w) => { ran.push(w.from) }
  })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 0, 'the due window waits for the agents')
  assert.equal(scheduler.nextRun(), new Date(clock.now() + 60_000).toISOString(), 'next run: the end of the grace')
  clock.advance(30_000)
  assert.equal(await scheduler.runDue(), 0)
  online = true
  assert.equal(await scheduler.runDue(), 1, 'every agent online: the grace ends early')
  assert.deepEqual(ran, [Date.UTC(2026, 0, 10, 11)])
  await scheduler.stop()

  // Without the agents the grace ends on its own.
  online = false
  const later = new Scheduler({ schedule: { every: '1h', delay: '0s', startupGrace: '60s' }, store, now: clock.now, maxCatchUp: 2, logger: quiet, allAgentsOnline: () => online, runWindow: async (w) => { ran.push(w.from) } })
  later.start()
  assert.equal(await later.runDue(), 0)
  clock.advance(60_000)
  assert.equal(await later.runDue(), 1, 'the older window of the catch-up runs once the grace is over')
  await later.stop()
  store.close()
})

test('a round refused for lack of agents is retried (every, until), and a restart continues the plan', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-sched-retry-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'store.db')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12, 5))
  const window = { from: Date.UTC(2026, 0, 10, 11), to: Date.UTC(2026, 0, 10, 12) }
  const key = windowKey(window)
  const failures: ScheduledFailure[] = []
  let agents = 0
  const attempts: number[] = []
  const runWindow = async (w: { from: number }): Promise<void> => {
    attempts.push(w.from)
    if (agents < 3) throw tooFew()
  }
  const schedule = { every: '1h', delay: '0s', retry: { every: '10m', until: '30m' } }
  let store = openStore(file)
  let scheduler = new Scheduler({ schedule, store, now: clock.now, maxCatchUp: 1, logger: quiet, runWindow, onFailure: f => failures.push(f) })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 1)
  let record = store.getScheduledWindow(key)
  assert.equal(record?.state, 'retrying')
  assert.equal(record?.failure?.code, 'ERR_TOO_FEW_AGENTS')
  assert.equal(record?.nextAttemptAt, clock.now() + 10 * M)
  assert.equal(failures.length, 1)
  assert.deepEqual({ ...failures[0], message: undefined }, { window, key, code: 'ERR_TOO_FEW_AGENTS', message: undefined, attempts: 1, roundId: null, nextAttemptAt: clock.now() + 10 * M })
  assert.equal(await scheduler.runDue(), 0, 'not before the next attempt')
  assert.equal(scheduler.nextRun(), new Date(clock.now() + 10 * M).toISOString())

  // Restart: the plan is in the store.
  await scheduler.stop()
  store.close()
  clock.advance(10 * M)
  store = openStore(file)
  scheduler = new Scheduler({ schedule, store, now: clock.now, maxCatchUp: 1, logger: quiet, runWindow, onFailure: f => failures.push(f) })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 1, 'the second attempt runs after the restart')
  record = store.getScheduledWindow(key)
  assert.equal(record?.state, 'retrying')
  assert.equal(record?.attempts, 2)

  // Every agent back before the planned attempt: agentsChanged runs it now.
  agents = 3
  const online = new Scheduler({ schedule, store, now: clock.now, maxCatchUp: 1, logger: quiet, runWindow, allAgentsOnline: () => agents >= 3 })
  await scheduler.stop()
  online.start()
  await online.runDue() // nothing due yet (the attempt is planned 10 minutes on)
  assert.equal(store.getScheduledWindow(key)?.state, 'retrying')
  online.agentsChanged()
  await new Promise(resolve => setTimeout(resolve, 20))
  await online.runDue()
  assert.equal(store.getScheduledWindow(key)?.state, 'done')
  assert.equal(store.getScheduledWindow(key)?.attempts, 3)
  assert.deepEqual(attempts, [window.from, window.from, window.from])
  await online.stop()
  store.close()
})

test('retries end at `until`; other failures are final at once', async () => {
  const store = openStore(':memory:')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12, 5))
  const failures: ScheduledFailure[] = []
  const codes: Error[] = [tooFew(), tooFew(), tooFew(), new Error('the scan failed')]
  const scheduler = new Scheduler({
    schedule: { every: '1h', delay: '0s', retry: { every: '10m', until: '25m' } },
    store, now: clock.now, maxCatchUp: 1, logger: quiet, onFailure: f => failures.push(f),
    runWindow: async () => { throw codes.shift() ?? new Error('unexpected') }
  })
  scheduler.start()
  await scheduler.runDue()
  clock.advance(10 * M)
  await scheduler.runDue()
  clock.advance(10 * M) // 20 min after the first attempt: one more would be at 30 min, past `until`
  await scheduler.runDue()
  assert.deepEqual(failures.map(f => [f.attempts, f.nextAttemptAt !== null]), [[1, true], [2, true], [3, false]])
  const key = windowKey({ from: Date.UTC(2026, 0, 10, 11), to: Date.UTC(2026, 0, 10, 12) })
  assert.equal(store.getScheduledWindow(key)?.state, 'failed')
  clock.advance(H)
  assert.equal(await scheduler.runDue(), 1, 'the next window runs')
  assert.equal(failures.length, 4)
  assert.deepEqual([failures[3].code, failures[3].nextAttemptAt], ['ERR_ROUND_FAILED', null], 'a failure other than too few agents is final')

  // A round that reached the agents and failed, or a refused window, is never retried.
  const final = new Scheduler({
    schedule: { every: '1h', delay: '0s' },
    store, now: clock.now, maxCatchUp: 1, logger: quiet, onFailure: f => failures.push(f),
    runWindow: async () => { throw Object.assign(new FedmonError('scheduled round r-1 failed: too few survivors', 'ERR_TOO_FEW_SURVIVORS'), { roundId: 'r-1' }) }
  })
  clock.advance(H)
  final.start()
  assert.equal(await final.runDue(), 1)
  assert.deepEqual([failures[4].code, failures[4].roundId, failures[4].nextAttemptAt], ['ERR_TOO_FEW_SURVIVORS', 'r-1', null])
  await scheduler.stop()
  await final.stop()
  store.close()
})

test('windows closed during downtime beyond maxCatchUp are recorded as missed (and a larger bound still runs them)', async () => {
  const store = openStore(':memory:')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 3, 5))
  const ran: number[] = []
  const make = (maxCatchUp: number): Scheduler => new Scheduler({ schedule: { every: '1h', delay: '0s' }, store, now: clock.now, maxCatchUp, logger: quiet, runWindow: async (w) => { ran.push(new Date(w.from).getUTCHours()) } })
  let s = make(1)
  s.start()
  await s.runDue() // 02:00
  await s.stop()
  clock.advance(5 * H) // 08:05: 03:00–07:00 closed meanwhile
  s = make(2)
  s.start()
  await s.runDue()
  assert.deepEqual(ran, [2, 6, 7])
  const missed = store.listScheduledWindows({ states: ['missed'] })
  assert.deepEqual(missed.map(w => new Date(w.window.from).getUTCHours()), [3, 4, 5])
  assert.ok(missed.every(w => w.failure?.code === 'ERR_WINDOW_MISSED'))
  await s.stop()
  s = make(6)
  s.start()
  await s.runDue()
  assert.deepEqual(ran, [2, 6, 7, 3, 4, 5], 'a missed window was never run: a larger maxCatchUp reaches it')
  assert.equal(store.listScheduledWindows({ states: ['missed'] }).length, 0)
  await s.stop()
  store.close()
})

test('the round_failed webhook payload names the window, the code and what happens next', () => {
  const window = { from: Date.UTC(2026, 0, 10, 11), to: Date.UTC(2026, 0, 10, 12) }
  const p = roundFailedPayload({ window, key: windowKey(window), code: 'ERR_TOO_FEW_AGENTS', message: 'only 0 agent(s) online', attempts: 1, roundId: null, nextAttemptAt: window.to + 10 * M }, 'credit-model')
  assert.equal(p.type, 'fedmon.round_failed')
  assert.equal(p.kind, 'round_failed')
  assert.deepEqual(p.window, { from: '2026-01-10T11:00:00.000Z', to: '2026-01-10T12:00:00.000Z' })
  assert.equal(p.code, 'ERR_TOO_FEW_AGENTS')
  assert.equal(p.nextAttemptAt, '2026-01-10T12:10:00.000Z')
  assert.match(p.text, /credit-model .* failed: ERR_TOO_FEW_AGENTS: only 0 agent\(s\) online; retrying at 2026-01-10T12:10:00.000Z/)
})

test('a version-2 store keeps its scheduled windows through the migration: done stays done, failures keep their reason', async (t) => {
  const { default: Database } = await import('better-sqlite3')
  const { migrate, MIGRATIONS } = await import('../../coordinator/store.js')
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-sched-migrate-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'store.db')
  const db = new Database(file)
  migrate(db, MIGRATIONS.slice(0, 2))
  const insert = db.prepare('INSERT INTO scheduled_windows (key, claimed_at, round_id, note) VALUES (?, ?, NULL, ?)')
  insert.run(`${H}-${2 * H}`, '2026-01-01T00:00:00.000Z', 'done')
  insert.run(`${2 * H}-${3 * H}`, '2026-01-01T00:00:00.000Z', 'failed: only 0 agent(s) online')
  db.close()
  const store = openStore(file)
  assert.equal(store.schemaVersion(), SCHEMA_VERSION)
  const [done, failed] = store.listScheduledWindows()
  assert.deepEqual([done.state, done.window], ['done', { from: H, to: 2 * H }])
  assert.deepEqual([failed.state, failed.failure?.message], ['failed', 'only 0 agent(s) online'])
  assert.equal(store.hasScheduledWindow(failed.key), true, 'still never run twice')
  assert.equal(store.latestScheduledWindowEnd(), 3 * H)
  store.close()
})
