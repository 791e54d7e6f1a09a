// The coordinator's window guard rails: too long, in the future, overlapping a report — each refused with a
// reason; the store finds the overlapping reports.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkWindowRails, WindowRefusedError, DEFAULT_MAX_WINDOW_MS } from '../../coordinator/window-rails.js'
import { openStore } from '../../coordinator/store.js'
import { CoordinatorConfig } from '../../shared/config/coordinator.js'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 0, 10)
const refused = (code: string, re: RegExp) => (err: unknown): boolean => err instanceof WindowRefusedError && err.code === code && re.test(err.message)

test('a window longer than round.maxWindowMs, ending in the future, or overlapping a report is refused', () => {
  const ok = { from: NOW - 7 * DAY, to: NOW - DAY }
  checkWindowRails({ window: ok, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [] })
  assert.equal(DEFAULT_MAX_WINDOW_MS, 31 * DAY)
  assert.throws(() => checkWindowRails({ window: { from: 0, to: NOW }, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [] }),
    refused('ERR_WINDOW_TOO_LONG', /^window 1970-01-01T00:00:00\.000Z\.\.2026-01-10T00:00:00\.000Z is 20463d long, longer than round\.maxWindowMs \(31d\)/))
  checkWindowRails({ window: { from: NOW - 31 * DAY, to: NOW }, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [] })
  assert.throws(() => checkWindowRails({ window: { from: NOW - DAY, to: NOW + 1 }, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [] }),
    refused('ERR_WINDOW_IN_FUTURE', /ends in the future \(coordinator clock 2026-01-10T00:00:00\.000Z\)/))
  const report = { reportId: 'report-1', kind: 'reference', window: { from: new Date(NOW - 3 * DAY).toISOString(), to: new Date(NOW - 2 * DAY).toISOString() } }
  assert.throws(() => checkWindowRails({ window: ok, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [report] }),
    refused('ERR_WINDOW_OVERLAP', /overlaps 2026-01-07T00:00:00\.000Z\.\.2026-01-08T00:00:00\.000Z, which already has a report \(report-1, reference\)/))
  // The hook for declared label-refresh rounds: an exempted report does not refuse the window.
  checkWindowRails({ window: ok, now: NOW, maxWindowMs: DEFAULT_MAX_WINDOW_MS, overlapping: [report], isDeclaredRefresh: r => r.reportId === 'report-1' })
})

test('round.maxWindowMs: default 31 days, configurable, validated', () => {
  const base = { identity: 'k', agents: ['12D3KooWLRPJAA5o6Z6ggXfKSB5kxTrvJVNGUdQ2T3JTJnMpt7wD'], spec: 's', store: 'd' }
  const parsed = CoordinatorConfig.safeParse(base)
  if (!parsed.success) { assert.fail(parsed.error.message); return }
  assert.equal(parsed.data.round.maxWindowMs, 31 * DAY)
  const week = CoordinatorConfig.safeParse({ ...base, round: { maxWindowMs: 7 * DAY } })
  assert.equal(week.success && week.data.round.maxWindowMs, 7 * DAY)
  assert.equal(week.success && week.data.round.phaseTimeoutMs, 30_000)
  assert.equal(CoordinatorConfig.safeParse({ ...base, round: { maxWindowMs: 'a month' } }).success, false)
})

test('store.reportsOverlapping finds exactly the reports whose window intersects [from, to)', () => {
  const store = openStore(':memory:')
  const iso = (t: number): string => new Date(t).toISOString()
  const save = (id: string, from: number, to: number): void => {
    const round: RoundOutcome = { id: `round-${id}`, kind: 'current', window: { from: iso(from), to: iso(to) }, status: 'done', reportId: id, invited: [], included: [], dropped: [], failure: null, startedAt: iso(NOW), finishedAt: iso(NOW), timings: {}, scheduledWindowKey: null }
    const report = { id, round: { id: round.id, kind: 'current' }, window: round.window, createdAt: iso(NOW) } as unknown as Report
    store.saveReport(report, round)
  }
  save('a', NOW - 10 * DAY, NOW - 9 * DAY)
  save('b', NOW - 9 * DAY, NOW - 8 * DAY)
  assert.deepEqual(store.reportsOverlapping({ from: NOW - 9 * DAY, to: NOW - 8 * DAY }).map(r => r.reportId), ['b'], 'touching windows do not overlap')
  assert.deepEqual(store.reportsOverlapping({ from: NOW - 9 * DAY - 1, to: NOW - 9 * DAY + 1 }).map(r => r.reportId), ['a', 'b'])
  assert.deepEqual(store.reportsOverlapping({ from: NOW - 8 * DAY, to: NOW }), [])
  assert.deepEqual(store.reportsOverlapping({ from: 0, to: NOW })[0], { reportId: 'a', roundId: 'round-a', kind: 'current', window: { from: iso(NOW - 10 * DAY), to: iso(NOW - 9 * DAY) } })
  store.close()
})
