/**
 * The coordinator daemon: identity, libp2p node (roster-gated), roster + liveness, the round service,
 * store, metrics, alerts, scheduler, the unmask worker pool and the HTTP API, with an explicit start()/stop().
 */
import { appendFileSync, readFileSync } from 'node:fs'
import type { Connection } from '@libp2p/interface'
import { loadOrCreateIdentity, createSigner, createVerifier, type Identity } from '../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../shared/net/node.js'
import { createAllowListGater } from '../shared/net/gater.js'
import { DialAllowList, dialTarget, selectAnnouncedAddrs } from '../shared/net/dial-policy.js'
import { SecAggMessenger, handleControl, type SecAggMessageType } from '../shared/net/messenger.js'
import { HELLO_PROTOCOL, SPEC_PROTOCOL, MAX_INBOUND_STREAMS_PER_PROTOCOL, frameLimitFor } from '../shared/wire/protocols.js'
import { WireError } from '../shared/wire/codec.js'
import { Hello, SpecRequest, type SpecResponse } from '../shared/wire/control.js'
import { MESSAGE_ROUTES } from '../shared/secagg/messages.js'
import { UnmaskWorkerPool } from '../shared/secagg/unmask-pool.js'
import type { UnmaskWork } from '../shared/secagg/unmask.js'
import { loadMonitorSpec, type MonitorSpec } from '../shared/stats/spec.js'
import { maxAgentsFor } from '../shared/stats/layout.js'
import { buildTaskLayout, type TaskLayout } from '../shared/stats/tasks/index.js'
import { FedmonError } from '../shared/errors.js'
import type { CoordinatorConfig, LoadedMonitorConfig } from '../shared/config/coordinator.js'
import { ConfigError } from '../shared/errors.js'
import { parseHostPort, loadCoordinatorConfig } from '../shared/config/coordinator.js'
import type { Logger } from '../shared/log.js'
import type { RoundOutcome } from './contracts.js'
import { openStore, type SqliteReportStore } from './store.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createAlertEvaluator, loadWebhookTargets, WebhookNotifier, type WebhookTarget } from './alerts.js'
import { Scheduler, roundFailedPayload, type ScheduledFailure } from './scheduler.js'
import { checkWindowRails, WindowRefusedError } from './window-rails.js'
import { planRefresh } from './refresh.js'
import { RefreshScheduler, type DueRefresh } from './refresh-scheduler.js'
import { refreshAgesMs } from '../shared/stats/spec.js'
import { parseDuration } from '../shared/config/duration.js'
import { mergeRoundList } from '../shared/round-list.js'
import { Roster } from './roster.js'
import { FileWatcher } from '../shared/config/watch.js'
import { RoundService, type CoordinatorExitPoint } from './rounds.js'
import { ApiServer, ApiError, type ApiBackend, type AgentView, type MonitorView } from './api.js'

const COORDINATOR_BOUND = (Object.keys(MESSAGE_ROUTES) as SecAggMessageType[]).filter(t => MESSAGE_ROUTES[t] === 'agent->coordinator')

export interface CoordinatorDaemonOptions {
  config: CoordinatorConfig
  logger: Logger
  /** Test-only: append every raw inbound secagg frame to this file (FEDMON_TEST_DUMP_FRAMES). */
  testDumpFramesFile?: string
  /** Test-only (FEDMON_TEST_EXIT_AT): SIGKILL this process at this point of a round's end. */
  testExitAt?: CoordinatorExitPoint
  /** Test-only (FEDMON_TEST_COMPACT_ANNOUNCE_FROM): the roster-bitmap Announce from this many participants on. */
  testCompactAnnounceFrom?: number
}

/**
 * One monitor of the deployment (issue 12 §1): its spec and layout, its view of the store, its metrics labels,
 * its round service (rounds of different monitors run side by side), scheduler, refresh scheduler and webhooks.
 */
interface MonitorRuntime {
  name: string
  config: LoadedMonitorConfig
  spec: MonitorSpec
  layout: TaskLayout
  webhooks: WebhookTarget[]
  store: SqliteReportStore
  metrics: Metrics
  rounds: RoundService
  scheduler: Scheduler | null
  refreshScheduler: RefreshScheduler | null
  notifier: WebhookNotifier | null
  referenceRetryAt: number
}

