import { z } from 'zod'
import { loadConfigFile, validateConfig } from '../config/load.js'
import { ConfigError } from '../errors.js'
import { parseDuration } from '../config/duration.js'
import { canonicalJson } from './canonical.js'

/**
 * The monitor spec (issue 3): which columns, which bins, which thresholds. It deterministically defines the
 * vector layout (shared/stats/layout.ts) and the spec hash that binds every round.
 */

/** Text that reaches the scan's SQL (column names, categories, label values): DuckDB strings cannot hold NUL. */
export const SqlText = z.string().min(1).refine(s => !s.includes('\u0000'), 'must not contain a NUL character')

/**
 * The scan trims these characters (ASCII whitespace) from both ends of a value before it compares it with a label
 * value or a category, so a cell " red " counts as "red". A category with them at an end could never match:
 * the spec refuses it (naming the field) rather than counting every such record as another category.
 */
export const TRIMMED_WHITESPACE = ' \t\n\v\f\r'
const EDGE_WHITESPACE = /^[ \t\n\v\f\r]|[ \t\n\v\f\r]$/

/** `s` without TRIMMED_WHITESPACE at either end: the JavaScript twin of the scan's trim. */
export function trimWhitespace (s: string): string {
  return s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '')
}

const LabelValue = z.union([SqlText, z.number().finite(), z.boolean()])

const Category = SqlText.refine(c => !EDGE_WHITESPACE.test(c), {
  error: issue => `category ${JSON.stringify(issue.input)} starts or ends with whitespace; values are trimmed before matching, so it would never match (write ${JSON.stringify(trimWhitespace(String(issue.input)))})`
})

/**
 * How finely a sum of record values is taken (issue 10.3). A sum over one record IS that record's value, so
 * the spec states the precision of every sum and the agent's policy (shared/secagg/policy.ts: allowSums,
 * maxSumPrecisionBits) decides whether it accepts it. `precisionBits` b: each record's term is rounded to one
 * of 2^b + 1 levels over its clip range, so whatever the window, a sum reveals a lone record's value to within
 * (range)/2^b and never finer; the range also bounds one record's influence on the sum (the sensitivity a
 * differential-privacy noise scale needs). 24 bits is the legacy precision of the score and loss sums.
 */
export const MAX_SUM_PRECISION_BITS = 24
const PrecisionBits = z.number().int().min(0).max(MAX_SUM_PRECISION_BITS)

/**
 * The score and loss sums (log loss, Brier, Σs and Σs² for the score's mean/std, Σs per calibration bin).
 * Absent: the legacy sums, terms rounded to 2^-24 (layout and spec hash as before). `false`: no sums at all —
 * log loss, Brier, ECE, mean score and the score's mean/std shift are then reported as unavailable.
 * `{ precisionBits: b }`: terms rounded to 2^-b (a score is in [0, 1]; a log-loss term, at most 36.04, in nats).
 */
export const ScoreSumsSpec = z.union([z.literal(false), z.strictObject({ precisionBits: PrecisionBits })],
  { error: `sums must be false or { precisionBits: 0..${MAX_SUM_PRECISION_BITS} }` })
export type ScoreSumsSpec = z.infer<typeof ScoreSumsSpec>

export const ScoreSpec = z.strictObject({
  column: SqlText.default('score'),
  bins: z.number().int().min(2).max(1 << 16).default(4096),
  scale: z.enum(['linear', 'logit']).default('linear'),
  /** logit scale: bins are uniform on logit(p) ∈ [-logitRange, logitRange]; the end bins take the tails. */
  logitRange: z.number().positive().max(40).default(12),
  sums: ScoreSumsSpec.optional()
})
export type ScoreSpec = z.infer<typeof ScoreSpec>

export const LabelSpec = z.strictObject({
  column: SqlText.default('label'),
  positive: LabelValue.default(1),
  /** Values counted as negatives. Default: 0/false when `positive` is 1/true, else every other non-null value. */
  negative: z.array(LabelValue).min(1).optional()
})
export type LabelSpec = z.infer<typeof LabelSpec>

const strictlyIncreasing = (a: number[]): boolean => a.every((v, i) => i === 0 || v > a[i - 1])

