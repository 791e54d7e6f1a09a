/**
 * One line of `fedmon round list` and one entry of `GET /v1/rounds`: a round the coordinator ran (any
 * status), or a scheduled window no round ran for (`id: null`: refused before any agent was asked, waiting
 * for a retry, or missed during downtime). Rounds keep every RoundOutcome field; `counts` has the sizes.
 */
import type { Window } from './report.js'
import type { RoundOutcome } from './round-outcome.js'

export type RoundListStatus = 'running' | 'done' | 'failed' | 'aborted' | 'retrying' | 'missed'
export const FAILED_STATUSES: ReadonlySet<string> = new Set<RoundListStatus>(['failed', 'aborted', 'retrying', 'missed'])

export interface RoundCounts { invited: number, included: number, dropped: number, declined: number }

export interface RoundListEntry {
  /** The round's id; null for a scheduled window no round ran for. */
  id: string | null
  /** The monitor (today: the spec's model name). */
  monitor: string
  kind: 'reference' | 'current'
  window: Window
  status: RoundListStatus
  failure: { code: string, message: string } | null
  reportId: string | null
  /** Set when the scheduler ran (or was to run) it. */
  scheduledWindowKey: string | null
  counts: RoundCounts
  /** When the round started, or the scheduler first handled the window. */
  startedAt: string
  finishedAt: string | null
  /** Scheduled windows: attempts so far and, while retrying, the next one. */
  attempts?: number
  nextAttemptAt?: string | null
  [extra: string]: unknown
}

/** A round as stored: the fields of RoundOutcome (shared/round-outcome.ts) this needs. */
export type StoredRound = Pick<RoundOutcome, 'id' | 'kind' | 'window' | 'status' | 'reportId' | 'invited' | 'included' | 'dropped' | 'failure' | 'startedAt' | 'finishedAt' | 'scheduledWindowKey'> & { declined?: unknown[] }

/** A scheduled window as the store keeps it (coordinator/store.ts ScheduledWindowRecord). */
export interface StoredScheduledWindow {
  key: string
  window: { from: number, to: number }
  state: 'started' | 'done' | 'failed' | 'retrying' | 'missed'
  attempts: number
  nextAttemptAt: number | null
  failure: { code: string, message: string } | null
  claimedAt: string
  updatedAt: string
}

export function roundEntry (round: StoredRound, monitor: string): RoundListEntry {
  return {
    ...round,
    monitor,
    declined: round.declined ?? [],
    counts: { invited: round.invited.length, included: round.included.length, dropped: round.dropped.length, declined: round.declined?.length ?? 0 }
  }
}

/** A scheduled window that has no round of its own (failed/retrying/missed), or null for any other state. */
export function windowEntry (w: StoredScheduledWindow, monitor: string): RoundListEntry | null {
  if (w.state !== 'failed' && w.state !== 'retrying' && w.state !== 'missed') return null
  return {
    id: null,
    monitor,
    kind: 'current',
    window: { from: new Date(w.window.from).toISOString(), to: new Date(w.window.to).toISOString() },
    status: w.state,
    failure: w.failure,
    reportId: null,
    scheduledWindowKey: w.key,
    counts: { invited: 0, included: 0, dropped: 0, declined: 0 },
    startedAt: w.claimedAt,
    finishedAt: w.state === 'retrying' ? null : w.updatedAt,
    attempts: w.attempts,
    nextAttemptAt: w.nextAttemptAt !== null ? new Date(w.nextAttemptAt).toISOString() : null
  }
}

/**
 * Rounds and round-less scheduled windows in one list, oldest first, the newest `limit` of them; `failed`
 * keeps failed, aborted, retrying and missed ones; `monitor` keeps one monitor's.
 */
export function mergeRoundList (rounds: readonly StoredRound[], windows: readonly StoredScheduledWindow[], opts: { monitor: string, filterMonitor?: string, failed?: boolean, limit: number }): RoundListEntry[] {
  if (opts.filterMonitor !== undefined && opts.filterMonitor !== opts.monitor) return []
  const ran = new Set(rounds.map(r => r.scheduledWindowKey).filter((k): k is string => k !== null))
  const entries = [
    ...rounds.map(r => roundEntry(r, opts.monitor)),
    ...windows.filter(w => !ran.has(w.key)).map(w => windowEntry(w, opts.monitor)).filter((e): e is RoundListEntry => e !== null)
  ].filter(e => opts.failed !== true || FAILED_STATUSES.has(e.status))
  entries.sort((a, b) => a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : Date.parse(a.window.from) - Date.parse(b.window.from))
  return entries.slice(Math.max(0, entries.length - opts.limit))
}
