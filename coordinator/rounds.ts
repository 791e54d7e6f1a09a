/**
 * The round service: drives one SecAggServer (sans-IO) per round over the network — sends its outgoing
 * messages, feeds it inbound ones, calls `tick` at `nextDeadline()` — and on success turns the exact sum into
 * a report (metrics, drift against the current reference, alerts), stored with its round. One round at a time.
 * The final unmasking (mask expansion, the heavy part) runs off the event loop through `computeUnmask` (the
 * daemon's worker pool), so the coordinator keeps serving while it runs.
 */
import { randomBytes } from 'node:crypto'
import { SecAggServer } from '../shared/secagg/server.js'
import { computeUnmaskCorrection, type UnmaskWork } from '../shared/secagg/unmask.js'
import { MESSAGE_ROUTES, type SecAggMessage } from '../shared/secagg/messages.js'
import type { Outgoing, Sign, Verify } from '../shared/secagg/types.js'
import { computeReportBody } from '../shared/stats/report-body.js'
import { noisyReportBody } from '../shared/dp/report.js'
import { contributingSites, tooFewContributors } from '../shared/stats/contributing.js'
import type { MonitorSpec } from '../shared/stats/spec.js'
import { maxAgentsFor } from '../shared/stats/layout.js'
import type { TaskLayout } from '../shared/stats/tasks/index.js'
import type { Report } from '../shared/report.js'
import type { Logger } from '../shared/log.js'
import type { AlertEvaluator, ReportStore, RoundKind, RoundOutcome } from './contracts.js'
import type { Metrics } from './metrics.js'
import type { Roster } from './roster.js'
import { ApiError } from './api.js'
import { FedmonError } from '../shared/errors.js'
import { formatDuration } from '../shared/config/duration.js'
import { labelsBlock, nextVersion, refreshedVector, type RefreshTarget } from './refresh.js'

export interface RoundSender {
  send: (to: string, message: SecAggMessage, opts: { signal?: AbortSignal }) => Promise<void>
}

/** Computes the unmask correction of a round (e.g. UnmaskWorkerPool.compute); rejects when `signal` aborts. */
export type ComputeUnmask = (work: UnmaskWork, opts: { signal: AbortSignal }) => Promise<Uint32Array>

/**
 * Test hook (FEDMON_TEST_EXIT_AT, like the agent's FEDMON_TEST_EXIT_AFTER): the coordinator SIGKILLs itself
 * at one of these points of a round's end, to test that a crash there loses or corrupts nothing.
 * - `unmask-start`: the unmask computation was just handed to computeUnmask (the worker pool);
 * - `unmask-done`: the correction is applied and the report computed, nothing of it stored yet;
 * - `report-stored`: right after the commit of the report (with round status, reference vector and current
 *   reference, included agents: one transaction), before metrics, alerts and the log line.
 */
export const COORDINATOR_EXIT_POINTS = ['unmask-start', 'unmask-done', 'report-stored'] as const
export type CoordinatorExitPoint = typeof COORDINATOR_EXIT_POINTS[number]

/** Reads FEDMON_TEST_EXIT_AT; an unknown point is an error (a test that aims at nothing would pass vacuously). */
export function exitPointFromEnv (env: NodeJS.ProcessEnv = process.env): CoordinatorExitPoint | undefined {
  const value = env.FEDMON_TEST_EXIT_AT
  if (value === undefined || value === '') return undefined
  if (!(COORDINATOR_EXIT_POINTS as readonly string[]).includes(value)) {
    throw new FedmonError(`FEDMON_TEST_EXIT_AT must be one of ${COORDINATOR_EXIT_POINTS.join(', ')}, got "${value}"`, 'ERR_CONFIG')
  }
  return value as CoordinatorExitPoint
}

export interface Privacy { minAgents: number, threshold?: number, dropoutRate?: number, corruptFraction?: number, graph?: 'full' | 'sparse' | 'auto' }

