import { createHash } from 'node:crypto'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Packr } from 'msgpackr'
import { signerFromPrivateKey, verifyPeerSignature } from '../crypto/ed25519.js'
import { expandMask } from '../crypto/prg.js'
import { SecAggClient, type AgentPolicy } from './client.js'
import { SecAggError } from './errors.js'
import { parseSecAggMessage, toWire, type SecAggMessage } from './messages.js'
import { SecAggServer } from './server.js'
import { UnmaskWorkerPool } from './unmask-pool.js'
import type { GraphKind, Outgoing, Sign, Verify } from './types.js'
import { mulberry32 } from '../prng.js'

/**
 * An in-memory round: one SecAggServer and N SecAggClients joined by a FIFO router, time as an input.
 * Used by the tests (dropouts, adversaries) and by bench/secagg.ts. Every message goes through the wire
 * codec (msgpackr) and parseSecAggMessage unless `wire: false`, exactly as the network layer does.
 */

/** The first message an agent that drops stops at (it sends nothing of that type or later and ignores all input). */
export const DROP_POINTS = ['advertise-keys', 'shares', 'during-shares', 'share-receipt', 'masked-input', 'consistency-signature', 'unmask-shares'] as const
export type DropPoint = typeof DROP_POINTS[number]
const SEND_ORDER = ['advertise-keys', 'shares', 'share-receipt', 'masked-input', 'consistency-signature', 'unmask-shares']

export interface Identity { id: string, sign: Sign }

export interface Delivery { from: string, to: string, message: SecAggMessage }

export interface SimulateOptions {
  agents: number
  dim: number
  /** Fraction of agents that drop out (rounded down), or an explicit map agent index → drop point. */
  dropout?: number | Map<number, DropPoint>
  /** Where fractional dropouts happen: one point, or 'random' (each dropping agent picks one). Default 'random'. */
  dropPoint?: DropPoint | 'random'
  graph?: GraphKind | 'auto'
  threshold?: number
  degree?: number
  /** Consistency committee size the server announces (SecAggServerOptions.committeeSize). */
  committeeSize?: number
  /** Participants from which the Announce names them by roster bits (SecAggServerOptions.compactAnnounceFrom). */
  compactAnnounceFrom?: number
  minAgents?: number
  maxEntry?: number
  dropoutRate?: number
  corruptFraction?: number
  phaseTimeoutMs?: number
  seed?: number
  /** Reuse identities across simulations (key generation dominates small rounds). */
  identities?: { coordinator: Identity, agents: Identity[] }
  policy?: AgentPolicy
  /** The agents' own roster (default: exactly the participants). */
  roster?: ReadonlySet<string>
  /** Encode/decode/parse every message like the network layer (default true). */
  wire?: boolean
  /** Count encoded bytes per sender and per recipient (implies encoding). */
  measureBytes?: boolean
  /**
   * Large-round mode (bench): messages to the coordinator are handled before the rest of the queue (the server
   * sums each masked vector as it comes, so no O(n·m) backlog), and each agent's input is read when its masking
   * set arrives rather than right after the Announce (no n inputs held at once). Both are legal orders on the
   * network (independent streams, a slow data scan); the protocol outcome is the same.
   */
  streaming?: boolean
  /** Adversary / observer hook: return the deliveries to make instead of this one (e.g. [] to drop it). */
  intercept?: (delivery: Delivery) => Delivery[]
  /** Each agent's input (e.g. a real scan's vector); default: simulatedInput's pseudo-random vector. */
  inputs?: (index: number) => Uint32Array
  /** Agents (by index) that never call setInput (their data scan "hangs"). */
  noInput?: Set<number>
  /** Called with each client right after it is created (tests poke at it). */
  onClient?: (index: number, client: SecAggClient, now: number) => void
  /**
   * Unmask on this many worker threads (server `deferUnmask` + an UnmaskWorkerPool started with the round, as a
   * coordinator keeps one, so thread start-up is not counted as unmask time); 0 or absent: in this thread.
   */
  unmaskWorkers?: number
}

