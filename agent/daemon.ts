/**
 * The agent daemon: identity, a libp2p node that admits only the coordinator and the current round's
 * participants, a connection to the coordinator kept up with backoff (hello carries our listen addresses),
 * and the round service. Specs are fetched from the coordinator by hash and checked against the Announce and
 * the agent's policy; the contribution ledger in the state dir refuses replays and differencing across rounds.
 */
import { mkdirSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { randomInt } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { loadOrCreateIdentity, createSigner, createVerifier, type Identity } from '../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../shared/net/node.js'
import { createAllowListGater } from '../shared/net/gater.js'
import { SecAggMessenger, sendControl, requestControl, type SecAggMessageType } from '../shared/net/messenger.js'
import { HELLO_PROTOCOL, SPEC_PROTOCOL, frameLimitFor } from '../shared/wire/protocols.js'
import { SpecResponse, type Hello, type SpecRequest } from '../shared/wire/control.js'
import { MESSAGE_ROUTES } from '../shared/secagg/messages.js'
import { verifySpec, type VerifiedSpec } from '../shared/secagg/policy.js'
import { FedmonError } from '../shared/errors.js'
import { coordinatorPeerId, type AgentConfig } from '../shared/config/agent.js'
import type { Logger } from '../shared/log.js'
import { AgentRoundService, type AnnounceInfo, type LocalInput } from './rounds.js'
import { ContributionLedger } from './ledger.js'

const AGENT_BOUND = (Object.keys(MESSAGE_ROUTES) as SecAggMessageType[]).filter(t => MESSAGE_ROUTES[t] !== 'agent->coordinator')
const VERSION = 'fedmon/0.1.0'

export class AgentError extends FedmonError {
  constructor (message: string, code: string) {
    super(message, code)
    this.name = 'AgentError'
  }
}

export interface AgentDaemonOptions {
  config: AgentConfig
  logger: Logger
  /** Test-only: SIGKILL after sending a message of this type (FEDMON_TEST_EXIT_AFTER). */
  testExitAfter?: string
  /** Bench-only: use a random vector of the announced length instead of scanning (FEDMON_BENCH_SYNTHETIC). */
  benchSyntheticInput?: boolean
}

export class AgentDaemon {
  private readonly config: AgentConfig
  private readonly logger: Logger
  private readonly coordinator: string
  private identity!: Identity
  private node: FedmonNode | null = null
  private messenger: SecAggMessenger | null = null
  private rounds: AgentRoundService | null = null
  private admitted = new Set<string>()
  /** Spec documents by hash, kept once one hashed right (a round's client checks it again, with the policy). */
  private readonly specs = new Map<string, unknown>()
  private running = false
  private wake: (() => void) | null = null
  private loop: Promise<void> | null = null
  private readonly stopController = new AbortController()

  constructor (private readonly opts: AgentDaemonOptions) {
    this.config = opts.config
    this.logger = opts.logger
    this.coordinator = coordinatorPeerId(opts.config.coordinator)
  }

  get peerId (): string {
    return this.identity.peerId
  }

  get stats (): SecAggMessenger['stats'] | null {
    return this.messenger?.stats ?? null
  }

  async start (): Promise<{ peerId: string, listen: string[], createdIdentity: boolean }> {
    const { config, logger } = this
    // A data path matching nothing is an operator's mistake: say so now, not at the first round.
    // (Loads DuckDB, which the first round would otherwise pay for.)
    if (this.opts.benchSyntheticInput !== true) {
      const { checkDataSource } = await import('./scan.js')
      const files = await checkDataSource(config.data)
      logger.info({ path: config.data.path, files: files.length }, 'data source found')
    }
    const identity = await loadOrCreateIdentity(config.identity)
    this.identity = identity
    if (identity.peerId === this.coordinator) throw new AgentError('the agent identity is the coordinator\'s', 'ERR_IDENTITY')
    mkdirSync(config.state, { recursive: true, mode: 0o700 })
    // A LedgerError (unreadable or corrupt ledger) stops the start: forgetting contributions would allow differencing.
    const ledger = ContributionLedger.open(config.state)
    const maxAge = config.policy.maxWindowAgeMs
    if (maxAge !== undefined) {
      const pruned = ledger.prune(Date.now() - maxAge)
      if (pruned > 0) logger.info({ pruned }, 'forgot ledger entries older than policy.maxWindowAgeMs')
    }
    const node = await createFedmonNode({
      privateKey: identity.privateKey,
      listen: config.listen,
      gater: createAllowListGater({ isAllowed: id => id === this.coordinator || this.admitted.has(id), logger }),
      expectedPeers: 1024, // neighbours of a full graph: a round of n agents needs n - 1 connections
      identifyOnConnect: false
    })
    this.node = node
    this.rounds = new AgentRoundService({
      self: identity.peerId,
      coordinator: this.coordinator,
      sign: createSigner(identity.privateKey),
      verify: createVerifier(),
      policy: config.policy,
      guard: ledger,
      sender: {
        send: async (to, message, opts) => {
          // The smaller id of a pair dials early (connectNeighbours): give that connection a moment to
          // arrive rather than dial too and pay for a second handshake.
          if (opts.addrs !== undefined && to < identity.peerId) await this.waitForConnection(to, 2_000, opts.signal)
          await this.messenger?.send(to, message, opts)
        }
      },
      fetchSpec: async (specHash, signal) => await this.fetchSpec(specHash, signal),
      computeInput: async (announce, spec, signal) => await this.computeInput(announce, spec, signal),
      admit: (ids) => { this.admitted = new Set(ids.filter(id => id !== identity.peerId)) },
      connect: (neighbours, signal) => { this.connectNeighbours(neighbours, signal) },
      onRoundEnd: (roundId, status) => { this.writeState({ lastRound: { id: roundId, status, at: new Date().toISOString() } }) },
      testExitAfter: this.opts.testExitAfter,
      logger
    })
    this.messenger = new SecAggMessenger({
      node,
      logger,
      accept: AGENT_BOUND,
      frameLimit: type => frameLimitFor(type, null),
      onMessage: (from, message) => { this.rounds?.receive(from, message) },
      maxStreams: 256
    })
    await this.messenger.start()
    node.addEventListener('peer:disconnect', (evt) => {
      if (evt.detail.toString() !== this.coordinator) return
      logger.warn('disconnected from the coordinator')
      this.wake?.()
    })
    await node.start()
    this.running = true
    this.writeState({})
    this.loop = this.connectLoop()
    const listen = node.getMultiaddrs().map(a => a.toString())
    logger.info({ peerId: identity.peerId, listen, coordinator: this.coordinator, ledger: ledger.file, policy: config.policy }, 'agent started')
    return { peerId: identity.peerId, listen, createdIdentity: identity.created }
  }

  async stop (): Promise<void> {
    if (!this.running && this.node === null) return
    this.running = false
    this.stopController.abort()
    this.wake?.()
    this.rounds?.stop()
    await this.loop?.catch(() => {})
    await this.messenger?.stop().catch(() => {})
    if (this.messenger !== null) this.logger.info({ traffic: this.messenger.stats }, 'traffic')
    await Promise.resolve(this.node?.stop()).catch(() => {})
    this.node = null
    this.logger.info('agent stopped')
  }

  /** Our listen addresses without the /p2p suffix, as neighbours should dial them. */
  private listenAddrs (): string[] {
    return (this.node?.getMultiaddrs() ?? []).map(a => a.toString().replace(/\/p2p\/[^/]+$/, ''))
  }

  /**
   * Dials this round's neighbours ahead of ShareKeys. Only the smaller peer id of a pair dials, so each
   * pair shares one connection (both dialling at once would pay two Noise handshakes).
   */
  private connectNeighbours (neighbours: Array<{ id: string, addrs: string[] }>, signal: AbortSignal): void {
    const node = this.node
    if (node === null) return
    for (const { id, addrs } of neighbours) {
      if (!(this.identity.peerId < id) || addrs.length === 0) continue
      const peer = peerIdFromString(id)
      if (node.getConnections(peer).length > 0) continue
      const multiaddrs = addrs.flatMap((a) => { try { return [multiaddr(a)] } catch { return [] } })
      const attempt = async (left: number): Promise<void> => {
        try {
          await node.dial(peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) })
        } catch (err) {
          // The neighbour may not have taken the Announce yet (its gater refuses us until then): retry shortly.
          if (left <= 0 || signal.aborted) throw err
          await new Promise(resolve => setTimeout(resolve, 300))
          await attempt(left - 1)
        }
      }
      node.peerStore.merge(peer, { multiaddrs })
        .then(async () => { await attempt(3) })
        .catch((err: Error) => { this.logger.debug({ peer: id, err: err.message }, 'early dial failed (the share send will dial again)') })
    }
  }

  /** Resolves once a connection to `peerId` is open, or after `ms` (never rejects). */
  private async waitForConnection (peerId: string, ms: number, signal?: AbortSignal): Promise<void> {
    const node = this.node
    if (node === null) return
    const peer = peerIdFromString(peerId)
    if (node.getConnections(peer).length > 0) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        node.removeEventListener('connection:open', onOpen)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const onOpen = (evt: CustomEvent<{ remotePeer: { toString: () => string } }>): void => { if (evt.detail.remotePeer.toString() === peerId) done() }
      const timer = setTimeout(done, ms)
      node.addEventListener('connection:open', onOpen)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  private connectedToCoordinator (): boolean {
    return (this.node?.getConnections(peerIdFromString(this.coordinator)).length ?? 0) > 0
  }

  /** Keeps a connection to the coordinator: dial, hello, then sleep until disconnected; backoff on failure. */
  private async connectLoop (): Promise<void> {
    let failures = 0
    while (this.running) {
      if (!this.connectedToCoordinator()) {
        try {
          const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(10_000)])
          await this.node?.dial(multiaddr(this.config.coordinator), { signal })
          const hello: Hello = { type: 'hello', addrs: this.listenAddrs(), version: VERSION }
          await sendControl(this.node as FedmonNode, this.coordinator, HELLO_PROTOCOL, hello, { signal })
          this.logger.info({ coordinator: this.coordinator }, 'connected to the coordinator')
          failures = 0
        } catch (err) {
          if (!this.running) break
          failures++
          const delay = Math.min(30_000, 250 * 2 ** Math.min(failures, 7)) + randomInt(250)
          this.logger.warn({ err: (err as Error).message, retryInMs: delay, failures }, 'cannot reach the coordinator')
          await this.sleep(delay)
          continue
        }
      }
      await this.sleep(5_000) // also woken by a coordinator disconnect
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.wake = done
    })
    this.wake = null
  }

  private async computeInput (announce: AnnounceInfo, { spec, layout }: VerifiedSpec, signal: AbortSignal): Promise<LocalInput> {
    if (this.opts.benchSyntheticInput === true) {
      const v = new Uint32Array(announce.vectorLength)
      for (let i = 0; i < v.length; i++) v[i] = (i * 2654435761 + announce.vectorLength) % 97
      return { vector: v, records: Number.MAX_SAFE_INTEGER }
    }
    const { scanWindowDetailed } = await import('./scan.js')
    const { vector, local } = await scanWindowDetailed({ spec, layout, source: this.config.data, window: announce.window, signal })
    // For this site's operator only: the same in every scan of the files, so it is never sent (layout v2)
    this.logger[local.recordsWithoutTimestamp > 0 ? 'warn' : 'info']({ round: announce.roundId, recordsWithoutTimestamp: local.recordsWithoutTimestamp, data: this.config.data.path }, 'scan: records without a usable ts (in no window; local figure, not sent)')
    return { vector, records: local.recordsInWindow }
  }

  /** The spec document with this hash, fetched from the coordinator (once per hash that verifies). */
  private async fetchSpec (specHash: string, signal: AbortSignal): Promise<unknown> {
    if (this.specs.has(specHash)) return this.specs.get(specHash)
    const node = this.node
    if (node === null) throw new AgentError('agent stopped', 'ERR_STOPPED')
    const request: SpecRequest = { type: 'spec-request', specHash }
    const answer = SpecResponse.safeParse(await requestControl(node, this.coordinator, SPEC_PROTOCOL, request, { signal, maxLength: 1024 * 1024 }))
    if (!answer.success) throw new AgentError('the coordinator sent a malformed spec response', 'ERR_BAD_FRAME')
    verifySpec(answer.data.spec, specHash) // throws ERR_POLICY / ERR_BAD_MESSAGE: a refusal, logged as such
    this.specs.set(specHash, answer.data.spec)
    return answer.data.spec
  }

  /** Non-secret status for operators (peer id, coordinator, last round); written atomically. */
  private writeState (extra: Record<string, unknown>): void {
    const file = join(this.config.state, 'agent.json')
    const tmp = `${file}.tmp`
    try {
      writeFileSync(tmp, JSON.stringify({ peerId: this.identity.peerId, coordinator: this.coordinator, updatedAt: new Date().toISOString(), ...extra }, null, 2))
      renameSync(tmp, file)
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot write agent state')
    }
  }
}