export interface RoundServiceOptions {
  peerId: string
  sign: Sign
  verify: Verify
  roster: Roster
  sender: RoundSender
  store: ReportStore
  spec: MonitorSpec
  layout: TaskLayout
  privacy: Privacy
  phaseTimeoutMs: number
  alerts: AlertEvaluator
  notify?: (report: Report, alerts: Report['alerts']) => void
  metrics?: Metrics
  logger: Logger
  now?: () => number
  /** Default: computed in this thread (blocks the event loop for the duration; fine for tests). */
  computeUnmask?: ComputeUnmask
  /** Test-only: SIGKILL this process at this point of the first round that reaches it (FEDMON_TEST_EXIT_AT). */
  testExitAt?: CoordinatorExitPoint
  /** Test-only (FEDMON_TEST_COMPACT_ANNOUNCE_FROM): send the roster-bitmap Announce from this many participants on. */
  testCompactAnnounceFrom?: number
  /** The monitor this service runs rounds for (named in every Announce, signed); absent in tests of one. */
  monitor?: string
}

interface ActiveRound {
  server: SecAggServer
  outcome: RoundOutcome
  startedAt: number
  controller: AbortController
  timer: NodeJS.Timeout | null
  /** Set while the unmask correction is being computed; aborted when the round ends any other way. */
  unmasking: AbortController | null
  done: { promise: Promise<RoundOutcome>, resolve: (outcome: RoundOutcome) => void }
  /** A label-refresh round: what it refreshes. */
  refresh?: RefreshTarget
}

const MIN_SEND_TIMEOUT_MS = 10_000

/** A promise with its resolver (Promise.withResolvers needs Node 22 or the polyfill; this module needs neither). */
function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((res) => { resolve = res })
  return { promise, resolve }
}

function iso (ms: number): string {
  return new Date(ms).toISOString()
}

/** Sortable, unique, not guessable: `<kind>-<UTC timestamp>-<random>`. */
export function newId (prefix: string, now: number): string {
  return `${prefix}-${iso(now).replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`
}

export class RoundService {
  private readonly opts: RoundServiceOptions
  private readonly now: () => number
  private active: ActiveRound | null = null
  /** The last round that ended: declines still arriving for it are recorded in its stored outcome. */
  private ended: ActiveRound | null = null
  private stopped = false
  /** Messages received per round id that is not running (rate-limits their log lines). */
  private readonly staleMessages = new Map<string, number>()
  private readonly testExitAt: CoordinatorExitPoint | undefined

  constructor (opts: RoundServiceOptions) {
    this.opts = opts
    this.now = opts.now ?? Date.now
    this.testExitAt = opts.testExitAt
  }

  get busy (): boolean {
    return this.active !== null
  }

  get currentRoundId (): string | null {
    return this.active?.outcome.id ?? null
  }

  /** Whether messages of `roundId` are this service's: its running round or the last one that ended. */
  owns (roundId: string): boolean {
    return this.active?.outcome.id === roundId || this.ended?.outcome.id === roundId
  }

