/**
 * Soak: one coordinator and N agent processes (built CLI) on loopback run R consecutive rounds on distinct
 * windows. Agents use the bench-only synthetic input (FEDMON_BENCH_SYNTHETIC=1), so this measures the
 * coordinator and the protocol over time, not the scan. Prints rounds ok/failed, round latency
 * (min/median/p95/max, first half vs second half), the coordinator's RSS, V8 heap and open file descriptors
 * after warm-up and at the end (from /proc/<pid>/status, /proc/<pid>/fd and its /metrics), the reports
 * stored (GET /v1/reports) and the store's integrity after a clean stop.
 *
 *   npm run -s bench -- soak --agents 50 --rounds 20 --dim 50000 [--warmup 2] [--phase-timeout 60000] [--json] [--keep]
 *
 * Also per round: CPU seconds used by the coordinator and by all agents together (/proc/<pid>/stat).
 * FEDMON_SOAK_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles every agent.
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { spawnDaemon, stopDaemon, killAllDaemons, waitFor, httpJson, type Daemon } from '../test/e2e/helpers/processes.js'
import { specForDim } from './network.js'
import { writeSyntheticFederation, benchWindow } from './federation.js'


export interface ProcessSample { rssKiB: number, fds: number, heapUsedBytes: number | null }

/** RSS (VmRSS) and open descriptors of a live process from /proc (Linux), plus the V8 heap from /metrics. */
async function sampleProcess (pid: number, api: string): Promise<ProcessSample> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKiB = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN)
  const fds = readdirSync(`/proc/${pid}/fd`).length
  let heapUsedBytes: number | null = null
  try {
    const res = await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(10_000) })
    const m = /^nodejs_heap_size_used_bytes\s+(\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(await res.text())
    if (m !== null) heapUsedBytes = Number(m[1])
  } catch { /* metrics are optional */ }
  return { rssKiB, fds, heapUsedBytes }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 once it is gone. */
function cpuSeconds (pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from 3 (state) on
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS // utime, stime (fields 14, 15)
  } catch { return 0 }
}
const CLOCK_TICKS = 100 // sysconf(_SC_CLK_TCK) on Linux

export function percentile (xs: number[], p: number): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}

function summary (xs: number[]): { min: number | null, median: number | null, p95: number | null, max: number | null } {
  const r = (x: number | null): number | null => x === null ? null : Math.round(x)
  return { min: r(percentile(xs, 0)), median: r(percentile(xs, 0.5)), p95: r(percentile(xs, 0.95)), max: r(percentile(xs, 1)) }
}

