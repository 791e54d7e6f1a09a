/**
 * A real federation on loopback: one coordinator and N agent processes (built CLI), rounds of secure
 * aggregation over libp2p. Agents run in bench-only synthetic-input mode (FEDMON_BENCH_SYNTHETIC=1: a
 * deterministic vector of the announced length instead of a DuckDB scan), so this measures the network
 * and protocol, not the scan. Prints round latency (median, min, max) and bytes per round per agent and at
 * the coordinator (from the daemons' traffic counters, logged at shutdown).
 *
 *   npm run -s bench -- network --agents 20 --dim 50000 --rounds 5 [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { buildLayout } from '../shared/stats/layout.js'
import { MonitorSpec } from '../shared/stats/spec.js'
import { writeSyntheticFederation, benchWindow } from './federation.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedmon.js')

/** A spec whose layout has about `dim` entries: score bins found by bisection, categorical features if more is needed. */
export function specForDim (dim: number, model = 'bench'): { spec: unknown, length: number } {
  const make = (bins: number, extra: number): unknown => ({
    model,
    score: { bins },
    features: Object.fromEntries(Array.from({ length: extra }, (_, i) => [`c${i}`, { type: 'categorical', categories: Array.from({ length: 4096 }, (_, j) => `v${j}`) }]))
  })
  const lengthOf = (spec: unknown): number => buildLayout(MonitorSpec.parse(spec)).length
  let extra = 0
  while (lengthOf(make(1 << 16, extra)) < dim) extra++
  let lo = 2
  let hi = 1 << 16
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (lengthOf(make(mid, extra)) <= dim) lo = mid
    else hi = mid - 1
  }
  const spec = make(lo, extra)
  return { spec, length: lengthOf(spec) }
}

