/**
 * A real AgentDaemon (its libp2p node, gater, messenger, round service and ledger) in this process, with a
 * stand-in coordinator: a fedmon node holding the coordinator's key that answers hello and spec requests,
 * takes the agent's messages, and sends Announces signed with that key. For tests of what the agent's
 * network layer admits and dials; no round ever finishes (nothing but the Announce is sent).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { generateIdentity, writeIdentity, createSigner, type Identity } from '../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { SecAggMessenger, handleControl } from '../../shared/net/messenger.js'
import { HELLO_PROTOCOL, SPEC_PROTOCOL, frameLimitFor } from '../../shared/wire/protocols.js'
import { MESSAGE_ROUTES, PROTOCOL_VERSION, type Announce, type SecAggMessage } from '../../shared/secagg/messages.js'
import { chooseGraphParams } from '../../shared/secagg/params.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { loadAgentConfig } from '../../shared/config/agent.js'
import { createLogger } from '../../shared/log.js'
import { AgentDaemon } from '../../agent/daemon.js'
import { waitFor } from '../e2e/helpers/processes.js'

const SPEC = {
  model: 'harness',
  score: { column: 'score', bins: 20, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.5,
  features: { x: { type: 'numeric', edges: [0, 1] } }
}
const HOUR = 3_600_000

export interface Harness {
  dir: string
  agent: AgentDaemon
  agentId: string
  /** The agent's listen address with /p2p. */
  agentAddr: Multiaddr
  coordinator: { identity: Identity, node: FedmonNode, messenger: SecAggMessenger }
  /** The agent's log so far, one parsed JSON object a line. */
  logs: () => Array<Record<string, any>>
  /** Sends a signed Announce listing `participants` (the agent among them); resolves once the agent acknowledged it. */
  announce: (roundId: string, participants: Array<{ id: string, addrs: string[] }>) => Promise<void>
  stop: () => Promise<void>
}

/** An identity whose peer id sorts after `than` (the smaller id of a pair dials its neighbour early). */
export async function identityAfter (than: string): Promise<Identity> {
  for (;;) {
    const id = await generateIdentity()
    if (id.peerId > than) return id
  }
}

/**
 * Starts the stand-in coordinator and the agent (identity `self`, roster `roster`, extra config keys `extra`);
 * the agent is connected to the coordinator when this resolves.
 */
export async function startHarness (opts: { self: Identity, roster: string[], extra?: Record<string, unknown> }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-agent-harness-'))
  const coordinator = await generateIdentity()
  const silent = createLogger('harness', 'silent')
  const node = await createFedmonNode({ privateKey: coordinator.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gater: createAllowListGater({ isAllowed: () => true, logger: silent }) })
  await node.start()
  const layout = buildLayout(parseMonitorSpec(SPEC))
  await handleControl(node, HELLO_PROTOCOL, { logger: silent, maxLength: 64 * 1024, handle: () => undefined })
  await handleControl(node, SPEC_PROTOCOL, { logger: silent, maxLength: 4096, handle: () => ({ type: 'spec', spec: SPEC }) })
  const messenger = new SecAggMessenger({
    node,
    logger: silent,
    accept: (Object.keys(MESSAGE_ROUTES) as Array<SecAggMessage['type']>).filter(t => MESSAGE_ROUTES[t] === 'agent->coordinator'),
    frameLimit: type => frameLimitFor(type, layout.length),
    onMessage: () => {}
  })
  await messenger.start()

  writeIdentity(join(dir, 'agent.key'), opts.self)
  writeFileSync(join(dir, 'roster.yaml'), JSON.stringify({ agents: opts.roster }))
  const configFile = join(dir, 'agent.json')
  writeFileSync(configFile, JSON.stringify({
    identity: 'agent.key',
    coordinator: `${node.getMultiaddrs()[0].toString()}`,
    data: { path: 'none/*.jsonl' },
    state: 'state',
    federation: { roster: 'roster.yaml' },
    ...opts.extra
  }))
  const lines: string[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(line) } })
  const agent = new AgentDaemon({ config: loadAgentConfig(configFile), logger, benchSyntheticInput: true })
  const { listen } = await agent.start()
  const agentAddr = multiaddr(listen[0])
  await waitFor('the agent to say hello', () => lines.some(l => l.includes('connected to the coordinator')), { timeoutMs: 10_000, intervalMs: 20 })

  const announce = async (roundId: string, participants: Array<{ id: string, addrs: string[] }>): Promise<void> => {
    const now = Date.now()
    const end = Math.floor(now / HOUR) * HOUR
    const { k, t, graph } = chooseGraphParams({ n: participants.length, graph: 'full', dropoutRate: 0.3, corruptFraction: 0.05 })
    const body: Omit<Announce, 'signature' | 'type'> = {
      roundId,
      protocol: PROTOCOL_VERSION,
      coordinator: coordinator.peerId,
      // In peer-id order, as agents require.
      participants: [...participants].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      window: { from: end - HOUR, to: end },
      specHash: layout.specHash,
      vectorLength: layout.length,
      maxEntry: layout.maxEntry,
      minAgents: Math.min(3, participants.length),
      threshold: t,
      degree: k,
      graph,
      // Long enough that the round (and the agent's admission of its participants) outlives the test.
      phaseTimeoutMs: 60_000,
      issuedAt: now,
      reference: false
    }
    const message: Announce = { type: 'announce', ...body, signature: createSigner(coordinator.privateKey)(transcript.announceBytes(body)) }
    await messenger.send(opts.self.peerId, message)
  }

  return {
    dir,
    agent,
    agentId: opts.self.peerId,
    agentAddr,
    coordinator: { identity: coordinator, node, messenger },
    logs: () => lines.map(l => JSON.parse(l) as Record<string, any>),
    announce,
    stop: async () => {
      await agent.stop()
      await messenger.stop()
      await node.stop()
    }
  }
}