/** Largest magnitude of a clip bound (as the sketch range's): the terms are integers in [0, 2^b] whatever the clip. */
export const MAX_CLIP = 1e12

/**
 * A numeric feature's moment sums (mean/std shift). Absent: the legacy sums, exact to 2^-16 and clamped only at
 * ±range max (layout and spec hash as before): a site's policy with maxSumPrecisionBits refuses them.
 * `false`: no sums; the report says mean/std are unavailable. `{ clip: [lo, hi], precisionBits: b }`: every
 * value is clipped into [lo, hi] and summed as u = round((x − lo)/(hi − lo) · 2^b), an integer in [0, 2^b]:
 * Σu and Σu² give mean and std of the clipped values to within ±(hi − lo)/2^(b+1) each, and one record moves
 * Σu by at most 2^b (its sensitivity).
 */
export const MomentsSpec = z.union([
  z.literal(false),
  z.strictObject({
    clip: z.tuple([z.number().finite(), z.number().finite()]).refine(([lo, hi]) => lo < hi && Math.abs(lo) <= MAX_CLIP && Math.abs(hi) <= MAX_CLIP,
      `clip must be [lo, hi] with lo < hi and |lo|, |hi| at most ${MAX_CLIP}`),
    precisionBits: PrecisionBits
  })
], { error: `moments must be false or { clip: [lo, hi], precisionBits: 0..${MAX_SUM_PRECISION_BITS} }` })
export type MomentsSpec = z.infer<typeof MomentsSpec>

export const NumericFeatureSpec = z.strictObject({
  type: z.literal('numeric'),
  column: SqlText.optional(),
  /** Explicit bin edges: bins (-inf,e0), [e0,e1), ..., [e_last, +inf). Without edges: log-bucket sketch. */
  edges: z.array(z.number().finite()).min(1).max(1024).refine(strictlyIncreasing, 'edges must be strictly increasing').optional(),
  /** Sketch relative accuracy α (DDSketch); only without edges. */
  alpha: z.number().min(0.001).max(0.2).default(0.01),
  /**
   * Sketch covered magnitudes [min, max]; smaller non-zero magnitudes go to underflow, larger to overflow buckets.
   * Without `moments`, max also clamps values for the legacy moments; ≤ 1e12 keeps Σx²·2^16 of 2^31 records
   * inside DuckDB's 128-bit sums.
   */
  range: z.tuple([z.number().positive(), z.number().positive()]).refine(([a, b]) => a < b && b <= 1e12, 'range must be [min, max] with 0 < min < max <= 1e12').default([1e-9, 1e12]),
  /** Number of reference-quantile bins used for PSI/JS (sketch features only). */
  bins: z.number().int().min(2).max(100).default(10),
  moments: MomentsSpec.optional()
})
export type NumericFeatureSpec = z.infer<typeof NumericFeatureSpec>

export const CategoricalFeatureSpec = z.strictObject({
  type: z.literal('categorical'),
  column: SqlText.optional(),
  categories: z.array(Category).min(1).max(4096).refine(a => new Set(a).size === a.length, 'categories must be distinct')
})
export type CategoricalFeatureSpec = z.infer<typeof CategoricalFeatureSpec>

export const FeatureSpec = z.discriminatedUnion('type', [NumericFeatureSpec, CategoricalFeatureSpec])
export type FeatureSpec = z.infer<typeof FeatureSpec>

const WarnAlert = z.strictObject({ warn: z.number().nonnegative(), alert: z.number().nonnegative() })
  .refine(t => t.warn <= t.alert, 'warn must be <= alert')

export const DriftSpec = z.strictObject({
  /** Population stability index: warn / alert (drift) thresholds. */
  psi: WarnAlert.default({ warn: 0.1, alert: 0.25 }),
  /** Jensen–Shannon distance (base 2) at which a categorical feature drifts (Evidently default). */
  js: z.strictObject({ drift: z.number().positive().max(1) }).default({ drift: 0.1 }),
  /** Wasserstein-1 / reference std at which a numeric feature (or the score) drifts (Evidently default). */
  wasserstein: z.strictObject({ drift: z.number().positive() }).default({ drift: 0.1 }),
  /** Number of reference-quantile bins for the score's PSI/JS. */
  scoreBins: z.number().int().min(2).max(100).default(10)
})
export type DriftSpec = z.infer<typeof DriftSpec>

