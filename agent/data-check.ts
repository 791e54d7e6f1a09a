/**
 * Is this site's data for a window usable, before it is contributed? A site whose column mapping is wrong
 * (a CSV with `timestamp,prob,y` and no `columns`) would otherwise contribute zero or garbage records while the
 * report counts it as included — and use up the window in its ledger for good. The check reads only the
 * window's local counters (the ones the scan put in the vector) and says what is wrong in words that name the
 * column and the kind of problem, as a share of the window's records: never a value, never a count (the reason
 * is sent to the coordinator in a signed decline). Pure: no I/O.
 */
import { taskOfLayout, type TaskLayout } from '../shared/stats/tasks/index.js'
import { cellSlice, segmentsOf } from '../shared/stats/segments.js'
import { OTHER_SEGMENT_VALUE } from '../shared/stats/spec.js'
import type { TsUnit } from '../shared/stats/data-source.js'
import type { TimestampProfile } from './scan.js'
import { LOOKS_LIKE_OF_MAGNITUDE, type EpochUnit } from './scan-sql.js'

export interface DataCheckColumns { ts: string, score: string, label: string, features: ReadonlyMap<string, string> }

export interface DataCheckInput {
  layout: TaskLayout
  vector: Uint32Array
  /** Records of the data source with no usable timestamp (in no window; local only). */
  recordsWithoutTimestamp: number
  columns: DataCheckColumns
  /** policy.maxBadRecordFraction: the largest share of the window's records that may be unusable. */
  maxBadFraction: number
  /** The whole source's timestamps (the scan profiles them when the window is empty), to tell why it is. */
  timestamps?: TimestampProfile
  /** data.columns.tsUnit as configured (default auto). */
  tsUnit?: TsUnit
}

const UNIT_NAMES: Record<EpochUnit, string> = { s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds' }

/**
 * Why a scan failed, in words fit for a signed decline: the file (or glob) and the kind of problem. The scan's
 * ScanError carries such a `reason`; anything else is named only by its code.
 */
export function scanFailureReason (err: unknown, source: { path: string }): string {
  const reason = (err as { reason?: unknown } | null)?.reason
  if (typeof reason === 'string' && err instanceof Error && err.name === 'ScanError') return `cannot scan the data: ${reason}`
  const code = (err as { code?: unknown } | null)?.code
  return `cannot scan the data: the scan of ${source.path} failed (${typeof code === 'string' ? code : 'unexpected error'}; details in the agent's log)`
}

/**
 * What is wrong with the window's data. `problem` (one line, or null when it may be contributed): only the
 * timestamp, score and label make a contribution garbage. `warnings`, for the agent's own log: features whose
 * column is missing in every record — data quality the report shows (its missing bucket), likely a mapping slip.
 */
export function checkWindowData (input: DataCheckInput): { problem: string | null, warnings: string[] } {
  const { layout, vector, columns } = input
  const task = taskOfLayout(layout)
  const records = task.recordsInWindow(layout, vector)
  const warnings = records === 0
    ? []
    : layout.features
      .filter(f => vector[f.offset + f.missingIndex] === records)
      .map(f => `feature ${f.name}: column \`${columns.features.get(f.name) ?? f.name}\` is missing in every record of the window (is data.columns.features mapped?)`)
  if (records > 0) warnings.push(...task.windowWarnings(layout, vector, { output: columns.score, truth: columns.label }))
  // No truth at all in the window is no problem while it has not arrived, but it is how a wrong column name looks.
  const { truth } = task.columnCounts(layout, vector)
  if (records > 0 && truth.missing === records) {
    warnings.push(`${truth.role}: column \`${columns.label}\` is empty or absent in every record of the window (fine while ${truth.role}s have not arrived; else check data.columns.label)`)
  }
  // A segment column whose every record lands in `other` is absent (a typo?) or holds none of the declared values:
  // every declared cell would be suppressed as empty, which is how a wrong name looks.
  for (const cell of segmentsOf(layout)?.cells ?? []) {
    if (records === 0 || cell.value !== OTHER_SEGMENT_VALUE) continue
    if (taskOfLayout(cell.layout).recordsInWindow(cell.layout, cellSlice(cell, vector)) === records) {
      warnings.push(`segment column \`${cell.column}\`: every record of the window is in \`other\` (the column is absent, or holds none of the declared values): check segments[].column and values`)
    }
  }
  return { problem: windowProblem(input, records), warnings }
}

function windowProblem (input: DataCheckInput, records: number): string | null {
  const { layout, vector, columns, maxBadFraction } = input
  if (records === 0) {
    // Nothing in the window at all is not a data problem by itself (policy.minRecords speaks then), unless the
    // files hold records whose time cannot be read: then the timestamp column is the likely cause.
    const unit = wrongUnit(input)
    if (unit === 'tiny') return `column \`${columns.ts}\`: numeric timestamps are too small for epoch time in any unit (they read as milliseconds in 1970; relative times?), so no record falls in the window: check data.columns.ts`
    if (unit !== null) return `column \`${columns.ts}\`: timestamps look like epoch ${UNIT_NAMES[unit.looksLike]} read as ${UNIT_NAMES[unit.readAs]}, so no record falls in the window: check data.columns.tsUnit (now ${unit.readAs})`
    const usable = input.timestamps?.usable
    return input.recordsWithoutTimestamp > 0 && (usable === undefined || usable === 0)
      ? `no record falls in the window, and records of the data source have no usable timestamp in column \`${columns.ts}\` (missing, or neither an epoch number nor ISO-8601): check data.columns.ts`
      : null
  }
  // the task's two columns, as the site maps them (regression: prediction and target; multiclass: scores and label)
  return taskOfLayout(layout).windowProblem(layout, vector, { output: columns.score, truth: columns.label }, maxBadFraction)
}

/**
 * When most numeric timestamps of the source look like another unit than they are read in (an explicit
 * data.columns.tsUnit that is wrong; or numbers below 1e8, which no unit makes a date after 1972), that unit.
 */
function wrongUnit (input: DataCheckInput): { looksLike: EpochUnit, readAs: EpochUnit } | 'tiny' | null {
  const t = input.timestamps
  if (t === undefined) return null
  const unit = input.tsUnit ?? 'auto'
  const m = t.magnitudes
  const byClass = [m.tiny, m.s, m.ms, m.us, m.ns]
  const numeric = byClass.reduce((a, b) => a + b, 0)
  if (numeric === 0 || numeric * 2 < t.records) return null
  const top = byClass.indexOf(Math.max(...byClass))
  if (unit === 'auto') {
    // auto reads every other class in its own unit; numbers below 1e8 are no epoch time after 1972
    return top === 0 ? 'tiny' : null
  }
  const looksLike = LOOKS_LIKE_OF_MAGNITUDE[top]
  if (looksLike === null) return 'tiny'
  return looksLike === unit ? null : { looksLike, readAs: unit }
}