export class CoordinatorDaemon {
  readonly config: CoordinatorConfig
  private readonly logger: Logger
  private readonly startedAt = Date.now()
  private identity!: Identity
  /** The monitors by name, in config order; the first is the one requests without a monitor mean. */
  private readonly monitors = new Map<string, MonitorRuntime>()
  private primary!: MonitorRuntime
  private store: SqliteReportStore | null = null
  private metrics!: Metrics
  private node: FedmonNode | null = null
  private messenger: SecAggMessenger | null = null
  private roster!: Roster
  /** network.announceAllow: which hello addresses are announced (and dialled); unset = any dialable one. */
  private readonly announceAllow: DialAllowList | undefined
  private api: ApiServer | null = null
  /** Expands the masks of each round's unmasking off the event loop; lives as long as the daemon. */
  private unmaskPool: UnmaskWorkerPool | null = null
  private readonly testDumpFramesFile: string | undefined
  private readonly testExitAt: CoordinatorExitPoint | undefined
  private readonly testCompactAnnounceFrom: number | undefined
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle'
  /** Watches the config and roster files: an edit on disk is reloaded like a SIGHUP. */
  private rosterWatcher: FileWatcher | null = null
  /** Reloads run one at a time (SIGHUP and file changes alike). */
  private reloading: Promise<void> = Promise.resolve()

  constructor (opts: CoordinatorDaemonOptions) {
    this.config = opts.config
    this.logger = opts.logger
    this.testDumpFramesFile = opts.testDumpFramesFile
    this.testExitAt = opts.testExitAt
    this.testCompactAnnounceFrom = opts.testCompactAnnounceFrom
    const allow = opts.config.network?.announceAllow
    this.announceAllow = allow !== undefined ? new DialAllowList(allow) : undefined
  }

  get peerId (): string {
    return this.identity.peerId
  }

