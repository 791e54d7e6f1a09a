/**
 * A small in-process driver for the adversary tests: one SecAggServer and persistent agents (each with its
 * own policy and contribution ledger) over several rounds, with a wall clock and an interception hook.
 * Every message goes through msgpackr and parseSecAggMessage, as on the network.
 */
import { createHash } from 'node:crypto'
import { Packr } from 'msgpackr'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import { parseSecAggMessage, toWire, type Announce, type SecAggMessage } from '../../shared/secagg/messages.js'
import type { AgentPolicy, ContributionGuard } from '../../shared/secagg/policy.js'
import { SecAggServer } from '../../shared/secagg/server.js'
import * as transcript from '../../shared/secagg/transcript.js'
import type { Delivery, Identity } from '../../shared/secagg/simulate.js'
import type { Outgoing } from '../../shared/secagg/types.js'

export interface HarnessAgent {
  identity: Identity
  input: Uint32Array
  policy?: AgentPolicy
  guard?: ContributionGuard
  /** Records in the window, as the scan reports them (for policy.minRecords). */
  records?: number
  /** What the agent's data check found wrong with the window (agent/data-check.ts), if anything. */
  problem?: string
  /** This agent's own roster (default: the round's agents). */
  roster?: ReadonlySet<string>
  /** Give the agent the spec document after the Announce (as the daemon's spec fetch does). */
  provideSpec?: string
  /** Uniform draws for the agent's DP noise (default: node:crypto). */
  noiseSource?: () => number
}

export interface HarnessRound {
  roundId: string
  coordinator: Identity
  agents: HarnessAgent[]
  dim: number
  window: { from: number, to: number }
  /** Wall clock at the Announce (ms epoch). */
  now: number
  specHash?: string
  /** Spec document attached to the Announce (unsigned; bound by specHash). */
  spec?: string
  threshold?: number
  minAgents?: number
  maxEntry?: number
  reference?: boolean
  /** A label-refresh round (the Announce carries it, signed). */
  refresh?: { ageMs: number, of: string }
  /** Consistency committee size the server announces (SecAggServerOptions.committeeSize). */
  committeeSize?: number
  /** The participants to announce (default: every agent): a coordinator may leave some out. */
  participants?: string[]
  /** Adversary hook: the deliveries to make instead of this one. */
  intercept?: (d: Delivery) => Delivery[]
}

export interface HarnessResult {
  status: string
  failure: { code: string, message: string } | null
  result: { sum: Uint32Array, included: string[], dropped: string[] } | null
  /** Every delivery made (after interception): the full transcript of the round. */
  transcript: Delivery[]
  rejected: Array<{ at: string, type: string, code: string, message: string }>
  clients: Map<string, SecAggClient>
  /** The Announce as signed by the server (to replay later). */
  announce: Announce
  t: number
}

export const SIM_SPEC_HASH = createHash('sha256').update('sim-spec').digest('hex')

/** Re-signs an Announce body with the coordinator key (a malicious coordinator signs whatever it likes). */
export function signAnnounce<A extends Omit<Announce, 'signature'>> (coordinator: Identity, a: A): A & { signature: Uint8Array } {
  const { type: _type, spec: _spec, ...body } = a
  return { ...a, signature: coordinator.sign(transcript.announceBytes(body)) }
}

const packr = new Packr({ useRecords: false, moreTypes: true })
const viaWire = (m: SecAggMessage): SecAggMessage => parseSecAggMessage(packr.unpack(packr.pack(toWire(m))))

export function sumOf (vectors: Uint32Array[], dim: number): Uint32Array {
  const s = new Uint32Array(dim)
  for (const v of vectors) for (let j = 0; j < dim; j++) s[j] += v[j]
  return s
}

