/** The agent's config file (YAML or JSON). Paths are relative to the config file. */
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { DataSource } from '../stats/data-source.js'
import { loadConfigFile, resolveFrom } from './load.js'
import { isPeerIdString } from '../identity.js'
import { AgentPolicy } from '../secagg/policy.js'
import { loadRosterFile, type FederationRoster } from './roster.js'
import { dialRuleProblem } from '../net/dial-policy.js'

function isMultiaddr (s: string): boolean {
  try {
    multiaddr(s)
    return true
  } catch {
    return false
  }
}

export const ListenAddrs = z.array(z.string().refine(isMultiaddr, 'not a multiaddr (e.g. /ip4/127.0.0.1/tcp/0)')).min(1)

/**
 * Defaults of the agent's policy (shared/secagg/policy.ts), applied under whatever the config sets: a window
 * may end at most a minute after this host's clock (clock skew), and an Announce older than ten minutes is
 * stale or replayed. A window is at least an hour long and holds at least 10 of this site's records: a
 * narrower window, or one with a handful of records, comes close to singling records out. A window is at
 * most 31 days long (each window is aggregated once, so one huge window would use up the site's whole history)
 * and starts at most two years back (older than that is rarely still monitoring; ledger entries that old are
 * forgotten, which is safe only because such windows are refused).
 */
export const AGENT_POLICY_DEFAULTS = {
  maxWindowLeadMs: 60_000,
  maxAnnounceAgeMs: 600_000,
  minWindowMs: 3_600_000,
  maxWindowMs: 31 * 86_400_000,
  maxWindowAgeMs: 730 * 86_400_000,
  minRecords: 10,
  maxBadRecordFraction: 0.05
} as const satisfies AgentPolicy

export const CoordinatorAddr = z.string().refine(isMultiaddr, 'not a multiaddr').refine((s) => {
  try {
    const id = multiaddr(s).getComponents().find(c => c.name === 'p2p')?.value
    return id !== undefined && isPeerIdString(id)
  } catch {
    return false
  }
}, 'must end with /p2p/<coordinator peer id>')

/**
 * The federation this site belongs to, known independently of the coordinator: `roster` is the roster file
 * (shared/config/roster.ts) every site receives out of band; `rosterSha256` optionally pins its bytes.
 */
export const FederationConfig = z.object({
  roster: z.string().min(1),
  rosterSha256: z.string({ error: 'expected the sha-256 of the roster file as a string of 64 hex digits (quote it in YAML)' }).regex(/^[0-9a-fA-F]{64}$/, 'expected the sha-256 of the roster file, 64 hex digits (sha256sum roster.yaml)')
    .transform(h => h.toLowerCase()).optional()
}).strict()

/** Which addresses this agent dials (shared/net/dial-policy.ts); default: public + the coordinator's network. */
export const NetworkConfig = z.object({
  dialAllow: z.array(z.string().superRefine((entry, ctx) => {
    const problem = dialRuleProblem(entry)
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem })
  })).min(1, 'list at least one rule (public, private, loopback, link-local, a CIDR block or a DNS name)').optional()
}).strict()

/** A monitor's name as the coordinator's config spells it (shared/config/coordinator.ts MonitorName). */
const AgentMonitorName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected the monitor\'s name as the coordinator\'s config spells it: 1-64 letters, digits, ".", "_" or "-"')

/**
 * One entry of `monitors`: which data this site reads for the coordinator's monitor `name`, and (optionally)
 * a policy for it, applied over the top-level `policy`.
 */
export const AgentMonitorConfig = z.object({
  name: AgentMonitorName,
  data: DataSource,
  policy: AgentPolicy.optional()
}).strict()

