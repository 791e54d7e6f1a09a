/** The agent's config file (YAML or JSON). Paths are relative to the config file. */
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { DataSource } from '../stats/data-source.js'
import { loadConfigFile, resolveFrom } from './load.js'
import { isPeerIdString } from '../identity.js'
import { AgentPolicy } from '../secagg/policy.js'

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
 * stale or replayed.
 */
export const AGENT_POLICY_DEFAULTS = { maxWindowLeadMs: 60_000, maxAnnounceAgeMs: 600_000 } as const satisfies AgentPolicy

export const CoordinatorAddr = z.string().refine(isMultiaddr, 'not a multiaddr').refine((s) => {
  try {
    const id = multiaddr(s).getComponents().find(c => c.name === 'p2p')?.value
    return id !== undefined && isPeerIdString(id)
  } catch {
    return false
  }
}, 'must end with /p2p/<coordinator peer id>')

export const AgentConfig = z.object({
  identity: z.string().min(1),
  listen: ListenAddrs.default(['/ip4/127.0.0.1/tcp/0']),
  coordinator: CoordinatorAddr,
  data: DataSource,
  state: z.string().min(1),
  /** What this site agrees to take part in; checked against every Announce (and its spec) before any work. */
  policy: AgentPolicy.optional().transform((policy): AgentPolicy => ({ ...AGENT_POLICY_DEFAULTS, ...policy }))
}).strict()
export type AgentConfig = z.infer<typeof AgentConfig>

/** Loads, validates and resolves an agent config; ConfigError names the file and the field. */
export function loadAgentConfig (file: string): AgentConfig {
  const config = loadConfigFile(file, AgentConfig)
  return {
    ...config,
    identity: resolveFrom(file, config.identity),
    state: resolveFrom(file, config.state),
    data: { ...config.data, path: resolveFrom(file, config.data.path) }
  }
}

/** The coordinator's peer id from its multiaddr. */
export function coordinatorPeerId (addr: string): string {
  const id = multiaddr(addr).getComponents().find(c => c.name === 'p2p')?.value
  if (id === undefined) throw new Error(`${addr}: no /p2p/ component`)
  return id
}
