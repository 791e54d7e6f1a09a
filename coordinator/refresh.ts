/**
 * Label-refresh rounds on the coordinator (issue 11 §2): which report a refresh of window W at age A re-reads,
 * with which participants, and the new version of W's report once its label-dependent sums are in.
 *
 * The honest coordinator announces a refresh over exactly the included set of W's first round and with
 * minAgents = that set's size, so the round fails at once (ERR_REFRESH_SET_MISMATCH) if any of them is missing;
 * it does not rely on that: every agent holds the coordinator to the set it recorded (shared/secagg/client.ts).
 */
import type { Report, ReportVersion } from '../shared/report.js'
import type { MonitorSpec } from '../shared/stats/spec.js'
import { refreshAgesMs } from '../shared/stats/spec.js'
import type { TaskLayout } from '../shared/stats/tasks/index.js'
import { labelDependentEntries, mergeEntries } from '../shared/stats/label-entries.js'
import { formatDuration } from '../shared/config/duration.js'
import { ApiError } from './api.js'
import type { SqliteReportStore } from './store.js'

/** Everything a refresh round needs to know before it starts. */
export interface RefreshTarget {
  window: { from: number, to: number }
  ageMs: number
  /** The window's first version (its round id is what agents' ledgers know). */
  first: Report
  /** The window's latest version (the new one follows it). */
  latest: Report
  /** The first round's full sum: the label-independent entries of every version. */
  firstSum: Uint32Array
  /** Peer ids of the first round's included set, sorted (canonical participant order). */
  participants: string[]
  /** The sub-layout's entries. */
  entries: Uint32Array
}

const iso = (t: number): string => new Date(t).toISOString()

/** The ages the spec declares, as text for messages. */
export function declaredAges (spec: MonitorSpec): string {
  const ages = refreshAgesMs(spec)
  return ages.length === 0 ? 'none (the spec has no labels.refreshAfter)' : ages.map(formatDuration).join(', ')
}

/**
 * Finds W's reports and checks the refresh can run now: the age is declared and reached, not done yet, and the
 * first version's sum is stored. Throws ApiError (422: not allowed by the spec or not due; 404: no report of W;
 * 409: done already or not refreshable).
 */
export function planRefresh (opts: { store: SqliteReportStore, spec: MonitorSpec, layout: TaskLayout, window: { from: number, to: number }, ageMs: number, now: number }): RefreshTarget {
  const { store, spec, layout, window, ageMs, now } = opts
  const ages = refreshAgesMs(spec)
  if (!ages.includes(ageMs)) throw new ApiError(422, 'ERR_REFRESH_AGE', `a label refresh at ${formatDuration(ageMs)} is not declared by the spec (labels.refreshAfter: ${declaredAges(spec)})`)
  const due = window.to + ageMs
  if (now < due) throw new ApiError(422, 'ERR_REFRESH_NOT_DUE', `the ${formatDuration(ageMs)} label refresh of window ${iso(window.from)}..${iso(window.to)} is due at ${iso(due)}`)
  const from = iso(window.from)
  const to = iso(window.to)
  const exact = store.reportsOverlapping(window).filter(r => r.window.from === from && r.window.to === to)
  const firsts = [...new Set(exact.map(r => store.listVersions(r.reportId)[0]?.id).filter((id): id is string => id !== undefined))]
  const candidates = firsts.map(id => store.getReport(id)).filter((r): r is Report => r !== null && r.spec.hash === layout.specHash)
  if (candidates.length === 0) throw new ApiError(404, 'ERR_NOT_FOUND', `no report of window ${from}..${to} under this spec (${layout.specHash.slice(0, 12)}…) to refresh`)
  const first = candidates[candidates.length - 1]
  const versions = store.listVersions(first.id)
  const latest = versions[versions.length - 1]
  const done = versions.find(v => v.version?.refresh?.ageMs === ageMs)
  if (done !== undefined) throw new ApiError(409, 'ERR_REFRESH_DONE', `window ${from}..${to} was already refreshed at ${formatDuration(ageMs)} (report ${done.id}): one refresh per declared age`)
  const stored = store.getReferenceVector(first.id)
  if (stored === null || stored.specHash !== layout.specHash || stored.vector.length !== layout.length) {
    throw new ApiError(409, 'ERR_REFRESH_NO_SUM', `report ${first.id} has no stored sum under this spec (made before label refreshes existed): window ${from}..${to} cannot be refreshed`)
  }
  const participants = [...first.agents.included].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  return { window, ageMs, first, latest, firstSum: stored.vector, participants, entries: labelDependentEntries(layout) }
}

/** The full vector of the new version: the first round's sum with the refreshed label-dependent entries. */
export function refreshedVector (target: RefreshTarget, refreshSum: Uint32Array): Uint32Array {
  return mergeEntries(target.firstSum, target.entries, refreshSum)
}

/** The version block of the new report. */
export function nextVersion (target: RefreshTarget, roundId: string): ReportVersion {
  const previous = target.latest.version?.number ?? 1
  return {
    number: previous + 1,
    first: target.first.id,
    previous: target.latest.id,
    refresh: { age: formatDuration(target.ageMs), ageMs: target.ageMs, cutoff: iso(target.window.to + target.ageMs), round: roundId }
  }
}

/** The report's `labels` block: the estimated block's label counts and the instant they were counted up to. */
export function labelsBlock (report: Pick<Report, 'performance'>, maturedAt: string): NonNullable<Report['labels']> {
  const est = report.performance.estimated as { labels?: { coverage: number | null, labeled: number, unlabeled: number } } | undefined
  const labels = est?.labels ?? { coverage: null, labeled: 0, unlabeled: 0 }
  return { coverage: labels.coverage, labeled: labels.labeled, unlabeled: labels.unlabeled, maturedAt }
}
