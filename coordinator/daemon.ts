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
import type { CoordinatorConfig } from '../shared/config/coordinator.js'
import { parseHostPort, loadCoordinatorConfig } from '../shared/config/coordinator.js'
import type { Logger } from '../shared/log.js'
import type { RoundOutcome } from './contracts.js'
import { openStore, type SqliteReportStore } from './store.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createAlertEvaluator, loadWebhookTargets, WebhookNotifier } from './alerts.js'
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
import { ApiServer, ApiError, type ApiBackend, type AgentView } from './api.js'

const COORDINATOR_BOUND = (Object.keys(MESSAGE_ROUTES) as SecAggMessageType[]).filter(t => MESSAGE_ROUTES[t] === 'agent->coordinator')

export interface CoordinatorDaemonOptions {
  config: CoordinatorConfig
  logger: Logger
  /** Test-only: append every raw inbound secagg frame to this file (FEDMON_TEST_DUMP_FRAMES). */
  testDumpFramesFile?: string
  /** Test-only (FEDMON_TEST_EXIT_AT): SIGKILL this process at this point of a round's end. */
  testExitAt?: CoordinatorExitPoint
}

export class CoordinatorDaemon {
  readonly config: CoordinatorConfig
  private readonly logger: Logger
  private readonly startedAt = Date.now()
  private identity!: Identity
  private spec!: MonitorSpec
  private layout!: TaskLayout
  private store: SqliteReportStore | null = null
  private metrics!: Metrics
  private node: FedmonNode | null = null
  private messenger: SecAggMessenger | null = null
  private roster!: Roster
  /** network.announceAllow: which hello addresses are announced (and dialled); unset = any dialable one. */
  private readonly announceAllow: DialAllowList | undefined
  private rounds: RoundService | null = null
  private api: ApiServer | null = null
  private scheduler: Scheduler | null = null
  private refreshScheduler: RefreshScheduler | null = null
  private notifier: WebhookNotifier | null = null
  /** Expands the masks of each round's unmasking off the event loop; lives as long as the daemon. */
  private unmaskPool: UnmaskWorkerPool | null = null
  private referenceRetryAt = 0
  private readonly testDumpFramesFile: string | undefined
  private readonly testExitAt: CoordinatorExitPoint | undefined
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
    this.spec = loadMonitorSpec(config.spec)
    this.layout = buildTaskLayout(this.spec)
    const token = config.api.tokenFile !== undefined ? readToken(config.api.tokenFile) : undefined
    const webhooks = loadWebhookTargets(config.file, config.webhooks)
    const maxAgents = maxAgentsFor(this.layout)
    if (config.agents.length > maxAgents) {
      logger.warn({ roster: config.agents.length, maxAgents, maxRecordsPerAgent: this.layout.maxRecords }, 'the roster is larger than the spec allows per round: rounds with more agents online are refused (lower limits.maxRecordsPerAgent)')
    }
    const identity = await loadOrCreateIdentity(config.identity)
    this.identity = identity
    this.store = openStore(config.store)
    this.recoverInterruptedRounds(this.store)
    this.metrics = createMetrics()
    this.roster = new Roster(config.agents)
    this.metrics.setAgentsTotal(this.roster.size)
    this.metrics.setAgentsOnline(0)
    if (webhooks.length > 0) {
      this.notifier = new WebhookNotifier({ targets: webhooks, logger })
      // What fired on the last report before a restart can still be announced as resolved.
      const last = this.store.latestReport({ kind: 'current' })
      if (last !== null) this.notifier.rememberFiring(last)
    }
    this.unmaskPool = new UnmaskWorkerPool()
    await this.unmaskPool.start()

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

    const store = this.store
    this.rounds = new RoundService({
      peerId: identity.peerId,
      sign: createSigner(identity.privateKey),
      verify: createVerifier(),
      roster: this.roster,
      sender: { send: async (to, message, opts) => { await this.messenger?.send(to, message, opts) } },
      store,
      spec: this.spec,
      layout: this.layout,
      privacy: config.privacy,
      phaseTimeoutMs: config.round.phaseTimeoutMs,
      alerts: createAlertEvaluator(config.alerts),
      notify: this.notifier !== null ? (report, alerts) => { this.notifier?.notify(report, alerts) } : undefined,
      metrics: this.metrics,
      logger,
      computeUnmask: async (work, opts) => await this.computeUnmask(work, opts),
      testExitAt: this.testExitAt
    })

    const dump = this.testDumpFramesFile
    this.messenger = new SecAggMessenger({
      node,
      logger,
      accept: COORDINATOR_BOUND,
      frameLimit: type => frameLimitFor(type, this.layout.length),
      onMessage: (from, message) => {
        this.touch(from)
        this.rounds?.receive(from, message)
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
        if (req.data.specHash !== this.layout.specHash) throw new FedmonError(`unknown spec hash ${req.data.specHash}`, 'ERR_UNKNOWN_SPEC')
        const response: SpecResponse = { type: 'spec', spec: this.spec }
        return response
      }
    })
    await node.start()

