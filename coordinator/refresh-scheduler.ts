/**
 * Scheduled label refreshes (issue 11 §2): every window with a report is refreshed at each age its spec
 * declares (labels.refreshAfter), once the age is reached. Each (window, age) is claimed in the store before
 * its round starts, like a scheduled window (key `refresh:<first report id>:<age ms>`), so it runs at most once
 * even across restarts; after downtime the due ones are caught up, oldest first. A refresh that fails without
 * a result — a site offline (ERR_REFRESH_SET_MISMATCH), too few agents, a busy coordinator — is retried every
 * `retryEvery` until `deadline` after it was due, then recorded as failed for good.
 */
import type { Logger } from '../shared/log.js'
import { formatDuration } from '../shared/config/duration.js'
import type { Report } from '../shared/report.js'
import type { ScheduledWindowRecord, ScheduledWindowUpdate } from './store.js'

/** Refusals that can never succeed later: not retried. */
export const FINAL_REFRESH_CODES: ReadonlySet<string> = new Set(['ERR_REFRESH_DONE', 'ERR_REFRESH_AGE', 'ERR_REFRESH_NO_SUM', 'ERR_NOT_FOUND'])

export interface DueRefresh {
  key: string
  window: { from: number, to: number }
  ageMs: number
  /** Epoch ms: the window's end + age. */
  dueAt: number
  firstReportId: string
}

export function refreshKey (firstReportId: string, ageMs: number): string {
  return `refresh:${firstReportId}:${ageMs}`
}

export interface RefreshSchedulerStore {
  /** The reports standing in for their windows (latest versions), newest last. */
  listReports: (opts: { last?: number }) => Report[]
  listVersions: (reportId: string) => Report[]
  getScheduledWindow: (key: string) => ScheduledWindowRecord | null
  recordScheduledWindow: (update: ScheduledWindowUpdate) => void
}

/**
 * Pure: the refreshes due at `now` among `reports` (latest versions), oldest due first: every declared age that
 * has been reached, that no version of the window was made at, and that the store has not settled (done, failed
 * for good, or waiting for a retry that is not due yet). Only reports of the current spec (`specHash`).
 */
export function dueRefreshes (opts: { now: number, reports: Report[], specHash: string, agesMs: number[], deadlineMs: number, versionsOf: (id: string) => Report[], record: (key: string) => ScheduledWindowRecord | null }): DueRefresh[] {
  const out: DueRefresh[] = []
  for (const latest of opts.reports) {
    if (latest.spec.hash !== opts.specHash) continue
    const from = Date.parse(latest.window.from)
    const to = Date.parse(latest.window.to)
    const firstReportId = latest.version?.first ?? latest.id
    let versions: Report[] | null = null
    for (const ageMs of opts.agesMs) {
      const dueAt = to + ageMs
      if (dueAt > opts.now) break // ages ascend
      if (opts.now > dueAt + opts.deadlineMs) continue // too late: recorded as failed when it was tried, else skipped
      const key = refreshKey(firstReportId, ageMs)
      const record = opts.record(key)
      // `started` left by a crash is tried again: agents reveal at most one refresh per age whatever the coordinator does.
      if (record !== null && (record.state === 'done' || record.state === 'failed' ||
        (record.state === 'retrying' && (record.nextAttemptAt ?? 0) > opts.now))) continue
      versions ??= opts.versionsOf(latest.id)
      if (versions.some(v => v.version?.refresh?.ageMs === ageMs)) continue // made by hand (round run --refresh)
      out.push({ key, window: { from, to }, ageMs, dueAt, firstReportId })
    }
  }
  return out.sort((a, b) => a.dueAt - b.dueAt)
}

export interface RefreshSchedulerOptions {
  store: RefreshSchedulerStore
  specHash: string
  agesMs: number[]
  /** A due refresh is retried until this long after it was due. */
  deadlineMs: number
  retryEveryMs: number
  /** How often to look for due refreshes. */
  checkEveryMs?: number
  /** How many of the latest reports to look at. */
  lookBack?: number
  /** Runs (and awaits) one refresh round; rejects (Error & {code, roundId}) when it fails or cannot start. */
  runRefresh: (due: DueRefresh, signal: AbortSignal) => Promise<void>
  logger: Pick<Logger, 'info' | 'warn' | 'error'>
  now?: () => number
}

