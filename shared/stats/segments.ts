/**
 * Segments wrap any task (design §8, issue 12 §3). A segmented layout is the task's own layout (every offset
 * unchanged) followed, per cell, by the task's layout for that cell's records and one contributing-site indicator:
 *
 *   [ overall (task layout) | cell 0: task layout, sites | cell 1: task layout, sites | … ]
 *
 * Cells are marginal: one per (segment column, declared value) and one per (column, `other`) for every other or
 * missing value, so each record lands in exactly one cell per column. A cell's task layout is the task's layout
 * of the same spec without its features (performance only: the task's own label/score/prediction distributions
 * stay), or with them when the column says `drift: true`. The indicator is 1 when the site has at least one
 * record of the window in the cell: summed inside the secure sum, it says how many sites a cell's figures come
 * from, never which. Vector length: overall + Σ_cells (cell length + 1).
 *
 * One module for every task: the task modules never see segments (they build, scan and report one cell as they
 * would a whole window); this one offsets and slices.
 */
import type { MonitorSpec, SegmentColumnSpec } from './spec.js'
import { DEFAULT_MIN_CELL_RECORDS, DEFAULT_MIN_CELL_SITES, OTHER_SEGMENT_VALUE } from './spec.js'
import type { TaskLayout } from './tasks/task.js'
import type { ReferenceInput, ReportBody } from './report-body.js'
import type { Report } from '../report.js'
import { mainMetricOfTask } from './tasks/main-metric.js'

/** A cell's key in reports: `{region: "north"}` (the implicit cell: `{region: "other"}`). */
export type { SegmentCell } from '../report.js'
import type { SegmentCell } from '../report.js'

export interface SegmentCellLayout {
  column: string
  /** The declared value, or OTHER_SEGMENT_VALUE for the implicit cell. */
  value: string
  /** Index of the value in the column's declared values; values.length for `other`. */
  valueIndex: number
  /** Whether this cell's layout has the features (drift per cell). */
  drift: boolean
  /** The cell's score bins when its column sets `scoreBins` (else the spec's). */
  scoreBins?: number
  /** First entry of the cell's task layout in the whole vector. */
  offset: number
  /** The cell's task layout (offsets relative to `offset`). */
  layout: TaskLayout
  /** Index of the cell's contributing-site indicator in the whole vector (right after its task layout). */
  sitesIndex: number
}

export interface SegmentsLayout {
  /** First entry of the cells: the overall layout's length. */
  offset: number
  columns: Array<{ column: string, values: string[], drift: boolean, scoreBins?: number }>
  cells: SegmentCellLayout[]
}

/** A layout's segments (any task), or null when its spec has none. */
export function segmentsOf (layout: TaskLayout): SegmentsLayout | null {
  return (layout as { segments?: SegmentsLayout }).segments ?? null
}

/**
 * The spec a cell's task layout is built from: the spec without segments, without features unless `drift`, and
 * with its column's `scoreBins` when set.
 */
export function cellSpecOf (spec: MonitorSpec, cell: { drift: boolean, scoreBins?: number }): MonitorSpec {
  const { segments: _segments, ...rest } = spec
  const binned = cell.scoreBins !== undefined ? { ...rest, score: { ...rest.score, bins: cell.scoreBins } } : rest
  return cell.drift ? binned : { ...binned, features: {} }
}

/**
 * Appends the cells of `spec.segments` to `base` (the task's layout of the whole spec); `base` itself when the
 * spec has no segments. `buildCell` is the task's buildLayout.
 */
export function withSegments<L extends TaskLayout> (spec: MonitorSpec, base: L, buildCell: (spec: MonitorSpec) => TaskLayout): L {
  if (spec.segments === undefined) return base
  const built = new Map<string, TaskLayout>()
  const cellLayout = (c: { drift: boolean, scoreBins?: number }): TaskLayout => {
    const key = `${c.drift}|${c.scoreBins ?? ''}`
    let l = built.get(key)
    if (l === undefined) { l = buildCell(cellSpecOf(spec, c)); built.set(key, l) }
    return l
  }
  let next = base.length
  let maxEntry = base.maxEntry
  const cells: SegmentCellLayout[] = []
  const columns = spec.segments.map(s => ({ column: s.column, values: [...s.values], drift: s.drift === true, ...(s.scoreBins !== undefined ? { scoreBins: s.scoreBins } : {}) }))
  for (const c of columns) {
    const layout = cellLayout(c)
    maxEntry = Math.max(maxEntry, layout.maxEntry)
    for (const [valueIndex, value] of [...c.values, OTHER_SEGMENT_VALUE].entries()) {
      cells.push({ column: c.column, value, valueIndex, drift: c.drift, ...(c.scoreBins !== undefined ? { scoreBins: c.scoreBins } : {}), offset: next, layout, sitesIndex: next + layout.length })
      next += layout.length + 1
    }
  }
  return { ...base, length: next, maxEntry, segments: { offset: base.length, columns, cells } }
}

