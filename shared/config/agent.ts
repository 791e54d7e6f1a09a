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

export const AgentConfig = z.object({
  identity: z.string().min(1),
  listen: ListenAddrs.default(['/ip4/127.0.0.1/tcp/0']),
  coordinator: CoordinatorAddr,
  data: DataSource,
  state: z.string().min(1),
  federation: FederationConfig.optional(),
  network: NetworkConfig.optional(),
  /** What this site agrees to take part in; checked against every Announce (and its spec) before any work. */
  policy: AgentPolicy.optional().transform((policy): AgentPolicy => ({ ...AGENT_POLICY_DEFAULTS, ...policy }))
}).strict()
export type AgentConfig = z.infer<typeof AgentConfig>

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
  const federation = config.federation !== undefined ? { ...config.federation, roster: resolveFrom(file, config.federation.roster) } : undefined
  const roster = federation !== undefined
    ? loadRosterFile(federation.roster, { sha256: federation.rosterSha256, from: { file, field: 'federation.roster' }, pinField: 'federation.rosterSha256' })
    : null
  return {
    ...config,
    file,
    identity: resolveFrom(file, config.identity),
    state: resolveFrom(file, config.state),
    data: { ...config.data, path: resolveFrom(file, config.data.path), ...(config.data.labels !== undefined ? { labels: { ...config.data.labels, path: resolveFrom(file, config.data.labels.path) } } : {}) },
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