  async start (): Promise<{ peerId: string, listen: string[], api: string, createdIdentity: boolean }> {
    if (this.state !== 'idle') throw new FedmonError('coordinator already started', 'ERR_STATE')
    this.state = 'starting'
    const { config, logger } = this
    // Everything that can be wrong in the files is checked before anything is created on disk.
    const loaded = config.monitors.map((m) => {
      const spec = loadMonitorSpec(m.spec)
      const layout = buildTaskLayout(spec)
      // A single-spec config's monitor is named after its model (what reports, lists and metrics called it before).
      const name = m.name ?? spec.model
      return { m, spec, layout, name, webhooks: loadWebhookTargets(config.file, m.webhooks) }
    })
    const names = new Set<string>()
    for (const { m, name } of loaded) {
      if (names.has(name)) throw new ConfigError(config.file, `${m.field}.name`, `monitor "${name}" is defined twice`)
      names.add(name)
    }
    const token = config.api.tokenFile !== undefined ? readToken(config.api.tokenFile) : undefined
    for (const { layout, name } of loaded) {
      const maxAgents = maxAgentsFor(layout)
      if (config.agents.length > maxAgents) {
        logger.warn({ monitor: name, roster: config.agents.length, maxAgents, maxRecordsPerAgent: layout.maxRecords }, 'the roster is larger than the spec allows per round: rounds with more agents online are refused (lower limits.maxRecordsPerAgent)')
      }
    }
    const identity = await loadOrCreateIdentity(config.identity)
    this.identity = identity
    this.store = openStore(config.store)
    // Rows from before monitors belong to the first monitor (a single-spec deployment's only one).
    const adopted = this.store.adoptUnscoped(loaded[0].name)
    if (adopted > 0) logger.info({ monitor: loaded[0].name, rows: adopted }, 'store rows from before monitors given to the first monitor')
    this.recoverInterruptedRounds(this.store)
    this.metrics = createMetrics()
    this.roster = new Roster(config.agents)
    this.unmaskPool = new UnmaskWorkerPool()
    await this.unmaskPool.start()

    for (const { m, spec, layout, name, webhooks } of loaded) {
      const store = this.store.forMonitor(name)
      const metrics = this.metrics.forMonitor(name)
      let notifier: WebhookNotifier | null = null
      if (webhooks.length > 0) {
        notifier = new WebhookNotifier({ targets: webhooks, logger })
        // What fired on the last report before a restart can still be announced as resolved.
        const last = store.latestReport({ kind: 'current' })
        if (last !== null) notifier.rememberFiring(last)
      }
      const runtime: MonitorRuntime = {
        name,
        config: m,
        spec,
        layout,
        webhooks,
        store,
        metrics,
        notifier,
        scheduler: null,
        refreshScheduler: null,
        referenceRetryAt: 0,
        rounds: new RoundService({
          peerId: identity.peerId,
          sign: createSigner(identity.privateKey),
          verify: createVerifier(),
          roster: this.roster,
          sender: { send: async (to, message, opts) => { await this.messenger?.send(to, message, opts) } },
          store,
          spec,
          layout,
          privacy: config.privacy,
          phaseTimeoutMs: config.round.phaseTimeoutMs,
          alerts: createAlertEvaluator(m.alerts),
          notify: notifier !== null ? (report, alerts) => { notifier.notify(report, alerts) } : undefined,
          metrics,
          logger,
          computeUnmask: async (work, opts) => await this.computeUnmask(work, opts),
          testExitAt: this.testExitAt,
          testCompactAnnounceFrom: this.testCompactAnnounceFrom,
          monitor: name
        })
      }
      this.monitors.set(name, runtime)
    }
    this.primary = this.monitors.get(loaded[0].name) as MonitorRuntime
    this.metrics.setAgentsTotal(this.roster.size)
    this.metrics.setAgentsOnline(0)
    const maxVectorLength = Math.max(...loaded.map(l => l.layout.length))

    const node = await createFedmonNode({
      privateKey: identity.privateKey,
      listen: config.listen,
      gater: createAllowListGater({
        isAllowed: id => this.roster.has(id),
        // What the coordinator would not announce it does not dial either (it learns agents' addresses from them).
        allowDial: (addr) => {
          const target = dialTarget(addr)
          return target !== null && (this.announceAllow?.allows(target) ?? true)
        },
        logger
      }),
      expectedPeers: config.agents.length
    })
    this.node = node
    node.addEventListener('peer:connect', (evt) => { this.onConnect(evt.detail.toString()) })
    node.addEventListener('peer:disconnect', (evt) => { this.onDisconnect(evt.detail.toString()) })

    const dump = this.testDumpFramesFile
    this.messenger = new SecAggMessenger({
      node,
      logger,
      accept: COORDINATOR_BOUND,
      frameLimit: type => frameLimitFor(type, maxVectorLength),
      onMessage: (from, message) => {
        this.touch(from)
        // Rounds of several monitors run at once: each message goes to the service whose round it names.
        this.roundsFor(message.roundId).receive(from, message)
      },
      onRawFrame: dump !== undefined ? (from, protocol, frame) => { appendFileSync(dump, frame) } : undefined,
      // An agent sends one message of a type at a time (plus a retry): a few streams per protocol suffice,
      // and the messenger's per-peer budget caps them over all protocols and connections.
      maxStreams: MAX_INBOUND_STREAMS_PER_PROTOCOL
    })
    await this.messenger.start()
    await handleControl(node, HELLO_PROTOCOL, {
      logger,
      maxLength: 64 * 1024,
      handle: (from, value, connection) => { this.onHello(from, value, connection) }
    })
    await handleControl(node, SPEC_PROTOCOL, {
      logger,
      maxLength: 4 * 1024,
      handle: (from, value) => {
        const req = SpecRequest.safeParse(value)
        if (!req.success) throw new WireError('malformed spec request', 'ERR_BAD_FRAME')
        const monitor = [...this.monitors.values()].find(r => r.layout.specHash === req.data.specHash)
        if (monitor === undefined) throw new FedmonError(`unknown spec hash ${req.data.specHash}`, 'ERR_UNKNOWN_SPEC')
        const response: SpecResponse = { type: 'spec', spec: monitor.spec }
        return response
      }
    })
    await node.start()

    const { host, port } = parseHostPort(config.api.listen)
    this.api = new ApiServer({ backend: this.backend(), host, port, token, allowedHosts: config.api.allowedHosts, logger })
    const bound = await this.api.start()

    for (const runtime of this.monitors.values()) this.startSchedulers(runtime)
    this.flushTimer = setInterval(() => { this.flushSeen() }, 10_000)
    this.flushTimer.unref()
    this.state = 'running'
    this.rosterWatcher = new FileWatcher({
      files: [config.file, ...(config.rosterFile !== undefined ? [config.rosterFile] : [])],
      logger,
      onChange: (changed) => {
        logger.info({ changed }, 'roster or config file changed on disk: reloading the roster')
        this.reload().catch((err: unknown) => { logger.error({ err: (err as Error).message }, 'roster reload failed: the current roster stays') })
      }
    })
    const listen = node.getMultiaddrs().map(a => a.toString())
    logger.info({ peerId: identity.peerId, listen, api: `${bound.host}:${bound.port}`, agents: config.agents.length, rosterFile: config.rosterFile, monitors: [...this.monitors.values()].map(r => ({ name: r.name, specHash: r.layout.specHash, vectorLength: r.layout.length })) }, 'coordinator started')
    return { peerId: identity.peerId, listen, api: `${bound.host}:${bound.port}`, createdIdentity: identity.created }
  }