  /**
   * Starts a round now over the ready agents; returns the outcome promise. Throws ApiError 409 when a
   * round is running or too few agents are online, 503 once stopped.
   */
  start (req: { window: { from: number, to: number }, kind: RoundKind, scheduledWindowKey?: string | null, refresh?: RefreshTarget }): { roundId: string, finished: Promise<RoundOutcome> } {
    if (this.stopped) throw new ApiError(503, 'ERR_STOPPING', 'the coordinator is shutting down')
    if (this.active !== null) throw new ApiError(409, 'ERR_BUSY', `round ${this.active.outcome.id} is still running`)
    const refresh = req.refresh
    // Sorted by peer id: list order places agents in the neighbour graph, so it is canonical (agents check).
    let participants = this.opts.roster.ready().sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    let { minAgents } = this.opts.privacy
    if (refresh !== undefined) {
      // Exactly the first round's included set, every one of them (minAgents = all): agents refuse anything else.
      const online = new Set(participants.map(p => p.id))
      const missing = refresh.participants.filter(id => !online.has(id))
      if (missing.length > 0) {
        throw new ApiError(409, 'ERR_REFRESH_SET_MISMATCH', `${missing.length} of the ${refresh.participants.length} sites included in the window's first round ${missing.length === 1 ? 'is' : 'are'} offline (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}): a label refresh runs only over exactly that set; try again when they are back`)
      }
      const included = new Set(refresh.participants)
      participants = participants.filter(p => included.has(p.id))
      minAgents = participants.length
    }
    if (participants.length < minAgents) {
      throw new ApiError(409, 'ERR_TOO_FEW_AGENTS', `only ${participants.length} agent(s) online, the privacy policy needs at least ${minAgents}`)
    }
    // The sum of n vectors must not wrap mod 2^32 (SecAggServer checks it too): say what to change.
    const maxAgents = maxAgentsFor(this.opts.layout)
    if (participants.length > maxAgents) {
      throw new ApiError(409, 'ERR_TOO_MANY_AGENTS', `${participants.length} agents online, but the spec allows at most ${maxAgents} per round (limits.maxRecordsPerAgent ${this.opts.layout.maxRecords}: the sum could overflow 32 bits); lower limits.maxRecordsPerAgent in the spec`)
    }
    const now = this.now()
    const roundId = newId('round', now)
    let server: SecAggServer
    try {
      server = new SecAggServer({
        roundId,
        coordinator: this.opts.peerId,
        sign: this.opts.sign,
        verify: this.opts.verify,
        participants,
        vectorLength: refresh !== undefined ? refresh.entries.length : this.opts.layout.length,
        specHash: this.opts.layout.specHash,
        window: req.window,
        maxEntry: this.opts.layout.maxEntry,
        minAgents,
        // Colluders tolerated are a fraction of the whole roster, not of who is online (the agents count so too).
        rosterSize: Math.max(this.opts.roster.size, participants.length),
        // A large round names its participants by their bits over the roster (the agents hold the same roster).
        roster: this.opts.roster.ids(),
        ...(this.opts.testCompactAnnounceFrom !== undefined ? { compactAnnounceFrom: this.opts.testCompactAnnounceFrom } : {}),
        threshold: this.opts.privacy.threshold,
        dropoutRate: this.opts.privacy.dropoutRate,
        corruptFraction: this.opts.privacy.corruptFraction,
        graph: this.opts.privacy.graph,
        phaseTimeoutMs: this.opts.phaseTimeoutMs,
        reference: req.kind === 'reference',
        ...(refresh !== undefined ? { refresh: { ageMs: refresh.ageMs, of: refresh.first.round.id } } : {}),
        ...(this.opts.monitor !== undefined ? { monitor: this.opts.monitor } : {}),
        deferUnmask: true
      })
    } catch (err) {
      const e = err as Error & { code?: string }
      throw new ApiError(409, e.code ?? 'ERR_ROUND_REFUSED', e.message)
    }
    const outcome: RoundOutcome = {
      id: roundId,
      kind: req.kind,
      window: { from: iso(req.window.from), to: iso(req.window.to) },
      status: 'running',
      reportId: null,
      invited: participants.map(p => p.id),
      included: [],
      dropped: [],
      failure: null,
      declined: [],
      startedAt: iso(now),
      finishedAt: null,
      timings: {},
      scheduledWindowKey: req.scheduledWindowKey ?? null,
      ...(this.opts.monitor !== undefined ? { monitor: this.opts.monitor } : {}),
      ...(refresh !== undefined ? { refresh: { age: formatDuration(refresh.ageMs), ageMs: refresh.ageMs, of: refresh.first.id } } : {})
    }
    this.opts.store.saveRound(outcome)
    const active: ActiveRound = { server, outcome, startedAt: now, controller: new AbortController(), timer: null, unmasking: null, done: deferred<RoundOutcome>(), refresh }
    this.active = active
    this.opts.logger.info({ round: roundId, monitor: this.opts.monitor, kind: req.kind, invited: participants.length, k: server.k, t: server.t, graph: server.graph }, 'round started')
    this.dispatch(active, server.start(now))
    this.settle(active)
    return { roundId, finished: active.done.promise }
  }

