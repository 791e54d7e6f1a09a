/**
 * Runs a round for every closed time window. Windows are aligned to `every` on the Unix epoch
 * ([k·every, (k+1)·every)), and each runs `delay` after it closes so late records can arrive.
 * After downtime the missed windows are caught up, oldest first, at most `maxCatchUp` of them (older ones are
 * recorded as `missed`); a window is claimed in the store before its round starts, so it never runs twice —
 * not even across a restart.
 * After a start the scheduler first waits `startupGrace` for the roster's agents to reconnect (ending early
 * once all are online). A window whose round could not start for lack of agents is retried (`retry.every`,
 * until `retry.until` after its first attempt, sooner once every agent is online); the plan is in the store,
 * so a restart continues it. Any other failure is final: a round that reached the agents may have used up
 * their windows.
 */
import type { Logger } from '../shared/log.js'
import type { ReportStore } from './contracts.js'
import { parseDuration } from './duration.js'
import { DEFAULT_MAX_CATCH_UP, ScheduleConfigSchema } from '../shared/config/schedule.js'
import type { ScheduledWindowRecord, ScheduledWindowUpdate } from './store.js'
import type { WebhookPayload } from './alerts.js'

export { DEFAULT_MAX_CATCH_UP, ScheduleConfigSchema }

/** Failure codes that mean "not enough agents to start": no agent was asked, so the window can be tried again. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(['ERR_TOO_FEW_AGENTS'])

export interface EpochWindow { from: number, to: number } // epoch ms, [from, to)

export function windowKey (window: EpochWindow): string {
  return `${window.from}-${window.to}`
}

export interface DueWindowsInput {
  now: number
  everyMs: number
  delayMs: number
  maxCatchUp: number
  /** True when the window with this key already ran (or was claimed). */
  isDone: (key: string) => boolean
}

/** The newest window whose run time (its end + delay) is at or before `now`; null before the epoch's first. */
export function latestDueWindow (now: number, everyMs: number, delayMs: number): EpochWindow | null {
  const k = Math.floor((now - delayMs) / everyMs) - 1
  if (k < 0) return null
  return { from: k * everyMs, to: (k + 1) * everyMs }
}

/**
 * Pure: the windows to run at `now`, oldest first — among the `maxCatchUp` most recent closed windows,
 * those not yet done.
 */
export function dueWindows (input: DueWindowsInput): EpochWindow[] {
  const { now, everyMs, delayMs, maxCatchUp, isDone } = input
  if (!(everyMs > 0) || !(delayMs >= 0) || !(maxCatchUp >= 1)) throw new RangeError('everyMs > 0, delayMs >= 0 and maxCatchUp >= 1 are required')
  const latest = latestDueWindow(now, everyMs, delayMs)
  if (latest === null) return []
  const out: EpochWindow[] = []
  for (let i = maxCatchUp - 1; i >= 0; i--) {
    const from = latest.from - i * everyMs
    if (from < 0) continue
    const w = { from, to: from + everyMs }
    if (!isDone(windowKey(w))) out.push(w)
  }
  return out
}

/** The first instant strictly after `now` at which a window becomes due. */
export function nextDueTime (now: number, everyMs: number, delayMs: number): number {
  return (Math.floor((now - delayMs) / everyMs) + 1) * everyMs + delayMs
}

type SchedulerLogger = Pick<Logger, 'info' | 'warn' | 'error'>

/** The store's scheduler surface (coordinator/store.ts). */
export type SchedulerStore = Pick<ReportStore, 'hasScheduledWindow'> & {
  recordScheduledWindow: (update: ScheduledWindowUpdate) => void
  getScheduledWindow: (key: string) => ScheduledWindowRecord | null
  listScheduledWindows: (opts?: { states?: ReadonlyArray<ScheduledWindowRecord['state']>, last?: number }) => ScheduledWindowRecord[]
  latestScheduledWindowEnd: () => number | null
}

/** What the scheduler tells its owner about a failed attempt (for metrics and notifications). */
export interface ScheduledFailure {
  window: EpochWindow
  key: string
  code: string
  message: string
  attempts: number
  /** The round of this attempt, or null when none started (refused before any agent was asked). */
  roundId: string | null
  /** When the next attempt is planned (epoch ms), or null when the failure is final. */
  nextAttemptAt: number | null
}