  /** A monitor's scheduler and, when its spec declares label refreshes, its refresh scheduler. */
  private startSchedulers (runtime: MonitorRuntime): void {
    const schedule = runtime.config.schedule
    if (schedule === undefined) return
    const { logger } = this
    runtime.scheduler = new Scheduler({
      schedule,
      store: runtime.store,
      logger,
      runWindow: async (window, key, signal) => { await this.runScheduled(runtime, window, key, signal) },
      allAgentsOnline: () => this.roster.size > 0 && this.roster.onlineCount() >= this.roster.size,
      onFailure: (failure) => { this.onScheduledFailure(runtime, failure) }
    })
    runtime.scheduler.start()
    const ages = refreshAgesMs(runtime.spec)
    if (ages.length > 0) {
      runtime.refreshScheduler = new RefreshScheduler({
        store: runtime.store,
        specHash: runtime.layout.specHash,
        agesMs: ages,
        deadlineMs: parseDuration(schedule.labelRefreshDeadline),
        retryEveryMs: parseDuration(schedule.labelRefreshRetry),
        runRefresh: async (due, signal) => { await this.runScheduledRefresh(runtime, due, signal) },
        logger
      })
      runtime.refreshScheduler.start()
    }
  }

  /** The round service whose round `roundId` is (running or just ended); the first monitor's for any other. */
  private roundsFor (roundId: string): RoundService {
    for (const runtime of this.monitors.values()) if (runtime.rounds.owns(roundId)) return runtime.rounds
    return this.primary.rounds
  }

  /** The monitor a request names; without a name the first (the only one of a single-spec deployment). */
  private monitorNamed (name: string | undefined): MonitorRuntime {
    if (name === undefined) return this.primary
    const runtime = this.monitors.get(name)
    if (runtime === undefined) throw new ApiError(404, 'ERR_UNKNOWN_MONITOR', `no monitor named "${name}" (monitors: ${[...this.monitors.keys()].join(', ')})`)
    return runtime
  }

  /** Whether any monitor's round is running. */
  private get anyRoundBusy (): boolean {
    for (const runtime of this.monitors.values()) if (runtime.rounds.busy) return true
    return false
  }

  /**
   * SIGHUP, or the config or roster file changed on disk: re-reads the config file and takes its roster
   * (`agents`, inline or the roster file), validated first. Connected agents that stay keep their state;
   * agents taken off lose their connections. Nothing else is reloaded; on an error the current roster stays
   * and the error is logged. One reload at a time.
   */
  async reload (): Promise<void> {
    const run = this.reloading.then(async () => { await this.reloadNow() })
    this.reloading = run.catch(() => {})
    await run
  }

