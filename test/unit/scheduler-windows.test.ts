import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Scheduler, dueWindows, latestDueWindow, nextDueTime, windowKey, ScheduleConfigSchema } from '../../coordinator/scheduler.js'
import { parseDuration, formatDuration } from '../../coordinator/duration.js'
import { openStore } from '../../coordinator/store.js'

const H = 3_600_000
const M = 60_000
const quiet = { info () {}, warn () {}, error () {} }

test('parseDuration accepts the usual units and rejects the rest', () => {
  assert.equal(parseDuration('30s'), 30_000)
  assert.equal(parseDuration('15m'), 15 * M)
  assert.equal(parseDuration('1h'), H)
  assert.equal(parseDuration('1d'), 24 * H)
  assert.equal(parseDuration('1h30m'), 90 * M)
  assert.equal(parseDuration('250ms'), 250)
  assert.equal(parseDuration('0s', { allowZero: true }), 0)
  for (const bad of ['', '0s', '1', 'h', '1.5h', '-1h', '1 h', '1y', 'one hour']) {
    assert.throws(() => parseDuration(bad), /invalid duration/, bad)
  }
  assert.equal(formatDuration(90 * M), '1h30m')
  assert.equal(formatDuration(0), '0s')
})

test('the schedule config schema validates durations and defaults the delay', () => {
  assert.deepEqual(ScheduleConfigSchema.parse({ every: '1h' }), { every: '1h', delay: '0s', startupGrace: '60s', retry: { every: '5m', until: '6h' }, labelRefreshDeadline: '14d', labelRefreshRetry: '1h' })
  assert.deepEqual(ScheduleConfigSchema.parse({ every: '1h', startupGrace: '0s', retry: false }), { every: '1h', delay: '0s', startupGrace: '0s', retry: false, labelRefreshDeadline: '14d', labelRefreshRetry: '1h' })
  assert.deepEqual(ScheduleConfigSchema.parse({ every: '1h', retry: { every: '1m' } }).retry, { every: '1m', until: '6h' })
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1h', retry: { every: '0s' } }).success, false)
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1h', retry: { every: '1m', often: true } }).success, false)
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1h', startupGrace: 'a while' }).success, false)
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1x' }).success, false)
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1h', delay: 'soon' }).success, false)
  assert.equal(ScheduleConfigSchema.safeParse({ every: '1h', extra: 1 }).success, false)
})

test('windows are aligned to `every` on the epoch and due `delay` after they close', () => {
  const t0 = Date.UTC(2026, 0, 10, 12, 0, 0) // 12:00 exactly
  assert.equal(latestDueWindow(t0 + 14 * M, H, 15 * M)?.to, t0 - H) // 12:14: 11:00–12:00 not yet due
  assert.deepEqual(latestDueWindow(t0 + 15 * M, H, 15 * M), { from: t0 - H, to: t0 }) // 12:15: due
  assert.equal(nextDueTime(t0 + 14 * M, H, 15 * M), t0 + 15 * M)
  assert.equal(nextDueTime(t0 + 15 * M, H, 15 * M), t0 + H + 15 * M)
  assert.equal(latestDueWindow(1000, H, 0), null)
  const due = dueWindows({ now: t0 + 20 * M, everyMs: H, delayMs: 15 * M, maxCatchUp: 3, isDone: () => false })
  assert.deepEqual(due, [{ from: t0 - 3 * H, to: t0 - 2 * H }, { from: t0 - 2 * H, to: t0 - H }, { from: t0 - H, to: t0 }])
  for (const w of due) {
    assert.equal(w.from % H, 0)
    assert.equal(w.to - w.from, H)
  }
  // A daily window is aligned on UTC midnight.
  const daily = dueWindows({ now: Date.UTC(2026, 0, 10, 0, 30), everyMs: 24 * H, delayMs: 30 * M, maxCatchUp: 1, isDone: () => false })
  assert.deepEqual(daily, [{ from: Date.UTC(2026, 0, 9), to: Date.UTC(2026, 0, 10) }])
})

test('done windows are skipped and catch-up is bounded', () => {
  const now = Date.UTC(2026, 0, 10, 12, 5)
  const done = new Set([windowKey({ from: Date.UTC(2026, 0, 10, 10), to: Date.UTC(2026, 0, 10, 11) })])
  const due = dueWindows({ now, everyMs: H, delayMs: 0, maxCatchUp: 4, isDone: k => done.has(k) })
  assert.deepEqual(due.map(w => new Date(w.from).getUTCHours()), [8, 9, 11])
  assert.equal(dueWindows({ now, everyMs: H, delayMs: 0, maxCatchUp: 1000, isDone: () => false }).length, 1000)
})

