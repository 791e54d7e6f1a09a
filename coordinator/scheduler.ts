/**
 * Runs a round for every closed time window. Windows are aligned to `every` on the Unix epoch
 * ([k·every, (k+1)·every)), and each runs `delay` after it closes so late records can arrive.
 * After downtime the missed windows are caught up, oldest first, at most `maxCatchUp` of them; a window
 * is claimed in the store before its round starts, so it never runs twice — not even across a restart.
 */
import { z } from 'zod'
import type { Logger } from '../shared/log.js'
import type { ReportStore, ScheduleConfig } from './contracts.js'
import { parseDuration } from './duration.js'

export const DEFAULT_MAX_CATCH_UP = 24

const durationString = (allowZero: boolean) => z.string().refine((s) => {
  try { parseDuration(s, { allowZero }); return true } catch { return false }
}, { message: allowZero ? 'expected a duration like "0s", "15m", "1h"' : 'expected a duration like "30s", "15m", "1h", "1d"' })

/** The coordinator config's `schedule` section. `delay` defaults to "0s". */
export const ScheduleConfigSchema = z.object({
  every: durationString(false),
  delay: durationString(true).default('0s'),
  maxCatchUp: z.number().int().min(1).max(10_000).optional()
}).strict()
export type ScheduleConfigSchema = z.infer<typeof ScheduleConfigSchema>

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

/** A store that can also record claims (coordinator/store.ts does); a bare ReportStore is enough otherwise. */
type SchedulerStore = ReportStore & {
  markScheduledWindow?: (key: string, note: { roundId?: string | null, note?: string }) => void
}

export interface SchedulerOptions {
  schedule: ScheduleConfig & { maxCatchUp?: number }
  store: SchedulerStore
  /** Runs (and awaits) one round over the window; rejects when the round fails. */
  runWindow: (window: { from: number, to: number }, key: string, signal: AbortSignal) => Promise<void>
  now?: () => number
  maxCatchUp?: number
  logger: SchedulerLogger
}

// setTimeout fires immediately for delays above 2^31−1 ms; longer waits are chained.
const MAX_TIMER_MS = 2 ** 31 - 1

export class Scheduler {
  readonly everyMs: number
  readonly delayMs: number
  readonly maxCatchUp: number
  private readonly store: SchedulerStore
  private readonly runWindow: SchedulerOptions['runWindow']
  private readonly now: () => number
  private readonly logger: SchedulerLogger
  private timer: NodeJS.Timeout | null = null
  private running: Promise<number> | null = null
  private controller: AbortController | null = null
  private started = false

  constructor (opts: SchedulerOptions) {
    this.everyMs = parseDuration(opts.schedule.every)
    this.delayMs = parseDuration(opts.schedule.delay ?? '0s', { allowZero: true })
    this.maxCatchUp = opts.maxCatchUp ?? opts.schedule.maxCatchUp ?? DEFAULT_MAX_CATCH_UP
    if (!Number.isInteger(this.maxCatchUp) || this.maxCatchUp < 1) throw new RangeError(`maxCatchUp must be a positive integer, got ${this.maxCatchUp}`)
    this.store = opts.store
    this.runWindow = opts.runWindow
    this.now = opts.now ?? Date.now
    this.logger = opts.logger
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.controller = new AbortController()
    this.logger.info({ every: this.everyMs, delay: this.delayMs, maxCatchUp: this.maxCatchUp }, 'scheduler started')
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

  /** ISO-8601 time of the next scheduled run, or null when the scheduler is not running. */
  nextRun (): string | null {
    if (!this.started) return null
    const now = this.now()
    if (this.running !== null || this.pending().length > 0) return new Date(now).toISOString()
    return new Date(nextDueTime(now, this.everyMs, this.delayMs)).toISOString()
  }

  /** The windows that would run now (for status displays and tests). */
  pending (): Array<EpochWindow & { key: string }> {
    return dueWindows({ now: this.now(), everyMs: this.everyMs, delayMs: this.delayMs, maxCatchUp: this.maxCatchUp, isDone: k => this.store.hasScheduledWindow(k) })
      .map(w => ({ ...w, key: windowKey(w) }))
  }

  /**
   * Runs every due window now, one after another; resolves to how many rounds were started.
   * Called by the timer; public so a fake-clock test can drive it.
   */
  async runDue (): Promise<number> {
    if (this.running !== null) return await this.running
    this.running = this.runDueWindows().finally(() => { this.running = null })
    return await this.running
  }

  private async runDueWindows (): Promise<number> {
    let count = 0
    // Re-read after every round: a long catch-up must not run a window claimed meanwhile (or skip a newly closed one).
    for (;;) {
      const signal = this.controller?.signal
      if (signal === undefined || signal.aborted) break
      const next = this.pending()[0]
      if (next === undefined) break
      const { key } = next
      const window = { from: next.from, to: next.to }
      // Claim first: at-most-once even if we crash while the round runs.
      this.store.markScheduledWindow?.(key, { note: 'started' })
      count++
      const label = { window: { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() }, key }
      this.logger.info(label, 'scheduled round starting')
      try {
        await this.runWindow(window, key, signal)
        this.store.markScheduledWindow?.(key, { note: 'done' })
        this.logger.info(label, 'scheduled round finished')
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        this.store.markScheduledWindow?.(key, { note: `failed: ${message}` })
        this.logger.warn({ ...label, err: message }, 'scheduled round failed; the window is not retried')
      }
      if (this.store.markScheduledWindow === undefined && !this.store.hasScheduledWindow(key)) {
        // Without claim support the runner must save the round with scheduledWindowKey; otherwise we would loop.
        this.logger.error(label, 'runner did not record the scheduled window key; stopping the catch-up to avoid a rerun')
        break
      }
    }
    return count
  }

  private arm (ms: number): void {
    if (!this.started) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.runDue()
        .catch((err: unknown) => this.logger.error({ err: (err as Error)?.message }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.started) return
          const now = this.now()
          this.arm(Math.max(0, nextDueTime(now, this.everyMs, this.delayMs) - now))
        })
    }, Math.min(ms, MAX_TIMER_MS))
    this.timer.unref()
  }
}