/** Medians of RSS, open fds, latency and agents' CPU over the first and the second half of `rounds`. */
function trend (rounds: Array<{ ms: number, rssMiB: number, fds: number, cpuAgentsS: number }>): Record<string, { firstHalf: number | null, secondHalf: number | null }> {
  const half = Math.floor(rounds.length / 2)
  const halves = (pick: (r: typeof rounds[number]) => number): { firstHalf: number | null, secondHalf: number | null } => ({
    firstHalf: percentile(rounds.slice(0, half).map(pick), 0.5),
    secondHalf: percentile(rounds.slice(half).map(pick), 0.5)
  })
  return { rssMiB: halves(r => r.rssMiB), fds: halves(r => r.fds), latencyMs: halves(r => r.ms), cpuAgentsS: halves(r => r.cpuAgentsS) }
}

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '20' },
      dim: { type: 'string', default: '50000' },
      warmup: { type: 'string', default: '5' }, // rounds before the "after warm-up" sample (RSS settles in ~5 at n = 50)
      // 51 processes on the 2 cores of the reference machine: the first round (1225 Noise handshakes at
      // n = 50) takes about a minute of wall time; a deployment with one agent per host needs far less.
      'phase-timeout': { type: 'string', default: '60000' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false }
    }
  })
  // e.g. FEDMON_SOAK_AGENT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the agents
  const agentNodeArgs = process.env.FEDMON_SOAK_AGENT_NODE_ARGS?.split(' ').filter(a => a !== '') ?? []
  const n = Number(values.agents)
  const rounds = Number(values.rounds)
  const warmup = Math.min(Number(values.warmup), rounds)
  if (!(n >= 3) || !(rounds >= 1) || !(warmup >= 0)) throw new Error('--agents must be >= 3, --rounds >= 1, --warmup >= 0')
  const { spec, length } = specForDim(Number(values.dim), 'soak')
  const root = mkdtempSync(join(tmpdir(), 'fedmon-bench-soak-'))
  const latencies: number[] = []
  const perRound: Array<{ round: number, status: string, ms: number, online: number, included: number, rssMiB: number, fds: number, cpuCoordinatorS: number, cpuAgentsS: number }> = []
  const failures: string[] = []
  let afterWarmup: ProcessSample | null = null
  let atEnd: ProcessSample | null = null
  let reportsStored: number | null = null
  let storeIntegrity: string | null = null
  let storeReports: number | null = null
  let startupMs = 0
  let startupCpu = { coordinatorS: 0, agentsS: 0 }
  // A bench stopped by Ctrl-C or a timeout must not leave 50 daemons behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    void killAllDaemons().finally(() => process.kill(process.pid, signal))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const federation = await writeSyntheticFederation(root, n, spec, Number(values['phase-timeout']))
    const { api } = federation
    const t0 = performance.now()
    const coordinator: Daemon = spawnDaemon('coordinator', ['coordinator', '--config', federation.coordinatorConfig], { logFile: join(root, 'coordinator.log') })
    const agents = federation.agentConfigs.map((config, i) => spawnDaemon(`agent-${i}`, ['agent', '--config', config], { logFile: join(root, `agent-${i}.log`), env: { FEDMON_BENCH_SYNTHETIC: '1' }, nodeArgs: agentNodeArgs }))
    await waitFor(`${n} agents online (see ${root})`, async () => {
      const { exitCode, signalCode } = coordinator.child
      if (exitCode !== null || signalCode !== null) throw new Error(`the coordinator exited (${exitCode ?? signalCode}; see ${root}/coordinator.log)`)
      const { body } = await httpJson(`${api}/v1/status`)
      return body?.agents?.online === n
    }, { timeoutMs: 180_000, intervalMs: 250 })
    startupMs = performance.now() - t0
    const pid = coordinator.child.pid as number
    const agentsCpu = (): number => agents.reduce((sum, a) => sum + cpuSeconds(a.child.pid), 0)
    startupCpu = { coordinatorS: cpuSeconds(pid), agentsS: agentsCpu() }

    for (let r = 0; r < rounds; r++) {
      if (r === warmup) afterWarmup = await sampleProcess(pid, api)
      // Every agent should be back online (a dropped one reconnects) so each round has the same invited set;
      // when some are not within a minute, the round runs with those that are (recorded as `online`).
      const online = await waitFor('all agents online', async () => (await httpJson(`${api}/v1/status`)).body?.agents?.online === n, { timeoutMs: 60_000, intervalMs: 100 })
        .then(() => n, async () => (await httpJson(`${api}/v1/status`)).body?.agents?.online as number)
      const start = performance.now()
      const cpu0 = { coordinator: cpuSeconds(pid), agents: agentsCpu() }
      // Distinct, non-overlapping windows: agents refuse a window overlapping one they contributed to.
      const posted = await httpJson(`${api}/v1/rounds`, { method: 'POST', body: { window: benchWindow(r) } })
      if (posted.status !== 202) {
        failures.push(`round ${r}: refused ${posted.status} ${JSON.stringify(posted.body)}`)
        perRound.push({ round: r, status: 'refused', ms: 0, online, included: 0, rssMiB: 0, fds: 0, cpuCoordinatorS: 0, cpuAgentsS: 0 })
        continue
      }
      const outcome = await waitFor(`round ${r}`, async () => {
        const { body } = await httpJson(`${api}/v1/rounds/${posted.body.roundId as string}`)
        return body?.status !== 'running' ? body : null
      }, { timeoutMs: 10 * Number(values['phase-timeout']), intervalMs: 20 })
      const ms = performance.now() - start
      if (outcome.status === 'done') latencies.push(ms)
      else failures.push(`round ${r}: ${outcome.status} ${outcome.failure?.code as string}: ${outcome.failure?.message as string}`)
      const s = await sampleProcess(pid, api)
      const cpuCoordinatorS = Math.round((cpuSeconds(pid) - cpu0.coordinator) * 100) / 100
      const cpuAgentsS = Math.round((agentsCpu() - cpu0.agents) * 100) / 100
      perRound.push({ round: r, status: outcome.status, ms: Math.round(ms), online, included: outcome.included?.length ?? 0, rssMiB: Math.round(s.rssKiB / 1024), fds: s.fds, cpuCoordinatorS, cpuAgentsS })
    }
    atEnd = await sampleProcess(pid, api)
    afterWarmup ??= atEnd
    const listed = await httpJson(`${api}/v1/reports?last=10000`)
    if (listed.status !== 200) throw new Error(`GET /v1/reports: ${listed.status} ${JSON.stringify(listed.body)}`)
    reportsStored = (listed.body.reports as unknown[]).length
    await Promise.all([coordinator, ...agents].map(async d => await stopDaemon(d)))
    const db = new Database(join(root, 'coordinator.db'), { readonly: true, fileMustExist: true })
    try {
      storeIntegrity = db.pragma('integrity_check', { simple: true }) as string
      storeReports = db.prepare('SELECT count(*) FROM reports').pluck().get() as number
    } finally {
      db.close()
    }
  } finally {
    await killAllDaemons()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const ok = latencies.length
  const half = Math.floor(latencies.length / 2)
  const mib = (s: ProcessSample | null): number | null => s === null ? null : Math.round(s.rssKiB / 102.4) / 10
  const heapMib = (s: ProcessSample | null): number | null => s?.heapUsedBytes == null ? null : Math.round(s.heapUsedBytes / 104857.6) / 10
  const result = {
    bench: 'soak',
    agents: n,
    vectorLength: length,
    rounds,
    roundsOk: ok,
    roundsFailed: rounds - ok,
    failures,
    startupMs: Math.round(startupMs),
    startupCpuS: { coordinator: Math.round(startupCpu.coordinatorS * 10) / 10, agents: Math.round(startupCpu.agentsS * 10) / 10 },
    latencyMs: summary(latencies),
    latencyMedianMs: { firstHalf: summary(latencies.slice(0, half)).median, secondHalf: summary(latencies.slice(half)).median },
    coordinator: {
      afterWarmup: { rssMiB: mib(afterWarmup), heapUsedMiB: heapMib(afterWarmup), fds: afterWarmup?.fds ?? null, afterRounds: warmup },
      atEnd: { rssMiB: mib(atEnd), heapUsedMiB: heapMib(atEnd), fds: atEnd?.fds ?? null, afterRounds: rounds }
    },
    // Flat after warm-up? The medians of the rounds after warm-up, first half vs second half.
    afterWarmupTrend: trend(perRound.slice(warmup).filter(r => r.status !== 'refused')),
    reportsStored,
    store: { integrity: storeIntegrity, reports: storeReports },
    perRound
  }
  if (values.keep) process.stderr.write(`kept ${root}\n`)
  else rmSync(root, { recursive: true, force: true })
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return
  }
  const c = result.coordinator
  process.stdout.write(`soak: ${n} agents, m = ${length}, ${ok}/${rounds} rounds ok (startup ${result.startupMs} ms)\n`)
  process.stdout.write(`  round latency ms: min ${result.latencyMs.min}, median ${result.latencyMs.median}, p95 ${result.latencyMs.p95}, max ${result.latencyMs.max}; median first half ${result.latencyMedianMs.firstHalf}, second half ${result.latencyMedianMs.secondHalf}\n`)
  process.stdout.write(`  coordinator after ${warmup} warm-up rounds: RSS ${c.afterWarmup.rssMiB} MiB, heap ${c.afterWarmup.heapUsedMiB} MiB, ${c.afterWarmup.fds} fds; at the end: RSS ${c.atEnd.rssMiB} MiB, heap ${c.atEnd.heapUsedMiB} MiB, ${c.atEnd.fds} fds\n`)
  const t = result.afterWarmupTrend
  process.stdout.write(`  after warm-up, median of the first half -> second half: RSS ${t.rssMiB.firstHalf} -> ${t.rssMiB.secondHalf} MiB, fds ${t.fds.firstHalf} -> ${t.fds.secondHalf}, latency ${t.latencyMs.firstHalf} -> ${t.latencyMs.secondHalf} ms, agents' CPU ${t.cpuAgentsS.firstHalf} -> ${t.cpuAgentsS.secondHalf} s per round\n`)
  process.stdout.write(`  reports: ${reportsStored} via GET /v1/reports, ${storeReports} in the store (integrity_check: ${storeIntegrity})\n`)
  for (const f of failures) process.stdout.write(`  failed: ${f}\n`)
}
