/**
 * The agent daemon: identity, a libp2p node that admits only the coordinator and the current round's
 * participants that are on this site's own roster, a connection to the coordinator kept up with backoff
 * (hello carries our listen addresses), and the round service. Specs are fetched from the coordinator by hash
 * and checked against the Announce and the agent's policy; the contribution ledger in the state dir refuses
 * replays and differencing across rounds. Neighbours' announced addresses are dialled only where the dial
 * allow-list permits; SIGHUP re-reads the roster file.
 */
import { mkdirSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { randomInt } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { loadOrCreateIdentity, createSigner, createVerifier, type Identity } from '../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../shared/net/node.js'
import { createAllowListGater } from '../shared/net/gater.js'
import { DialAllowList, dialTarget, type DialTarget } from '../shared/net/dial-policy.js'
import { SecAggMessenger, sendControl, requestControl, type SecAggMessageType } from '../shared/net/messenger.js'
import { HELLO_PROTOCOL, SPEC_PROTOCOL, agentFrameLimitFor, MAX_INBOUND_STREAMS_PER_PEER, MAX_INBOUND_STREAMS_PER_PROTOCOL, MAX_NEIGHBOUR_STREAMS_PER_PEER } from '../shared/wire/protocols.js'
import { SpecResponse, type Hello, type SpecRequest } from '../shared/wire/control.js'
import { MAX_PARTICIPANTS, MESSAGE_ROUTES } from '../shared/secagg/messages.js'
import { verifySpec, type VerifiedSpec } from '../shared/secagg/policy.js'
import { ConfigError, FedmonError } from '../shared/errors.js'
import { coordinatorPeerId, loadAgentConfig, type LoadedAgentConfig } from '../shared/config/agent.js'
import type { FederationRoster } from '../shared/config/roster.js'
import type { Logger } from '../shared/log.js'
import { AgentRoundService, type AnnounceInfo, type LocalInput, type MonitorBinding } from './rounds.js'
import { ContributionLedger, ledgerScopeOf } from './ledger.js'
import { SecAggError } from '../shared/secagg/errors.js'
import type { LoadedAgentMonitor } from '../shared/config/agent.js'
import { labelDependentEntries, projectEntries } from '../shared/stats/label-entries.js'
import { checkWindowData, scanFailureReason } from './data-check.js'
import { FileWatcher } from '../shared/config/watch.js'

const AGENT_BOUND = (Object.keys(MESSAGE_ROUTES) as SecAggMessageType[]).filter(t => MESSAGE_ROUTES[t] !== 'agent->coordinator')
const VERSION = 'fedmon/0.1.0'

export class AgentError extends FedmonError {
  constructor (message: string, code: string) {
    super(message, code)
    this.name = 'AgentError'
  }
}

export interface AgentDaemonOptions {
  config: LoadedAgentConfig
  logger: Logger
  /** Test-only: SIGKILL after sending a message of this type (FEDMON_TEST_EXIT_AFTER). */
  testExitAfter?: string
  /** Test-only: hang in a round after sending a message of this type (FEDMON_TEST_STALL_AFTER). */
  testStallAfter?: string
  /** Bench-only: use a random vector of the announced length instead of scanning (FEDMON_BENCH_SYNTHETIC). */
  benchSyntheticInput?: boolean
}

export class AgentDaemon {
  private readonly config: LoadedAgentConfig
  private readonly logger: Logger
  private readonly coordinator: string
  private identity!: Identity
  private node: FedmonNode | null = null
  private messenger: SecAggMessenger | null = null
  private rounds: AgentRoundService | null = null
  private admitted = new Set<string>()
  /**
   * This site's own copy of the federation's roster (federation.roster). One Set for the daemon's life: a
   * reload replaces its contents, so the round service and the gater always see the current roster.
   */
  private readonly rosterIds = new Set<string>()
  /** The roster file as last loaded (its hash is logged, so operators can compare sites' copies). */
  private rosterFile: FederationRoster | null
  /** policy.trustCoordinatorRoster: participants need not be on `roster` (set at start; a reload cannot change it). */
  private readonly trustCoordinatorRoster: boolean
  /** Which addresses this agent dials (network.dialAllow, or the default decided at start). */
  private dialAllow = new DialAllowList(['public'])
  /** The configured coordinator address as host:port: always dialled (the operator wrote it). */
  private readonly coordinatorTarget: DialTarget | null
  /** Peers whose disallowed addresses were logged this round (once per round each). */
  private readonly droppedLogged = new Set<string>()
  /** Spec documents by hash, kept once one hashed right (a round's client checks it again, with the policy). */
  private readonly specs = new Map<string, unknown>()
  /** This site's monitors with their ledger scopes and guards (filled at start). */
  private monitors: Array<LoadedAgentMonitor & { scope: string, binding: MonitorBinding }> = []
  private running = false
  private wake: (() => void) | null = null
  private loop: Promise<void> | null = null
  private readonly stopController = new AbortController()
  /** Encrypted handshakes completed with the coordinator (its peer id proven): see explainCoordinatorRefusal. */
  private coordinatorHandshakes = 0
  /** Dial attempts in a row that reached the coordinator and were closed at once. */
  private refusedInARow = 0
  /** Watches the config and roster files: an edit on disk is reloaded like a SIGHUP. */
  private rosterWatcher: FileWatcher | null = null
  /** Reloads run one at a time (SIGHUP and file changes alike). */
  private reloading: Promise<void> = Promise.resolve()

  constructor (private readonly opts: AgentDaemonOptions) {
    this.config = opts.config
    this.logger = opts.logger
    this.coordinator = coordinatorPeerId(opts.config.coordinator)
    this.coordinatorTarget = dialTarget(opts.config.coordinator)
    // No roster file: nothing to check participants against, so the coordinator's list is trusted (warned at start).
    this.trustCoordinatorRoster = opts.config.policy.trustCoordinatorRoster === true || opts.config.roster === null
    this.rosterFile = opts.config.roster
    for (const id of opts.config.roster?.ids ?? []) this.rosterIds.add(id)
  }

  get peerId (): string {
    return this.identity.peerId
  }

  /** This site's roster as it stands (the same object for the daemon's life; a reload refills it). */
  get roster (): ReadonlySet<string> {
    return this.rosterIds
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
      const filesOf: string[][] = []
      for (const m of config.monitors) {
        const files = await checkDataSource(m.data)
        filesOf.push(files)
        logger.info({ monitor: m.name ?? undefined, path: m.data.path, files: files.length }, 'data source found')
      }
      this.checkMonitorsData(filesOf)
    }
    const identity = await loadOrCreateIdentity(config.identity)
    this.identity = identity
    if (identity.peerId === this.coordinator) throw new AgentError('the agent identity is the coordinator\'s', 'ERR_IDENTITY')
    if (this.rosterFile !== null) this.checkRosterListsSelf(this.rosterFile, config.file)
    this.dialAllow = await this.decideDialAllow()
    mkdirSync(config.state, { recursive: true, mode: 0o700 })
    // A LedgerError (unreadable or corrupt ledger) stops the start: forgetting contributions would allow differencing.
    const ledger = ContributionLedger.open(config.state, {
      identityFile: config.identity,
      maxRoundsPerWindow: config.policy.maxRoundsPerWindow,
      maxEpsilonPerWindow: config.policy.maxEpsilonPerWindow,
      onLost: info => { logger.error(info, 'the contribution ledger is missing but this identity kept one (state dir lost?): a new ledger refuses windows that start before notBefore; `fedmon ledger reset` overrides after checking') }
    })
    this.monitors = config.monitors.map((m) => {
      const scope = ledgerScopeOf(m.data)
      const binding: MonitorBinding = {
        key: m.name ?? '',
        policy: { ...m.policy, trustCoordinatorRoster: this.trustCoordinatorRoster },
        guard: ledger.forScope(scope, { maxRoundsPerWindow: m.policy.maxRoundsPerWindow, maxEpsilonPerWindow: m.policy.maxEpsilonPerWindow })
      }
      return { ...m, scope, binding }
    })
    if (ledger.notBefore !== null) logger.warn({ notBefore: new Date(ledger.notBefore).toISOString(), resets: ledger.resets.length }, 'contribution ledger: windows starting before notBefore are refused')
    const maxAge = config.policy.maxWindowAgeMs
    if (maxAge !== undefined) {
      const pruned = ledger.prune(Date.now() - maxAge)
      if (pruned > 0) logger.info({ pruned }, 'forgot ledger entries older than policy.maxWindowAgeMs')
    }
    const node = await createFedmonNode({
      privateKey: identity.privateKey,
      listen: config.listen,
      gater: createAllowListGater({
        isAllowed: id => id === this.coordinator || (this.admitted.has(id) && this.onRoster(id)),
        allowDial: addr => this.mayDial(addr),
        onOutboundEncrypted: (id) => { if (id === this.coordinator) this.coordinatorHandshakes++ },
        logger
      }),
      expectedPeers: 1024, // neighbours of a full graph: a round of n agents needs n - 1 connections
      identifyOnConnect: false
    })
    this.node = node
    this.rounds = new AgentRoundService({
      self: identity.peerId,
      coordinator: this.coordinator,
      sign: createSigner(identity.privateKey),
      verify: createVerifier(),
      policy: { ...config.policy, trustCoordinatorRoster: this.trustCoordinatorRoster },
      guard: ledger,
      // Live: a roster reload refills this Set. Without a roster file (trustCoordinatorRoster) there is none.
      roster: this.rosterFile !== null ? this.rosterIds : undefined,
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
      admit: (ids) => { this.admit(ids) },
      connect: (neighbours, signal) => { this.connectNeighbours(neighbours, signal) },
      onRoundEnd: (roundId, status) => { this.writeState({ lastRound: { id: roundId, status, at: new Date().toISOString() } }) },
      bindMonitor: named => this.bindMonitor(named),
      testExitAfter: this.opts.testExitAfter,
      testStallAfter: this.opts.testStallAfter,
      logger
    })
    this.messenger = new SecAggMessenger({
      node,
      logger,
      accept: AGENT_BOUND,
      // Coordinator messages from the coordinator only, refused before a byte is read; neighbours send shares.
      acceptFrom: (type, from) => MESSAGE_ROUTES[type] === 'agent->agent' || from === this.coordinator,
      // Rounds have at most as many participants as this site's roster lists (more are refused anyway).
      frameLimit: type => agentFrameLimitFor(type, this.rosterFile !== null && !this.trustCoordinatorRoster ? this.rosterIds.size : MAX_PARTICIPANTS),
      onMessage: (from, message) => { this.rounds?.receive(from, message) },
      filterAddrs: (peer, addrs) => this.dialableAddrs(peer, addrs),
      maxStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL,
      maxStreamsPerPeer: peer => peer === this.coordinator ? MAX_INBOUND_STREAMS_PER_PEER : MAX_NEIGHBOUR_STREAMS_PER_PEER
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
    this.watchRoster()
    this.loop = this.connectLoop()
    const listen = node.getMultiaddrs().map(a => a.toString())
    logger.info({
      peerId: identity.peerId,
      listen,
      coordinator: this.coordinator,
      ledger: ledger.file,
      policy: config.policy,
      roster: this.rosterFile !== null ? { file: this.rosterFile.file, sha256: this.rosterFile.sha256, agents: this.rosterIds.size } : null,
      dialAllow: this.dialAllow.entries
    }, 'agent started')
    if (this.rosterFile === null) logger.warn('no federation.roster: this agent cannot tell real sites from identities the coordinator made up, so it trusts the coordinator\'s participant list; set federation.roster to the federation\'s roster file')
    else if (this.trustCoordinatorRoster) logger.warn('policy.trustCoordinatorRoster: rounds may include peers that are not on this site\'s roster (the coordinator decides who takes part)')
    return { peerId: identity.peerId, listen, createdIdentity: identity.created }
  }

  async stop (): Promise<void> {
    if (!this.running && this.node === null) return
    this.running = false
    this.stopController.abort()
    this.rosterWatcher?.close()
    this.wake?.()
    this.rounds?.stop()
    await this.loop?.catch(() => {})
    await this.messenger?.stop().catch(() => {})
    if (this.messenger !== null) this.logger.info({ traffic: this.messenger.stats }, 'traffic')
    await Promise.resolve(this.node?.stop()).catch(() => {})
    this.node = null
    this.logger.info('agent stopped')
  }

  /**
   * SIGHUP, or the config or roster file changed on disk: re-reads the config file and takes its roster
   * (federation.roster, checked against the pin). Nothing else is reloaded. On any error the current roster
   * stays and the error is logged. One reload at a time.
   */
  async reload (): Promise<void> {
    const run = this.reloading.then(async () => { await this.reloadNow() })
    this.reloading = run.catch(() => {})
    await run
  }

  /**
   * Two monitors whose data paths name different scopes but match the same file would sum its records twice
   * under two ledger scopes (a differencing hole): refused. One data path for both shares one scope instead.
   */
  private checkMonitorsData (filesOf: string[][]): void {
    const { monitors } = this.config
    const seen = new Map<string, number>()
    monitors.forEach((m, i) => {
      const scope = ledgerScopeOf(m.data)
      for (const file of filesOf[i]) {
        const j = seen.get(file)
        if (j !== undefined && j !== i && ledgerScopeOf(monitors[j].data) !== scope) {
          throw new ConfigError(this.config.file, `${m.field}.data.path`, `matches ${file}, which ${monitors[j].field}.data.path (monitor ${monitors[j].name ?? ''}) reads too under another path: the same records would go into two sums; give both monitors the same data.path (they then share one contribution-ledger scope) or separate files`)
        }
        seen.set(file, i)
      }
    })
  }

  /**
   * The monitor an Announce names → this site's binding (policy, ledger scope). A config without `monitors`
   * serves whatever monitor the coordinator names (one round per monitor name, all in its one ledger scope).
   */
  private bindMonitor (named: string | undefined): MonitorBinding {
    const only = this.monitors.length === 1 ? this.monitors[0] : null
    if (only !== null && only.name === null) return { ...only.binding, key: named ?? '' }
    const found = named !== undefined ? this.monitors.find(m => m.name === named) : only
    if (found === undefined || found === null) {
      const served = this.monitors.map(m => m.name).join(', ')
      throw new SecAggError('ERR_POLICY', named === undefined
        ? `the announce names no monitor and this site serves several (${served}): a coordinator from before monitors?`
        : `this site serves no monitor named "${named}" (its config's monitors: ${served})`)
    }
    return found.binding
  }

  /** The monitor a round runs under (AnnounceInfo.monitor, the binding key). */
  private monitorOf (key: string): LoadedAgentMonitor {
    const only = this.monitors.length === 1 && this.monitors[0].name === null ? this.monitors[0] : null
    const found = only ?? this.monitors.find(m => (m.name ?? '') === key)
    if (found === undefined) throw new AgentError(`no monitor ${key}`, 'ERR_STATE')
    return found
  }

  /** With a roster file: its edits (and the config file's, which may point at another roster or pin) are reloaded. */
  private watchRoster (): void {
    if (this.rosterFile === null) return
    this.rosterWatcher = new FileWatcher({
      files: [this.config.file, this.rosterFile.file],
      logger: this.logger,
      onChange: (changed) => {
        if (!this.running) return
        this.logger.info({ changed }, 'roster or config file changed on disk: reloading the roster')
        this.reload().catch((err: unknown) => { this.logger.error({ err: (err as Error).message }, 'roster reload failed: the current roster stays') })
      }
    })
  }

  private async reloadNow (): Promise<void> {
    const { logger } = this
    let next: LoadedAgentConfig
    try {
      next = loadAgentConfig(this.config.file)
      if (next.roster === null) {
        throw new ConfigError(this.config.file, 'federation.roster', this.rosterFile === null
          ? 'not set: there is no roster to reload (set it and restart the agent)'
          : 'removed: a running agent keeps its roster (restart to run without one)')
      }
      this.checkRosterListsSelf(next.roster, next.file)
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'roster reload failed: the current roster stays')
      return
    }
    const ids = new Set(next.roster.ids)
    const added = [...ids].filter(id => !this.rosterIds.has(id))
    const removed = [...this.rosterIds].filter(id => !ids.has(id))
    this.rosterIds.clear()
    for (const id of ids) this.rosterIds.add(id)
    this.rosterFile = next.roster
    this.rosterWatcher?.setFiles([this.config.file, next.roster.file])
    logger.info({ file: next.roster.file, sha256: next.roster.sha256, agents: ids.size, added, removed }, 'roster reloaded')
    // Peers taken off the roster lose their connections now (the gater refuses them from here on).
    if (!this.trustCoordinatorRoster) {
      for (const conn of this.node?.getConnections() ?? []) {
        const id = conn.remotePeer.toString()
        if (id !== this.coordinator && !this.rosterIds.has(id)) await conn.close().catch(() => {})
      }
    }
  }

  private checkRosterListsSelf (roster: FederationRoster, configFile: string): void {
    if (roster.ids.includes(this.identity.peerId)) return
    throw new ConfigError(configFile, 'federation.roster', `${roster.file} does not list this agent's own peer id ${this.identity.peerId}: every round would be refused (is it the federation's current roster?)`)
  }

  /** Whether `id` is on this site's roster (everyone is, when it trusts the coordinator's roster). */
  private onRoster (id: string): boolean {
    return this.trustCoordinatorRoster || this.rosterIds.has(id)
  }

  /** A round's participants (or none): admitted by the gater if on this site's roster; others are named once. */
  private admit (ids: string[]): void {
    this.admitted = new Set(ids.filter(id => id !== this.identity.peerId))
    this.droppedLogged.clear()
    const strangers = [...this.admitted].filter(id => !this.onRoster(id))
    if (strangers.length > 0) this.logger.warn({ strangers, round: this.rounds?.currentRoundId }, 'round participants not on this site\'s roster: not admitted')
  }

  /**
   * The dial allow-list: network.dialAllow, or public addresses plus the coordinator's network (its address
   * resolved once here when it is a DNS name).
   */
  private async decideDialAllow (): Promise<DialAllowList> {
    const configured = this.config.network?.dialAllow
    if (configured !== undefined) return new DialAllowList(configured)
    const target = this.coordinatorTarget
    let ips: Array<{ ip: string, family: 4 | 6 }> = []
    if (target !== null && target.family !== 'dns') ips = [{ ip: target.host, family: target.family }]
    else if (target !== null) {
      try {
        const found = await Promise.race([
          lookup(target.host, { all: true }),
          new Promise<never>((_resolve, reject) => { setTimeout(() => { reject(new Error('timed out')) }, 5_000).unref() })
        ])
        ips = found.map(a => ({ ip: a.address, family: a.family === 6 ? 6 : 4 }))
      } catch (err) {
        this.logger.warn({ host: target.host, err: (err as Error).message }, 'cannot resolve the coordinator\'s name: dialling public addresses only (set network.dialAllow)')
      }
    }
    return DialAllowList.forCoordinator(ips)
  }

  /** The gater's word on a dial: the configured coordinator address, or an address the allow-list permits. */
  private mayDial (addr: Multiaddr): boolean {
    const target = dialTarget(addr)
    if (target === null) return false
    const c = this.coordinatorTarget
    if (c !== null && target.host === c.host && target.port === c.port) return true
    return this.dialAllow.allows(target)
  }

  /** The addresses of `peer` that may be dialled; the others are logged, once per peer and round. */
  private dialableAddrs (peer: string, addrs: string[]): string[] {
    const kept = addrs.filter(a => this.dialAllow.allowsAddr(a, peer))
    if (kept.length < addrs.length && !this.droppedLogged.has(peer)) {
      this.droppedLogged.add(peer)
      this.logger.warn({ peer, dropped: addrs.filter(a => !kept.includes(a)), dialAllow: this.dialAllow.entries, round: this.rounds?.currentRoundId }, 'announced addresses not dialled: not allowed by network.dialAllow')
    }
    return kept
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
      if (!(this.identity.peerId < id) || addrs.length === 0 || !this.onRoster(id)) continue
      const peer = peerIdFromString(id)
      if (node.getConnections(peer).length > 0) continue
      const multiaddrs = this.dialableAddrs(id, addrs).flatMap((a) => { try { return [multiaddr(a)] } catch { return [] } })
      if (multiaddrs.length === 0) continue
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

  /**
   * Keeps a connection to the coordinator: dial, hello, then sleep until disconnected; backoff on failure.
   * Before the coordinator was ever reached the backoff grows to 30 s (it may not exist yet, or the address
   * is wrong). Once it was, the coordinator is known: a lost connection means a restart or a network blip,
   * so the agent redials at once and then at most every 5 s, and is back within seconds of the coordinator
   * (whose scheduler waits for its agents after a start).
   */
  private async connectLoop (): Promise<void> {
    let failures = 0
    let everConnected = false
    while (this.running) {
      if (!this.connectedToCoordinator()) {
        const handshakes = this.coordinatorHandshakes
        try {
          const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(10_000)])
          await this.node?.dial(multiaddr(this.config.coordinator), { signal })
          const hello: Hello = { type: 'hello', addrs: this.listenAddrs(), version: VERSION }
          await sendControl(this.node as FedmonNode, this.coordinator, HELLO_PROTOCOL, hello, { signal })
          this.logger.info({ coordinator: this.coordinator, reconnect: everConnected }, 'connected to the coordinator')
          failures = 0
          this.refusedInARow = 0
          everConnected = true
        } catch (err) {
          if (!this.running) break
          this.explainCoordinatorRefusal(handshakes)
          failures++
          const cap = everConnected ? 5_000 : 30_000
          const delay = Math.min(cap, 250 * 2 ** Math.min(failures, 7)) + randomInt(250)
          this.logger.warn({ err: (err as Error).message, retryInMs: delay, failures }, 'cannot reach the coordinator')
          await this.sleep(delay)
          continue
        }
      }
      await this.sleep(5_000) // also woken by a coordinator disconnect
    }
  }

  /**
   * After a failed attempt to reach the coordinator: when the encrypted handshake with it completed during
   * the attempt (its peer id proven) and the connection was closed at once anyway, the coordinator refused
   * this agent's peer id — libp2p shows no reason, so say the likely one, once and then every 10th time.
   */
  private explainCoordinatorRefusal (handshakesBefore: number): void {
    if (this.coordinatorHandshakes === handshakesBefore) { this.refusedInARow = 0; return }
    this.refusedInARow++
    if (this.refusedInARow !== 1 && this.refusedInARow % 10 !== 0) return
    this.logger.error({ coordinator: this.coordinator, self: this.identity.peerId, attempts: this.refusedInARow },
      `not on the roster of ${this.coordinator}: it closed the connection right after the encrypted handshake; ask its operator to add this agent's peer id ${this.identity.peerId} to the coordinator's roster (it reloads the roster file when it changes)`)
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
    const { scanWindowDetailed, columnNamesFor } = await import('./scan.js')
    const monitor = this.monitorOf(announce.monitor)
    const source = monitor.data
    let scanned: Awaited<ReturnType<typeof scanWindowDetailed>>
    try {
      // A label refresh counts the labels that had arrived by the same instant at every site: window end + age.
      const labelCutoff = announce.refresh !== undefined ? announce.window.to + announce.refresh.ageMs : undefined
      scanned = await scanWindowDetailed({ spec, layout, source, window: announce.window, signal, ...(labelCutoff !== undefined ? { labelCutoff } : {}) })
    } catch (err) {
      // The record cap is the round service's to handle (the window is used up); a cancelled scan is no problem
      // of the data. Any other failure is declined now, with the reason, instead of leaving the round to time out.
      if (signal.aborted || (err as { code?: string }).code === 'ERR_SCAN_RECORD_CAP') throw err
      const problem = scanFailureReason(err, source)
      this.logger.error({ round: announce.roundId, data: source.path, err: (err as Error).message, problem }, 'the scan of the data failed: declining (the ledger keeps the window open)')
      return { vector: new Uint32Array(announce.vectorLength), records: 0, problem }
    }
    const { vector, local } = scanned
    // For this site's operator only: the same in every scan of the files, so it is never sent (layout v2)
    this.logger[local.recordsWithoutTimestamp > 0 ? 'warn' : 'info']({ round: announce.roundId, recordsWithoutTimestamp: local.recordsWithoutTimestamp, malformedRows: local.malformedRows, data: source.path }, 'scan: records without a usable ts (in no window; local figure, not sent)')
    // the label join (data.labels): unknown ids and the rest are this operator's figures, never sent
    if (local.labels !== undefined) this.logger.info({ round: announce.roundId, labels: { ...local.labels, files: local.labels.files.length }, data: source.labels?.path }, 'scan: labels joined by prediction id (local figures, not sent)')
    if (Object.keys(local.tsUnits).length > 0) this.logger.info({ round: announce.roundId, tsUnit: source.columns?.tsUnit ?? 'auto', read: local.tsUnits }, 'scan: numeric timestamps read as epoch s/ms/us/ns (records per unit; data.columns.tsUnit)')
    const { problem, warnings } = checkWindowData({
      layout, vector, recordsWithoutTimestamp: local.recordsWithoutTimestamp, columns: columnNamesFor(spec, source),
      maxBadFraction: monitor.policy.maxBadRecordFraction ?? 1, timestamps: local.timestamps, tsUnit: source.columns?.tsUnit
    })
    if (problem !== null) this.logger.error({ round: announce.roundId, data: source.path, problem, timestamps: local.timestamps }, 'the window\'s data is unusable as mapped: declining (the ledger keeps the window open)')
    for (const warning of warnings) this.logger.warn({ round: announce.roundId, data: source.path }, warning)
    // A refresh sends only the label-dependent entries (shared/stats/label-entries.ts); the rest was summed once.
    const sent = announce.refresh !== undefined ? projectEntries(vector, labelDependentEntries(layout)) : vector
    return { vector: sent, records: local.recordsInWindow, problem }
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