export function runRound (r: HarnessRound): HarnessResult {
  const ids = r.participants ?? r.agents.map(a => a.identity.id)
  const byId = new Map(r.agents.map(a => [a.identity.id, a]))
  const roster = new Set(r.agents.map(a => a.identity.id))
  const server = new SecAggServer({
    roundId: r.roundId, coordinator: r.coordinator.id, sign: r.coordinator.sign, verify: verifyPeerSignature,
    participants: ids.map((id, i) => ({ id, addrs: [`/memory/agent-${i}`] })),
    vectorLength: r.dim, specHash: r.specHash ?? SIM_SPEC_HASH, window: r.window,
    maxEntry: r.maxEntry ?? 1000, minAgents: r.minAgents ?? 2, threshold: r.threshold, graph: 'full',
    phaseTimeoutMs: 10_000, reference: r.reference, refresh: r.refresh, committeeSize: r.committeeSize
  })
  let now = r.now
  const rejected: HarnessResult['rejected'] = []
  const clients = new Map<string, SecAggClient>()
  const delivered: Delivery[] = []
  const queue: Delivery[] = []
  const enqueue = (from: string, out: Outgoing[]): void => {
    for (const o of out) {
      let message = o.message
      if (message.type === 'announce' && r.spec !== undefined) message = { ...message, spec: r.spec }
      const d: Delivery = { from, to: o.to, message }
      for (const x of r.intercept?.(d) ?? [d]) {
        try {
          queue.push({ ...x, message: viaWire(x.message) })
        } catch (err) {
          if (!(err instanceof SecAggError)) throw err
          rejected.push({ at: x.to, type: 'wire', code: err.code, message: err.message })
        }
      }
    }
  }
  const guarded = (at: string, type: string, step: () => Outgoing[]): Outgoing[] => {
    try {
      return step()
    } catch (err) {
      if (!(err instanceof SecAggError)) throw err
      rejected.push({ at, type, code: err.code, message: err.message })
      return []
    }
  }
  const announce = server.start(now)
  const signed = announce[0].message as Announce
  enqueue(r.coordinator.id, announce)
  const drain = (): void => {
    while (queue.length > 0) {
      const d = queue.shift()!
      delivered.push(d)
      if (d.to === r.coordinator.id) {
        enqueue(r.coordinator.id, guarded('coordinator', d.message.type, () => server.receive(d.from, d.message, now)))
        continue
      }
      const agent = byId.get(d.to)
      if (agent === undefined) continue
      if (d.message.type === 'announce') {
        if (clients.has(d.to)) { rejected.push({ at: d.to, type: 'announce', code: 'ERR_DUPLICATE', message: 'second announce in a round' }); continue }
        let client: SecAggClient
        try {
          client = SecAggClient.fromAnnounce({ self: d.to, coordinator: r.coordinator.id, sign: agent.identity.sign, verify: verifyPeerSignature, policy: agent.policy, guard: agent.guard, roster: agent.roster ?? roster, noiseSource: agent.noiseSource }, d.from, d.message, now)
        } catch (err) {
          if (!(err instanceof SecAggError)) throw err
          rejected.push({ at: d.to, type: 'announce', code: err.code, message: err.message })
          const decline = SecAggClient.declineAnnounce({ self: d.to, coordinator: r.coordinator.id, sign: agent.identity.sign, verify: verifyPeerSignature }, d.from, d.message, err)
          if (decline !== null) enqueue(d.to, [decline])
          continue
        }
        clients.set(d.to, client)
        enqueue(d.to, guarded(d.to, 'start', () => client.start(now)))
        if (agent.provideSpec !== undefined) {
          const doc = agent.provideSpec
          guarded(d.to, 'spec', () => { client.provideSpec(doc); return [] })
        }
        enqueue(d.to, guarded(d.to, 'setInput', () => client.status === 'running' ? client.setInput(agent.input, now, { records: agent.records, problem: agent.problem }) : []))
        noticeOf(d.to, client)
        continue
      }
      const client = clients.get(d.to)
      if (client === undefined) continue
      enqueue(d.to, guarded(d.to, d.message.type, () => client.receive(d.from, d.message, now)))
      noticeOf(d.to, client)
    }
  }
  /** A refusal by the agent's own rules is explained to the coordinator with a signed Decline (as the daemon does). */
  const noticeOf = (id: string, client: SecAggClient): void => {
    const notice = client.declineNotice()
    if (notice !== null) enqueue(id, [notice])
  }
  for (let steps = 0; server.status === 'running' && steps < 100; steps++) {
    drain()
    if (server.status !== 'running') break
    const deadlines = [server.nextDeadline(), ...[...clients.values()].map(c => c.nextDeadline())].filter((x): x is number => x !== null)
    if (deadlines.length === 0) break
    now = Math.max(now, Math.min(...deadlines))
    for (const [id, c] of clients) enqueue(id, guarded(id, 'tick', () => c.tick(now)))
    enqueue(r.coordinator.id, server.tick(now))
  }
  drain()
  return { status: server.status, failure: server.failure(), result: server.result(), transcript: delivered, rejected, clients, announce: signed, t: server.t }
}

/** The types of message each agent sent during a round. */
export function sentTypes (res: HarnessResult, id: string): string[] {
  return res.transcript.filter(d => d.from === id).map(d => d.message.type)
}
