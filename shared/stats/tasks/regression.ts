/**
 * The regression task (issue 12 §2): a record has a numeric `prediction` and a numeric `target` (the truth,
 * possibly late). What is summed, and why each sum is safe and exact enough:
 * - counters: validity of prediction and target, the pairs (both valid) every error metric is over, how many pair
 *   values lay outside `target.clip`, the pairs with a non-zero target (MAPE's records) and the capped MAPE terms;
 * - the prediction's and the target's distributions, binned like numeric features (edges or a DDSketch), with
 *   their clipped moments: drift of both, as a feature's drift;
 * - a DDSketch histogram of the signed error e = prediction − target over the pairs (raw values): error
 *   quantiles within relative error α (target.error.alpha), each with its bucket as a certified interval;
 * - fixed-point sums over the pairs of integer levels u = round((clip(v) − lo)/(hi − lo) · 2^b) ∈ [0, 2^b]:
 *   Σu_y, Σu_y² (R²'s total sum of squares), Σ max(d, 0), Σ max(−d, 0) with d = u_ŷ − u_y (bias = their difference,
 *   MAE = their sum), Σd² (RMSE, R²'s residual sum); and Σ min(|e|/|y|, mapeCap) at 2^-b over non-zero targets.
 *   Every term is an integer bounded by the spec, so the limbs are sized at layout time for maxRecordsPerAgent
 *   records (and the 16-bit limbs for 2^16 agents): no sum can wrap, whatever the data.
 * Precision: each level is within step/2 of its clipped value (step = (hi − lo)/2^b), so every error term is
 * within `step`: MAE, bias and RMSE are within ±step of the pooled clipped data's, and R² within the interval the
 * report gives (from the same per-record bound on both sums of squares).
 */
import type { MonitorSpec, TargetSpec, PredictionSpec, ErrorSpec } from '../spec.js'
import type { Report, Bounded, FeatureDrift } from '../../report.js'
import type { SumGroup, TaskSensitivity } from './task.js'
import {
  LAYOUT_VERSION, specHashOf, entryAllocator, featureLayoutsOf, numericFeatureLayout, clippedLevelOf, featureSensitivity, momentSumsOf,
  type FeatureLayout, type NumericFeatureLayout
} from '../layout.js'
import { type FixedSum, readFixedSumExact, LIMB_MAX, LIMB_BITS } from '../fixed-point.js'
import { type SketchMapping, sketchMapping } from '../sketch.js'
import { type ReportBody, type ReferenceInput, referenceMismatch, numericDrift, categoricalDrift, momentsInfo, driftFrame, featureQuality } from '../report-body.js'
import { FedmonError } from '../../errors.js'

/** Per-record counters of the regression layout, in vector order. */
export const REGRESSION_COUNTERS = [
  'recordsInWindow', // every record whose ts is in [from, to)
  'predictionValid', 'predictionMissing', 'predictionNotNumeric', 'predictionNotFinite',
  'targetValid', 'targetMissing', 'targetNotNumeric', 'targetNotFinite',
  'pairs', // records with a valid prediction and a valid target: what every error metric is over
  'predictionClipped', 'targetClipped', // pairs whose value lay outside target.clip (the sums saw the bound)
  'targetNonZero', // pairs with target ≠ 0: MAPE's records
  'mapeCapped', // of those, terms |e|/|y| above error.mapeCap (counted as the cap)
  'sitesWithRecords' // the site indicator: 1 when the window holds any of this site's records (shared/stats/contributing.ts)
] as const
export type RegressionCounter = typeof REGRESSION_COUNTERS[number]

/** Counters whose value changes when a target arrives: everything but the prediction's own validity. */
const TARGET_DEPENDENT_COUNTERS: readonly RegressionCounter[] = ['targetValid', 'targetMissing', 'targetNotNumeric', 'targetNotFinite', 'pairs', 'predictionClipped', 'targetClipped', 'targetNonZero', 'mapeCapped']