export const LimitsSpec = z.strictObject({
  /** Records one agent may contribute to one window; bounds every count entry (layout.maxEntry). */
  maxRecordsPerAgent: z.number().int().min(1).max(2 ** 31).default(2 ** 22)
})
export type LimitsSpec = z.infer<typeof LimitsSpec>

/**
 * Distributed differential privacy (issue 15): every agent adds Skellam noise to its entries before masking,
 * sized so that the sum over the fewest agents a round can finish with is (ε, δ)-DP per record per round
 * (shared/dp/plan.ts). Absent: exact sums, as before (and the same spec hash). Sums must then be clipped and
 * coarse (specProblem): each becomes one raw entry (layout.ts) noised as a second release.
 */
export const DpSpec = z.strictObject({
  epsilon: z.number().positive().max(20),
  delta: z.number().positive().max(1e-3)
})
export type DpSpec = z.infer<typeof DpSpec>
/**
 * Segments' privacy (issue 12 §3): a cell is published only when it counts at least `minCellRecords` records
 * (default DEFAULT_MIN_CELL_RECORDS) and at least `minCellSites` sites had a record in it (its summed
 * contributing-site indicator; default DEFAULT_MIN_CELL_SITES). No defaults in the schema, so a spec without
 * them keeps its canonical form and hash.
 */
export const DEFAULT_MIN_CELL_RECORDS = 20
export const DEFAULT_MIN_CELL_SITES = 2
export const PrivacySpec = z.strictObject({
  dp: DpSpec.optional(),
  minCellRecords: z.number().int().min(1).optional()
    .describe(`A segment cell is published only with at least this many records (default ${DEFAULT_MIN_CELL_RECORDS}); below, it is reported as suppressed, without figures.`),
  minCellSites: z.number().int().min(1).optional()
    .describe(`A segment cell is published only when at least this many sites had a record in it (default ${DEFAULT_MIN_CELL_SITES}; the summed per-cell indicator).`)
})
export type PrivacySpec = z.infer<typeof PrivacySpec>

/**
 * Late labels (issue 11): the ages after a window's end at which its labels are read again in a label-refresh
 * round (shared/stats/label-entries.ts: only the label-dependent entries are summed again, over exactly the
 * first round's included set). Part of the spec hash, so every agent signs off on the ages: a coordinator
 * cannot pick refresh instants that isolate one site's label arrivals. Absent: no refreshes (same hash as before).
 */
export const MAX_REFRESH_AGES = 12
const RefreshAge = z.string().refine(s => { try { return parseDuration(s) > 0 } catch { return false } },
  { error: issue => `invalid duration ${JSON.stringify(issue.input)} (expected e.g. "7d", "30d", "12h")` })
export const LabelsSpec = z.strictObject({
  refreshAfter: z.array(RefreshAge).min(1).max(MAX_REFRESH_AGES)
    .refine(a => a.every((v, i) => i === 0 || parseDuration(v) > parseDuration(a[i - 1])), 'refreshAfter ages must be strictly increasing')
})
export type LabelsSpec = z.infer<typeof LabelsSpec>

/** The refresh ages the spec declares, in ms (ascending); [] when it declares none. */
export function refreshAgesMs (spec: MonitorSpec): number[] {
  return (spec.labels?.refreshAfter ?? []).map(a => parseDuration(a))
}

/**
 * The model's task (issue 12 §2): what a record's prediction is and which metrics the layout sums. Absent: binary
 * (the layout and spec hash of every spec written before tasks existed). Each task is one module under
 * shared/stats/tasks/ (layout entries, scan, metrics, rendering).
 */
export const TASK_NAMES = ['binary', 'regression', 'multiclass'] as const
export type TaskName = typeof TASK_NAMES[number]
export const TaskSpec = z.enum(TASK_NAMES, { error: `task must be one of ${TASK_NAMES.join(', ')}` })
  .describe('The model\'s task: `binary` (a probability `score` and a 0/1 `label`; the default), `regression` (a numeric `prediction` and `target`) or `multiclass` (a probability per class of `classes`, and the true class name as `label`).')