/** A rejection of runWindow may say which round it started (`roundId`) and why it failed (`code`). */
export type RunWindowError = Error & { code?: string, roundId?: string | null }

export interface SchedulerOptions {
  schedule: { every: string, delay?: string, maxCatchUp?: number, startupGrace?: string, retry?: false | { every?: string, until?: string } }
  store: SchedulerStore
  /** Runs (and awaits) one round over the window; rejects (RunWindowError) when the round fails or cannot start. */
  runWindow: (window: { from: number, to: number }, key: string, signal: AbortSignal) => Promise<void>
  /** True when every roster agent is online: ends the start-up grace early, and makes retries run now. */
  allAgentsOnline?: () => boolean
  onFailure?: (failure: ScheduledFailure) => void
  now?: () => number
  maxCatchUp?: number
  logger: SchedulerLogger
}

/** The webhook body of a failed scheduled round (sent with WebhookNotifier.send: signed and retried like alerts). */
export interface RoundFailedWebhookPayload extends WebhookPayload {
  type: 'fedmon.round_failed'
  kind: 'round_failed'
  text: string
  monitor: string
  window: { from: string, to: string }
  code: string
  message: string
  attempts: number
  roundId: string | null
  /** Set when another attempt is planned; null when the failure is final. */
  nextAttemptAt: string | null
}

export function roundFailedPayload (failure: ScheduledFailure, monitor: string): RoundFailedWebhookPayload {
  const window = { from: new Date(failure.window.from).toISOString(), to: new Date(failure.window.to).toISOString() }
  const nextAttemptAt = failure.nextAttemptAt !== null ? new Date(failure.nextAttemptAt).toISOString() : null
  const then = nextAttemptAt !== null ? `; retrying at ${nextAttemptAt}` : '; not retried'
  return {
    type: 'fedmon.round_failed',
    kind: 'round_failed',
    text: `fedmon: scheduled round on ${monitor} (${window.from} → ${window.to}) failed: ${failure.code}: ${failure.message}${then}`,
    monitor,
    window,
    code: failure.code,
    message: failure.message,
    attempts: failure.attempts,
    roundId: failure.roundId,
    nextAttemptAt
  }
}

/** Missed windows recorded one by one at most this many per pass (beyond, one log line says how many). */
const MAX_MISSED_RECORDED = 1000

// setTimeout fires immediately for delays above 2^31−1 ms; longer waits are chained.
const MAX_TIMER_MS = 2 ** 31 - 1

export class Scheduler {
  readonly everyMs: number
  readonly delayMs: number
  readonly maxCatchUp: number
  readonly startupGraceMs: number
  /** null: failures are never retried. */
  readonly retry: { everyMs: number, untilMs: number } | null
  private readonly store: SchedulerStore
  private readonly runWindow: SchedulerOptions['runWindow']
  private readonly allAgentsOnline: () => boolean
  private readonly onFailure: SchedulerOptions['onFailure']
  private readonly now: () => number
  private readonly logger: SchedulerLogger
  private timer: NodeJS.Timeout | null = null
  private running: Promise<number> | null = null
  private controller: AbortController | null = null
  private started = false
  private startedAt = 0
  private graceOver = false
  /** Set when every agent came back: windows waiting for a retry run in the next pass, not at their planned time. */
  private retryEarly = false

  constructor (opts: SchedulerOptions) {
    const { schedule } = opts
    this.everyMs = parseDuration(schedule.every)
    this.delayMs = parseDuration(schedule.delay ?? '0s', { allowZero: true })
    this.maxCatchUp = opts.maxCatchUp ?? schedule.maxCatchUp ?? DEFAULT_MAX_CATCH_UP
    if (!Number.isInteger(this.maxCatchUp) || this.maxCatchUp < 1) throw new RangeError(`maxCatchUp must be a positive integer, got ${this.maxCatchUp}`)
    // A Scheduler built without these keys (tests, older callers) neither waits nor retries.
    this.startupGraceMs = parseDuration(schedule.startupGrace ?? '0s', { allowZero: true })
    const retry = schedule.retry
    this.retry = retry === undefined || retry === false
      ? null
      : { everyMs: parseDuration(retry.every ?? '5m'), untilMs: parseDuration(retry.until ?? '6h') }
    this.store = opts.store
    this.runWindow = opts.runWindow
    this.allAgentsOnline = opts.allAgentsOnline ?? (() => false)
    this.onFailure = opts.onFailure
    this.now = opts.now ?? Date.now
    this.logger = opts.logger
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.startedAt = this.now()
    this.graceOver = this.startupGraceMs === 0
    this.controller = new AbortController()
    this.logger.info({ every: this.everyMs, delay: this.delayMs, maxCatchUp: this.maxCatchUp, startupGraceMs: this.startupGraceMs, retry: this.retry }, 'scheduler started')
    this.arm(0)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.controller?.abort(new Error('scheduler stopped'))
    await this.running?.catch(() => {})
    this.running = null
  }

