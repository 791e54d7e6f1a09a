/**
 * A federation on loopback for e2e tests: keys, per-site data files, configs, a coordinator and agents as
 * child processes of the built CLI. Reusable: every path lives under one temp dir the caller owns.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { freePort, runCli, spawnDaemon, waitForHealthz, waitFor, httpJson, stopDaemon, type Daemon, type CliResult } from './processes.js'
import { mulberry32 } from '../../../shared/prng.js'
import type { RoundOutcome } from '../../../coordinator/contracts.js'
import type { Report } from '../../../shared/report.js'

export const T0 = Date.UTC(2025, 11, 1) // 2025-12-01T00:00:00Z
export const DAY = 86_400_000

export interface SampleRecord { ts: number, score: number, label: number | null, features: { x: number | null, colour: string | null } }

/** Deterministic PRNG so every run sees the same data. */
export const rng = mulberry32

function gauss (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
}

/**
 * `rows` records per week for `weeks` weeks from T0; week w's feature x is shifted by w·`shift` (drift).
 * Some labels are missing and some features null, so every counter of the layout is exercised.
 */
export function sampleRecords (seed: number, rows: number, opts: { weeks?: number, shift?: number } = {}): SampleRecord[] {
  const rand = rng(seed)
  const out: SampleRecord[] = []
  const colours = ['red', 'green', 'blue']
  for (let week = 0; week < (opts.weeks ?? 2); week++) {
    for (let i = 0; i < rows; i++) {
      const x = gauss(rand) + week * (opts.shift ?? 0.8)
      const y = rand() < 1 / (1 + Math.exp(-x)) ? 1 : 0
      const score = 1 / (1 + Math.exp(-(x + gauss(rand))))
      out.push({
        ts: T0 + week * 7 * DAY + Math.floor(rand() * 7 * DAY),
        score,
        label: rand() < 0.1 ? null : y,
        features: { x: rand() < 0.02 ? null : x, colour: rand() < 0.02 ? null : colours[Math.floor(rand() * 3)] }
      })
    }
  }
  return out
}

export function writeJsonl (file: string, records: unknown[]): void {
  writeFileSync(file, records.map(r => JSON.stringify(r)).join('\n') + '\n')
}