export interface SimulationResult {
  status: 'running' | 'done' | 'failed'
  failure: { code: string, message: string } | null
  k: number
  t: number
  graph: GraphKind
  ids: string[]
  coordinator: string
  result: { sum: Uint32Array, included: string[], dropped: string[] } | null
  /** Plaintext sum over exactly the agents the server reports as included. */
  expected: Uint32Array | null
  correct: boolean
  dropPoints: Map<string, DropPoint>
  clientMaskMs: number[]
  serverUnmaskMs: number | null
  /**
   * CPU time of the process (all threads) spent on the coordinator's unmasking: receiving the unmask shares
   * (reconstruction included) and computing the correction. On a shared machine the wall-clock figure above
   * also counts time the threads waited for a core; this one does not.
   */
  serverUnmaskCpuMs: number | null
  /** Mask expansions (of dim words) in the server's unmasking. */
  unmaskExpansions: number | null
  /** Of those, X25519 agreements (pairs whose seed the survivor did not send, server.unmaskKeyAgreementCount). */
  unmaskKeyAgreements: number | null
  bytesSent: Map<string, number>
  /** Encoded bytes each participant received (with measureBytes). */
  bytesReceived: Map<string, number>
  rejected: Array<{ at: string, type: string, code: string, message: string }>
  clientFailures: Map<string, { code: string, message: string }>
  phaseTimings: Record<string, number>
  /** Final status of each client. */
  clientStatus: Map<string, string>
  /** Holders the server caught sending wrong unmask shares (server.inconsistentShares()). */
  inconsistentShares: Array<{ holder: string, owner: string, kind: 'b' | 's' }>
}

export async function createIdentities (n: number, seed?: number): Promise<{ coordinator: Identity, agents: Identity[] }> {
  const make = async (i: number): Promise<Identity> => {
    const key = seed === undefined
      ? await generateKeyPair('Ed25519')
      : await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`sim-identity|${seed}|${i}`).digest())
    return { id: peerIdFromPrivateKey(key).toString(), sign: signerFromPrivateKey(key) }
  }
  const coordinator = await make(-1)
  const agents: Identity[] = []
  for (let i = 0; i < n; i++) agents.push(await make(i))
  // In peer-id order, as rounds list their participants (any prefix is sorted too).
  agents.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  return { coordinator, agents }
}

/** Deterministic input of agent i: entries uniform in [0, maxEntry]. */
export function simulatedInput (seed: number, agent: number, dim: number, maxEntry: number): Uint32Array {
  const key = new Uint8Array(createHash('sha256').update(`sim-input|${seed}|${agent}`).digest())
  const x = expandMask(key, dim)
  const range = maxEntry + 1
  if (range < 2 ** 32) for (let i = 0; i < dim; i++) x[i] = x[i] % range
  return x
}

/**
 * verifyPeerSignature, memoised: every simulated agent lives in this process and checks the same signatures
 * (each agent verifies the consistency quorum, ~n/2 signatures): one real check per distinct (signer, bytes,
 * signature) keeps a 1000-agent round from spending minutes re-verifying. On the network each agent verifies
 * for itself.
 */
function memoisedVerify (): Verify {
  const seen = new Map<string, boolean>()
  // Fast path: a signature object delivered to many agents (same message object, wire: false) is checked by
  // identity, the bytes compared against a private copy (so an in-place edit is never served a stale answer).
  const byObject = new WeakMap<Uint8Array, { peerId: string, data: Buffer, signature: Buffer, ok: boolean }>()
  return (peerId, data, signature) => {
    const hit = byObject.get(signature)
    if (hit !== undefined && hit.peerId === peerId && hit.signature.equals(signature) && hit.data.equals(data)) return hit.ok
    const digest = data.length <= 512 ? Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') : createHash('sha256').update(data).digest('base64')
    const key = `${peerId}|${digest}|${Buffer.from(signature).toString('base64')}`
    let ok = seen.get(key)
    if (ok === undefined) {
      ok = verifyPeerSignature(peerId, data, signature)
      if (seen.size > 1_000_000) seen.clear()
      seen.set(key, ok)
    }
    byObject.set(signature, { peerId, data: Buffer.from(data), signature: Buffer.from(signature), ok })
    return ok
  }
}

const processCpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

/** Small deterministic PRNG for picking dropouts. */
export const seededRandom = mulberry32

export async function simulateRound (opts: SimulateOptions): Promise<SimulationResult> {
  const n = opts.agents
  const dim = opts.dim
  const seed = opts.seed ?? 1
  const random = seededRandom(seed)
  const maxEntry = opts.maxEntry ?? Math.max(1, Math.floor((2 ** 32 - 1) / n))
  const phaseTimeoutMs = opts.phaseTimeoutMs ?? 10_000
  const identities = opts.identities ?? await createIdentities(n)
  if (identities.agents.length < n) throw new RangeError('not enough identities')
  const agents = identities.agents.slice(0, n)
  const ids = agents.map(a => a.id)
  const coordinator = identities.coordinator
  const roundId = `sim-${seed}-${n}-${dim}`
  const roster = opts.roster ?? new Set(ids)
  const verify = memoisedVerify()

  // Who drops, and where.
  const dropAt = new Map<number, DropPoint>()
  if (opts.dropout instanceof Map) {
    for (const [i, p] of opts.dropout) dropAt.set(i, p)
  } else if ((opts.dropout ?? 0) > 0) {
    const order = [...Array(n).keys()]
    for (let i = n - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [order[i], order[j]] = [order[j], order[i]] }
    const count = Math.floor((opts.dropout as number) * n)
    for (const i of order.slice(0, count)) {
      dropAt.set(i, opts.dropPoint === undefined || opts.dropPoint === 'random'
        ? DROP_POINTS[Math.floor(random() * DROP_POINTS.length)]
        : opts.dropPoint)
    }
  }
  const dead = new Set<number>()

  const server = new SecAggServer({
    roundId, coordinator: coordinator.id, sign: coordinator.sign, verify,
    participants: ids.map((id, i) => ({ id, addrs: [`/memory/agent-${i}`] })),
    vectorLength: dim, specHash: createHash('sha256').update('sim-spec').digest('hex'),
    window: { from: 0, to: 3_600_000 }, maxEntry, minAgents: opts.minAgents ?? 1,
    threshold: opts.threshold, degree: opts.degree, graph: opts.graph ?? 'auto',
    dropoutRate: opts.dropoutRate, corruptFraction: opts.corruptFraction, rosterSize: roster.size, phaseTimeoutMs,
    // the coordinator's roster is the agents' (a large round's Announce names participants by bits over it),
    // unless a test gives the agents one of their own
    ...(opts.roster === undefined ? { roster } : {}),
    ...(opts.compactAnnounceFrom !== undefined ? { compactAnnounceFrom: opts.compactAnnounceFrom } : {}),
    deferUnmask: (opts.unmaskWorkers ?? 0) > 0,
    ...(opts.committeeSize !== undefined ? { committeeSize: opts.committeeSize } : {})
  })
  const clients = new Map<string, SecAggClient>()
  const indexOf = new Map(ids.map((id, i) => [id, i]))
  const packr = new Packr({ useRecords: false, moreTypes: true })
  const wire = opts.wire ?? true
  const bytesSent = new Map<string, number>()
  const bytesReceived = new Map<string, number>()
  // One message object sent to many agents is encoded once for its size (measureBytes without wire).
  const frameLength = new WeakMap<object, number>()
  const streaming = opts.streaming === true
  const rejected: SimulationResult['rejected'] = []
  const clientMaskMs: number[] = []
  let unmaskCpuMs = 0
  let now = 0

  const queue: Delivery[] = []
  let head = 0
  const enqueue = (from: string, out: Outgoing[]): void => {
    const i = indexOf.get(from)
    for (const o of out) {
      if (i !== undefined) {
        const point = dropAt.get(i)
        if (point !== undefined && !dead.has(i)) {
          const type = o.message.type
          if (point === 'during-shares' && type === 'shares') {
            if (random() < 0.5) continue // this neighbour never gets our shares; the rest do
          } else if (point !== 'during-shares' && SEND_ORDER.indexOf(type) >= SEND_ORDER.indexOf(point)) {
            dead.add(i)
          }
          if (point === 'during-shares' && SEND_ORDER.indexOf(type) > SEND_ORDER.indexOf('shares')) dead.add(i)
        }
        if (dead.has(i)) continue
      }
      const delivery = { from, to: o.to, message: o.message }
      const deliveries = opts.intercept !== undefined ? opts.intercept(delivery) : [delivery]
      for (const d of deliveries) {
        if (opts.measureBytes === true && !wire) {
          let length = frameLength.get(d.message)
          if (length === undefined) { length = packr.pack(toWire(d.message)).length; frameLength.set(d.message, length) }
          bytesSent.set(d.from, (bytesSent.get(d.from) ?? 0) + length)
          bytesReceived.set(d.to, (bytesReceived.get(d.to) ?? 0) + length)
        } else if (opts.measureBytes === true || wire) {
          const frame = packr.pack(toWire(d.message))
          if (opts.measureBytes === true) {
            bytesSent.set(d.from, (bytesSent.get(d.from) ?? 0) + frame.length)
            bytesReceived.set(d.to, (bytesReceived.get(d.to) ?? 0) + frame.length)
          }
          if (wire) {
            try {
              route({ from: d.from, to: d.to, message: parseSecAggMessage(packr.unpack(frame)) })
            } catch (err) {
              if (!(err instanceof SecAggError)) throw err
              rejected.push({ at: d.to, type: 'wire', code: err.code, message: err.message })
            }
            continue
          }
        }
        route(d)
      }
    }
  }
  const toCoordinator: Delivery[] = []
  const route = (d: Delivery): void => {
    if (streaming && d.to === coordinator.id) toCoordinator.push(d)
    else queue.push(d)
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
  const inputFor = (i: number): Uint32Array => opts.inputs?.(i) ?? simulatedInput(seed, i, dim, maxEntry)
  const onClientOutput = (id: string, client: SecAggClient, out: Outgoing[]): void => {
    enqueue(id, out)
    if (client.maskMs !== null && out.some(o => o.message.type === 'masked-input')) clientMaskMs.push(client.maskMs)
  }

  const deliverAll = (): void => {
    while (head < queue.length || toCoordinator.length > 0) {
      const d = toCoordinator.length > 0 ? toCoordinator.shift()! : queue[head++]
      // Drop delivered messages as we go: at n = 10,000 one phase queues n·k share messages.
      if (head > 100_000 && head * 2 > queue.length) { queue.splice(0, head); head = 0 }
      if (d.to === coordinator.id) {
        const cpuBefore = d.message.type === 'unmask-shares' ? processCpuMs() : null
        enqueue(coordinator.id, guarded('coordinator', d.message.type, () => server.receive(d.from, d.message, now)))
        if (cpuBefore !== null) unmaskCpuMs += processCpuMs() - cpuBefore
        // The coordinator starts unmasking the moment its work is pending (the agents run elsewhere meanwhile):
        // hand back to the caller now rather than first run every late agent in this thread, which would
        // count their work (e.g. each one checking the consistency quorum) as the coordinator's unmask time.
        if (server.pendingUnmask() !== null) return
        continue
      }
      const i = indexOf.get(d.to)
      if (i === undefined || dead.has(i)) continue
      if (d.message.type === 'announce') {
        if (dropAt.get(i) === 'advertise-keys') { dead.add(i); continue }
        let client: SecAggClient
        try {
          client = SecAggClient.fromAnnounce({ self: d.to, coordinator: coordinator.id, sign: agents[i].sign, verify, policy: opts.policy, roster }, d.from, d.message, now)
        } catch (err) {
          if (!(err instanceof SecAggError)) throw err
          rejected.push({ at: d.to, type: 'announce', code: err.code, message: err.message })
          continue
        }
        clients.set(d.to, client)
        opts.onClient?.(i, client, now)
        onClientOutput(d.to, client, guarded(d.to, 'start', () => client.start(now)))
        // The agent's data scan finishes right after the Announce.
        if (opts.noInput?.has(i) !== true && !streaming) onClientOutput(d.to, client, guarded(d.to, 'setInput', () => client.setInput(inputFor(i), now)))
        continue
      }
      const client = clients.get(d.to)
      if (client === undefined) continue
      if (streaming && d.message.type === 'masking-set' && opts.noInput?.has(i) !== true && client.status === 'running') {
        onClientOutput(d.to, client, guarded(d.to, 'setInput', () => client.setInput(inputFor(i), now)))
      }
      onClientOutput(d.to, client, guarded(d.to, d.message.type, () => client.receive(d.from, d.message, now)))
  }
  }

  const pool = (opts.unmaskWorkers ?? 0) > 0 ? new UnmaskWorkerPool({ workers: opts.unmaskWorkers }) : null
  await pool?.start()
  try {
    enqueue(coordinator.id, server.start(now))
    for (let steps = 0; server.status === 'running'; steps++) {
      deliverAll()
      if (head > 100_000) { queue.splice(0, head); head = 0 }
      const unmaskWork = server.pendingUnmask()
      if (unmaskWork !== null && pool !== null) {
        const cpuBefore = processCpuMs()
        const correction = await pool.compute(unmaskWork)
        enqueue(coordinator.id, server.completeUnmask(correction, now))
        unmaskCpuMs += processCpuMs() - cpuBefore
        continue
      }
      if (server.status !== 'running') break
      // Nothing in flight: advance time to the next deadline.
      const deadlines = [server.nextDeadline(), ...[...clients].filter(([id]) => !dead.has(indexOf.get(id)!)).map(([, c]) => c.nextDeadline())]
        .filter((d): d is number => d !== null)
      if (deadlines.length === 0) break
      now = Math.max(now, Math.min(...deadlines))
      for (const [id, client] of clients) if (!dead.has(indexOf.get(id)!)) onClientOutput(id, client, client.tick(now))
      enqueue(coordinator.id, server.tick(now))
      if (steps > 10_000) throw new Error('simulation does not converge')
    }
  } finally {
    await pool?.stop()
  }
  // Let the agents see the final messages (e.g. the coordinator's abort).
  deliverAll()
  const result = server.result()
  let expected: Uint32Array | null = null
  if (result !== null) {
    expected = new Uint32Array(dim)
    for (const id of result.included) {
      const x = inputFor(indexOf.get(id)!)
      for (let j = 0; j < dim; j++) expected[j] += x[j]
    }
  }
  const clientFailures = new Map<string, { code: string, message: string }>()
  const clientStatus = new Map<string, string>()
  for (const [id, c] of clients) {
    clientStatus.set(id, dead.has(indexOf.get(id)!) ? 'dropped' : c.status)
    const f = c.failure()
    if (f !== null) clientFailures.set(id, f)
  }
  return {
    status: server.status,
    failure: server.failure(),
    k: server.k,
    t: server.t,
    graph: server.graph,
    ids,
    coordinator: coordinator.id,
    result,
    expected,
    correct: result !== null && expected !== null && result.sum.length === expected.length && result.sum.every((v, j) => v === expected![j]),
    dropPoints: new Map([...dropAt].map(([i, p]) => [ids[i], p])),
    clientMaskMs,
    serverUnmaskMs: server.phaseTimings().unmaskComputeMs ?? null,
    serverUnmaskCpuMs: server.phaseTimings().unmaskComputeMs === undefined ? null : unmaskCpuMs,
    unmaskExpansions: server.unmaskExpansionCount,
    unmaskKeyAgreements: server.unmaskKeyAgreementCount,
    bytesSent,
    bytesReceived,
    rejected,
    clientFailures,
    phaseTimings: server.phaseTimings(),
    clientStatus,
    inconsistentShares: server.inconsistentShares()
  }
}
