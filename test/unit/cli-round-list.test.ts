// `fedmon round list`, the failures in `fedmon status`, and `round run`'s count of declines — pure parts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderRoundList } from '../../bin/ui/round-list-view.js'
import { renderStatus } from '../../bin/ui/status-view.js'
import { failureMessage, settleDeclines } from '../../bin/cmds/round.js'
import { mergeRoundList, type RoundListEntry, type StoredRound, type StoredScheduledWindow } from '../../shared/round-list.js'
import type { RoundDecline, RoundOutcome } from '../../coordinator/contracts.js'

const decline = (agent: string): RoundDecline => ({ agent, code: 'ERR_POLICY', reason: 'window of 86400000 ms is shorter than this agent\'s minimum 172800000 ms', signature: 'ab'.repeat(64) })
const failedRound: StoredRound = {
  id: 'round-2', kind: 'current', window: { from: '2025-12-02T00:00:00.000Z', to: '2025-12-03T00:00:00.000Z' }, status: 'failed', reportId: null,
  invited: ['a', 'b', 'c'], included: [], dropped: [], declined: [decline('a'), decline('b'), decline('c')],
  failure: { code: 'ERR_TOO_FEW_SURVIVORS', message: 'advertised keys: at most 2 agents can still take part, need at least 3; 1 declined: a ERR_POLICY window …' },
  startedAt: '2025-12-09T00:00:01.000Z', finishedAt: '2025-12-09T00:00:02.000Z', scheduledWindowKey: null
}
const doneRound: StoredRound = { ...failedRound, id: 'round-1', status: 'done', reportId: 'report-1', included: ['a', 'b', 'c'], declined: [], failure: null, startedAt: '2025-12-09T00:00:00.000Z', window: { from: '2025-12-01T00:00:00.000Z', to: '2025-12-02T00:00:00.000Z' } }
const retrying: StoredScheduledWindow = {
  key: '1765238400000-1765242000000', window: { from: 1765238400000, to: 1765242000000 }, state: 'retrying', attempts: 2, nextAttemptAt: 1765245000000,
  failure: { code: 'ERR_TOO_FEW_AGENTS', message: 'only 0 agent(s) online, the privacy policy needs at least 3' }, claimedAt: '2025-12-09T01:00:00.000Z', updatedAt: '2025-12-09T01:05:00.000Z'
}
const ranWindow: StoredScheduledWindow = { ...retrying, key: 'k-ran', state: 'failed' }

test('the merged list: rounds and round-less scheduled windows, filtered by failure and monitor', () => {
  const withRan = [{ ...failedRound, scheduledWindowKey: 'k-ran' }, doneRound]
  const all = mergeRoundList(withRan, [retrying, ranWindow], { monitor: 'credit', limit: 20 })
  assert.deepEqual(all.map(e => [e.id, e.status]), [['round-1', 'done'], ['round-2', 'failed'], [null, 'retrying']], 'oldest first; a window that has its round is listed once')
  assert.deepEqual(all[1].counts, { invited: 3, included: 0, dropped: 0, declined: 3 })
  assert.deepEqual(mergeRoundList(withRan, [retrying], { monitor: 'credit', limit: 20, failed: true }).map(e => e.id), ['round-2', null])
  assert.deepEqual(mergeRoundList(withRan, [retrying], { monitor: 'credit', limit: 1 }).map(e => e.id), [null], 'the newest `limit`')
  assert.deepEqual(mergeRoundList(withRan, [retrying], { monitor: 'credit', filterMonitor: 'other', limit: 20 }), [])
})