  /** Feeds one validated inbound message to the running round. */
  receive (from: string, message: SecAggMessage): void {
    if (MESSAGE_ROUTES[message.type] !== 'agent->coordinator') {
      this.opts.logger.warn({ peer: from, type: message.type }, 'message of a coordinator-bound type expected: dropped')
      return
    }
    const active = this.active
    if (active === null || message.roundId !== active.outcome.id) {
      // Declines often trail the failure they caused (the round fails as soon as the threshold is out of reach).
      const ended = this.ended
      if (message.type === 'decline' && ended !== null && ended.outcome.id === message.roundId) {
        ended.server.receive(from, message, this.now()) // verifies and records; throws SecAggError otherwise
        this.recordDeclines(ended, from)
        return
      }
      // Late messages of a finished round are normal; a stream of them (replays) is worth seeing, but not
      // line by line: the first 20 per round id, then one line per hundred.
      const seen = this.staleMessages.get(message.roundId) ?? 0
      if (this.staleMessages.size > 64 && !this.staleMessages.has(message.roundId)) this.staleMessages.clear()
      this.staleMessages.set(message.roundId, seen + 1)
      if (seen < 20 || (seen + 1) % 100 === 0) this.opts.logger.info({ peer: from, type: message.type, round: message.roundId, count: seen + 1 }, 'message for no running round: dropped')
      return
    }
    const out = active.server.receive(from, message, this.now()) // throws SecAggError: logged by the messenger
    if (message.type === 'decline') this.recordDeclines(active, from)
    this.dispatch(active, out)
    this.settle(active)
  }

  /**
   * Every connection to `peer` closed (libp2p `peer:disconnect`): a participant of the running round is not
   * waited for any more — the round goes on as soon as the others have answered, or fails now when too few
   * are left (SecAggServer.disconnected). Without this a killed agent cost a full phase timeout.
   */
  disconnected (peer: string): void {
    const active = this.active
    if (active === null || !active.outcome.invited.includes(peer)) return
    const phase = active.server.phase
    const out = active.server.disconnected(peer, this.now())
    this.opts.logger.info({ round: active.outcome.id, peer, phase }, 'participant disconnected: not waited for')
    this.dispatch(active, out)
    this.settle(active)
  }

  /** A connection to `peer` is open again: it is waited for again in the running round's next phases. */
  reconnected (peer: string): void {
    const active = this.active
    if (active === null || !active.outcome.invited.includes(peer)) return
    active.server.reconnected(peer)
  }

  /** Copies the server's declines into the outcome and stores it, so the operator sees them while it runs. */
  private recordDeclines (round: ActiveRound, from: string): void {
    const declined = round.server.declined()
    round.outcome.declined = declined
    const last = declined.find(d => d.agent === from)
    this.opts.logger.warn({ round: round.outcome.id, peer: from, code: last?.code, reason: last?.reason, declined: declined.length }, 'agent declined the round')
    try {
      this.opts.store.saveRound(round.outcome)
    } catch (err) {
      this.opts.logger.error({ err }, 'cannot store the round\'s declines')
    }
  }

  /** Aborts the running round (shutdown); it is stored as aborted. */
  abort (code: string, message: string): void {
    const active = this.active
    if (active === null) return
    const notices = active.server.abort(code, message) // signed Abort to the agents, so they wipe secrets now
    this.dispatch(active, notices)
    this.finish(active, 'aborted', { code, message })
  }

  async stop (): Promise<void> {
    this.stopped = true
    const active = this.active
    this.abort('ERR_ABORTED', 'coordinator shutting down')
    if (active === null) return
    // Give the Abort notices a moment to leave, then cancel whatever is still in flight.
    await new Promise(resolve => setTimeout(resolve, 300))
    active.controller.abort()
  }