export interface RegressionSumsLayout {
  lo: number
  hi: number
  precisionBits: number
  /** (hi − lo)/2^precisionBits: one level. */
  step: number
  targetSum: FixedSum
  targetSumSquares: FixedSum
  errorPositive: FixedSum
  errorNegative: FixedSum
  errorSquares: FixedSum
  /** Σ min(|e|/|y|, mapeCap), terms rounded to 2^-precisionBits. */
  mape: FixedSum
  mapeCap: number
}

export interface RegressionLayout {
  task: 'regression'
  version: string
  length: number
  specHash: string
  maxEntry: number
  maxRecords: number
  counters: { offset: number, names: readonly RegressionCounter[] }
  /** The prediction's and the target's distributions (named `(prediction)`, `(target)`: no feature name has parentheses). */
  prediction: NumericFeatureLayout
  target: NumericFeatureLayout
  /** The signed error's sketch over the pairs: its value buckets (sketch order, no missing/invalid entries). */
  errors: { offset: number, sketch: SketchMapping }
  sums: RegressionSumsLayout
  features: FeatureLayout[]
  fixedPoint: { limbBits: number }
}

export const PREDICTION_NAME = '(prediction)'
export const TARGET_NAME = '(target)'

/** The spec's regression parts with their defaults (specProblem has checked that `target` is there). */
export function regressionParts (spec: MonitorSpec): { prediction: PredictionSpec, target: TargetSpec, error: ErrorSpec } {
  if (spec.target === undefined) throw new FedmonError('a regression spec needs target (specProblem checks it)', 'ERR_LAYOUT_TASK')
  const prediction = spec.prediction ?? { column: 'prediction', alpha: 0.01, range: [1e-9, 1e12] as [number, number], bins: 10 }
  const error = spec.error ?? { alpha: 0.01, range: [1e-6, 1e9] as [number, number], mapeCap: 1000 }
  return { prediction, target: spec.target, error }
}

export function buildRegressionLayout (spec: MonitorSpec): RegressionLayout {
  const { prediction, target, error } = regressionParts(spec)
  const maxRecords = spec.limits.maxRecordsPerAgent
  // privacy.dp: every sum is one raw entry whose per-record change its maxTerm bounds (shared/dp/sensitivity.ts)
  const alloc = entryAllocator(maxRecords, { raw: spec.privacy?.dp !== undefined })
  const { take, fixed } = alloc
  const [lo, hi] = target.clip
  const bits = target.precisionBits
  const moments = { clip: target.clip, precisionBits: bits }
  const counters = { offset: take(REGRESSION_COUNTERS.length), names: REGRESSION_COUNTERS }
  const predictionLayout = numericFeatureLayout(PREDICTION_NAME, { ...prediction, moments }, alloc)
  const targetLayout = numericFeatureLayout(TARGET_NAME, { ...target, moments }, alloc)
  const sketch = sketchMapping(error.alpha, error.range[0], error.range[1])
  const errors = { offset: take(sketch.valueBuckets), sketch }
  const levels = 2 ** bits
  const sums: RegressionSumsLayout = {
    lo,
    hi,
    precisionBits: bits,
    step: (hi - lo) / levels,
    targetSum: fixed(levels, 0),
    targetSumSquares: fixed(levels * levels, 0),
    errorPositive: fixed(levels, 0),
    errorNegative: fixed(levels, 0),
    errorSquares: fixed(levels * levels, 0),
    mape: fixed(error.mapeCap, bits),
    mapeCap: error.mapeCap
  }
  const features = featureLayoutsOf(spec.features, alloc)
  return {
    task: 'regression',
    version: LAYOUT_VERSION,
    length: alloc.length,
    specHash: specHashOf(spec),
    maxEntry: Math.max(maxRecords, LIMB_MAX, alloc.maxRawEntry),
    maxRecords,
    counters,
    prediction: predictionLayout,
    target: targetLayout,
    errors,
    sums,
    features,
    fixedPoint: { limbBits: LIMB_BITS }
  }
}

export function regressionCounterIndex (layout: RegressionLayout, name: RegressionCounter): number {
  return layout.counters.offset + layout.counters.names.indexOf(name)
}