  /**
   * The roster's agents changed (one connected or said hello): ends the start-up grace once all are online,
   * and then runs what is waiting (due windows, windows waiting for a retry) at once.
   */
  agentsChanged (): void {
    if (!this.started || this.running !== null || !this.allAgentsOnline()) return
    if (this.retryWaiting().length > 0) this.retryEarly = true
    if (!this.graceOver || this.retryEarly) this.arm(0)
  }

  /** True during the start-up grace: the scheduler waits for the agents before running anything. */
  inStartupGrace (): boolean {
    if (this.graceOver) return false
    if (this.now() >= this.startedAt + this.startupGraceMs || this.allAgentsOnline()) this.graceOver = true
    return !this.graceOver
  }

  /** ISO-8601 time of the next scheduled run, or null when the scheduler is not running. */
  nextRun (): string | null {
    if (!this.started) return null
    return new Date(this.nextWake()).toISOString()
  }

  /** The windows that would run now, oldest first (for status displays and tests): retries due, then new windows. */
  pending (opts: { retryEarly?: boolean } = {}): Array<EpochWindow & { key: string }> {
    const now = this.now()
    const retries = this.retryWaiting().filter(r => opts.retryEarly === true || (r.nextAttemptAt ?? 0) <= now).map(r => ({ ...r.window, key: r.key }))
    const fresh = dueWindows({ now, everyMs: this.everyMs, delayMs: this.delayMs, maxCatchUp: this.maxCatchUp, isDone: k => this.store.hasScheduledWindow(k) })
      .map(w => ({ ...w, key: windowKey(w) }))
    return [...retries, ...fresh].sort((a, b) => a.from - b.from)
  }

  /**
   * Runs every due window now, one after another; resolves to how many rounds were attempted.
   * Called by the timer; public so a fake-clock test can drive it.
   */
  async runDue (): Promise<number> {
    if (this.running !== null) return await this.running
    this.running = this.runDueWindows().finally(() => { this.running = null })
    return await this.running
  }

  private retryWaiting (): ScheduledWindowRecord[] {
    return this.retry === null ? [] : this.store.listScheduledWindows({ states: ['retrying'] })
  }

  /** When the timer should fire next: the grace's end, the next window, or the next retry, whichever is first. */
  private nextWake (): number {
    const now = this.now()
    if (this.running !== null) return now
    if (this.inStartupGrace()) return this.startedAt + this.startupGraceMs
    if (this.pending().length > 0) return now
    let next = nextDueTime(now, this.everyMs, this.delayMs)
    for (const r of this.retryWaiting()) next = Math.min(next, Math.max(now, r.nextAttemptAt ?? now))
    return next
  }

