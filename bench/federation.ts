import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { generateIdentity, writeIdentity } from '../shared/identity.js'
import { freePort } from '../shared/net/free-port.js'

export interface SyntheticFederation {
  /** Config files to pass to `fedmon coordinator --config` / `fedmon agent --config`. */
  coordinatorConfig: string
  agentConfigs: string[]
  api: string
}

/**
 * Round `r`'s window: one hour of its own (agents refuse windows shorter than their policy.minWindowMs, an hour
 * by default, and any window overlapping one they contributed to). Synthetic inputs ignore the window.
 */
/**
 * The r-th one-hour window of a bench run: consecutive hours from 10,000 hours back (recent enough for the
 * agents' default policy.maxWindowAgeMs, and room for 10,000 rounds before reaching the present).
 */
const BENCH_WINDOWS_FROM = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 10_000 * 3_600_000
export function benchWindow (r: number): { from: number, to: number } {
  return { from: BENCH_WINDOWS_FROM + r * 3_600_000, to: BENCH_WINDOWS_FROM + (r + 1) * 3_600_000 }
}

/**
 * Writes keys, the spec, the federation's roster file and the configs of a coordinator and `n` agents on
 * loopback under `root`. The agents point at no data: the benchmarks start them with FEDMON_BENCH_SYNTHETIC=1
 * (a synthetic vector per round).
 */
export async function writeSyntheticFederation (root: string, n: number, spec: unknown, phaseTimeoutMs: number): Promise<SyntheticFederation> {
  const coordinator = await generateIdentity()
  writeIdentity(join(root, 'coordinator.key'), coordinator)
  const agents = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const id = await generateIdentity()
    writeIdentity(join(root, `agent-${i}.key`), id)
    return id.peerId
  }))
  const [port, apiPort] = [await freePort(), await freePort()]
  writeFileSync(join(root, 'spec.json'), JSON.stringify(spec))
  writeFileSync(join(root, 'roster.yaml'), toYaml({ agents }))
  const coordinatorConfig = join(root, 'coordinator.json')
  writeFileSync(coordinatorConfig, JSON.stringify({
    identity: 'coordinator.key', listen: [`/ip4/127.0.0.1/tcp/${port}`], agents: 'roster.yaml', spec: 'spec.json', store: 'coordinator.db',
    api: { listen: `127.0.0.1:${apiPort}` }, privacy: { minAgents: 3 }, round: { phaseTimeoutMs }
  }))
  const agentConfigs = agents.map((_, i) => {
    const file = join(root, `agent-${i}.json`)
    writeFileSync(file, JSON.stringify({
      identity: `agent-${i}.key`, listen: ['/ip4/127.0.0.1/tcp/0'], coordinator: `/ip4/127.0.0.1/tcp/${port}/p2p/${coordinator.peerId}`,
      data: { path: 'no-data/*.jsonl' }, state: `state-${i}`, federation: { roster: 'roster.yaml' }
    }))
    return file
  })
  return { coordinatorConfig, agentConfigs, api: `http://127.0.0.1:${apiPort}` }
}