/** The fixed-point limb groups of a regression layout (every other entry is a count). */
export function regressionFixedSums (layout: RegressionLayout): FixedSum[] {
  const s = layout.sums
  const moments = (f: NumericFeatureLayout): FixedSum[] => (f.moments.kind === 'clipped' ? [f.moments.sum, f.moments.sumSquares] : [])
  const featureSums = layout.features.flatMap(f => (f.type === 'numeric' ? (f.moments.kind === 'exact' ? [f.moments.sumPositive, f.moments.sumNegative, f.moments.sumSquares] : moments(f)) : []))
  return [s.targetSum, s.targetSumSquares, s.errorPositive, s.errorNegative, s.errorSquares, s.mape, ...moments(layout.prediction), ...moments(layout.target), ...featureSums]
}

/**
 * privacy.dp (shared/dp/sensitivity.ts), from the scan's rules (agent/scan-tasks.ts): every record in the window
 * is counted once, in one prediction class and one target class, and flips the site indicator at most; a pair
 * (both valid) adds to `pairs` and at most once to each of predictionClipped, targetClipped, targetNonZero and
 * mapeCapped — 9 counters. The record lands in one bucket of the prediction's and of the target's distribution
 * (value, missing or invalid), a pair in one bucket of the error sketch, and the record in one bucket per feature.
 * Raw sums: a pair adds u_y and u_y² to the target sums, one of max(d, 0) and max(−d, 0), d², and its MAPE term;
 * a valid prediction (target) adds its Σu and Σu² to its distribution's moments; numeric features as usual.
 */
export function regressionDpSensitivity (layout: RegressionLayout): TaskSensitivity {
  const features = featureSensitivity(layout.features)
  const s = layout.sums
  const raw = (name: string, fs: FixedSum): SumGroup[] => (fs.raw === true ? [{ name, maxTerm: fs.maxTerm, entries: [fs.offset] }] : [])
  const moments = (what: string, f: NumericFeatureLayout): SumGroup[] =>
    momentSumsOf(f.moments).flatMap((fs, i) => raw(`${what} ${i === 0 ? 'sum' : 'sum of squares'}`, fs))
  return {
    countGroups: [
      { name: 'counters', touched: 9 },
      { name: 'prediction distribution', touched: 1 },
      { name: 'target distribution', touched: 1 },
      { name: 'error sketch', touched: 1 },
      ...features.countGroups
    ],
    sums: [
      ...raw('target sum', s.targetSum), ...raw('target sum of squares', s.targetSumSquares),
      // a pair's d is either positive or negative: one of the two parts moves
      ...(s.errorPositive.raw === true ? [{ name: 'error (positive or negative part)', maxTerm: Math.max(s.errorPositive.maxTerm, s.errorNegative.maxTerm), entries: [s.errorPositive.offset, s.errorNegative.offset] }] : []),
      ...raw('error sum of squares', s.errorSquares), ...raw('MAPE', s.mape),
      ...moments('prediction distribution', layout.prediction), ...moments('target distribution', layout.target),
      ...features.sums
    ]
  }
}

/**
 * The entries a target refresh sums again: every entry whose value can change when a record's target arrives —
 * the target-dependent counters, the target's distribution and moments, the error sketch and every pair sum.
 * Label-independent (never refreshed): recordsInWindow, the prediction's validity counters, its distribution
 * and moments, the features.
 */
export function regressionLabelDependentEntries (layout: RegressionLayout): Uint32Array {
  const picked: number[] = TARGET_DEPENDENT_COUNTERS.map(name => regressionCounterIndex(layout, name))
  const range = (offset: number, length: number): void => { for (let i = 0; i < length; i++) picked.push(offset + i) }
  range(layout.target.offset, layout.target.length)
  const s = layout.sums
  for (const fs of [...(layout.target.moments.kind === 'clipped' ? [layout.target.moments.sum, layout.target.moments.sumSquares] : []),
    s.targetSum, s.targetSumSquares, s.errorPositive, s.errorNegative, s.errorSquares, s.mape]) range(fs.offset, fs.limbs)
  range(layout.errors.offset, layout.errors.sketch.valueBuckets)
  const out = Uint32Array.from(new Set(picked))
  out.sort()
  return out
}