/** How a regression value's distribution is binned for drift: as a numeric feature's (edges, or a sketch). */
const distributionShape = {
  edges: NumericFeatureSpec.shape.edges.describe('Fixed bin edges for drift, strictly increasing. Without edges, a log-bucket sketch (alpha, range).'),
  alpha: NumericFeatureSpec.shape.alpha.describe('Sketch relative accuracy (DDSketch α) of the drift histogram; only without `edges`.'),
  range: NumericFeatureSpec.shape.range.describe('Magnitudes [min, max] the drift sketch covers; smaller non-zero magnitudes go to underflow, larger to overflow buckets.'),
  bins: NumericFeatureSpec.shape.bins.describe('Reference-quantile bins for PSI and JS (sketch only).')
}

/** Regression: the prediction column (clipped into `target.clip` for the error sums; raw for the error sketch). */
export const PredictionSpec = z.strictObject({
  column: SqlText.default('prediction').describe('Column holding the model\'s numeric prediction.'),
  ...distributionShape
}).describe('Regression (`task: regression`): the prediction column and how its distribution is binned for drift.')
export type PredictionSpec = z.infer<typeof PredictionSpec>

/**
 * Regression: the target column and the clip that bounds every per-record term of the error sums (MAE, RMSE,
 * R², bias): target and prediction are clipped into [lo, hi] and summed as integer levels in [0, 2^precisionBits],
 * so one record moves a sum by a bounded amount and no sum of n agents × maxRecordsPerAgent records can wrap
 * (the limbs are sized at layout time).
 */
export const TargetSpec = z.strictObject({
  column: SqlText.default('target').describe('Column holding the true value; absent or null while it is not known yet.'),
  clip: z.tuple([z.number().finite(), z.number().finite()]).refine(([lo, hi]) => lo < hi && Math.abs(lo) <= MAX_CLIP && Math.abs(hi) <= MAX_CLIP,
    `clip must be [lo, hi] with lo < hi and |lo|, |hi| at most ${MAX_CLIP}`)
    .describe('Targets and predictions are clipped into [lo, hi] for the error and target sums (MAE, RMSE, R², bias, the target\'s mean/std); the range bounds one record\'s influence.'),
  precisionBits: PrecisionBits.default(16).describe('Each clipped value is summed as an integer level in [0, 2^b]: MAE, RMSE and bias are exact to within (hi − lo)/2^b (the bound the report states).'),
  ...distributionShape
}).describe('Regression (`task: regression`, required there): the target column, the clip of the sums and how its distribution is binned for drift.')
export type TargetSpec = z.infer<typeof TargetSpec>

/** Regression: the error sketch (quantiles of prediction − target) and the MAPE terms. */
export const ErrorSpec = z.strictObject({
  alpha: z.number().min(0.001).max(0.2).default(0.01).describe('Relative accuracy α of the error sketch: every reported error quantile is within α·|value| of the pooled data\'s (DDSketch).'),
  range: z.tuple([z.number().positive(), z.number().positive()]).refine(([a, b]) => a < b && b <= MAX_CLIP, `range must be [min, max] with 0 < min < max <= ${MAX_CLIP}`)
    .default([1e-6, 1e9]).describe('Error magnitudes [min, max] the sketch covers: below min a quantile is within ±min, above max it is reported as beyond max.'),
  mapeCap: z.number().positive().max(1e6).default(1000).describe('Largest per-record |error|/|target| term of MAPE (a target near 0 would otherwise dominate): the report says how many records were capped.')
}).describe('Regression: the sketch of the errors (their quantiles) and the MAPE terms.')
export type ErrorSpec = z.infer<typeof ErrorSpec>

/**
 * Segments (issue 12 §3): each entry is one segment column with its declared values; any other value (or none)
 * falls in the column's implicit `other` cell. Cells are marginal: one per (column, value) and (column, other).
 * `drift: true` also sums each of the column's cells' feature histograms (drift per cell); by default a cell has
 * the task's performance entries only. Absent: no segments (layout and spec hash as before).
 */
