/**
 * The report object of design §5 — the user-facing contract. Top-level keys are fixed; the `performance`,
 * `drift`, `samples` and `dataQuality` parts are produced by shared/stats from a summed vector, the rest
 * (id, round, window, agents, privacy, createdAt) by whoever ran the aggregation (coordinator or `evaluate`).
 */
/** A segment cell's key: {column: value} (shared/stats/segments.ts). */
export type SegmentCell = Record<string, string>
/** A published segment cell: the task's figures over its records. */
export interface PublishedSegment {
  cell: SegmentCell
  suppressed: false
  /** How many sites had records in the cell (its summed indicator). */
  sites: number
  samples: Report['samples']
  performance: Report['performance']
  /** Only for the cells of a `drift: true` column. */
  drift?: Report['drift']
}
/** A cell below a threshold: its key and why, never a figure. */
export interface SuppressedSegment { cell: SegmentCell, suppressed: true, reason: string }
export type SegmentReport = PublishedSegment | SuppressedSegment

export interface Window { from: string, to: string } // ISO-8601 instants, [from, to)

export interface Bounded {
  value: number | null
  lower: number | null
  upper: number | null
  /** Set when noise (privacy.dp) widened [lower, upper] into a confidence interval at this level. */
  confidence?: number
  /** The noise's 95 % half-width that widened the interval on each side. */
  noise?: number
}

export interface FeatureDrift {
  type: 'numeric' | 'categorical' | 'score'
  psi: number | null
  js: number | null
  ks?: { value: number | null, upper: number | null }
  wasserstein?: number | null
  hellinger: number | null
  chi2?: { statistic: number, dof: number, pValue: number } | null
  meanShift?: number | null
  stdRatio?: number | null
  missingRate: { reference: number | null, current: number | null }
  unseenRate?: { reference: number | null, current: number | null }
  status: 'ok' | 'warn' | 'drift' | 'unknown'
  [extra: string]: unknown
}

export interface Alert {
  rule: string
  metric: string
  value: number | null
  threshold: number
  kind: 'below' | 'above' | 'dropFromReference'
  message: string
  firedAt: string
  /** The segment cell the alert is about (a rule with `segment` or `segments: "*"`); absent: the overall figures. */
  segment?: Record<string, string>
}

/**
 * The summed histograms a report was computed from, regrouped (shared/stats/report-histograms.ts): what the
 * dashboard and `fedmon report --html` draw. Absent in reports made before they existed.
 */
export interface ScoreHistogram {
  /** Group edges on the score, length groups + 1, from 0 to 1. */
  edges: number[]
  negative: number[]
  positive: number[]
  unlabeled: number[]
}

export type FeatureHistogram =
  | {
    type: 'numeric'
    /** Per group: its lower and upper bound (null: unbounded). */
    lower: Array<number | null>
    upper: Array<number | null>
    current: number[]
    reference: number[] | null
    /** Missing or invalid values. */
    missing: { current: number, reference: number | null }
  }
  | {
    type: 'categorical'
    categories: string[]
    current: number[]
    reference: number[] | null
    /** Values outside the spec's vocabulary. */
    other: { current: number, reference: number | null }
    missing: { current: number, reference: number | null }
  }

export interface ReportHistograms {
  score: ScoreHistogram
  features: Record<string, FeatureHistogram>
}

export interface Report {
  id: string
  round: { id: string, kind: 'reference' | 'current' | 'local', durationMs?: number }
  window: Window
  /** `task`: absent for binary (reports as before tasks), else the spec's task (shared/stats/tasks/). */
  spec: { model: string, hash: string, vectorLength: number, task?: 'binary' | 'regression' | 'multiclass' }
  /**
   * `contributing`: how many of the included sites had at least one record in the window (the summed per-site
   * indicator; noisy under privacy.dp). Absent in reports made before layout v3.
   */
  agents: { invited: string[], included: string[], dropped: string[], contributing?: number }
  /** `positives`: binary only (null for other tasks, whose records have no positive class). */
  samples: { count: number, labeled: number, positives: number | null, unlabeled: number }
  performance: Record<string, unknown> & { auc: Bounded }
  drift: { reference: { id: string | null, window: Window | null } | null, features: Record<string, FeatureDrift>, score: FeatureDrift | null, note?: string, [extra: string]: unknown }
  dataQuality: Record<string, unknown>
  histograms?: ReportHistograms
  /** Per segment cell (spec.segments; shared/stats/segments.ts): the task's figures, or `suppressed` without any. */
  segments?: SegmentReport[]
  alerts: Alert[]
  privacy: { threshold: number | null, minAgents: number | null, graph?: string, k?: number, dp?: unknown }
  /**
   * Label-refresh versions (issue 11 §2): 1 is the window's first round, each refresh adds one; `first` is the
   * first version's report id. Absent in reports made before refreshes existed (version 1).
   */
  version?: ReportVersion
  /** How complete the labels behind the realised metrics are, and up to which instant they were counted. */
  labels?: { coverage: number | null, labeled: number, unlabeled: number, maturedAt: string }
  createdAt: string
}

export interface ReportVersion {
  number: number
  first: string
  previous: string | null
  /** The refresh that made this version: its declared age and the label cutoff (window end + age). */
  refresh: { age: string, ageMs: number, cutoff: string, round: string } | null
}

/**
 * A report without what only its own page needs (histograms, the reliability curve, per-feature detail beyond
 * the distances and status, data-quality breakdowns): what lists and charts over many reports read
 * (`GET /v1/reports?view=summary`). About a fifth of the size.
 */
export function reportSummary (report: Report): Report {
  const { histograms: _h, ...rest } = report as Report & { histograms?: unknown }
  const { reliability: _r, fixedPoint: _f, sums: _s, ...performance } = report.performance as Record<string, unknown>
  const brief = (f: FeatureDrift): FeatureDrift => ({ type: f.type, psi: f.psi, js: f.js, hellinger: f.hellinger, missingRate: f.missingRate, status: f.status })
  const features: Record<string, FeatureDrift> = {}
  for (const [name, f] of Object.entries(report.drift.features)) features[name] = brief(f)
  const { records } = report.dataQuality as { records?: unknown }
  // segment cells: their figures without the per-cell reliability curve and sums detail, as the overall's
  const segments = report.segments?.map(s => {
    if (s.suppressed) return s
    const { reliability: _cr, fixedPoint: _cf, sums: _cs, ...cellPerformance } = s.performance as Record<string, unknown>
    return { ...s, performance: cellPerformance as Report['performance'] }
  })
  return {
    ...rest,
    ...(segments !== undefined ? { segments } : {}),
    performance: performance as Report['performance'],
    drift: { ...report.drift, features, score: report.drift.score !== null ? brief(report.drift.score) : null },
    dataQuality: records !== undefined ? { records } : {}
  }
}