/** The level a sum takes for a finite value: the JavaScript twin of the scan's SQL (clipped into target.clip). */
export function regressionLevelOf (layout: RegressionLayout, v: number): number {
  return clippedLevelOf(layout.sums, v)
}

// ---------------------------------------------------------------------------------------------------------
// Metrics from the summed vector

/** The error quantiles reported, of the signed error and of its magnitude. */
export const ERROR_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95] as const
export const ABS_ERROR_QUANTILES = [0.5, 0.9, 0.95, 0.99] as const

/** A quantile's key in the report: p05, p50, p99 (a metric path has no dots inside a key). */
export const quantileKey = (q: number): string => `p${String(Math.round(q * 100)).padStart(2, '0')}`

const bounded = (value: number | null, lower: number | null, upper: number | null): Bounded => ({ value, lower, upper })
const NONE = bounded(null, null, null)
const nullIfInfinite = (x: number): number | null => (Number.isFinite(x) ? x : null)

/**
 * The q-quantile of a histogram over ordered buckets, as numpy.quantile(..., method='lower') defines it (the
 * element of rank ⌊q·(n − 1)⌋): the bucket holding that element, its representative as the value and its
 * bounds as a certified interval.
 */
export function histogramQuantile (counts: ArrayLike<number>, order: readonly number[], q: number, lower: readonly number[], upper: readonly number[], representative: readonly number[]): Bounded {
  let n = 0
  for (const k of order) n += counts[k]
  if (n === 0) return NONE
  const rank = Math.floor(q * (n - 1))
  let seen = 0
  for (const k of order) {
    seen += counts[k]
    if (seen > rank) return bounded(representative[k], nullIfInfinite(lower[k]), nullIfInfinite(upper[k]))
  }
  return NONE
}

/** The error sketch's buckets by magnitude |e| (zero, underflow, log buckets, overflow), each merging both signs. */
function magnitudeHistogram (sketch: SketchMapping, counts: ArrayLike<number>): { counts: number[], lower: number[], upper: number[], representative: number[] } {
  const K = sketch.perSign
  const z = sketch.zeroIndex
  const b = sketch.buckets()
  const out = { counts: [counts[z], counts[z - 1] + counts[z + 1]], lower: [0, 0], upper: [0, sketch.min], representative: [0, sketch.min / 2] }
  for (let j = 0; j < K; j++) {
    const pos = z + 2 + j; const neg = z - 2 - j
    out.counts.push(counts[pos] + counts[neg]); out.lower.push(b.lower[pos]); out.upper.push(b.upper[pos]); out.representative.push(b.representative[pos])
  }
  out.counts.push(counts[0] + counts[2 * K + 4]); out.lower.push(sketch.max); out.upper.push(Infinity); out.representative.push(sketch.max)
  return out
}

export function regressionReportBody (opts: { spec: MonitorSpec, layout: RegressionLayout, current: Uint32Array, reference: ReferenceInput | null }): ReportBody {
  const { spec, layout, current, reference } = opts
  if (current.length !== layout.length) throw new FedmonError(`vector length ${current.length} does not match the layout (${layout.length})`, 'ERR_STATS_LENGTH')
  const c = (name: RegressionCounter, v: Uint32Array = current): number => v[regressionCounterIndex(layout, name)]
  const mismatch = reference !== null ? referenceMismatch(layout, reference) : null
  return {
    samples: { count: c('recordsInWindow'), labeled: c('pairs'), positives: null, unlabeled: c('predictionValid') - c('pairs') },
    performance: regressionPerformance(layout, current),
    drift: reference === null
      ? { reference: null, features: {}, score: null, note: 'no reference window: drift not computed' }
      : mismatch !== null
        ? { reference: { id: reference.id, window: reference.window }, features: {}, score: null, note: mismatch.note, referenceMismatch: mismatch.detail }
        : regressionDrift(spec, layout, current, reference),
    dataQuality: regressionDataQuality(layout, current)
  }
}