export const SAMPLE_SPEC = {
  model: 'e2e-model',
  score: { column: 'score', bins: 200, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.5,
  features: {
    x: { type: 'numeric', edges: [-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3] },
    colour: { type: 'categorical', categories: ['red', 'green', 'blue'] }
  }
}

/**
 * Consecutive one-day windows from T0, one per call, each used once: agents refuse a window overlapping one
 * they already contributed to. Throws once the `days` of test data are used up.
 */
export function dayWindows (days: number): () => { from: number, to: number } {
  let next = 0
  return () => {
    if (next >= days) throw new Error('out of data days for fresh windows')
    const from = T0 + next++ * DAY
    return { from, to: from + DAY }
  }
}

export function isoWindow (fromMs: number, toMs: number): string {
  return `${new Date(fromMs).toISOString()}..${new Date(toMs).toISOString()}`
}
export const REFERENCE_WINDOW = isoWindow(T0, T0 + 7 * DAY)
export const CURRENT_WINDOW = isoWindow(T0 + 7 * DAY, T0 + 14 * DAY)

export interface SiteSetup { name: string, records: unknown[] }

export interface FederationOptions {
  sites: SiteSetup[]
  /** More roster members whose keys are generated but which are not sites with data (e.g. a rogue peer). */
  extraRoster?: string[]
  /**
   * Peers whose keys are generated and which the coordinator's roster lists, but the federation's roster
   * file (the agents' copy) does not: identities the coordinator made up (sybils).
   */
  coordinatorOnly?: string[]
  /** More agent policy rules (the defaults of shared/config/agent.ts apply under them). */
  agentPolicy?: Record<string, unknown>
  spec?: unknown
  privacy?: Record<string, unknown>
  phaseTimeoutMs?: number
  coordinatorEnv?: Record<string, string>
  /** More coordinator config keys (e.g. reference, schedule, alerts); `api.tokenFile` via `apiToken`. */
  coordinatorExtra?: Record<string, unknown>
  /** Protect the API with this bearer token (written to api.token, config `api.tokenFile`). */
  apiToken?: string
  /**
   * More agent config keys per site, over the generated ones (a key set to undefined is dropped): e.g.
   * `monitors` in place of `data`. Paths are relative to the agent config (the federation's root).
   */
  agentExtra?: (site: string) => Record<string, unknown>
  root?: string
}

export class Federation {
  readonly root: string
  readonly ids: Record<string, string> = {}
  readonly keys: Record<string, string> = {}
  readonly daemons: Record<string, Daemon> = {}
  api = ''
  coordinatorAddr = ''
  coordinatorConfig = ''
  specFile = ''
  /** The federation's roster file: every agent's `federation.roster`, and the coordinator's `agents`. */
  rosterFile = ''
  private constructor (root: string, private readonly opts: FederationOptions) {
    this.root = root
  }

  /** Writes keys (via `fedmon keygen`), data and configs; starts nothing. */
  static async create (opts: FederationOptions): Promise<Federation> {
    const root = opts.root ?? mkdtempSync(join(tmpdir(), 'fedmon-e2e-'))
    const fed = new Federation(root, opts)
    await fed.setup()
    return fed
  }

  dataGlob (site: string): string {
    return join(this.root, 'data', site, '*.jsonl')
  }

  agentConfig (site: string): string {
    return join(this.root, `${site}.json`)
  }

  private async setup (): Promise<void> {
    const members = [...this.opts.sites.map(s => s.name), ...(this.opts.extraRoster ?? [])]
    const sybils = this.opts.coordinatorOnly ?? []
    const names = ['coordinator', ...members, ...sybils]
    await Promise.all(names.map(async (name) => { await this.keygen(name) }))
    // The roster file every site gets out of band; the coordinator reads the same file unless it adds sybils.
    this.rosterFile = join(this.root, 'roster.yaml')
    writeFileSync(this.rosterFile, toYaml({ agents: members.map(name => ({ id: this.ids[name], name })) }))
    const [port, apiPort] = [await freePort(), await freePort()]
    this.api = `http://127.0.0.1:${apiPort}`
    this.coordinatorAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${this.ids.coordinator}`
    this.specFile = join(this.root, 'spec.json')
    writeFileSync(this.specFile, JSON.stringify(this.opts.spec ?? SAMPLE_SPEC, null, 1))
    this.coordinatorConfig = join(this.root, 'coordinator.json')
    writeFileSync(this.coordinatorConfig, JSON.stringify({
      identity: this.keys.coordinator,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      agents: sybils.length === 0 ? 'roster.yaml' : [...members, ...sybils].map(n => this.ids[n]),
      spec: 'spec.json', // relative to the config file
      store: 'coordinator.db',
      api: { listen: `127.0.0.1:${apiPort}`, ...(this.opts.apiToken !== undefined ? { tokenFile: 'api.token' } : {}) },
      privacy: { minAgents: 3, ...this.opts.privacy },
      round: { phaseTimeoutMs: this.opts.phaseTimeoutMs ?? 5000 },
      ...this.opts.coordinatorExtra
    }, null, 1))
    if (this.opts.apiToken !== undefined) writeFileSync(join(this.root, 'api.token'), `${this.opts.apiToken}\n`, { mode: 0o600 })
    for (const site of this.opts.sites) {
      mkdirSync(join(this.root, 'data', site.name), { recursive: true })
      writeJsonl(join(this.root, 'data', site.name, 'preds.jsonl'), site.records)
      writeFileSync(this.agentConfig(site.name), JSON.stringify({
        identity: `${site.name}.key`,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        coordinator: this.coordinatorAddr,
        data: { path: `data/${site.name}/*.jsonl` },
        state: `state/${site.name}`,
        federation: { roster: 'roster.yaml' },
        ...(this.opts.agentPolicy !== undefined ? { policy: this.opts.agentPolicy } : {}),
        ...this.opts.agentExtra?.(site.name)
      }, null, 1))
    }
  }

  /** `fedmon keygen` for a new roster member; records its key file and peer id. */
  async keygen (name: string): Promise<string> {
    const file = join(this.root, `${name}.key`)
    const res = await runCli(['keygen', '--out', file])
    const id = /12D3Koo\w+/.exec(res.stdout)?.[0]
    if (res.code !== 0 || id === undefined) throw new Error(`keygen ${name} failed: ${res.stderr}`)
    this.keys[name] = file
    this.ids[name] = id
    return id
  }

  async startCoordinator (env: Record<string, string> = {}): Promise<Daemon> {
    const d = spawnDaemon('coordinator', ['coordinator', '--config', this.coordinatorConfig], { logFile: join(this.root, 'coordinator.log'), env: { ...this.opts.coordinatorEnv, ...env } })
    this.daemons.coordinator = d
    await Promise.race([
      waitForHealthz(this.api, 30_000),
      d.exited.then(({ code }) => { throw new Error(`coordinator exited (${code}) during start:\n${d.log().slice(-2000)}`) })
    ])
    return d
  }

  startAgent (site: string, env: Record<string, string> = {}, opts: { config?: string } = {}): Daemon {
    const d = spawnDaemon(site, ['agent', '--config', opts.config ?? this.agentConfig(site)], { logFile: join(this.root, `${site}.log`), env })
    this.daemons[site] = d
    return d
  }

  /** Waits until these agents are online at the coordinator and have said hello. */
  async waitForOnline (sites: string[], timeoutMs = 30_000): Promise<void> {
    const want = sites.map(s => this.ids[s])
    await waitFor(`agents online: ${sites.join(', ')}`, async () => {
      const { status, body } = await httpJson(`${this.api}/v1/agents`, { token: this.opts.apiToken })
      if (status !== 200) return false
      const online = new Set((body.agents as Array<{ peerId: string, online: boolean }>).filter(a => a.online).map(a => a.peerId))
      return want.every(id => online.has(id))
    }, { timeoutMs })
  }

  /** Waits until exactly these agents are online (no more: a killed one must have been noticed). */
  async waitForOnlineExactly (sites: string[], timeoutMs = 45_000): Promise<void> {
    const want = JSON.stringify(sites.map(s => this.ids[s]).sort())
    await waitFor(`exactly ${sites.join(', ')} online`, async () => {
      const { status, body } = await httpJson(`${this.api}/v1/agents`, { token: this.opts.apiToken })
      if (status !== 200) return false
      return JSON.stringify((body.agents as Array<{ peerId: string, online: boolean }>).filter(a => a.online).map(a => a.peerId).sort()) === want
    }, { timeoutMs, intervalMs: 100 })
  }

  /** POST /v1/rounds; throws unless the coordinator started it (202). Returns the round id. */
  async startRound (window: { from: number, to: number }, opts: { reference?: boolean, monitor?: string } = {}): Promise<string> {
    const res = await httpJson(`${this.api}/v1/rounds`, { method: 'POST', body: { window, ...(opts.reference === true ? { reference: true } : {}), ...(opts.monitor !== undefined ? { monitor: opts.monitor } : {}) }, token: this.opts.apiToken })
    if (res.status !== 202) throw new Error(`round refused: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.roundId as string
  }

  /** The round's stored outcome once it is no longer running. */
  async roundOutcome (roundId: string, timeoutMs = 60_000): Promise<RoundOutcome> {
    return await waitFor(`round ${roundId} to end`, async () => {
      const { status, body } = await httpJson(`${this.api}/v1/rounds/${roundId}`, { token: this.opts.apiToken })
      return status === 200 && body.status !== 'running' ? body as RoundOutcome : null
    }, { timeoutMs, intervalMs: 100 })
  }

  /** How many of `site`'s records (numeric `ts`, as `sampleRecords` writes them) fall in `window`. */
  recordsIn (site: string, window: { from: number, to: number }): number {
    const setup = this.opts.sites.find(s => s.name === site)
    if (setup === undefined) throw new Error(`no site ${site}`)
    return (setup.records as Array<{ ts?: unknown }>).filter(r => typeof r.ts === 'number' && r.ts >= window.from && r.ts < window.to).length
  }

  /** The round is done, its report includes exactly `included`, and counts exactly their records of `window`. */
  async assertExactReport (outcome: RoundOutcome, window: { from: number, to: number }, included: string[]): Promise<Report> {
    assert.equal(outcome.status, 'done', `round ${outcome.id}: ${JSON.stringify(outcome.failure)}`)
    const { body } = await httpJson(`${this.api}/v1/reports/${outcome.reportId as string}`, { token: this.opts.apiToken })
    const report = body as Report
    assert.deepEqual(report.agents.included.map(id => this.siteOf(id)).sort(), [...included].sort())
    assert.equal(report.samples.count, included.reduce((n, s) => n + this.recordsIn(s, window), 0), 'samples.count is exactly the included sites\' records')
    return report
  }

  /** `fedmon round run --window W [--reference] --wait --json --api …`. */
  async runRound (window: string, opts: { reference?: boolean, timeoutMs?: number } = {}): Promise<CliResult> {
    const token = this.opts.apiToken !== undefined ? ['--token-file', join(this.root, 'api.token')] : []
    return await runCli(['round', 'run', '--window', window, ...(opts.reference === true ? ['--reference'] : []), '--wait', '--json', '--api', this.api, ...token], { timeoutMs: opts.timeoutMs ?? 120_000 })
  }

  /** The bearer token header value for direct HTTP calls (undefined without a token). */
  get token (): string | undefined {
    return this.opts.apiToken
  }

  siteOf (peerId: string): string | undefined {
    return Object.entries(this.ids).find(([, id]) => id === peerId)?.[0]
  }

  async stopAll (): Promise<Record<string, { code: number | null, signal: NodeJS.Signals | null }>> {
    const entries = Object.entries(this.daemons)
    const results = await Promise.all(entries.map(async ([name, d]) => [name, await stopDaemon(d)] as const))
    return Object.fromEntries(results)
  }
}