  private dispatch (active: ActiveRound, out: Outgoing[]): void {
    for (const { to, message } of out) {
      // A message may take up to one phase to get through a busy network (see agent/rounds.ts sendTimeouts).
      const signal = AbortSignal.any([active.controller.signal, AbortSignal.timeout(Math.max(MIN_SEND_TIMEOUT_MS, this.opts.phaseTimeoutMs))])
      this.opts.sender.send(to, message, { signal }).catch((err: Error) => {
        // An unreachable agent is dropped by the phase deadline; nothing else to do here.
        if (!active.controller.signal.aborted) this.opts.logger.warn({ peer: to, type: message.type, err: err.message }, 'send failed')
      })
    }
  }

  /** After every input: finish if the server is done or failed, else re-arm the deadline timer. */
  private settle (active: ActiveRound): void {
    if (this.active !== active) return
    const { server } = active
    if (server.status !== 'running') {
      // Holders whose unmask shares contradicted the signed commitments: a misbehaving (or broken) agent.
      for (const bad of server.inconsistentShares()) this.opts.logger.warn({ round: active.outcome.id, holder: bad.holder, owner: bad.owner, kind: bad.kind }, 'agent sent an inconsistent unmask share')
    }
    if (server.status === 'done') { this.complete(active); return }
    if (server.status === 'failed') { this.finish(active, 'failed', server.failure() ?? { code: 'ERR_FAILED', message: 'round failed' }); return }
    if (active.timer !== null) clearTimeout(active.timer)
    active.timer = null
    // Every secret is rebuilt: the server waits, with no deadline, for the correction. Not stuck: the compute
    // ends in completeUnmask or abort, and the round's AbortSignal cancels it.
    const work = server.pendingUnmask()
    if (work !== null) {
      if (active.unmasking === null) this.unmask(active, work)
      return
    }
    const deadline = server.nextDeadline()
    if (deadline === null) return
    active.timer = setTimeout(() => {
      active.timer = null
      if (this.active !== active) return
      try {
        this.dispatch(active, server.tick(this.now()))
      } catch (err) {
        this.opts.logger.error({ err }, 'tick failed')
      }
      this.settle(active)
    }, Math.max(0, deadline - this.now()) + 5)
  }

  private unmask (active: ActiveRound, work: UnmaskWork): void {
    const controller = new AbortController()
    active.unmasking = controller
    const signal = AbortSignal.any([active.controller.signal, controller.signal])
    const compute = this.opts.computeUnmask ?? (async (w: UnmaskWork) => computeUnmaskCorrection(w))
    const { server } = active
    const started = this.now()
    this.opts.logger.debug({ round: active.outcome.id }, 'unmasking')
    const computing = compute(work, { signal })
    this.exitAt('unmask-start', active)
    computing.then((correction) => {
      try {
        if (this.active === active) this.dispatch(active, server.completeUnmask(correction, this.now()))
      } finally {
        correction.fill(0)
      }
    }).catch((err: Error) => {
      if (this.active !== active || server.status !== 'running') return // the round already ended (abort, shutdown)
      this.opts.logger.error({ round: active.outcome.id, ms: this.now() - started, err: err.message }, 'unmask failed')
      this.dispatch(active, server.abort('ERR_UNMASK', `unmask failed: ${err.message}`))
    }).finally(() => {
      active.unmasking = null
      this.settle(active)
    })
  }