function regressionPerformance (layout: RegressionLayout, v: Uint32Array): Report['performance'] {
  const s = layout.sums
  const c = (name: RegressionCounter): number => v[regressionCounterIndex(layout, name)]
  const n = c('pairs')
  const exact = (fs: FixedSum): bigint => readFixedSumExact(v, fs)
  const { step, lo } = s
  const counts = { pairs: n, targetNonZero: c('targetNonZero'), mapeCapped: c('mapeCapped'), predictionClipped: c('predictionClipped'), targetClipped: c('targetClipped') }
  const precision = {
    clip: [s.lo, s.hi],
    precisionBits: s.precisionBits,
    step,
    note: `targets and predictions clipped into [${s.lo}, ${s.hi}] and summed in steps of ${step} (2^${s.precisionBits} levels): MAE, RMSE and bias within ±${step} of the clipped data's, R² within its interval; MAPE terms rounded to 2^-${s.precisionBits} and capped at ${s.mapeCap}; error quantiles within relative error ${layout.errors.sketch.alpha} (their bucket is the interval)`
  }
  const quantiles = errorQuantiles(layout, v)
  const base = { auc: NONE, counts, precision, ...quantiles, fixedPoint: `regression sums: integer levels of 2^${s.precisionBits} over [${s.lo}, ${s.hi}]; ${LIMB_BITS}-bit limbs per u32 entry` }
  if (n === 0) return { ...base, mae: NONE, rmse: NONE, r2: NONE, bias: NONE, mape: NONE, meanTarget: null, meanPrediction: null }
  const dPos = exact(s.errorPositive); const dNeg = exact(s.errorNegative); const dSq = exact(s.errorSquares)
  const mae = step * Number(dPos + dNeg) / n
  const bias = step * Number(dPos - dNeg) / n
  const sse = step * step * Number(dSq)
  const rmse = Math.sqrt(sse / n)
  // R²: the total sum of squares from Σu and Σu² in exact integers (n·Σu² − (Σu)² has no cancellation error)
  const uy = exact(s.targetSum); const uy2 = exact(s.targetSumSquares)
  const sst = step * step * Number(BigInt(n) * uy2 - uy * uy) / n
  // Each level is within step/2 of its value: ‖y_q − y‖ ≤ √n·step/2 bounds √SST's error, ‖e_q − e‖ ≤ √n·step √SSE's.
  const rootN = Math.sqrt(n)
  const sseLo = Math.max(0, Math.sqrt(sse) - rootN * step) ** 2; const sseHi = (Math.sqrt(sse) + rootN * step) ** 2
  const sstLo = Math.max(0, Math.sqrt(sst) - rootN * step / 2) ** 2; const sstHi = (Math.sqrt(sst) + rootN * step / 2) ** 2
  // scikit-learn's r2_score on a constant target: 1 for a perfect fit, else 0 (force_finite)
  const r2 = sst > 0 ? 1 - sse / sst : (sse === 0 ? 1 : 0)
  const r2Bound = sst > 0 ? bounded(r2, sstLo > 0 ? 1 - sseHi / sstLo : null, Math.min(1, 1 - sseLo / sstHi)) : bounded(r2, null, null)
  const nz = c('targetNonZero')
  const half = 2 ** -(s.precisionBits + 1)
  const mapeValue = nz > 0 ? Number(exact(s.mape)) / 2 ** s.precisionBits / nz : null
  // a capped term is larger than it counts: then no upper bound
  const mape = mapeValue === null ? NONE : bounded(mapeValue, Math.max(0, mapeValue - half), c('mapeCapped') > 0 ? null : mapeValue + half)
  const predictionMoments = layout.prediction.moments
  const meanPrediction = predictionMoments.kind === 'clipped' && c('predictionValid') > 0 ? lo + step * Number(exact(predictionMoments.sum)) / c('predictionValid') : null
  return {
    ...base,
    mae: bounded(mae, Math.max(0, mae - step), mae + step),
    rmse: bounded(rmse, Math.max(0, rmse - step), rmse + step),
    r2: r2Bound,
    bias: bounded(bias, bias - step, bias + step),
    mape,
    meanTarget: lo + step * Number(uy) / n,
    meanPrediction
  }
}