export class RefreshScheduler {
  private readonly opts: RefreshSchedulerOptions
  private readonly now: () => number
  private timer: NodeJS.Timeout | null = null
  private running: Promise<number> | null = null
  /** Aborted by stop(); runDue works before start() too (tests drive it with a fake clock). */
  private readonly controller = new AbortController()
  private started = false

  constructor (opts: RefreshSchedulerOptions) {
    this.opts = opts
    this.now = opts.now ?? Date.now
  }

  start (): void {
    if (this.started || this.controller.signal.aborted) return
    this.started = true
    this.opts.logger.info({ ages: this.opts.agesMs.map(formatDuration), deadline: formatDuration(this.opts.deadlineMs), retryEvery: formatDuration(this.opts.retryEveryMs) }, 'label refreshes scheduled')
    this.arm(0)
  }

  async stop (): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.started = false
    this.controller.abort(new Error('refresh scheduler stopped'))
    await this.running?.catch(() => {})
  }

  /** Agents came back: due retries run now rather than at their planned time. */
  poke (): void {
    if (this.started && this.running === null) this.arm(0)
  }

  pending (): DueRefresh[] {
    const { store } = this.opts
    return dueRefreshes({
      now: this.now(),
      reports: store.listReports({ last: this.opts.lookBack ?? 200 }),
      specHash: this.opts.specHash,
      agesMs: this.opts.agesMs,
      deadlineMs: this.opts.deadlineMs,
      versionsOf: id => store.listVersions(id),
      record: key => store.getScheduledWindow(key)
    })
  }

  /** Runs every due refresh now, one after another; resolves to how many were attempted. Public for tests. */
  async runDue (): Promise<number> {
    if (this.running !== null) return await this.running
    this.running = this.runAll().finally(() => { this.running = null })
    return await this.running
  }

  private async runAll (): Promise<number> {
    let count = 0
    const tried = new Set<string>()
    for (;;) {
      const signal = this.controller.signal
      if (signal.aborted) break
      const due = this.pending().find(d => !tried.has(d.key))
      if (due === undefined) break
      tried.add(due.key)
      count++
      const prior = this.opts.store.getScheduledWindow(due.key)
      const attempts = (prior?.attempts ?? 0) + 1
      const retryUntil = due.dueAt + this.opts.deadlineMs
      const label = { window: { from: new Date(due.window.from).toISOString(), to: new Date(due.window.to).toISOString() }, age: formatDuration(due.ageMs), attempt: attempts }
      // Claimed first: at most once, even across a crash while the round runs.
      this.opts.store.recordScheduledWindow({ key: due.key, window: due.window, state: 'started', attempts, retryUntil })
      this.opts.logger.info(label, 'scheduled label refresh starting')
      try {
        await this.opts.runRefresh(due, signal)
        this.opts.store.recordScheduledWindow({ key: due.key, window: due.window, state: 'done' })
        this.opts.logger.info(label, 'scheduled label refresh finished')
      } catch (err) {
        const e = err as Error & { code?: string, roundId?: string | null }
        const code = typeof e?.code === 'string' ? e.code : 'ERR_ROUND_FAILED'
        const nextAttemptAt = this.now() + this.opts.retryEveryMs
        const retrying = !FINAL_REFRESH_CODES.has(code) && !signal.aborted && nextAttemptAt <= retryUntil
        this.opts.store.recordScheduledWindow({
          key: due.key, window: due.window, attempts, retryUntil, roundId: typeof e?.roundId === 'string' ? e.roundId : null,
          state: retrying ? 'retrying' : 'failed',
          nextAttemptAt: retrying ? nextAttemptAt : null,
          failure: { code, message: e?.message ?? String(err) }
        })
        this.opts.logger.warn({ ...label, code, err: e?.message, nextAttemptAt: retrying ? new Date(nextAttemptAt).toISOString() : null }, retrying ? 'scheduled label refresh failed; retrying later' : 'scheduled label refresh failed for good (past schedule.labelRefreshDeadline, or it cannot succeed)')
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
        .catch((err: unknown) => this.opts.logger.error({ err: (err as Error)?.message }, 'refresh scheduler tick failed'))
        .finally(() => { this.arm(this.opts.checkEveryMs ?? 60_000) })
    }, ms)
    this.timer.unref()
  }
}
