/**
 * Soak: one coordinator and N agent processes (built CLI) on loopback run R consecutive rounds on distinct
 * windows. Agents use the bench-only synthetic input (FEDMON_BENCH_SYNTHETIC=1), so this measures the
 * coordinator and the protocol over time, not the scan. Prints rounds ok/failed, round latency
 * (min/median/p95/max, first half vs second half), the coordinator's RSS, V8 heap and open file descriptors
 * after warm-up and at the end (from /proc/<pid>/status, /proc/<pid>/fd and its /metrics), the reports
 * stored (GET /v1/reports) and the store's integrity after a clean stop.
 *
 *   npm run -s bench -- soak --agents 50 --rounds 20 --dim 50000 [--warmup 2] [--json] [--keep]
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { spawnDaemon, stopDaemon, killAllDaemons, waitFor, httpJson, type Daemon } from '../test/e2e/helpers/processes.js'
import { specForDim } from './network.js'
import { writeSyntheticFederation } from './federation.js'


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

export function percentile (xs: number[], p: number): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}

function summary (xs: number[]): { min: number | null, median: number | null, p95: number | null, max: number | null } {
  const r = (x: number | null): number | null => x === null ? null : Math.round(x)
  return { min: r(percentile(xs, 0)), median: r(percentile(xs, 0.5)), p95: r(percentile(xs, 0.95)), max: r(percentile(xs, 1)) }
}

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '20' },
      dim: { type: 'string', default: '50000' },
      warmup: { type: 'string', default: '2' }, // rounds before the "after warm-up" sample
      'phase-timeout': { type: 'string', default: '30000' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false }
    }
  })
  const n = Number(values.agents)
  const rounds = Number(values.rounds)
  const warmup = Math.min(Number(values.warmup), rounds)
  if (!(n >= 3) || !(rounds >= 1) || !(warmup >= 0)) throw new Error('--agents must be >= 3, --rounds >= 1, --warmup >= 0')
  const { spec, length } = specForDim(Number(values.dim), 'soak')
  const root = mkdtempSync(join(tmpdir(), 'fedmon-bench-soak-'))
  const latencies: number[] = []
  const perRound: Array<{ round: number, status: string, ms: number, online: number, included: number, rssMiB: number, fds: number }> = []
  const failures: string[] = []
  let afterWarmup: ProcessSample | null = null
  let atEnd: ProcessSample | null = null
  let reportsStored: number | null = null
  let storeIntegrity: string | null = null
  let storeReports: number | null = null
  let startupMs = 0
  try {
    const federation = await writeSyntheticFederation(root, n, spec, Number(values['phase-timeout']))
    const { api } = federation
    const t0 = performance.now()
    const coordinator: Daemon = spawnDaemon('coordinator', ['coordinator', '--config', federation.coordinatorConfig], { logFile: join(root, 'coordinator.log') })
    federation.agentConfigs.forEach((config, i) => spawnDaemon(`agent-${i}`, ['agent', '--config', config], { logFile: join(root, `agent-${i}.log`), env: { FEDMON_BENCH_SYNTHETIC: '1' } }))
    await waitFor(`${n} agents online (see ${root})`, async () => {
      if (coordinator.child.exitCode !== null) throw new Error(`the coordinator exited (see ${root}/coordinator.log)`)
      const { body } = await httpJson(`${api}/v1/status`)
      return body?.agents?.online === n
    }, { timeoutMs: 180_000, intervalMs: 250 })
    startupMs = performance.now() - t0
    const pid = coordinator.child.pid as number

    for (let r = 0; r < rounds; r++) {
      if (r === warmup) afterWarmup = await sampleProcess(pid, api)
      // Every agent should be back online (a dropped one reconnects) so each round has the same invited set;
      // when some are not within a minute, the round runs with those that are (recorded as `online`).
      const online = await waitFor('all agents online', async () => (await httpJson(`${api}/v1/status`)).body?.agents?.online === n, { timeoutMs: 60_000, intervalMs: 100 })
        .then(() => n, async () => (await httpJson(`${api}/v1/status`)).body?.agents?.online as number)
      const start = performance.now()
      // Distinct, non-overlapping windows: agents refuse a window overlapping one they contributed to.
      const posted = await httpJson(`${api}/v1/rounds`, { method: 'POST', body: { window: { from: r * 1000, to: r * 1000 + 1000 } } })
      if (posted.status !== 202) {
        failures.push(`round ${r}: refused ${posted.status} ${JSON.stringify(posted.body)}`)
        perRound.push({ round: r, status: 'refused', ms: 0, online, included: 0, rssMiB: 0, fds: 0 })
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
      perRound.push({ round: r, status: outcome.status, ms: Math.round(ms), online, included: outcome.included?.length ?? 0, rssMiB: Math.round(s.rssKiB / 1024), fds: s.fds })
    }
    atEnd = await sampleProcess(pid, api)
    afterWarmup ??= atEnd
    const listed = await httpJson(`${api}/v1/reports?last=10000`)
    if (listed.status !== 200) throw new Error(`GET /v1/reports: ${listed.status} ${JSON.stringify(listed.body)}`)
    reportsStored = (listed.body.reports as unknown[]).length
    await stopDaemon(coordinator)
    const db = new Database(join(root, 'coordinator.db'), { readonly: true, fileMustExist: true })
    try {
      storeIntegrity = db.pragma('integrity_check', { simple: true }) as string
      storeReports = db.prepare('SELECT count(*) FROM reports').pluck().get() as number
    } finally {
      db.close()
    }
  } finally {
    await killAllDaemons()
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
    latencyMs: summary(latencies),
    latencyMedianMs: { firstHalf: summary(latencies.slice(0, half)).median, secondHalf: summary(latencies.slice(half)).median },
    coordinator: {
      afterWarmup: { rssMiB: mib(afterWarmup), heapUsedMiB: heapMib(afterWarmup), fds: afterWarmup?.fds ?? null, afterRounds: warmup },
      atEnd: { rssMiB: mib(atEnd), heapUsedMiB: heapMib(atEnd), fds: atEnd?.fds ?? null, afterRounds: rounds }
    },
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
  process.stdout.write(`  reports: ${reportsStored} via GET /v1/reports, ${storeReports} in the store (integrity_check: ${storeIntegrity})\n`)
  for (const f of failures) process.stdout.write(`  failed: ${f}\n`)
}
