import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, writeJsonl } from './helpers/federation.js'
import { killAllDaemons, killProcessGroup, runCli, sleep, waitFor } from './helpers/processes.js'
import { latestDueWindow, windowKey } from '../../coordinator/scheduler.js'
import type { RoundListEntry } from '../../shared/round-list.js'

/*
 * Seen: after a coordinator restart the missed window was caught up ~1 s after start, before any agent had
 * reconnected (their backoff had grown), failed with "only 0 agent(s) online" and was never retried.
 * Here: 3 agents, a schedule of 4-second windows over live data; the coordinator is SIGKILLed and restarted
 * while windows are due. The window due at the restart must end up `done` with every agent included: the
 * scheduler waits for the agents (startupGrace, ended early once all are online) or retries.
 */

const SITES = ['site-1', 'site-2', 'site-3']
const EVERY_MS = 4000
let fed: Federation | undefined
let passed = false

after(async () => {
  await killAllDaemons()
  if (fed !== undefined && passed && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

async function rounds (f: Federation): Promise<RoundListEntry[]> {
  const res = await runCli(['round', 'list', '--json', '--last', '100', '--api', f.api], { timeoutMs: 20_000 })
  assert.equal(res.code, 0, res.stderr)
  return (JSON.parse(res.stdout) as { rounds: RoundListEntry[] }).rounds
}

test('a coordinator restarted while a window is due: the caught-up round waits for the agents and succeeds', async (t) => {
  const start = Date.now()
  // Every site logs a record every 100 ms for three minutes: each 4-second window holds 40 of them.
  const live = (seed: number): unknown[] => sampleRecords(seed, 1800, { weeks: 1 }).map((r, k) => ({ ...r, ts: start + k * 100 }))
  fed = await Federation.create({
    sites: SITES.map((name, i) => ({ name, records: live(700 + i) })),
    agentPolicy: { minWindowMs: EVERY_MS },
    phaseTimeoutMs: 5000,
    coordinatorExtra: { schedule: { every: '4s', delay: '0s', maxCatchUp: 5, startupGrace: '30s', retry: { every: '2s', until: '1m' } } }
  })
  const f = fed
  await f.startCoordinator()
  for (const site of SITES) f.startAgent(site)
  await f.waitForOnline(SITES)
  await waitFor('a first scheduled round done', async () => (await rounds(f)).some(r => r.scheduledWindowKey !== null && r.status === 'done'), { timeoutMs: 30_000, intervalMs: 500 })

  killProcessGroup(f.daemons.coordinator, 'SIGKILL')
  await f.daemons.coordinator.exited
  await sleep(4000) // the agents' redials fail meanwhile; a window closes
  const logBefore = f.daemons.coordinator.log().length
  const restartedAt = Date.now()
  await f.startCoordinator()
  const due = latestDueWindow(restartedAt, EVERY_MS, 0)
  assert.ok(due !== null)
  const key = windowKey(due)

  const entry = await waitFor(`the window due at the restart (${key}) to end`, async () => {
    const e = (await rounds(f)).find(r => r.scheduledWindowKey === key)
    return e !== undefined && e.status !== 'running' && e.status !== 'retrying' ? e : null
  }, { timeoutMs: 40_000, intervalMs: 500 })
  assert.equal(entry.status, 'done', `the caught-up window: ${JSON.stringify(entry.failure)}`)
  assert.equal(entry.counts.included, SITES.length, 'every agent is in it')
  const log = f.daemons.coordinator.log().slice(logBefore)
  const reconnected = log.split('\n').filter(l => l.includes('"msg":"agent hello"')).length
  t.diagnostic(`agents said hello after the restart: ${reconnected}; attempts at the window: ${entry.attempts ?? 1}`)
  const failures = (await rounds(f)).filter(r => r.status !== 'done' && r.status !== 'running' && Date.parse(r.startedAt) >= restartedAt)
  t.diagnostic(`failed or retried after the restart: ${JSON.stringify(failures.map(r => [r.scheduledWindowKey, r.status, r.failure?.code]))}`)
  passed = true
})