async function getJson (url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  return await res.json()
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

interface Traffic { bytesIn: number, bytesOut: number, framesIn: number, framesOut: number }

function trafficFromLog (file: string): Traffic | null {
  const lines = readFileSync(file, 'utf8').split('\n').filter(l => l.includes('"traffic"'))
  const last = lines.at(-1)
  if (last === undefined) return null
  try { return (JSON.parse(last) as { traffic: Traffic }).traffic } catch { return null }
}

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '20' },
      dim: { type: 'string', default: '50000' },
      rounds: { type: 'string', default: '5' },
      'phase-timeout': { type: 'string', default: '20000' },
      json: { type: 'boolean', default: false },
      profile: { type: 'string' }, // write V8 CPU profiles of every daemon to this directory
      keep: { type: 'boolean', default: false }
    }
  })
  const n = Number(values.agents)
  const rounds = Number(values.rounds)
  const { spec, length } = specForDim(Number(values.dim))
  const root = mkdtempSync(join(tmpdir(), 'fedmon-bench-net-'))
  const children: ChildProcess[] = []
  const start = (name: string, args: string[], env: Record<string, string> = {}): ChildProcess => {
    const fd = openSync(join(root, `${name}.log`), 'a') // straight to the file, no pipe through this process
    const nodeArgs = values.profile !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []
    const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { env: { ...process.env, FEDMON_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', fd, fd], detached: true })
    closeSync(fd)
    children.push(child)
    return child
  }
  const latencies: number[] = []
  const serverTotals: number[] = []
  const phaseTimings: Array<Record<string, number>> = []
  let ok = 0
  const failures: string[] = []
  try {
    const federation = await writeSyntheticFederation(root, n, spec, Number(values['phase-timeout']))
    const { api } = federation
    const coordinatorProcess = start('coordinator', ['coordinator', '--config', federation.coordinatorConfig])
    federation.agentConfigs.forEach((config, i) => start(`agent-${i}`, ['agent', '--config', config], { FEDMON_BENCH_SYNTHETIC: '1' }))
    const deadline = Date.now() + 60_000
    for (;;) {
      try {
        const body = await getJson(`${api}/v1/status`)
        if (body.agents?.online === n) break
      } catch { /* not up yet */ }
      if (coordinatorProcess.exitCode !== null) throw new Error(`the coordinator exited: ${readFileSync(join(root, 'coordinator.log'), 'utf8').split('\n').filter(l => l.startsWith('fedmon:')).join(' ')} (see ${root})`)
      if (Date.now() > deadline) throw new Error(`agents not online after 60 s (see ${root})`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now()
      // A window of its own per round: agents contribute each window to one sum only (anti-differencing ledger).
      const res = await fetch(`${api}/v1/rounds`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ window: benchWindow(r) }) })
      const { roundId } = await res.json() as { roundId: string }
      for (;;) {
        const outcome = await getJson(`${api}/v1/rounds/${roundId}`)
        if (outcome.status === 'done' || outcome.status === 'failed' || outcome.status === 'aborted') {
          const ms = performance.now() - t0
          if (outcome.status === 'done') { ok++; latencies.push(ms); serverTotals.push(outcome.timings?.total ?? ms); if (r > 0 && outcome.timings !== undefined) phaseTimings.push(outcome.timings) } else failures.push(`${outcome.failure?.code}: ${outcome.failure?.message}`)
          break
        }
        await new Promise(resolve => setTimeout(resolve, 10))
      }
    }
  } finally {
    for (const c of children) { try { process.kill(-(c.pid as number), 'SIGTERM') } catch {} }
    await Promise.all(children.map(async c => await new Promise(resolve => { if (c.exitCode !== null || c.signalCode !== null) resolve(null); else c.once('close', resolve) })))
  }
  const coordinatorTraffic = trafficFromLog(join(root, 'coordinator.log'))
  const agentTraffic = Array.from({ length: n }, (_, i) => trafficFromLog(join(root, `agent-${i}.log`))).filter((t): t is Traffic => t !== null)
  const per = (x: number): number => Math.round(x / Math.max(1, rounds))
  const result = {
    bench: 'network',
    agents: n,
    vectorLength: length,
    rounds,
    roundsOk: ok,
    failures,
    latencyMs: { median: latencies.length > 0 ? Math.round(median(latencies)) : null, min: latencies.length > 0 ? Math.round(Math.min(...latencies)) : null, max: latencies.length > 0 ? Math.round(Math.max(...latencies)) : null },
    // The first round also pays for the agent-to-agent connections (TCP + Noise); later rounds reuse them.
    firstRoundMs: latencies.length > 0 ? Math.round(latencies[0]) : null,
    laterRoundsMedianMs: latencies.length > 1 ? Math.round(median(latencies.slice(1))) : null,
    coordinatorRoundMs: serverTotals.length > 0 ? Math.round(median(serverTotals)) : null,
    // where a round's time goes: the coordinator's phase timings, median over the rounds after the first
    phaseMedianMs: Object.fromEntries([...new Set(phaseTimings.flatMap(t => Object.keys(t)))].map(k => [k, Math.round(median(phaseTimings.map(t => t[k]).filter(x => typeof x === 'number')))])),
    bytesPerRound: {
      coordinator: coordinatorTraffic !== null ? { in: per(coordinatorTraffic.bytesIn), out: per(coordinatorTraffic.bytesOut) } : null,
      agentMedian: agentTraffic.length > 0 ? { in: per(median(agentTraffic.map(t => t.bytesIn))), out: per(median(agentTraffic.map(t => t.bytesOut))) } : null,
      vectorBytes: length * 4
    },
    target: { latencyMs: 3000 }
  }
  if (values.keep) process.stderr.write(`kept ${root}\n`)
  else rmSync(root, { recursive: true, force: true })
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } else {
    process.stdout.write(`network: ${n} agents, m = ${length}, ${ok}/${rounds} rounds ok\n`)
    process.stdout.write(`  round latency median ${result.latencyMs.median} ms (min ${result.latencyMs.min}, max ${result.latencyMs.max}; target <= 3000); first round ${result.firstRoundMs} ms, later rounds median ${result.laterRoundsMedianMs} ms\n`)
    process.stdout.write(`  bytes per round: coordinator in ${result.bytesPerRound.coordinator?.in} out ${result.bytesPerRound.coordinator?.out}; per agent (median) in ${result.bytesPerRound.agentMedian?.in} out ${result.bytesPerRound.agentMedian?.out}; vector ${length * 4}\n`)
    for (const f of failures) process.stdout.write(`  failed: ${f}\n`)
  }
}