export const MAX_SEGMENT_COLUMNS = 16
export const MAX_SEGMENT_VALUES = 1024
/** The name of the implicit cell of a segment column's undeclared and missing values. */
export const OTHER_SEGMENT_VALUE = 'other'
export const SegmentColumnSpec = z.strictObject({
  column: SqlText.describe('The column whose value picks the record\'s cell; a feature\'s name reads that feature (with the site\'s column mapping).'),
  values: z.array(Category).min(1).max(MAX_SEGMENT_VALUES)
    .refine(a => new Set(a).size === a.length, 'values must be distinct')
    .refine(a => !a.includes(OTHER_SEGMENT_VALUE), `values must not include "${OTHER_SEGMENT_VALUE}" (the implicit cell of every undeclared or missing value)`)
    .describe('The declared values, one cell each; any other value, or none, goes to the cell `other`.'),
  drift: z.boolean().optional().describe('Also sum the features per cell, for drift per cell (default: performance only).'),
  scoreBins: z.number().int().min(2).max(1 << 16).optional()
    .describe('Score histogram bins of this column\'s cells (binary and multiclass; default `score.bins`). Most of a cell is its score histogram: fewer bins keep a segmented vector small, at the price of a wider certified AUC interval per cell.')
}).describe('One segment column: its declared values (plus the implicit `other`).')
export type SegmentColumnSpec = z.infer<typeof SegmentColumnSpec>
export const SegmentsSpec = z.array(SegmentColumnSpec).min(1).max(MAX_SEGMENT_COLUMNS)
  .refine(a => new Set(a.map(s => s.column)).size === a.length, 'segment columns must be distinct')
  .describe('Segments: per segment column, one cell per declared value plus `other`, each with the task\'s figures.')

/** Multiclass: the most classes a spec may name (each adds 3 × score.bins histogram entries and a row of the confusion matrix). */
export const MAX_CLASSES = 32

/** Multiclass: the class names, in the order of the confusion matrix (and of arg-max ties: the first wins). */
export const ClassesSpec = z.array(z.union([Category, z.number().finite().transform(n => String(n))]))
  .min(2).max(MAX_CLASSES).refine(a => new Set(a).size === a.length, 'classes must be distinct')
  .describe(`Multiclass (\`task: multiclass\`, required there): the class names (2..${MAX_CLASSES}, distinct; numbers are read as their text). A record's \`label\` is one of them; the order is the confusion matrix's, and an arg-max tie goes to the class listed first.`)

/** Multiclass: where a record's per-class probabilities are. */
export const ScoresSpec = z.strictObject({
  column: SqlText.optional().describe('One column holding an object {CLASS: probability} per record (JSON object, Parquet struct or map, or JSON text in CSV). Default `scores` (a site maps it with data.columns.score).'),
  columns: z.record(z.string(), SqlText.describe('The column holding that class\'s probability.')).optional().describe('Instead of `column`: one column per class, {CLASS: column}, naming every class of `classes`.')
}).refine(s => s.column === undefined || s.columns === undefined, 'give either column or columns, not both')
  .describe('Multiclass: the per-class probabilities, either one object column (`column`, default `scores`) or one column per class (`columns`). Their histograms are binned by `score.bins` and `score.scale`.')
export type ScoresSpec = z.infer<typeof ScoresSpec>

const featureName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'feature names: letters, digits, _ . - (max 64), starting with a letter or _')

export const MonitorSpec = z.strictObject({
  model: z.string().min(1),
  score: ScoreSpec.default(ScoreSpec.parse({})),
  label: LabelSpec.default(LabelSpec.parse({})),
  threshold: z.number().min(0).max(1).default(0.5),
  features: z.record(featureName, FeatureSpec).default({}),
  calibration: z.strictObject({ bins: z.number().int().min(2).max(100).default(10) }).default({ bins: 10 }),
  drift: DriftSpec.default(DriftSpec.parse({})),
  limits: LimitsSpec.default(LimitsSpec.parse({})),
  privacy: PrivacySpec.optional(),
  labels: LabelsSpec.optional(),
  task: TaskSpec.optional(),
  prediction: PredictionSpec.optional(),
  target: TargetSpec.optional(),
  error: ErrorSpec.optional(),
  segments: SegmentsSpec.optional(),
  classes: ClassesSpec.optional(),
  scores: ScoresSpec.optional()
})
export type MonitorSpec = z.infer<typeof MonitorSpec>