function fakeClock (start: number): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

test('Scheduler with a fake clock: runs each closed window once, catches up after downtime, bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-sched-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'store.db')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 12, 20))
  const ran: string[] = []
  const runWindow = async (w: { from: number, to: number }, key: string): Promise<void> => {
    assert.equal(key, windowKey(w))
    ran.push(new Date(w.from).toISOString().slice(11, 16))
  }

  let store = openStore(file)
  let scheduler = new Scheduler({ schedule: { every: '1h', delay: '15m' }, store, runWindow, now: clock.now, maxCatchUp: 3, logger: quiet })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 3)
  assert.deepEqual(ran, ['09:00', '10:00', '11:00'])
  assert.equal(await scheduler.runDue(), 0, 'nothing new is due')
  assert.equal(scheduler.nextRun(), '2026-01-10T13:15:00.000Z')

  clock.advance(55 * M) // 13:15: the 12:00–13:00 window is due
  assert.equal(await scheduler.runDue(), 1)
  assert.deepEqual(ran.slice(3), ['12:00'])

  // Downtime: stop, close the store, come back 10 hours later with a new Scheduler over the same store.
  await scheduler.stop()
  assert.equal(scheduler.nextRun(), null)
  store.close()
  clock.advance(10 * H)
  store = openStore(file)
  scheduler = new Scheduler({ schedule: { every: '1h', delay: '15m' }, store, runWindow, now: clock.now, maxCatchUp: 3, logger: quiet })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 3, 'catch-up is bounded by maxCatchUp')
  assert.deepEqual(ran.slice(4), ['20:00', '21:00', '22:00'])

  // Restart again without time passing: nothing runs twice.
  await scheduler.stop()
  store.close()
  store = openStore(file)
  scheduler = new Scheduler({ schedule: { every: '1h', delay: '15m' }, store, runWindow, now: clock.now, maxCatchUp: 14, logger: quiet })
  scheduler.start()
  const before = ran.length
  const n = await scheduler.runDue()
  // A larger bound (14 windows: 09:00–22:00) reaches the older missed ones (13:00–19:00), never one that already ran.
  assert.equal(n, 7)
  assert.deepEqual(ran.slice(before), ['13:00', '14:00', '15:00', '16:00', '17:00', '18:00', '19:00'])
  assert.equal(new Set(ran).size, ran.length, 'no window ran twice')
  await scheduler.stop()
  store.close()
})

test('a failed round still counts as run (never retried), and later windows still run', async () => {
  const store = openStore(':memory:')
  const clock = fakeClock(Date.UTC(2026, 0, 10, 3, 0))
  const calls: number[] = []
  const scheduler = new Scheduler({
    schedule: { every: '1h', delay: '0s' },
    store,
    maxCatchUp: 2,
    now: clock.now,
    logger: quiet,
    runWindow: async (w) => {
      calls.push(w.from)
      if (calls.length === 1) throw new Error('too few agents online')
    }
  })
  scheduler.start()
  assert.equal(await scheduler.runDue(), 2)
  assert.equal(await scheduler.runDue(), 0)
  assert.equal(calls.length, 2)
  await scheduler.stop()
  store.close()
})

test('the timer drives runs on its own and stop() waits for the round in flight', async () => {
  const store = openStore(':memory:')
  let release!: () => void
  const started = new Promise<void>(resolve => {
    const scheduler = new Scheduler({
      schedule: { every: '1h', delay: '0s' },
      store,
      maxCatchUp: 1,
      logger: quiet,
      runWindow: async (_w, _k, signal) => {
        resolve()
        await new Promise<void>(r => { release = r; signal.addEventListener('abort', () => r()) })
      }
    })
    scheduler.start()
    ;(globalThis as { __sched?: Scheduler }).__sched = scheduler
  })
  await started
  const scheduler = (globalThis as { __sched?: Scheduler }).__sched as Scheduler
  assert.ok(scheduler.nextRun() !== null)
  await scheduler.stop() // aborts the signal, the fake round returns
  release()
  assert.equal(scheduler.nextRun(), null)
  store.close()
})
