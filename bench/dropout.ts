/**
 * How long a round takes to finish once a participant dies: a real federation on loopback (coordinator and N
 * agent processes of the built CLI, synthetic inputs), one agent SIGKILLing itself right after its masked
 * input was acknowledged (FEDMON_TEST_EXIT_AFTER=masked-input). `killToDoneMs` runs from the victim's last
 * log line (written just before it kills itself) to the round's `finishedAt` at the coordinator: both are
 * wall-clock times of this machine. Without dropout detection the round waits for the victim's consistency
 * signature until the phase deadline, so the figure is about the phase timeout; with it, the closed connection
 * ends the wait. Target: ≤ 2000 ms with 1 of 5 agents killed.
 *
 *   npm run -s bench -- dropout [--agents 5] [--reps 3] [--phase-timeout 30000] [--point masked-input]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnDaemon, killAllDaemons, exitWithin, waitFor, httpJson, type Daemon } from '../test/e2e/helpers/processes.js'
import { specForDim } from './network.js'
import { writeSyntheticFederation } from './federation.js'

const TARGET_MS = 2000
const HOUR = 3_600_000

/**
 * Repetition r's window: an hour of its own in the recent past (agents refuse overlapping windows, windows
 * shorter than an hour by default, and windows older than their policy.maxWindowAgeMs).
 */
function recentWindow (r: number, reps: number, now: number): { from: number, to: number } {
  const from = Math.floor(now / HOUR) * HOUR - (reps + 1 - r) * HOUR
  return { from, to: from + HOUR }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The pino `time` of the victim's "killing this agent" line: the moment just before its SIGKILL. */
function killTime (victim: Daemon): number | null {
  for (const line of victim.log().split('\n')) {
    if (!line.includes('FEDMON_TEST_EXIT_AFTER')) continue
    try { return (JSON.parse(line) as { time: number }).time } catch { /* not JSON */ }
  }
  return null
}

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '5' },
      reps: { type: 'string', default: '3' },
      'phase-timeout': { type: 'string', default: '30000' },
      point: { type: 'string', default: 'masked-input' },
      dim: { type: 'string', default: '1000' },
      keep: { type: 'boolean', default: false }
    }
  })
  const n = Number(values.agents)
  const reps = Number(values.reps)
  const phaseTimeoutMs = Number(values['phase-timeout'])
  const point = values.point as string
  const { spec, length } = specForDim(Number(values.dim))
  const startedAt = Date.now()
  const root = mkdtempSync(join(tmpdir(), 'fedmon-bench-dropout-'))
  const samples: Array<{ killToDoneMs: number, included: number, dropped: number, status: string, timings: Record<string, number> }> = []
  const failures: string[] = []
  try {
    const federation = await writeSyntheticFederation(root, n, spec, phaseTimeoutMs)
    const { api } = federation
    const agent = (i: number, env: Record<string, string> = {}): Daemon =>
      spawnDaemon(`agent-${i}`, ['agent', '--config', federation.agentConfigs[i]], { logFile: join(root, `agent-${i}-${Date.now()}.log`), env: { FEDMON_BENCH_SYNTHETIC: '1', ...env } })
    spawnDaemon('coordinator', ['coordinator', '--config', federation.coordinatorConfig], { logFile: join(root, 'coordinator.log') })
    for (let i = 1; i < n; i++) agent(i)
    const victimIndex = 0
    for (let r = 0; r < reps; r++) {
      const victim = agent(victimIndex, { FEDMON_TEST_EXIT_AFTER: point })
      await waitFor(`${n} agents online`, async () => (await httpJson(`${api}/v1/status`)).body?.agents?.online === n, { timeoutMs: 90_000, intervalMs: 100 })
      const res = await httpJson(`${api}/v1/rounds`, { method: 'POST', body: { window: recentWindow(r, reps, startedAt) } })
      if (res.status !== 202) throw new Error(`round refused: ${res.status} ${JSON.stringify(res.body)}`)
      const roundId = res.body.roundId as string
      const outcome = await waitFor(`round ${roundId} to end`, async () => {
        const { body } = await httpJson(`${api}/v1/rounds/${roundId}`)
        return body?.status !== 'running' ? body : null
      }, { timeoutMs: 6 * phaseTimeoutMs + 30_000, intervalMs: 20 })
      await exitWithin(victim, 30_000)
      const killedAt = killTime(victim)
      if (killedAt === null || outcome.finishedAt === null) {
        failures.push(`round ${roundId}: no kill time or no finishedAt (see ${root})`)
        continue
      }
      if (outcome.status !== 'done') failures.push(`${outcome.failure?.code}: ${outcome.failure?.message}`)
      samples.push({ killToDoneMs: Date.parse(outcome.finishedAt) - killedAt, included: outcome.included.length, dropped: outcome.dropped.length, status: outcome.status, timings: outcome.timings })
    }
  } finally {
    await killAllDaemons()
  }
  const killToDone = samples.map(s => s.killToDoneMs)
  const result = {
    bench: 'dropout',
    agents: n,
    killed: 1,
    killedAfter: point,
    vectorLength: length,
    phaseTimeoutMs,
    reps,
    killToDoneMs: killToDone.length > 0 ? Math.round(median(killToDone)) : null,
    killToDoneAllMs: killToDone,
    rounds: samples.map(s => ({ status: s.status, included: s.included, dropped: s.dropped, timings: s.timings })),
    failures,
    target: { killToDoneMs: TARGET_MS }
  }
  if (values.keep) process.stderr.write(`kept ${root}\n`)
  else rmSync(root, { recursive: true, force: true })
  // JSON on stdout (one line, for scripts); a readable summary on stderr.
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.stderr.write(`dropout: ${n} agents, 1 SIGKILLed after ${point}, phase timeout ${phaseTimeoutMs} ms: kill → round done median ${result.killToDoneMs} ms (all: ${killToDone.join(', ')}; target <= ${TARGET_MS})\n`)
  for (const f of failures) process.stderr.write(`  failed: ${f}\n`)
}
