/**
 * `fedmon check`: the checks an agent runs before it contributes (agent/data-check.ts on the scan's vector),
 * run by the site's operator on its own files, with the figures behind them: files, records, per-column parse
 * results, the window's coverage and what the vector would contain. Local only: values may be shown.
 */
import { buildTaskLayout, taskOfLayout, type TaskLayout } from '../shared/stats/tasks/index.js'
import type { MonitorSpec } from '../shared/stats/spec.js'
import { dataFormatOf, type DataSource } from '../shared/stats/data-source.js'
import { checkDataSource, columnNamesFor, scanWindowDetailed, type LabelFigures, type TimestampProfile } from './scan.js'
import { checkWindowData } from './data-check.js'
import type { EpochUnit } from './scan-sql.js'

/** The widest window DuckDB and JavaScript dates both hold: "all of the data". */
const ALL_TIME = { from: -8.64e15, to: 8.64e15 }

export interface ColumnCheck {
  /** What the spec reads it as: ts, score, label or `feature NAME`. */
  role: string
  /** The column as the site names it. */
  column: string
  /** Records over which the counts are taken: the ts over every record of the source, the others over the window's. */
  over: 'source' | 'window'
  usable: number
  missing: number
  bad: number
}

export interface LocalCheck {
  data: { path: string, format: string | null, files: string[] }
  /** The window checked; `all` when none was given (every record with a usable ts). */
  window: { from: number, to: number } | 'all'
  records: { total: number, inWindow: number, withoutTimestamp: number, malformedRows: number }
  timestamps: TimestampProfile | null
  tsUnit: string
  tsUnits: Partial<Record<EpochUnit, number>>
  columns: ColumnCheck[]
  /**
   * The label source (data.labels) and what the join did in the window, or null without one. `joinedShare`: the
   * window's predictions that got a label by id, as a share of them (null when the window is empty).
   */
  labels: (LabelFigures & { path: string, format: string | null, idColumn: string, joinedShare: number | null }) | null
  vector: { length: number, specHash: string, scoreBins: number | null, calibrationBins: number | null, features: Array<{ name: string, type: string, buckets: number }> }
  /** Why an agent would decline this window (one line), or null. */
  problem: string | null
  warnings: string[]
}

export interface LocalCheckOptions {
  source: DataSource
  spec: MonitorSpec
  /** policy.maxBadRecordFraction of the agent. */
  maxBadFraction: number
  /** policy.minRecords of the agent: a window holding fewer of its records is declined (SecAggClient.setInput). */
  minRecords?: number
  window?: { from: number, to: number }
}

/**
 * Runs the agent's data checks on its files. A scan that fails (unreadable file, no file, more records than the
 * spec's cap) throws the scan's error, whose message names the file and the cause.
 */
export async function checkLocalData (opts: LocalCheckOptions): Promise<LocalCheck> {
  const { source, spec } = opts
  const layout = buildTaskLayout(spec)
  const files = await checkDataSource(source)
  const { vector, local } = await scanWindowDetailed({ spec, layout, source, window: opts.window ?? ALL_TIME, profile: 'always' })
  const names = columnNamesFor(spec, source)
  const checked = checkWindowData({
    layout, vector, recordsWithoutTimestamp: local.recordsWithoutTimestamp, columns: names, maxBadFraction: opts.maxBadFraction,
    timestamps: local.timestamps, tsUnit: source.columns?.tsUnit
  })
  const { warnings } = checked
  // The agent's own record floor declines too (local output: the count may be shown here).
  const short = opts.window !== undefined && opts.minRecords !== undefined && local.recordsInWindow < opts.minRecords
  const problem = checked.problem ?? (short ? `the window holds ${local.recordsInWindow} of this site's records, fewer than policy.minRecords ${opts.minRecords}` : null)
  const t = local.timestamps ?? null
  const labels = source.labels !== undefined && local.labels !== undefined
    ? { path: source.labels.path, format: dataFormatOf(source.labels), idColumn: names.id, ...local.labels, joinedShare: local.recordsInWindow > 0 ? local.labels.joined / local.recordsInWindow : null }
    : null
  if (labels !== null && labels.files.length === 0) warnings.push(`data.labels: no label file matches ${labels.path} yet: only the logs' own labels count (fine while labels have not arrived; else check the path)`)
  else if (labels !== null && labels.ids > 0 && labels.unknownIds === labels.ids) warnings.push(`data.labels: no label id matches a prediction id (column \`${names.id}\` of the logs): check data.columns.id and data.labels.columns.id`)
  return {
    data: { path: source.path, format: dataFormatOf(source), files },
    window: opts.window ?? 'all',
    records: { total: t?.records ?? local.recordsInWindow + local.recordsWithoutTimestamp, inWindow: local.recordsInWindow, withoutTimestamp: local.recordsWithoutTimestamp, malformedRows: local.malformedRows },
    timestamps: t,
    tsUnit: source.columns?.tsUnit ?? 'auto',
    tsUnits: local.tsUnits,
    columns: columnChecks(layout, vector, t, names),
    labels,
    vector: {
      length: layout.length,
      specHash: layout.specHash,
      // per task: binary and multiclass have score and calibration bins, regression neither
      scoreBins: 'score' in layout ? layout.score.bins : null,
      calibrationBins: 'calibration' in layout ? layout.calibration.bins : null,
      features: layout.features.map(f => ({ name: f.name, type: f.type, buckets: f.length }))
    },
    problem,
    warnings
  }
}

function columnChecks (layout: TaskLayout, vector: Uint32Array, t: TimestampProfile | null, names: ReturnType<typeof columnNamesFor>): ColumnCheck[] {
  const task = taskOfLayout(layout)
  const records = task.recordsInWindow(layout, vector)
  const { output, truth } = task.columnCounts(layout, vector)
  const out: ColumnCheck[] = []
  if (t !== null) out.push({ role: 'ts', column: names.ts, over: 'source', usable: t.usable, missing: t.missing, bad: t.bad })
  // the task's two roles read through the score and label mappings (regression: prediction and target)
  out.push({ ...output, column: names.score, over: 'window' })
  out.push({ ...truth, column: names.label, over: 'window' })
  for (const f of layout.features) {
    const missing = vector[f.offset + f.missingIndex]
    const bad = f.type === 'numeric' ? vector[f.offset + f.invalidIndex] : 0
    out.push({ role: `feature ${f.name}`, column: names.features.get(f.name) ?? f.name, over: 'window', usable: records - missing - bad, missing, bad })
  }
  return out
}