  private complete (active: ActiveRound): void {
    const result = active.server.result()
    if (result === null) { this.finish(active, 'failed', { code: 'ERR_NO_RESULT', message: 'the round finished without a result' }); return }
    let report: Report
    // A refresh's sum holds the label-dependent entries only: the window's full vector is the first round's with those replaced.
    const vector = active.refresh !== undefined ? refreshedVector(active.refresh, result.sum) : result.sum
    try {
      report = this.buildReport(active, { ...result, sum: vector })
    } catch (err) {
      this.opts.logger.error({ err }, 'report computation failed')
      this.finish(active, 'failed', { code: 'ERR_REPORT', message: `report computation failed: ${(err as Error).message}` })
      return
    }
    // Fewer sites with records than minAgents: the sum is their figures, whatever the included count says.
    // Refused here, after the sum and before anything is stored (a refresh: on the merged vector, whose
    // indicator is the first round's). Under DP the count is noisy: refused only beyond its 95 % noise.
    const tooFew = tooFewContributors({ contributing: report.agents.contributing ?? 0, included: result.included.length, minAgents: this.opts.privacy.minAgents, noise95: (report.privacy.dp as { countError95?: number } | undefined)?.countError95 })
    if (tooFew !== null) {
      Object.assign(active.outcome, { included: result.included })
      this.finish(active, 'failed', tooFew)
      return
    }
    const { outcome } = active
    const finishedAt = this.now()
    const done: Partial<RoundOutcome> = {
      status: 'done',
      reportId: report.id,
      included: result.included,
      dropped: result.dropped,
      declined: active.server.declined(),
      finishedAt: iso(finishedAt),
      timings: { ...active.server.phaseTimings(), total: finishedAt - active.startedAt }
    }
    this.exitAt('unmask-done', active)
    try {
      // One transaction: the report, its round marked done, a reference round's vector made current, the
      // included agents. A crash before it leaves the round `running` (aborted on restart), after it all of it.
      // A reference window's refresh becomes the reference when its earlier version was (a better calibration).
      const current = this.opts.store.currentReference()?.reportId
      const isReference = outcome.kind === 'reference' && (active.refresh === undefined || current === active.refresh.latest.id || current === active.refresh.first.id)
      this.opts.store.saveReport(report, { ...outcome, ...done }, {
        reference: isReference ? { specHash: this.opts.layout.specHash, vector } : undefined,
        sum: { specHash: this.opts.layout.specHash, vector },
        included: result.included
      })
    } catch (err) {
      this.opts.logger.error({ err }, 'cannot store the report')
      this.finish(active, 'failed', { code: 'ERR_STORE', message: `the report could not be stored: ${(err as Error).message}` })
      return
    }
    Object.assign(outcome, done)
    this.exitAt('report-stored', active)
    // /metrics and alert notifications follow the latest window: a refresh of an older one is stored, not shown.
    const shown = active.refresh === undefined || this.opts.store.latestReport({ kind: outcome.kind })?.id === report.id
    if (shown) this.opts.metrics?.observeReport(report)
    this.opts.logger.info({ round: outcome.id, report: report.id, included: result.included.length, dropped: result.dropped.length, ms: finishedAt - active.startedAt, alerts: report.alerts.length, phaseEndings: active.server.phaseEndings() }, 'round done')
    if (shown) this.opts.notify?.(report, report.alerts) // every report: one without alerts may resolve earlier ones
    this.close(active)
  }

  /** FEDMON_TEST_EXIT_AT: dies here, now, without any cleanup (as a crash or `kill -9` would). */
  private exitAt (point: CoordinatorExitPoint, active: ActiveRound): void {
    if (this.testExitAt !== point) return
    this.opts.logger.warn({ round: active.outcome.id, point }, 'FEDMON_TEST_EXIT_AT: killing the coordinator (test hook)')
    process.kill(process.pid, 'SIGKILL')
  }

