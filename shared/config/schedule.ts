/**
 * The coordinator config's `schedule` section (the scheduler, coordinator/scheduler.ts, runs it). Durations
 * are strings like "30s", "15m", "1h" (shared/config/duration.ts).
 */
import { z } from 'zod'
import { parseDuration } from './duration.js'

export const DEFAULT_MAX_CATCH_UP = 24
/** How long after a start the scheduler waits for the roster's agents before catching up (ends early once all are online). */
export const DEFAULT_STARTUP_GRACE = '60s'
/** A window whose round could not start for lack of agents is tried again this often, for this long after its first attempt. */
export const DEFAULT_RETRY = { every: '5m', until: '6h' } as const
/** A due label refresh that fails is retried this often, until this long after it was due. */
export const DEFAULT_LABEL_REFRESH = { deadline: '14d', retry: '1h' } as const

const durationString = (allowZero: boolean) => z.string().refine((s) => {
  try { parseDuration(s, { allowZero }); return true } catch { return false }
}, { message: allowZero ? 'expected a duration like "0s", "15m", "1h"' : 'expected a duration like "30s", "15m", "1h", "1d"' })

export const ScheduleRetrySchema = z.object({
  /** Time between attempts. */
  every: durationString(false).default(DEFAULT_RETRY.every),
  /** No attempt later than this after the window's first attempt. */
  until: durationString(false).default(DEFAULT_RETRY.until)
}).strict()

/**
 * `schedule`: `every` (window length and cadence), `delay` after a window closes (default "0s"), `maxCatchUp`
 * missed windows run after downtime, `startupGrace` (default "60s"; "0s" off), `retry` for rounds that could
 * not start for lack of agents (default every 5m until 6h; `false` off).
 */
export const ScheduleConfigSchema = z.object({
  every: durationString(false),
  delay: durationString(true).default('0s'),
  maxCatchUp: z.number().int().min(1).max(10_000).optional(),
  startupGrace: durationString(true).default(DEFAULT_STARTUP_GRACE),
  retry: z.union([z.literal(false), ScheduleRetrySchema]).default({ ...DEFAULT_RETRY }),
  /**
   * Label refreshes (the spec's labels.refreshAfter) run by themselves once due; one that fails (a site offline)
   * is retried every `labelRefreshRetry` until `labelRefreshDeadline` after it was due.
   */
  labelRefreshDeadline: durationString(false).default(DEFAULT_LABEL_REFRESH.deadline),
  labelRefreshRetry: durationString(false).default(DEFAULT_LABEL_REFRESH.retry)
}).strict()
export type ScheduleConfigSchema = z.infer<typeof ScheduleConfigSchema>