function errorQuantiles (layout: RegressionLayout, v: Uint32Array): { error_quantiles: Record<string, Bounded>, abs_error_quantiles: Record<string, Bounded> } {
  const { sketch, offset } = layout.errors
  const counts = v.subarray(offset, offset + sketch.valueBuckets)
  const b = sketch.buckets()
  const order = Array.from({ length: sketch.valueBuckets }, (_, i) => i)
  const signed: Record<string, Bounded> = {}
  for (const q of ERROR_QUANTILES) signed[quantileKey(q)] = histogramQuantile(counts, order, q, b.lower, b.upper, b.representative)
  const m = magnitudeHistogram(sketch, counts)
  const magnitude: Record<string, Bounded> = {}
  for (const q of ABS_ERROR_QUANTILES) magnitude[quantileKey(q)] = histogramQuantile(m.counts, m.counts.map((_, i) => i), q, m.lower, m.upper, m.representative)
  return { error_quantiles: signed, abs_error_quantiles: magnitude }
}

function regressionDrift (spec: MonitorSpec, layout: RegressionLayout, cur: Uint32Array, reference: ReferenceInput): Report['drift'] {
  const ref = reference.vector
  const features: Record<string, FeatureDrift> = {}
  for (const f of layout.features) features[f.name] = f.type === 'numeric' ? numericDrift(spec, f, cur, ref) : categoricalDrift(spec, f, cur, ref)
  return {
    ...driftFrame(spec, reference, ref[regressionCounterIndex(layout, 'recordsInWindow')]),
    features,
    score: null,
    prediction: { ...numericDrift(spec, layout.prediction, cur, ref), type: 'prediction' },
    target: { ...numericDrift(spec, layout.target, cur, ref), type: 'target' },
  }
}