  private buildReport (active: ActiveRound, result: { sum: Uint32Array, included: string[], dropped: string[] }): Report {
    const { spec, layout, store } = this.opts
    const { outcome, server } = active
    let reference: { vector: Uint32Array, specHash: string, id: string | null, window: Report['window'] | null } | null = null
    let referenceReport: Report | null = null
    if (outcome.kind === 'current') {
      // A refresh compares with the reference its window's first version used (drift is label-independent).
      const firstReference = active.refresh?.first.drift.reference?.id ?? null
      const current = firstReference !== null ? { reportId: firstReference } : active.refresh !== undefined ? null : store.currentReference()
      if (current !== null) {
        const stored = store.getReferenceVector(current.reportId)
        referenceReport = store.getReport(current.reportId)
        // a vector from another spec or layout version is passed on with its hash: the report then says why
        // drift was not computed (computeReportBody), instead of silently reporting "no reference"
        if (stored !== null) reference = { vector: stored.vector, specHash: stored.specHash, id: current.reportId, window: referenceReport?.window ?? null }
      }
    }
    // Under privacy.dp the sum is noisy: figures from the signed/clamped counts, with the noise's error bars.
    const dpReferenceSurvivors = referenceReport?.privacy.dp !== undefined ? (referenceReport.privacy.dp as { survivors: number }).survivors : null
    // A refresh's label-dependent entries carry less noise than its first round's (all n agents, each planned for
    // n): the first round's noise parameters bound both parts, so its error bars are kept (conservative).
    const firstDp = active.refresh?.first.privacy.dp as { survivors: number, minSurvivors: number } | undefined
    // privacy.dp: binary specs only (specProblem refuses it for other tasks, whose metrics rest on fixed-point sums)
    const noisy = spec.privacy?.dp !== undefined
      ? noisyReportBody({ spec, layout, current: result.sum, reference: reference === null ? null : { ...reference, survivors: dpReferenceSurvivors }, survivors: firstDp?.survivors ?? result.included.length, minSurvivors: firstDp?.minSurvivors ?? server.minSurvivors })
      : null
    const body = noisy?.body ?? computeReportBody({ spec, layout, current: result.sum, reference })
    const now = this.now()
    const id = newId('report', now)
    const report: Report = {
      id,
      round: { id: outcome.id, kind: outcome.kind, durationMs: now - active.startedAt },
      window: outcome.window,
      spec: { model: spec.model, hash: layout.specHash, vectorLength: layout.length, ...('task' in layout ? { task: layout.task } : {}) },
      agents: { invited: outcome.invited, included: result.included, dropped: result.dropped, contributing: noisy?.contributing ?? contributingSites(layout, result.sum) },
      ...body,
      alerts: [],
      privacy: { threshold: server.t, minAgents: this.opts.privacy.minAgents, graph: server.graph, k: server.k, ...(noisy !== null ? { dp: noisy.dp } : {}) },
      version: active.refresh !== undefined ? nextVersion(active.refresh, outcome.id) : { number: 1, first: id, previous: null, refresh: null },
      // Labels counted up to: the refresh's cutoff (window end + age, the same instant at every site), else the round's start.
      labels: labelsBlock(body, active.refresh !== undefined ? iso(active.refresh.window.to + active.refresh.ageMs) : outcome.startedAt),
      createdAt: iso(now)
    }
    // dropFromReference rules compare like with like: a reference of another spec/layout is no baseline
    const comparable = reference !== null && reference.specHash === layout.specHash ? referenceReport : null
    report.alerts = this.opts.alerts.evaluate(report, comparable)
    return report
  }

  private finish (active: ActiveRound, status: 'failed' | 'aborted', failure: { code: string, message: string }): void {
    const now = this.now()
    if (active.refresh !== undefined && status === 'failed' && (failure.code === 'ERR_TOO_FEW_SURVIVORS' || active.server.declined().some(d => d.code === 'ERR_REFRESH_SET_MISMATCH'))) {
      // minAgents is the whole included set: any site missing ends the refresh, and nothing was revealed.
      failure = { code: 'ERR_REFRESH_SET_MISMATCH', message: `not every site of the window's first round took part, and a label refresh is unmasked only over exactly that set (nothing revealed; retry when they are back): ${failure.message}` }
    }
    const result = active.server.result()
    Object.assign(active.outcome, {
      status,
      failure,
      finishedAt: iso(now),
      dropped: result?.dropped ?? active.outcome.dropped,
      declined: active.server.declined(),
      timings: { ...active.server.phaseTimings(), total: now - active.startedAt }
    } satisfies Partial<RoundOutcome>)
    try {
      this.opts.store.saveRound(active.outcome)
    } catch (err) {
      this.opts.logger.error({ err }, 'cannot store the failed round')
    }
    this.opts.logger.warn({ round: active.outcome.id, status, ...failure, phaseEndings: active.server.phaseEndings() }, 'round did not finish')
    this.close(active)
  }

  private close (active: ActiveRound): void {
    if (active.timer !== null) clearTimeout(active.timer)
    active.timer = null
    active.unmasking?.abort()
    this.opts.metrics?.observeRound(active.outcome)
    if (this.active === active) this.active = null
    this.ended = active
    active.done.resolve(active.outcome)
  }
}