/** The number of cells a segments spec makes: Σ (values + 1). */
export function segmentCellCount (segments: readonly SegmentColumnSpec[] | undefined): number {
  return (segments ?? []).reduce((n, s) => n + s.values.length + 1, 0)
}

/** The cell's key as reports write it. */
export function cellKey (cell: Pick<SegmentCellLayout, 'column' | 'value'>): SegmentCell {
  return { [cell.column]: cell.value }
}

/** `region=north`: the cell as the CLI's --segment and the Prometheus `segment` label write it. */
export function cellLabel (cell: SegmentCell): string {
  return Object.entries(cell).map(([k, v]) => `${k}=${v}`).join(',')
}

/** The cell's own entries of a whole vector (a view, no copy). */
export function cellSlice (cell: SegmentCellLayout, vector: Uint32Array): Uint32Array {
  return vector.subarray(cell.offset, cell.offset + cell.layout.length)
}

/** Label-dependent entries of the cells: each cell's task entries, offset into the whole vector (ascending). */
export function cellLabelDependentEntries (layout: TaskLayout, taskEntries: (cellLayout: TaskLayout) => Uint32Array): number[] {
  const segments = segmentsOf(layout)
  if (segments === null) return []
  const out: number[] = []
  for (const cell of segments.cells) for (const i of taskEntries(cell.layout)) out.push(cell.offset + i)
  return out
}

/** The thresholds a cell must reach to be published (spec.privacy, with the defaults). */
export function cellThresholds (spec: MonitorSpec): { minCellRecords: number, minCellSites: number } {
  return { minCellRecords: spec.privacy?.minCellRecords ?? DEFAULT_MIN_CELL_RECORDS, minCellSites: spec.privacy?.minCellSites ?? DEFAULT_MIN_CELL_SITES }
}

// The report's segment shapes live in shared/report.ts (which the browser dashboard type-checks without Node).
export type { PublishedSegment, SuppressedSegment, SegmentReport } from '../report.js'
import type { PublishedSegment, SegmentReport } from '../report.js'

/**
 * The report's `segments`: per cell, the task's report body over the cell's slice, or the suppression.
 * `sites`: `count` applies minCellSites (a round's sum), `ignore` does not (one site's own `fedmon evaluate`,
 * where the indicator is 1 by construction and the figures never leave the site).
 */
export function segmentReports (opts: {
  spec: MonitorSpec
  layout: TaskLayout
  current: Uint32Array
  reference: ReferenceInput | null
  body: (opts: { spec: MonitorSpec, layout: TaskLayout, current: Uint32Array, reference: ReferenceInput | null }) => ReportBody
  recordsInWindow: (layout: TaskLayout, vector: Uint32Array) => number
  sites?: 'count' | 'ignore'
  /**
   * Under privacy.dp: the counts are noisy, and a cell is suppressed only when its noisy count plus this slack
   * (the noise's 95 % error) is still below a threshold — the noise then protects the small cells, and a noisy
   * low reading does not hide a large one. 0 (exact sums): the thresholds as they are.
   */
  countSlack?: number
}): SegmentReport[] | undefined {
  const segments = segmentsOf(opts.layout)
  if (segments === null || opts.spec.segments === undefined) return undefined
  const { minCellRecords, minCellSites } = cellThresholds(opts.spec)
  const refComparable = opts.reference !== null && opts.reference.vector.length === opts.layout.length &&
    (opts.reference.specHash === undefined || opts.reference.specHash === opts.layout.specHash)
  return segments.cells.map((c): SegmentReport => {
    const cell = cellKey(c)
    const current = cellSlice(c, opts.current)
    const records = opts.recordsInWindow(c.layout, current)
    const sites = opts.current[c.sitesIndex]
    const slack = opts.countSlack ?? 0
    if (records + slack < minCellRecords) return { cell, suppressed: true, reason: `fewer than ${minCellRecords} records (privacy.minCellRecords)` }
    if (opts.sites !== 'ignore' && sites + slack < minCellSites) return { cell, suppressed: true, reason: `fewer than ${minCellSites} contributing sites (privacy.minCellSites)` }
    let reference: ReferenceInput | null = null
    if (c.drift && opts.reference !== null) {
      // a comparable reference is sliced like the current vector; another one is passed whole, so the task's
      // body says why drift is not computed
      reference = refComparable
        ? { ...opts.reference, vector: cellSlice(c, opts.reference.vector), specHash: c.layout.specHash }
        : opts.reference
    }
    const body = opts.body({ spec: cellSpecOf(opts.spec, c), layout: c.layout, current: new Uint32Array(current), reference })
    return { cell, suppressed: false, sites, samples: body.samples, performance: body.performance, ...(c.drift ? { drift: body.drift } : {}) }
  })
}