    const { host, port } = parseHostPort(config.api.listen)
    this.api = new ApiServer({ backend: this.backend(), host, port, token, allowedHosts: config.api.allowedHosts, logger })
    const bound = await this.api.start()

    if (config.schedule !== undefined) {
      this.scheduler = new Scheduler({
        schedule: config.schedule,
        store,
        logger,
        runWindow: async (window, key, signal) => { await this.runScheduled(window, key, signal) },
        allAgentsOnline: () => this.roster.size > 0 && this.roster.onlineCount() >= this.roster.size,
        onFailure: (failure) => { this.onScheduledFailure(failure) }
      })
      this.scheduler.start()
      const ages = refreshAgesMs(this.spec)
      if (ages.length > 0) {
        this.refreshScheduler = new RefreshScheduler({
          store,
          specHash: this.layout.specHash,
          agesMs: ages,
          deadlineMs: parseDuration(config.schedule.labelRefreshDeadline),
          retryEveryMs: parseDuration(config.schedule.labelRefreshRetry),
          runRefresh: async (due, signal) => { await this.runScheduledRefresh(due, signal) },
          logger
        })
        this.refreshScheduler.start()
      }
    }
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
    logger.info({ peerId: identity.peerId, listen, api: `${bound.host}:${bound.port}`, agents: config.agents.length, rosterFile: config.rosterFile, specHash: this.layout.specHash, vectorLength: this.layout.length }, 'coordinator started')
    return { peerId: identity.peerId, listen, api: `${bound.host}:${bound.port}`, createdIdentity: identity.created }
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
    const maxAgents = maxAgentsFor(this.layout)
    if (agents.length > maxAgents) this.logger.warn({ roster: agents.length, maxAgents }, 'the roster is larger than the spec allows per round: rounds with more agents online are refused (lower limits.maxRecordsPerAgent)')
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
    await this.scheduler?.stop().catch(() => {})
    await this.refreshScheduler?.stop().catch(() => {})
    await this.rounds?.stop().catch(() => {})
    await this.api?.stop().catch(() => {})
    await this.messenger?.stop().catch(() => {})
    if (this.messenger !== null) this.logger.info({ traffic: this.messenger.stats }, 'traffic')
    await Promise.resolve(this.node?.stop()).catch(() => {})
    await this.notifier?.stop().catch(() => {})
    await this.unmaskPool?.stop().catch(() => {})
    this.unmaskPool = null
    if (this.flushTimer !== null) clearInterval(this.flushTimer)
    this.flushSeen(true)
    this.store?.close()
    this.store = null
    this.state = 'stopped'
    if (wasRunning) this.logger.info('coordinator stopped')
  }

  /** A failed or aborted compute stops the pool (a busy worker cannot be interrupted): restart it then. */
  private async computeUnmask (work: UnmaskWork, opts: { signal: AbortSignal }): Promise<Uint32Array> {
    const pool = this.unmaskPool
    if (pool === null) throw new FedmonError('the coordinator is stopping', 'ERR_STOPPED')
    if (!pool.started) await pool.start()
    return await pool.compute(work, opts)
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
    this.rounds?.reconnected(peerId)
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
    this.rounds?.disconnected(peerId)
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
    if (this.store === null || (!force && this.rounds?.busy === true)) return
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
    this.maybeRunConfiguredReference()
    this.scheduler?.agentsChanged()
    if (this.roster.size > 0 && this.roster.onlineCount() >= this.roster.size) this.refreshScheduler?.poke()
  }

  /** With `reference: {from, to}` configured and no reference yet, run that reference round once enough agents are up. */
  private maybeRunConfiguredReference (): void {
    const ref = this.config.reference
    if (ref === undefined || this.store === null || this.rounds === null || this.rounds.busy) return
    if (this.store.currentReference() !== null || Date.now() < this.referenceRetryAt) return
    if (this.roster.ready().length < this.config.privacy.minAgents) return
    this.referenceRetryAt = Date.now() + 30_000
    try {
      this.checkWindow(ref)
      const { roundId } = this.rounds.start({ window: ref, kind: 'reference' })
      this.logger.info({ round: roundId }, 'configured reference round started')
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'configured reference round not started')
    }
  }

  private async runScheduled (window: { from: number, to: number }, key: string, signal: AbortSignal): Promise<void> {
    const rounds = this.rounds
    if (rounds === null) throw new FedmonError('coordinator not running', 'ERR_STATE')
    // Queue behind a manual round rather than fail the window.
    for (let i = 0; rounds.busy && i < 600 && !signal.aborted; i++) await new Promise(resolve => setTimeout(resolve, 500))
    // Refused here (too long, in the future, overlapping a report) or by start() (too few agents): no round,
    // no agent asked. The scheduler retries only the lack of agents.
    this.checkWindow(window)
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
  startRefresh (window: { from: number, to: number }, ageMs: number): { roundId: string, finished: Promise<RoundOutcome> } {
    if (this.rounds === null || this.store === null || this.state !== 'running') throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
    const target = planRefresh({ store: this.store, spec: this.spec, layout: this.layout, window, ageMs, now: Date.now() })
    const kind = target.first.round.kind === 'reference' ? 'reference' : 'current'
    return this.rounds.start({ window, kind, refresh: target })
  }

  /** A due label refresh (RefreshScheduler): queued behind a running round; rejects with the failure's code. */
  private async runScheduledRefresh (due: DueRefresh, signal: AbortSignal): Promise<void> {
    const rounds = this.rounds
    if (rounds === null) throw new FedmonError('coordinator not running', 'ERR_STATE')
    for (let i = 0; rounds.busy && i < 600 && !signal.aborted; i++) await new Promise(resolve => setTimeout(resolve, 500))
    // Not tied to the round by scheduledWindowKey (unique per round): a refresh may take several rounds.
    const { finished } = this.startRefresh(due.window, due.ageMs)
    const outcome = await finished
    if (outcome.status !== 'done') {
      throw Object.assign(new FedmonError(`label refresh ${outcome.id} ${outcome.status}: ${outcome.failure?.message ?? ''}`, outcome.failure?.code ?? 'ERR_ROUND_FAILED'), { roundId: outcome.id })
    }
  }

  /** The window guard rails (coordinator/window-rails.ts), before any agent is asked. */
  private checkWindow (window: { from: number, to: number }): void {
    if (this.store === null) throw new FedmonError('the coordinator is not running', 'ERR_STATE')
    checkWindowRails({ window, now: Date.now(), maxWindowMs: this.config.round.maxWindowMs, overlapping: this.store.reportsOverlapping(window) })
  }

  /**
   * A scheduled window failed: counted (a round that ran was counted when it ended), and sent to the webhooks
   * on its first failure and when it fails for good (not on every retry).
   */
  private onScheduledFailure (failure: ScheduledFailure): void {
    if (failure.roundId === null) this.metrics.countFailure(failure.code)
    if (failure.attempts === 1 || failure.nextAttemptAt === null) this.notifier?.send(roundFailedPayload(failure, this.spec.model))
  }

  private backend (): ApiBackend {
    const store = (): SqliteReportStore => {
      if (this.store === null) throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
      return this.store
    }
    return {
      peerId: this.identity.peerId,
      uptimeS: () => Math.round((Date.now() - this.startedAt) / 1000),
      startRound: (req) => {
        if (this.rounds === null || this.state !== 'running') throw new ApiError(503, 'ERR_NOT_READY', 'the coordinator is not running')
        if (req.refreshMs !== undefined) return this.startRefresh(req.window, req.refreshMs).roundId
        try {
          this.checkWindow(req.window)
        } catch (err) {
          if (err instanceof WindowRefusedError) throw new ApiError(err.code === 'ERR_WINDOW_OVERLAP' ? 409 : 422, err.code, err.message)
          throw err
        }
        return this.rounds.start({ window: req.window, kind: req.reference ? 'reference' : 'current' }).roundId
      },
      getRound: id => store().getRound(id),
      listRounds: opts => this.roundList(store(), opts),
      listReports: opts => store().listReports(opts),
      getReport: id => store().getReport(id),
      reportVersions: id => { const v = store().listVersions(id); return v.length > 0 ? v : null },
      latestReport: () => store().latestReport({ kind: 'current' }) ?? store().latestReport({ kind: 'any' }),
      agents: () => this.agentViews(store()),
      status: () => {
        const s = store()
        return {
          status: 'ok',
          peerId: this.identity.peerId,
          specHash: this.layout.specHash,
          model: this.spec.model,
          agents: { total: this.roster.size, online: this.roster.onlineCount() },
          lastRound: s.listRounds({ last: 1 })[0] ?? null,
          nextScheduledRound: this.scheduler?.nextRun() ?? null,
          reference: s.currentReference(),
          recentFailures: this.roundList(s, { limit: 5, failed: true })
        }
      },
      reference: () => store().currentReference(),
      setReference: (reportId) => {
        const s = store()
        if (s.getReport(reportId) === null || s.getReferenceVector(reportId) === null) throw new ApiError(404, 'ERR_NOT_FOUND', `no reference-capable report ${reportId}`)
        s.setCurrentReference(reportId)
        const ref = s.currentReference()
        if (ref === null) throw new ApiError(500, 'ERR_INTERNAL', 'reference not recorded')
        return ref
      },
      metrics: async () => await this.metrics.render()
    }
  }

  /** Rounds and the scheduled windows no round ran for (failed to start, retrying, missed), newest last. */
  private roundList (store: SqliteReportStore, opts: { limit: number, failed: boolean, monitor?: string }): ReturnType<ApiBackend['listRounds']> {
    const rounds = opts.failed ? store.listFailedRounds({ last: opts.limit }) : store.listRounds({ last: opts.limit })
    const windows = store.listScheduledWindows({ states: ['failed', 'retrying', 'missed'], last: opts.limit })
    return mergeRoundList(rounds, windows, { monitor: this.spec.model, filterMonitor: opts.monitor, failed: opts.failed, limit: opts.limit })
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