/** Rules across fields that the schema's shape cannot state: the first one broken, as a field path and a message. */
export function specProblem (spec: MonitorSpec): { field: string, message: string } | null {
  const task = taskProblem(spec)
  if (task !== null) return task
  const regressionScoreBins = spec.task === 'regression' ? (spec.segments ?? []).findIndex(s => s.scoreBins !== undefined) : -1
  if (regressionScoreBins >= 0) return { field: `segments.${regressionScoreBins}.scoreBins`, message: 'not used by task: regression (its cells have no score histogram)' }
  if (spec.privacy?.dp !== undefined) {
    // Under DP a sum's noise must cover one record's term: each term is clipped and coarse (at most 2^b levels).
    const sums = spec.score.sums
    if (spec.task === 'regression') {
      const target = spec.target
      if (target !== undefined && target.precisionBits > MAX_DP_SUM_PRECISION_BITS) {
        return { field: 'target.precisionBits', message: `must be at most ${MAX_DP_SUM_PRECISION_BITS} with privacy.dp (the noise of the error and target sums is sized for one record's largest term, (2^b)²: finer levels drown in it)` }
      }
      const bits = target?.precisionBits ?? 0
      const mapeCap = spec.error?.mapeCap ?? 1000
      if (mapeCap > 2 ** bits) {
        return { field: 'error.mapeCap', message: `must be at most ${2 ** bits} with privacy.dp at target.precisionBits ${bits} (a record's MAPE term, up to the cap, must not outweigh its squared error term in the noise; e.g. mapeCap: 10)` }
      }
    } else if (sums === undefined || (sums !== false && sums.precisionBits > MAX_DP_SUM_PRECISION_BITS)) {
      return { field: 'score.sums', message: `must be false or { precisionBits: 0..${MAX_DP_SUM_PRECISION_BITS} } with privacy.dp (the noise of a sum is sized for one record's largest term: finer terms drown in it${sums === undefined ? '; without score.sums the legacy sums are at 24 bits' : ''})` }
    }
    for (const [name, f] of Object.entries(spec.features)) {
      if (f.type !== 'numeric' || f.moments === false) continue
      if (f.moments === undefined || f.moments.precisionBits > MAX_DP_SUM_PRECISION_BITS) {
        return { field: `features.${name}.moments`, message: `must be false or { clip: [lo, hi], precisionBits: 0..${MAX_DP_SUM_PRECISION_BITS} } with privacy.dp (a record's term must be clipped for the noise to cover it)` }
      }
    }
    // Each sum is one entry under DP: the entries of the fewest agents must not wrap (layout.maxEntry).
    const maxTerm = dpLargestSumTerm(spec)
    if (maxTerm > 0 && spec.limits.maxRecordsPerAgent * maxTerm > MAX_DP_SUM_ENTRY) {
      return { field: 'limits.maxRecordsPerAgent', message: `must be at most ${Math.floor(MAX_DP_SUM_ENTRY / maxTerm)} with these sums under privacy.dp (each sum is one entry holding up to maxRecordsPerAgent × ${maxTerm}; lower the records or the sums' precisionBits)` }
    }
  }
  return null
}

/** Finest sums a DP spec may take: 2^8 levels per record term (the noise is sized for the largest term). */
export const MAX_DP_SUM_PRECISION_BITS = 8
/**
 * Largest value one agent may put in a DP sum entry: 2^27, so that at least 16 agents' sums (and the noise) stay
 * in the signed 32-bit range the coordinator decodes; the coordinator refuses rounds with more agents than the
 * layout's entries allow (layout.maxEntry), and says to lower limits.maxRecordsPerAgent or the precision.
 */
export const MAX_DP_SUM_ENTRY = 2 ** 27

/** The largest scaled term a record adds to any sum of a DP spec (0 when it has none): log loss ≤ 36.05 nats; regression's squares. */
function dpLargestSumTerm (spec: MonitorSpec): number {
  let max = 0
  const sums = spec.score.sums
  if (spec.task === 'regression') {
    // the squared error and target terms (2^b)², the MAPE term mapeCap · 2^b
    const bits = spec.target?.precisionBits ?? 0
    max = Math.max(4 ** bits, Math.ceil((spec.error?.mapeCap ?? 1000) * 2 ** bits))
  } else if (sums !== undefined && sums !== false) max = Math.ceil(36.05 * 2 ** sums.precisionBits)
  for (const f of Object.values(spec.features)) {
    if (f.type === 'numeric' && f.moments !== undefined && f.moments !== false) max = Math.max(max, 4 ** f.moments.precisionBits)
  }
  return max
}