test('round list: one row per round or window with state, counts and reason', () => {
  const entries = mergeRoundList([failedRound, doneRound], [retrying], { monitor: 'credit', limit: 20 })
  const text = renderRoundList(entries, { color: false })
  const lines = text.split('\n')
  assert.match(lines[0], /^WINDOW\s+MONITOR\s+KIND\s+STATE\s+ROUND\s+INCLUDED\s+DROPPED\s+DECLINED\s+REASON$/)
  assert.match(lines[1], /^2025-12-01 00:00Z → 2025-12-02 00:00Z\s+credit\s+current\s+done\s+round-1\s+3\s+0\s+0$/)
  assert.match(lines[2], /round-2\s+0\s+0\s+3\s+ERR_TOO_FEW_SURVIVORS: advertised keys/)
  assert.match(lines[3], /current \(scheduled\)\s+retrying\s+—\s+0\s+0\s+0\s+ERR_TOO_FEW_AGENTS: only 0 agent\(s\) online.* \(next try 2025-12-09 01:50Z\)$/)
  assert.equal(renderRoundList([], { color: false, failed: true, monitor: 'credit' }), 'no failed, retrying or missed rounds for monitor credit')
})

test('status shows the recent failures', () => {
  const recentFailures: RoundListEntry[] = mergeRoundList([failedRound], [retrying], { monitor: 'credit', limit: 5, failed: true })
  const text = renderStatus({
    api: 'http://127.0.0.1:7600',
    health: { status: 'ok', uptimeS: 5 },
    status: { status: 'ok', peerId: 'p', agents: { total: 3, online: 0 }, lastRound: null, nextScheduledRound: null, reference: null, recentFailures },
    agents: []
  }, { color: false, now: Date.parse('2025-12-09T02:00:00Z') })
  assert.match(text, /^failures {5}2 recent {2}\(fedmon round list --failed\)$/m)
  assert.match(text, /round-2\s+0\/0\/3\s+ERR_TOO_FEW_SURVIVORS/)
  assert.match(text, /retrying\s+scheduled\s+0\/0\/0\s+ERR_TOO_FEW_AGENTS/)
})

test('round run counts every decline: it waits for the ones recorded after the failure', async () => {
  // The round failed at the first decline; the other two arrive on the next polls.
  const first = { ...failedRound, declined: [decline('a')] } as unknown as RoundOutcome
  const polls = [[decline('a'), decline('b')], [decline('a'), decline('b'), decline('c')]]
  let calls = 0
  const client = { getRound: async () => { calls++; return { ...failedRound, declined: polls[Math.min(calls - 1, 1)] } as unknown as RoundOutcome } }
  const settled = await settleDeclines(client, first, { quietMs: 5_000, maxMs: 10_000 })
  assert.equal(settled.declined?.length, 3)
  assert.equal(calls, 2, 'stops once every invited agent has declined')
  const line = failureMessage(settled.failure, settled.declined ?? [])
  assert.match(line, /^ERR_TOO_FEW_SURVIVORS: advertised keys: at most 2 agents can still take part, need at least 3; 3 declined: a ERR_POLICY .*; b ERR_POLICY .*; c ERR_POLICY /)
  assert.doesNotMatch(line, /1 declined/)
  // Nobody declined: no wait, and the message stays as stored.
  const plain = { ...failedRound, declined: [], failure: { code: 'ERR_TIMEOUT', message: 'phase deadline' } } as unknown as RoundOutcome
  assert.equal(await settleDeclines({ getRound: async () => { throw new Error('not called') } }, plain), plain)
  assert.equal(failureMessage(plain.failure, []), 'ERR_TIMEOUT: phase deadline')
})

test('round list marks a label-refresh round with its age', () => {
  const refresh = { ...doneRound, id: 'round-3', startedAt: '2025-12-10T00:00:00.000Z', refresh: { age: '7d', ageMs: 7 * 86_400_000, of: 'report-1' } } as StoredRound
  const text = renderRoundList(mergeRoundList([doneRound, refresh], [], { monitor: 'credit', limit: 20 }), { color: false })
  const lines = text.split('\n')
  assert.match(lines[1], /credit\s+current\s+done\s+round-1/)
  assert.match(lines[2], /credit\s+current \(refresh 7d\)\s+done\s+round-3/)
})
