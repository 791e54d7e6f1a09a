/**
 * The coordinator's window guard rails: a round's window is refused before any agent is asked when it is
 * longer than `round.maxWindowMs`, ends in the future, or overlaps a window that already has a report. An
 * agent can contribute a window once only (its ledger), so a window asked by mistake — `1970..now`, a typo
 * in a date — would use up the sites' history for good. Pure; the daemon applies it to API, configured
 * reference and scheduled rounds alike.
 */
import { FedmonError } from '../shared/errors.js'
import { formatDuration } from '../shared/config/duration.js'

export { DEFAULT_MAX_WINDOW_MS } from '../shared/config/coordinator.js'

export type WindowRefusalCode = 'ERR_WINDOW_TOO_LONG' | 'ERR_WINDOW_IN_FUTURE' | 'ERR_WINDOW_OVERLAP'

export class WindowRefusedError extends FedmonError {
  declare readonly code: WindowRefusalCode
  constructor (message: string, code: WindowRefusalCode) {
    super(message, code)
    this.name = 'WindowRefusedError'
  }
}

export interface ReportedWindow { reportId: string, kind: string, window: { from: string, to: string } }

export interface WindowRailsInput {
  window: { from: number, to: number }
  now: number
  maxWindowMs: number
  /** Reports whose window overlaps this one (store.reportsOverlapping). */
  overlapping: readonly ReportedWindow[]
  /**
   * Hook for declared label-refresh rounds (design §8): a refresh re-sums the label-dependent entries of a
   * window that already has its first report. Until those exist nothing is exempt.
   */
  isDeclaredRefresh?: (existing: ReportedWindow) => boolean
}

const iso = (t: number): string => new Date(t).toISOString()

/** Throws WindowRefusedError naming the rule and what to do; returns when the window may run. */
export function checkWindowRails (input: WindowRailsInput): void {
  const { window, now, maxWindowMs } = input
  const length = window.to - window.from
  if (length > maxWindowMs) {
    throw new WindowRefusedError(`window ${iso(window.from)}..${iso(window.to)} is ${formatDuration(length)} long, longer than round.maxWindowMs (${formatDuration(maxWindowMs)}): every site could contribute those records once only; ask for shorter windows (or raise round.maxWindowMs in the coordinator config)`, 'ERR_WINDOW_TOO_LONG')
  }
  if (window.to > now) {
    throw new WindowRefusedError(`window ${iso(window.from)}..${iso(window.to)} ends in the future (coordinator clock ${iso(now)}): records still to come would be left out of it for good; wait until it has closed`, 'ERR_WINDOW_IN_FUTURE')
  }
  const clash = input.overlapping.find(r => input.isDeclaredRefresh?.(r) !== true)
  if (clash !== undefined) {
    throw new WindowRefusedError(`window ${iso(window.from)}..${iso(window.to)} overlaps ${clash.window.from}..${clash.window.to}, which already has a report (${clash.reportId}, ${clash.kind}): the agents contributed those records already and refuse them again; ask for a window that starts at or after ${clash.window.to} or ends at or before ${clash.window.from}`, 'ERR_WINDOW_OVERLAP')
  }
}