function regressionDataQuality (layout: RegressionLayout, v: Uint32Array): Report['dataQuality'] {
  const c = (name: RegressionCounter): number => v[regressionCounterIndex(layout, name)]
  const features = featureQuality(layout.features, v)
  return {
    records: c('recordsInWindow'),
    prediction: { missing: c('predictionMissing'), notNumeric: c('predictionNotNumeric'), notFinite: c('predictionNotFinite'), clipped: c('predictionClipped') },
    target: { missing: c('targetMissing'), notNumeric: c('targetNotNumeric'), notFinite: c('targetNotFinite'), clipped: c('targetClipped') },
    features,
    sums: { moments: Object.fromEntries(layout.features.flatMap(f => (f.type === 'numeric' ? [[f.name, momentsInfo(f.moments)]] : []))) }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The terminal report and the site's data check

/** The Performance section's rows [metric, value, bound] of a regression report. */
export function regressionPerformanceRows (report: Report, num: (x: unknown, digits?: number) => string): string[][] {
  const p = report.performance as Record<string, unknown>
  const rows: string[][] = []
  const row = (label: string, key: string): void => {
    const b = p[key] as Bounded | undefined
    if (b === undefined) return
    const bound = b.lower !== null || b.upper !== null ? `[${num(b.lower)}, ${b.upper === null ? '∞' : num(b.upper)}]` : ''
    rows.push([label, num(b.value), bound])
  }
  row('MAE', 'mae'); row('RMSE', 'rmse'); row('R²', 'r2'); row('bias (mean prediction − target)', 'bias'); row('MAPE (non-zero targets)', 'mape')
  const quantiles = (title: string, key: string): void => {
    for (const [q, b] of Object.entries((p[key] ?? {}) as Record<string, Bounded>)) {
      rows.push([`${title} ${q}`, num(b.value), b.lower !== null || b.upper !== null ? `[${num(b.lower)}, ${b.upper === null ? '∞' : num(b.upper)}]` : ''])
    }
  }
  quantiles('error', 'error_quantiles')
  quantiles('|error|', 'abs_error_quantiles')
  const n = p.counts as { pairs: number, targetNonZero: number, mapeCapped: number, predictionClipped: number, targetClipped: number } | undefined
  if (n !== undefined) rows.push(['records with prediction and target', n.pairs.toLocaleString('en-US'), `${n.predictionClipped} predictions, ${n.targetClipped} targets clipped`])
  return rows
}

/**
 * What makes a regression window's contribution garbage, in words fit for a signed decline (the column and the
 * kind of problem as a share of records, never a value): an unusable prediction column, or a target column
 * whose values are mostly not numbers (missing targets are late labels, not a problem).
 */
export function regressionWindowProblem (layout: RegressionLayout, vector: Uint32Array, columns: { prediction: string, target: string }, maxBadFraction: number): string | null {
  const c = (name: RegressionCounter): number => vector[regressionCounterIndex(layout, name)]
  const records = c('recordsInWindow')
  if (records === 0) return null
  const percent = (part: number): string => `${Math.max(1, Math.round(100 * part / records))} %`
  const badPredictions = records - c('predictionValid')
  if (badPredictions > maxBadFraction * records) {
    const kinds = ([['predictionMissing', 'missing'], ['predictionNotNumeric', 'not a number'], ['predictionNotFinite', 'not finite']] as const).filter(([k]) => c(k) > 0).map(([, w]) => w)
    return `column \`${columns.prediction}\`: ${percent(badPredictions)} of the window's records have no usable prediction (${kinds.join(', ')}), more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.score (the prediction column)`
  }
  const badTargets = c('targetNotNumeric') + c('targetNotFinite')
  if (badTargets > maxBadFraction * records) {
    return `column \`${columns.target}\`: ${percent(badTargets)} of the window's records have a target that is not a finite number, more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.label (the target column)`
  }
  return null
}

/**
 * A site's policy (shared/secagg/policy.ts AgentPolicy) against a regression spec: the refusal reason, or null.
 * The sums are what regression is made of, so a site that allows none refuses it; their precision is the
 * target's; the prediction and target columns are read, and their drift histograms count as buckets per column.
 */
export function regressionPolicyProblem (policy: { allowedColumns?: string[], allowSums?: boolean, maxSumPrecisionBits?: number, maxBucketsPerFeature?: number, maxBucketsPerColumn?: number }, spec: MonitorSpec, layout: RegressionLayout): string | null {
  const { prediction, target } = regressionParts(spec)
  if (policy.allowedColumns !== undefined) {
    const allowed = new Set(policy.allowedColumns)
    const read = [prediction.column, target.column, ...Object.entries(spec.features).map(([name, f]) => f.column ?? name)]
    const forbidden = read.filter(c => !allowed.has(c))
    if (forbidden.length > 0) return `the spec reads column(s) this agent does not share: ${forbidden.slice(0, 5).join(', ')}`
  }
  if (policy.allowSums === false) return 'a regression spec sums record values (its error and target sums); this agent contributes no sums (policy.allowSums: false)'
  const bits = policy.maxSumPrecisionBits
  if (bits !== undefined && layout.sums.precisionBits > bits) {
    return `the spec's regression sums are at ${layout.sums.precisionBits} bits (steps of ${layout.sums.step} over [${layout.sums.lo}, ${layout.sums.hi}]), this agent allows at most ${bits} bits (policy.maxSumPrecisionBits): set target.precisionBits: ${bits}`
  }
  const perColumn = policy.maxBucketsPerColumn ?? policy.maxBucketsPerFeature
  if (perColumn !== undefined) {
    for (const [what, f, column] of [['prediction', layout.prediction, prediction.column], ['target', layout.target, target.column]] as const) {
      if (f.length > perColumn) return `the ${what} column ${column} is binned into ${f.length} buckets for drift, this agent allows at most ${perColumn} per column: set ${what}.edges or a narrower ${what}.range`
    }
    // the error sketch cuts prediction − target, a value of two columns: bounded like one column
    if (layout.errors.sketch.valueBuckets > perColumn) return `the error sketch has ${layout.errors.sketch.valueBuckets} buckets, this agent allows at most ${perColumn} per column: set a larger error.alpha or a narrower error.range`
    for (const f of layout.features) {
      if (f.length > perColumn) return `feature ${f.name} has ${f.length} buckets, this agent allows at most ${perColumn} per feature`
    }
  }
  return null
}