  private async reloadNow (): Promise<void> {
    if (this.state !== 'running') return
    let agents: string[]
    try {
      const next = loadCoordinatorConfig(this.config.file)
      agents = next.agents
      this.rosterWatcher?.setFiles([next.file, ...(next.rosterFile !== undefined ? [next.rosterFile] : [])])
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'roster reload failed: the current roster stays')
      return
    }
    const { added, removed } = this.roster.replace(agents)
    for (const runtime of this.monitors.values()) {
      const maxAgents = maxAgentsFor(runtime.layout)
      if (agents.length > maxAgents) this.logger.warn({ monitor: runtime.name, roster: agents.length, maxAgents }, 'the roster is larger than the spec allows per round: rounds with more agents online are refused (lower limits.maxRecordsPerAgent)')
    }
    this.metrics.setAgentsTotal(this.roster.size)
    this.metrics.setAgentsOnline(this.roster.onlineCount())
    this.logger.info({ agents: this.roster.size, added, removed }, 'roster reloaded')
    for (const conn of this.node?.getConnections() ?? []) {
      if (!this.roster.has(conn.remotePeer.toString())) await conn.close().catch(() => {})
    }
  }

  /** Graceful stop: abort the in-flight round, stop scheduler, API and libp2p, close the store. */
  async stop (): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return
    const wasRunning = this.state === 'running'
    this.state = 'stopping'
    this.rosterWatcher?.close()
    const runtimes = [...this.monitors.values()]
    await Promise.all(runtimes.map(async (r) => {
      await r.scheduler?.stop().catch(() => {})
      await r.refreshScheduler?.stop().catch(() => {})
    }))
    await Promise.all(runtimes.map(async r => { await r.rounds.stop().catch(() => {}) }))
    await this.api?.stop().catch(() => {})
    await this.messenger?.stop().catch(() => {})
    if (this.messenger !== null) this.logger.info({ traffic: this.messenger.stats }, 'traffic')
    await Promise.resolve(this.node?.stop()).catch(() => {})
    await Promise.all(runtimes.map(async r => { await r.notifier?.stop().catch(() => {}) }))
    await this.unmaskPool?.stop().catch(() => {})
    this.unmaskPool = null
    if (this.flushTimer !== null) clearInterval(this.flushTimer)
    this.flushSeen(true)
    this.store?.close()
    this.store = null
    this.state = 'stopped'
    if (wasRunning) this.logger.info('coordinator stopped')
  }

  /** The unmask computations queue here: the pool computes one at a time, and monitors' rounds end concurrently. */
  private unmaskQueue: Promise<unknown> = Promise.resolve()

  /**
   * A failed or aborted compute stops the pool (a busy worker cannot be interrupted): restart it then. Calls
   * run one after the other (rounds of several monitors may reach their unmasking at once).
   */
  private async computeUnmask (work: UnmaskWork, opts: { signal: AbortSignal }): Promise<Uint32Array> {
    const run = this.unmaskQueue.then(async () => {
      opts.signal.throwIfAborted()
      const pool = this.unmaskPool
      if (pool === null) throw new FedmonError('the coordinator is stopping', 'ERR_STOPPED')
      if (!pool.started) await pool.start()
      return await pool.compute(work, opts)
    })
    this.unmaskQueue = run.catch(() => {})
    return await run
  }

  /** Rounds still marked running belong to a previous process that died: they can never finish. */
  private recoverInterruptedRounds (store: SqliteReportStore): void {
    for (const round of store.listRounds({ last: 100 })) {
      if (round.status !== 'running') continue
      store.saveRound({ ...round, status: 'aborted', finishedAt: new Date().toISOString(), failure: { code: 'ERR_COORDINATOR_RESTART', message: 'the coordinator stopped during the round' } })
    }
  }

  private onConnect (peerId: string): void {
    if (!this.roster.connected(peerId, Date.now())) return
    for (const runtime of this.monitors.values()) runtime.rounds.reconnected(peerId)
    this.touch(peerId)
    this.metrics.setAgentsOnline(this.roster.onlineCount())
    this.logger.info({ peer: peerId, online: this.roster.onlineCount() }, 'agent connected')
  }

  private onDisconnect (peerId: string): void {
    if (!this.roster.has(peerId)) return
    this.roster.disconnected(peerId, Date.now())
    this.touch(peerId)
    this.metrics.setAgentsOnline(this.roster.onlineCount())
    this.logger.info({ peer: peerId, online: this.roster.onlineCount() }, 'agent disconnected')
    // Its last connection closed: the running round stops waiting for it (a dropout now, not at the deadline).
    for (const runtime of this.monitors.values()) runtime.rounds.disconnected(peerId)
  }

  /** Agents seen since the last flush → when. */
  private readonly unflushedSeen = new Map<string, number>()
  private flushTimer: NodeJS.Timeout | null = null

  /**
   * Records liveness: in memory at once, in the store in batches (every store write is an fsync, and a
   * round's event loop must not wait on the disk). Flushes are deferred while a round runs.
   */
  private touch (peerId: string): void {
    const now = Date.now()
    this.roster.seen(peerId, now)
    this.unflushedSeen.set(peerId, now)
  }

  private flushSeen (force = false): void {
    if (this.store === null || (!force && this.anyRoundBusy)) return
    for (const [peerId, at] of this.unflushedSeen) {
      try { this.store.touchAgent(peerId, new Date(at).toISOString()) } catch (err) { this.logger.warn({ err }, 'touchAgent failed') }
    }
    this.unflushedSeen.clear()
  }

  private onHello (from: string, value: unknown, connection: Connection): void {
    const hello = Hello.safeParse(value)
    if (!hello.success) throw new WireError('malformed hello', 'ERR_BAD_FRAME')
    // Only addresses worth announcing: they go to every neighbour, which dials them.
    const { kept: addrs, dropped } = selectAnnouncedAddrs(hello.data.addrs, { peer: from, remoteAddr: connection.remoteAddr, allow: this.announceAllow })
    this.roster.setAddrs(from, addrs, Date.now())
    this.touch(from)
    this.metrics.setAgentsOnline(this.roster.onlineCount())
    this.logger.info({ peer: from, addrs }, 'agent hello')
    // (An agent listening on 0.0.0.0 reports its loopback address too: worth a warning only when nothing is left.)
    if (dropped.length > 0) this.logger[addrs.length === 0 ? 'warn' : 'info']({ peer: from, dropped: dropped.map(a => a.slice(0, 100)) }, 'hello addresses not announced: not dialable, not allowed (network.announceAllow), loopback of a remote agent, or over the limit')
    const allOnline = this.roster.size > 0 && this.roster.onlineCount() >= this.roster.size
    for (const runtime of this.monitors.values()) {
      this.maybeRunConfiguredReference(runtime)
      runtime.scheduler?.agentsChanged()
      if (allOnline) runtime.refreshScheduler?.poke()
    }
  }

  /** With `reference: {from, to}` configured and no reference yet, run that reference round once enough agents are up. */
  private maybeRunConfiguredReference (runtime: MonitorRuntime): void {
    const ref = runtime.config.reference
    if (ref === undefined || this.store === null || this.state !== 'running' || runtime.rounds.busy) return
    if (runtime.store.currentReference() !== null || Date.now() < runtime.referenceRetryAt) return
    if (this.roster.ready().length < this.config.privacy.minAgents) return
    runtime.referenceRetryAt = Date.now() + 30_000
    try {
      this.checkWindow(runtime, ref)
      const { roundId } = runtime.rounds.start({ window: ref, kind: 'reference' })
      this.logger.info({ round: roundId, monitor: runtime.name }, 'configured reference round started')
    } catch (err) {
      this.logger.warn({ monitor: runtime.name, err: (err as Error).message }, 'configured reference round not started')
    }
  }

  private async runScheduled (runtime: MonitorRuntime, window: { from: number, to: number }, key: string, signal: AbortSignal): Promise<void> {
    const rounds = runtime.rounds
    if (this.state !== 'running') throw new FedmonError('coordinator not running', 'ERR_STATE')
    // Queue behind a manual round rather than fail the window.
    for (let i = 0; rounds.busy && i < 600 && !signal.aborted; i++) await new Promise(resolve => setTimeout(resolve, 500))
    // Refused here (too long, in the future, overlapping a report) or by start() (too few agents): no round,
    // no agent asked. The scheduler retries only the lack of agents.
    this.checkWindow(runtime, window)
    const { finished } = rounds.start({ window, kind: 'current', scheduledWindowKey: key })
    const outcome: RoundOutcome = await finished
    if (outcome.status !== 'done') {
      throw Object.assign(new FedmonError(`scheduled round ${outcome.id} ${outcome.status}: ${outcome.failure?.message ?? ''}`, outcome.failure?.code ?? 'ERR_ROUND_FAILED'), { roundId: outcome.id })
    }
  }

  /**
   * A label refresh of `window`'s report at `ageMs` (coordinator/refresh.ts): the window guard rails do not
   * apply (the window has its report; a refresh is the declared way back into it), the refresh rules do.
   */
  startRefresh (window: { from: number, to: number }, ageMs: number, monitor?: string): { roundId: string, finished: Promise<RoundOutcome> } {
    if (this.store === null || this.state !== 'running') throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
    const runtime = this.monitorNamed(monitor)
    // The monitor's own reports: planRefresh reads them through its view of the store.
    const target = planRefresh({ store: runtime.store, spec: runtime.spec, layout: runtime.layout, window, ageMs, now: Date.now() })
    const kind = target.first.round.kind === 'reference' ? 'reference' : 'current'
    return runtime.rounds.start({ window, kind, refresh: target })
  }

  /** A due label refresh (the monitor's RefreshScheduler): queued behind its running round; rejects with the failure's code. */
  private async runScheduledRefresh (runtime: MonitorRuntime, due: DueRefresh, signal: AbortSignal): Promise<void> {
    const rounds = runtime.rounds
    if (this.state !== 'running') throw new FedmonError('coordinator not running', 'ERR_STATE')
    for (let i = 0; rounds.busy && i < 600 && !signal.aborted; i++) await new Promise(resolve => setTimeout(resolve, 500))
    // Not tied to the round by scheduledWindowKey (unique per round): a refresh may take several rounds.
    const { finished } = this.startRefresh(due.window, due.ageMs, runtime.name)
    const outcome = await finished
    if (outcome.status !== 'done') {
      throw Object.assign(new FedmonError(`label refresh ${outcome.id} ${outcome.status}: ${outcome.failure?.message ?? ''}`, outcome.failure?.code ?? 'ERR_ROUND_FAILED'), { roundId: outcome.id })
    }
  }

  /** The window guard rails (coordinator/window-rails.ts), before any agent is asked. */
  private checkWindow (runtime: MonitorRuntime, window: { from: number, to: number }): void {
    if (this.store === null) throw new FedmonError('the coordinator is not running', 'ERR_STATE')
    // A window of one monitor never overlaps another's: their records differ (the agents' ledgers scope them too).
    checkWindowRails({ window, now: Date.now(), maxWindowMs: this.config.round.maxWindowMs, overlapping: runtime.store.reportsOverlapping(window) })
  }

  /**
   * A scheduled window failed: counted (a round that ran was counted when it ended), and sent to the webhooks
   * on its first failure and when it fails for good (not on every retry).
   */
  private onScheduledFailure (runtime: MonitorRuntime, failure: ScheduledFailure): void {
    if (failure.roundId === null) runtime.metrics.countFailure(failure.code)
    if (failure.attempts === 1 || failure.nextAttemptAt === null) runtime.notifier?.send(roundFailedPayload(failure, runtime.name))
  }

  private backend (): ApiBackend {
    const store = (): SqliteReportStore => {
      if (this.store === null) throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
      return this.store
    }
    const monitorStore = (name: string | undefined): SqliteReportStore => { store(); return this.monitorNamed(name).store }
    return {
      peerId: this.identity.peerId,
      uptimeS: () => Math.round((Date.now() - this.startedAt) / 1000),
      startRound: (req) => {
        if (this.state !== 'running') throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
        if (req.monitor === undefined && this.monitors.size > 1) {
          throw new ApiError(422, 'ERR_MONITOR_REQUIRED', `this deployment runs ${this.monitors.size} monitors: name one (monitor: ${[...this.monitors.keys()].join(' | ')})`)
        }
        const runtime = this.monitorNamed(req.monitor)
        if (req.refreshMs !== undefined) return this.startRefresh(req.window, req.refreshMs, runtime.name).roundId
        try {
          this.checkWindow(runtime, req.window)
        } catch (err) {
          if (err instanceof WindowRefusedError) throw new ApiError(err.code === 'ERR_WINDOW_OVERLAP' ? 409 : 422, err.code, err.message)
          throw err
        }
        return runtime.rounds.start({ window: req.window, kind: req.reference ? 'reference' : 'current' }).roundId
      },
      getRound: id => store().getRound(id),
      listRounds: opts => this.roundList(opts),
      listReports: opts => monitorStoreOrAll(opts.monitor).listReports(opts),
      getReport: id => store().getReport(id),
      reportVersions: id => { const v = store().listVersions(id); return v.length > 0 ? v : null },
      latestReport: (monitor) => {
        const s = monitorStoreOrAll(monitor)
        return s.latestReport({ kind: 'current' }) ?? s.latestReport({ kind: 'any' })
      },
      agents: () => this.agentViews(store()),
      monitors: () => { store(); return [...this.monitors.values()].map(r => this.monitorView(r)) },
      status: (monitor) => {
        store()
        const runtime = this.monitorNamed(monitor)
        const s = runtime.store
        return {
          status: 'ok',
          peerId: this.identity.peerId,
          specHash: runtime.layout.specHash,
          model: runtime.spec.model,
          monitor: runtime.name,
          agents: { total: this.roster.size, online: this.roster.onlineCount() },
          lastRound: s.listRounds({ last: 1 })[0] ?? null,
          nextScheduledRound: runtime.scheduler?.nextRun() ?? null,
          reference: s.currentReference(),
          recentFailures: this.roundList({ limit: 5, failed: true, ...(monitor !== undefined ? { monitor } : {}) }),
          monitors: [...this.monitors.values()].map(r => this.monitorView(r))
        }
      },
      reference: monitor => monitorStore(monitor).currentReference(),
      setReference: (reportId, monitor) => {
        const s = monitorStore(monitor)
        if (s.getReport(reportId) === null || s.getReferenceVector(reportId) === null) throw new ApiError(404, 'ERR_NOT_FOUND', `no reference-capable report ${reportId}${monitor !== undefined ? ` in monitor ${monitor}` : ''}`)
        s.setCurrentReference(reportId)
        const ref = s.currentReference()
        if (ref === null) throw new ApiError(500, 'ERR_INTERNAL', 'reference not recorded')
        return ref
      },
      metrics: async () => await this.metrics.render()
    }

    function monitorStoreOrAll (name: string | undefined): SqliteReportStore {
      return name === undefined ? store() : monitorStore(name)
    }
  }

  /** One monitor as `GET /v1/monitors` and `fedmon status` show it. */
  private monitorView (runtime: MonitorRuntime): MonitorView {
    const last = runtime.store.listRounds({ last: 1 })[0] ?? null
    const latest = runtime.store.latestReport({ kind: 'any' })
    return {
      name: runtime.name,
      model: runtime.spec.model,
      specHash: runtime.layout.specHash,
      vectorLength: runtime.layout.length,
      schedule: runtime.config.schedule !== undefined ? { every: runtime.config.schedule.every, delay: runtime.config.schedule.delay } : null,
      running: runtime.rounds.currentRoundId,
      lastRound: last !== null ? { id: last.id, kind: last.kind, status: last.status, window: last.window, startedAt: last.startedAt, finishedAt: last.finishedAt, reportId: last.reportId } : null,
      nextScheduledRound: runtime.scheduler?.nextRun() ?? null,
      latestReport: latest !== null ? { id: latest.id, window: latest.window, createdAt: latest.createdAt } : null,
      reference: runtime.store.currentReference(),
      alertRules: runtime.config.alerts.length
    }
  }

  /** Rounds and the scheduled windows no round ran for (failed to start, retrying, missed), newest last; every monitor's unless one is named. */
  private roundList (opts: { limit: number, failed: boolean, monitor?: string }): ReturnType<ApiBackend['listRounds']> {
    if (this.store === null) throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
    if (opts.monitor !== undefined && !this.monitors.has(opts.monitor)) return []
    const runtimes = opts.monitor !== undefined ? [this.monitorNamed(opts.monitor)] : [...this.monitors.values()]
    const entries = runtimes.flatMap((r) => {
      const rounds = opts.failed ? r.store.listFailedRounds({ last: opts.limit }) : r.store.listRounds({ last: opts.limit })
      const windows = r.store.listScheduledWindows({ states: ['failed', 'retrying', 'missed'], last: opts.limit })
      return mergeRoundList(rounds, windows, { monitor: r.name, failed: opts.failed, limit: opts.limit })
    })
    if (runtimes.length === 1) return entries
    // mergeRoundList orders by start (newest last); across monitors the same order, then the newest `limit`.
    return entries.sort((a, b) => a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0).slice(-opts.limit)
  }

  private agentViews (store: SqliteReportStore): AgentView[] {
    const seen = new Map(store.agents().map(a => [a.peerId, a]))
    return this.roster.list().map((e) => {
      const stored = seen.get(e.peerId)
      const lastSeen = e.lastSeen !== null ? new Date(e.lastSeen).toISOString() : (stored?.lastSeen ?? null)
      return { peerId: e.peerId, online: this.roster.isOnline(e.peerId), lastSeen, lastIncludedRound: stored?.lastIncludedRound ?? null }
    })
  }
}

function readToken (file: string): string {
  let token: string
  try {
    token = readFileSync(file, 'utf8').trim()
  } catch (err) {
    throw new FedmonError(`${file}: cannot read api.tokenFile (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'ERR_TOKEN_FILE')
  }
  if (token.length < 16) throw new FedmonError(`${file}: the API token must be at least 16 characters`, 'ERR_TOKEN_FILE')
  return token
}