export const AgentConfig = z.object({
  identity: z.string().min(1),
  listen: ListenAddrs.default(['/ip4/127.0.0.1/tcp/0']),
  coordinator: CoordinatorAddr,
  /** The data of the single monitor (a config without `monitors`). */
  data: DataSource.optional(),
  /** Many monitors: each names the coordinator's monitor and the data (and column mapping) it reads here. */
  monitors: z.array(AgentMonitorConfig).min(1, 'list at least one monitor (or use `data` for a single one)').optional(),
  state: z.string().min(1),
  federation: FederationConfig.optional(),
  network: NetworkConfig.optional(),
  /** What this site agrees to take part in; checked against every Announce (and its spec) before any work. */
  policy: AgentPolicy.optional().transform((policy): AgentPolicy => ({ ...AGENT_POLICY_DEFAULTS, ...policy }))
}).strict().superRefine((config, ctx) => {
  if (config.monitors === undefined) {
    if (config.data === undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: 'required: where this site\'s prediction logs are (or `monitors: [{name, data}]` for several monitors)' })
    return
  }
  if (config.data !== undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: 'not allowed beside `monitors`: each monitor has its own data (monitors[].data)' })
  const seen = new Map<string, number>()
  config.monitors.forEach((m, i) => {
    const earlier = seen.get(m.name)
    if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: ['monitors', i, 'name'], message: `"${m.name}" is already the name of monitors[${earlier}]: monitor names must be unique` })
    else seen.set(m.name, i)
  })
})
type ParsedAgentConfig = z.infer<typeof AgentConfig>

/**
 * One monitor this site serves, as loaded: `name` null for the single monitor of a config without `monitors`
 * (it serves the coordinator's monitor whatever its name); `policy` the top-level policy with the monitor's
 * own over it; `field` where it sits in the file ('' top level).
 */
export interface LoadedAgentMonitor { name: string | null, field: string, data: DataSource, policy: AgentPolicy }

/** `data` is the first monitor's (what single-monitor tools such as `fedmon check` read). */
export type AgentConfig = Omit<ParsedAgentConfig, 'data' | 'monitors'> & { data: DataSource, monitors: LoadedAgentMonitor[] }

/**
 * An agent config as loaded: paths resolved, the roster file read. `roster` is null when the config names no
 * `federation.roster`: such an agent cannot check who is in a round and trusts the coordinator's list, as
 * policy.trustCoordinatorRoster would (the daemon warns at start; configs that fedmon writes always set one).
 * Not a config error, so that configs written against the §5 contract (identity, listen, coordinator, data,
 * state) keep running.
 */
export type LoadedAgentConfig = AgentConfig & { file: string, roster: FederationRoster | null }

/**
 * Loads, validates and resolves an agent config, and reads (and checks against its pin) the roster file it
 * names; ConfigError names the file and the field. Run again on a roster reload (SIGHUP).
 */
export function loadAgentConfig (file: string): LoadedAgentConfig {
  const config = loadConfigFile(file, AgentConfig)
  const resolveData = (data: DataSource): DataSource => ({ ...data, path: resolveFrom(file, data.path), ...(data.labels !== undefined ? { labels: { ...data.labels, path: resolveFrom(file, data.labels.path) } } : {}) })
  const monitors: LoadedAgentMonitor[] = config.monitors !== undefined
    ? config.monitors.map((m, i) => ({ name: m.name, field: `monitors[${i}]`, data: resolveData(m.data), policy: { ...config.policy, ...m.policy } }))
    : [{ name: null, field: '', data: resolveData(config.data as DataSource), policy: config.policy }]
  const federation = config.federation !== undefined ? { ...config.federation, roster: resolveFrom(file, config.federation.roster) } : undefined
  const roster = federation !== undefined
    ? loadRosterFile(federation.roster, { sha256: federation.rosterSha256, from: { file, field: 'federation.roster' }, pinField: 'federation.rosterSha256' })
    : null
  return {
    ...config,
    file,
    identity: resolveFrom(file, config.identity),
    state: resolveFrom(file, config.state),
    data: monitors[0].data,
    monitors,
    federation,
    roster
  }
}

/** The coordinator's peer id from its multiaddr. */
export function coordinatorPeerId (addr: string): string {
  const id = multiaddr(addr).getComponents().find(c => c.name === 'p2p')?.value
  if (id === undefined) throw new Error(`${addr}: no /p2p/ component`)
  return id
}