  /** Windows that closed during downtime, beyond the catch-up bound: recorded as `missed`, so they are listed. */
  private recordMissed (): void {
    const lastEnd = this.store.latestScheduledWindowEnd()
    const oldestCaughtUp = latestDueWindow(this.now(), this.everyMs, this.delayMs)
    if (lastEnd === null || oldestCaughtUp === null) return
    const firstCaughtUp = oldestCaughtUp.from - (this.maxCatchUp - 1) * this.everyMs
    const firstMissed = Math.ceil(lastEnd / this.everyMs) * this.everyMs
    if (firstMissed >= firstCaughtUp) return
    // Only the most recent ones are recorded one by one (a long downtime with short windows would be millions).
    const firstRecorded = Math.max(firstMissed, firstCaughtUp - MAX_MISSED_RECORDED * this.everyMs)
    const skipped = (firstRecorded - firstMissed) / this.everyMs
    let recorded = 0
    for (let from = firstRecorded; from < firstCaughtUp; from += this.everyMs) {
      const window = { from, to: from + this.everyMs }
      const key = windowKey(window)
      if (this.store.getScheduledWindow(key) !== null) continue
      this.store.recordScheduledWindow({ key, window, state: 'missed', attempts: 0, failure: { code: 'ERR_WINDOW_MISSED', message: `closed while the coordinator was down, beyond the ${this.maxCatchUp} most recent windows it catches up (schedule.maxCatchUp)` } })
      recorded++
    }
    if (recorded + skipped > 0) {
      this.logger.warn({ missed: recorded + skipped, recorded, maxCatchUp: this.maxCatchUp, from: new Date(firstMissed).toISOString(), to: new Date(firstCaughtUp).toISOString() }, 'scheduled windows missed during downtime (beyond schedule.maxCatchUp): not run')
    }
  }

  private async runDueWindows (): Promise<number> {
    if (this.inStartupGrace()) return 0
    const retryEarly = this.retryEarly
    this.retryEarly = false
    this.recordMissed()
    let count = 0
    // Each window at most once per pass: a retry that fails again waits for its next attempt.
    const tried = new Set<string>()
    // Re-read after every round: a long catch-up must not run a window claimed meanwhile (or skip a newly closed one).
    for (;;) {
      const signal = this.controller?.signal
      if (signal === undefined || signal.aborted) break
      const next = this.pending({ retryEarly }).find(w => !tried.has(w.key))
      if (next === undefined) break
      const { key } = next
      tried.add(key)
      const window = { from: next.from, to: next.to }
      const prior = this.store.getScheduledWindow(key)
      const attempts = (prior?.state === 'retrying' ? prior.attempts : 0) + 1
      const firstAttemptAt = this.now()
      // Claim first: at-most-once even if we crash while the round runs.
      this.store.recordScheduledWindow({ key, window, state: 'started', attempts, retryUntil: prior?.retryUntil ?? null })
      count++
      const label = { window: { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() }, key, attempt: attempts }
      this.logger.info(label, 'scheduled round starting')
      try {
        await this.runWindow(window, key, signal)
        this.store.recordScheduledWindow({ key, window, state: 'done' })
        this.logger.info(label, 'scheduled round finished')
      } catch (err) {
        const e = err as RunWindowError
        const code = typeof e?.code === 'string' ? e.code : 'ERR_ROUND_FAILED'
        const message = e instanceof Error ? e.message : String(err)
        const roundId = typeof e?.roundId === 'string' ? e.roundId : null
        const retryUntil = prior?.retryUntil ?? (this.retry !== null ? firstAttemptAt + this.retry.untilMs : null)
        const nextAttemptAt = this.retry !== null && RETRYABLE_CODES.has(code) && roundId === null && !signal.aborted
          ? this.now() + this.retry.everyMs
          : null
        const retrying = nextAttemptAt !== null && retryUntil !== null && nextAttemptAt <= retryUntil
        this.store.recordScheduledWindow({
          key, window, roundId, attempts, retryUntil,
          state: retrying ? 'retrying' : 'failed',
          nextAttemptAt: retrying ? nextAttemptAt : null,
          failure: { code, message }
        })
        if (retrying) this.logger.warn({ ...label, code, err: message, nextAttemptAt: new Date(nextAttemptAt).toISOString() }, 'scheduled round could not start; retrying later')
        else this.logger.warn({ ...label, code, err: message }, 'scheduled round failed; the window is not retried')
        try {
          this.onFailure?.({ window, key, code, message, attempts, roundId, nextAttemptAt: retrying ? nextAttemptAt : null })
        } catch (cbErr) {
          this.logger.error({ err: (cbErr as Error)?.message }, 'scheduler failure callback failed')
        }
      }
    }
    return count
  }

  private arm (ms: number): void {
    if (!this.started) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.runDue()
        .catch((err: unknown) => this.logger.error({ err: (err as Error)?.message }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.started) return
          this.arm(Math.max(0, this.nextWake() - this.now()))
        })
    }, Math.min(ms, MAX_TIMER_MS))
    this.timer.unref()
  }
}