/** The spec's task (absent: binary). */
export function taskOfSpec (spec: MonitorSpec): TaskName {
  return spec.task ?? 'binary'
}

/** Keys that belong to one task only: each with the task it needs. */
const TASK_ONLY_KEYS: ReadonlyArray<[keyof MonitorSpec, TaskName]> = [['prediction', 'regression'], ['target', 'regression'], ['error', 'regression'], ['classes', 'multiclass'], ['scores', 'multiclass']]
/** Binary keys a regression spec must leave at their defaults (they would be silently ignored otherwise). */
const BINARY_ONLY_KEYS = ['score', 'label', 'threshold', 'calibration'] as const

function taskProblem (spec: MonitorSpec): { field: string, message: string } | null {
  const task = taskOfSpec(spec)
  for (const [key, needs] of TASK_ONLY_KEYS) {
    if (spec[key] !== undefined && task !== needs) return { field: key, message: `only with task: ${needs} (this spec's task is ${task})` }
  }
  if (task === 'regression') {
    if (spec.target === undefined) return { field: 'target', message: 'required with task: regression: the column of the true value and its clip, e.g. target: {column: price, clip: [0, 1000000]}' }
    const defaults = MonitorSpec.parse({ model: spec.model })
    for (const key of BINARY_ONLY_KEYS) {
      if (canonicalJson(spec[key]) !== canonicalJson(defaults[key])) return { field: key, message: `not used by task: regression (a regression record has a \`prediction\` and a \`target\`)` }
    }
  }
  if (task === 'multiclass') return multiclassProblem(spec)
  return null
}

/** A multiclass spec's own rules: classes, the probability columns, and the binary keys it does not use. */
function multiclassProblem (spec: MonitorSpec): { field: string, message: string } | null {
  const classes = spec.classes
  if (classes === undefined) return { field: 'classes', message: 'required with task: multiclass: the class names, e.g. classes: [cat, dog, bird]' }
  const perClass = spec.scores?.columns
  if (perClass !== undefined) {
    const missing = classes.filter(c => perClass[c] === undefined)
    if (missing.length > 0) return { field: 'scores.columns', message: `names no column for class(es) ${missing.slice(0, 5).join(', ')}: give one column per class of \`classes\`` }
    const extra = Object.keys(perClass).filter(c => !classes.includes(c))
    if (extra.length > 0) return { field: 'scores.columns', message: `names ${extra.slice(0, 5).join(', ')}, not in \`classes\`` }
  }
  const defaults = MonitorSpec.parse({ model: spec.model })
  if (spec.score.column !== defaults.score.column) return { field: 'score.column', message: 'not used by task: multiclass (its probabilities are `scores.column` or `scores.columns`; `score` only bins them: bins, scale, logitRange, sums)' }
  if (canonicalJson(spec.label.positive) !== canonicalJson(defaults.label.positive) || spec.label.negative !== undefined) {
    return { field: 'label', message: 'a multiclass label is one of `classes`: label.positive and label.negative are not used (only label.column)' }
  }
  if (spec.threshold !== defaults.threshold) return { field: 'threshold', message: 'not used by task: multiclass (the predicted class is the arg-max of the probabilities)' }
  return null
}

function checked (source: string, spec: MonitorSpec): MonitorSpec {
  const problem = specProblem(spec)
  if (problem !== null) throw new ConfigError(source, problem.field, problem.message)
  return spec
}

/** Reads and validates a monitor spec (YAML or JSON); a ConfigError names the file and the field path. */
export function loadMonitorSpec (file: string): MonitorSpec {
  return checked(file, loadConfigFile(file, MonitorSpec))
}

/** Validates an in-memory spec (e.g. received from a coordinator); a ConfigError names `source` and the field. */
export function parseMonitorSpec (value: unknown, source = 'monitor spec'): MonitorSpec {
  return checked(source, validateConfig(source, MonitorSpec, value))
}