/** Parses `region=north` (the CLI's --segment) into a cell; null when it is not `column=value`. */
export function parseCellLabel (text: string): SegmentCell | null {
  const at = text.indexOf('=')
  if (at <= 0 || at === text.length - 1) return null
  return { [text.slice(0, at)]: text.slice(at + 1) }
}

/** The report's entry for `cell` (published or suppressed), or undefined when its spec has no such cell. */
export function findSegment (report: Pick<Report, 'segments'>, cell: SegmentCell): SegmentReport | undefined {
  const want = cellLabel(cell)
  return (report.segments ?? []).find(s => cellLabel(s.cell) === want)
}

/**
 * A published cell as a report of its own (its samples, performance and drift; the rest is the round's), so
 * every reader of reports (metric paths, alert floors, the renderer) reads a cell the same way.
 */
export function cellReport (report: Report, cell: PublishedSegment): Report {
  return {
    ...report,
    samples: cell.samples,
    // the cell's own label coverage (the report's is over every record)
    ...(report.labels !== undefined
      ? { labels: { ...report.labels, coverage: cell.samples.count > 0 ? cell.samples.labeled / cell.samples.count : null, labeled: cell.samples.labeled, unlabeled: cell.samples.unlabeled } }
      : {}),
    performance: cell.performance,
    drift: cell.drift ?? { reference: null, features: {}, score: null, note: 'performance only in this segment (the spec\'s segment column has no drift: true)' },
    dataQuality: {},
    histograms: undefined,
    segments: undefined,
    alerts: report.alerts.filter(a => a.segment !== undefined && cellLabel(a.segment) === cellLabel(cell.cell))
  }
}

/** A numeric performance figure (a number, or a bounded figure's value); null when absent. */
export function figureOf (performance: Record<string, unknown>, key: string): number | null {
  const v = performance[key]
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (v !== null && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'number') return (v as { value: number }).value
  return null
}

/** The largest PSI of a cell's drift (features and the task's own values); null without drift figures. */
export function largestDrift (drift: Report['drift'] | undefined): number | null {
  if (drift === undefined) return null
  const all = [...Object.values(drift.features ?? {}), drift.score, drift.prediction, drift.target]
  const psis = all.map(f => (f !== null && typeof f === 'object' ? (f as { psi?: unknown }).psi : null)).filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
  return psis.length > 0 ? Math.max(...psis) : null
}

/** Published cells worst first (by the task's main metric, then the largest drift), then the suppressed ones. */
export function segmentsWorstFirst (report: Pick<Report, 'spec' | 'segments'>): SegmentReport[] {
  const { key, higherIsBetter } = mainMetricOfTask(report.spec.task)
  const badness = (s: PublishedSegment): number => {
    const v = figureOf(s.performance, key)
    return v === null ? Number.NEGATIVE_INFINITY : higherIsBetter ? -v : v
  }
  const published = (report.segments ?? []).filter((s): s is PublishedSegment => !s.suppressed)
  published.sort((a, b) => badness(b) - badness(a) || (largestDrift(b.drift) ?? -1) - (largestDrift(a.drift) ?? -1))
  return [...published, ...(report.segments ?? []).filter(s => s.suppressed)]
}
