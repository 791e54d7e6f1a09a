import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Federation, sampleRecords, isoWindow, T0, DAY } from './helpers/federation.js'
import { killAllDaemons, runCli, httpJson, waitFor } from './helpers/processes.js'
import { startHookReceiver, type HookReceiver } from './helpers/webhooks.js'
import type { RoundListEntry } from '../../shared/round-list.js'

/*
 * Window guard rails and failure visibility with real processes (a coordinator and 3 agents):
 * - `round run --window 1970-01-01..…` (seen: it burned every site's history), a window ending in the future,
 *   and one overlapping a window that has a report are refused by the coordinator before any agent is asked:
 *   one line, exit 1, no round started;
 * - a scheduled window refused by the same rails (schedule.every 40d > round.maxWindowMs) is a failure like
 *   any other: in `round list --failed`, `GET /v1/rounds?failed=true`, `fedmon status`,
 *   fedmon_round_failures_total{code} and a `fedmon.round_failed` webhook;
 * - a round every agent declines: `round run` says "3 declined" (it said "1 declined"), `round list` too.
 */

const SITES = ['site-1', 'site-2', 'site-3']
const REFERENCE = { from: T0, to: T0 + 7 * DAY }
let fed: Federation
let hooks: HookReceiver
let passed = 0

before(async () => {
  hooks = await startHookReceiver()
  fed = await Federation.create({
    sites: SITES.map((name, i) => ({ name, records: sampleRecords(40 + i, 300) })),
    // Windows shorter than 2 days are refused by every agent (a decline with the reason).
    agentPolicy: { minWindowMs: 2 * DAY },
    coordinatorExtra: {
      schedule: { every: '40d', delay: '0s', maxCatchUp: 1, startupGrace: '0s' },
      webhooks: [hooks.url]
    }
  })
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  await hooks?.close()
  if (fed !== undefined && passed === 4 && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

const roundsStarted = (): number => fed.daemons.coordinator.log().split('\n').filter(l => l.includes('"msg":"round started"')).length

async function roundRun (window: string, extra: string[] = []): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runCli(['round', 'run', '--window', window, ...extra, '--wait', '--api', fed.api], { timeoutMs: 60_000 })
}

test('a huge window, a window in the future and one overlapping a report: refused before any agent is asked', async () => {
  const huge = await roundRun('1970-01-01T00:00:00Z..2025-12-08T00:00:00Z')
  assert.equal(huge.code, 1)
  assert.match(huge.stderr, /^fedmon: coordinator: window 1970-01-01T00:00:00\.000Z\.\.2025-12-08T00:00:00\.000Z is \d+d long, longer than round\.maxWindowMs \(31d\)/)
  assert.equal(huge.stderr.trim().split('\n').length, 1, `one line: ${huge.stderr}`)
  const soon = Date.now() + DAY
  const future = await roundRun(isoWindow(soon - 2 * DAY, soon))
  assert.equal(future.code, 1)
  assert.match(future.stderr, /^fedmon: coordinator: window .* ends in the future/)
  assert.equal(roundsStarted(), 0, 'no round started: no agent was asked')

  const reference = await roundRun(isoWindow(REFERENCE.from, REFERENCE.to), ['--reference'])
  assert.equal(reference.code, 0, reference.stderr)
  const overlap = await httpJson(`${fed.api}/v1/rounds`, { method: 'POST', body: { window: { from: T0 + 6 * DAY, to: T0 + 8 * DAY } } })
  assert.equal(overlap.status, 409)
  assert.equal(overlap.body.error.code, 'ERR_WINDOW_OVERLAP')
  assert.match(overlap.body.error.message, /overlaps 2025-12-01T00:00:00\.000Z\.\.2025-12-08T00:00:00\.000Z, which already has a report \(report-/)
  const again = await roundRun(isoWindow(REFERENCE.from, REFERENCE.to))
  assert.equal(again.code, 1)
  assert.match(again.stderr, /^fedmon: coordinator: window .* overlaps .* which already has a report/)
  assert.equal(roundsStarted(), 1, 'only the reference round started')
  for (const site of SITES) assert.doesNotMatch(fed.daemons[site].log(), /overlaps/, `${site} was never asked for the overlapping window`)
  passed++
})

test('a round every agent declines: round run counts all 3 declines', async () => {
  const res = await roundRun(isoWindow(T0 + 8 * DAY, T0 + 9 * DAY))
  assert.equal(res.code, 1)
  const last = res.stderr.trim().split('\n').pop() ?? ''
  assert.match(last, /^fedmon: round \S+ failed: ERR_TOO_FEW_SURVIVORS: .*; 3 declined: 12D3Koo\w+ ERR_POLICY window of 86400000 ms is shorter than this agent's minimum 172800000 ms/)
  assert.equal(res.stderr.trim().split('\n').filter(l => / declined: ERR_POLICY /.test(l)).length, 3, `one line per declining agent: ${res.stderr}`)
  passed++
})

test('round list, GET /v1/rounds and status show the failed round and the refused scheduled window', async () => {
  const list = await runCli(['round', 'list', '--failed', '--json', '--api', fed.api])
  assert.equal(list.code, 0, list.stderr)
  const rounds = (JSON.parse(list.stdout) as { rounds: RoundListEntry[] }).rounds
  const declined = rounds.find(r => r.failure?.code === 'ERR_TOO_FEW_SURVIVORS')
  assert.deepEqual(declined?.counts, { invited: 3, included: 0, dropped: 0, declined: 3 })
  const scheduled = rounds.find(r => r.scheduledWindowKey !== null)
  assert.equal(scheduled?.id, null, 'no round ran for it')
  assert.equal(scheduled?.status, 'failed')
  assert.equal(scheduled?.failure?.code, 'ERR_WINDOW_TOO_LONG')
  assert.equal(scheduled?.monitor, 'e2e-model')
  assert.ok(rounds.every(r => r.status !== 'done'), '--failed lists failures only')

  const text = await runCli(['round', 'list', '--api', fed.api])
  assert.equal(text.code, 0, text.stderr)
  assert.match(text.stdout, /^WINDOW\s+MONITOR\s+KIND\s+STATE\s+ROUND\s+INCLUDED\s+DROPPED\s+DECLINED\s+REASON$/m)
  assert.match(text.stdout, /reference\s+done\s+round-\S+\s+3\s+0\s+0/)
  assert.match(text.stdout, /current\s+failed\s+round-\S+\s+0\s+0\s+3\s+ERR_TOO_FEW_SURVIVORS/)
  assert.match(text.stdout, /current \(scheduled\)\s+failed\s+—\s+0\s+0\s+0\s+ERR_WINDOW_TOO_LONG: window .* longer than round\.maxWindow/)
  assert.equal((await runCli(['round', 'list', '--monitor', 'another-model', '--api', fed.api])).stdout.trim(), 'no rounds yet for monitor another-model')

  const api = await httpJson(`${fed.api}/v1/rounds?failed=true&limit=1`)
  assert.equal(api.status, 200)
  assert.equal(api.body.rounds.length, 1)
  const status = await runCli(['status', '--api', fed.api])
  assert.match(status.stdout, /^failures {5}2 recent/m)
  assert.match(status.stdout, /ERR_WINDOW_TOO_LONG/)
  passed++
})

test('scheduled failures are counted in fedmon_round_failures_total and sent to the webhooks', async () => {
  const metrics = await fetch(`${fed.api}/metrics`).then(async r => await r.text())
  assert.match(metrics, /^fedmon_round_failures_total\{monitor="[^"]+",code="ERR_WINDOW_TOO_LONG"\} 1$/m)
  assert.match(metrics, /^fedmon_round_failures_total\{monitor="[^"]+",code="ERR_TOO_FEW_SURVIVORS"\} 1$/m)
  const hook = await waitFor('the round_failed webhook', () => hooks.bodies.find(b => b.type === 'fedmon.round_failed'), { timeoutMs: 10_000 })
  assert.equal(hook.kind, 'round_failed')
  assert.equal(hook.code, 'ERR_WINDOW_TOO_LONG')
  assert.equal(hook.monitor, 'e2e-model')
  assert.equal(hook.nextAttemptAt, null)
  assert.equal(Date.parse(hook.window.to) - Date.parse(hook.window.from), 40 * DAY)
  assert.match(hook.text, /scheduled round on e2e-model .* failed: ERR_WINDOW_TOO_LONG/)
  passed++
})
