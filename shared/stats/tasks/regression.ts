/**
 * The regression task (issue 12 §2): a numeric prediction and a numeric target per record.
 *
 * Every prediction and target is clipped into the spec's target.clip [lo, hi] and rounded to a level
 * u = round((clip(x) − lo)/step) ∈ [0, 2^b], step = (hi − lo)/2^b (b = target.precisionBits): a sum then reveals a
 * lone record's value to within one step and never finer, and one record moves a sum by at most 2^b (or 4^b for
 * squares). Over the pairs (records with both a valid prediction and a valid target), with d = u_pred − u_target:
 *   Σ max(d, 0), Σ max(−d, 0)   → bias (mean error) and MAE
 *   Σ d²                        → RMSE and R²'s residual sum
 *   Σ u_target, Σ u_target²     → R²'s total sum (exact in integers: n·Σu² − (Σu)²)
 *   Σ min(|e|/|y|, mapeCap)     → MAPE over pairs whose (rounded) target is not zero, terms rounded to 2^-b
 * Each sum is split into 16-bit limbs sized by limbsFor for limits.maxRecordsPerAgent records, so one agent
 * never overflows a sum and 2^16 agents never wrap an entry (maxAgentsFor): checked when the layout is built.
 * For the clipped values, the rounded MAE, RMSE and bias are within one step of the exact ones (each error moves
 * by at most step); the report gives those bounds. Error quantiles come from a DDSketch histogram of the rounded
 * error (relative error target.alpha); prediction and target distributions are sketch histograms too, for drift
 * as numeric features have it.
 */
import type { Task, RenderKit } from './task.js'
import type { MonitorSpec } from '../spec.js'
import { type Layout, type NumericFeatureLayout, LAYOUT_VERSION, specHashOf, layoutBuilder, featureLayouts } from '../layout.js'
import { type FixedSum, LIMB_MAX, readFixedSum, readFixedSumExact } from '../fixed-point.js'
import { sketchMapping } from '../sketch.js'
import { type ReportBody, numericDriftOf, driftSummary, dataQualityOfFeatures } from '../report-body.js'
import { FedmonError } from '../../errors.js'
import type { Report, FeatureDrift } from '../../report.js'

/** Per-record counters of a regression window (label-dependent: every target* counter and pairs). */
export const REGRESSION_COUNTERS = [
  'recordsInWindow',
  'predictionValid', 'predictionMissing', 'predictionInvalid', 'predictionClipped',
  'targetValid', 'targetMissing', 'targetInvalid', 'targetClipped',
  'pairs', 'pairsNonZeroTarget'
] as const
export type RegressionCounter = typeof REGRESSION_COUNTERS[number]
const LABEL_DEPENDENT_COUNTERS: readonly RegressionCounter[] = ['targetValid', 'targetMissing', 'targetInvalid', 'targetClipped', 'pairs', 'pairsNonZeroTarget']

export interface RegressionLayout {
  kind: 'regression'
  lo: number
  hi: number
  precisionBits: number
  step: number
  mapeCap: number
  alpha: number
  counters: { offset: number, names: readonly RegressionCounter[] }
  sums: { errorPositive: FixedSum, errorNegative: FixedSum, errorSquares: FixedSum, target: FixedSum, targetSquares: FixedSum, ape: FixedSum }
  /** Sketch histograms (moments off): the valid predictions, the valid targets, the pairs' rounded errors. */
  prediction: NumericFeatureLayout
  target: NumericFeatureLayout
  error: NumericFeatureLayout
}

/** A sketch histogram of values whose magnitudes lie in [min, max], laid out as a numeric feature's buckets. */
function sketchHistogram (name: string, alpha: number, min: number, max: number, take: (n: number) => number, psiBins: number): NumericFeatureLayout {
  const sketch = sketchMapping(alpha, min, max)
  const { lower, upper, representative } = sketch.buckets()
  const valueBuckets = lower.length
  return {
    name, type: 'numeric', binning: 'sketch', offset: take(valueBuckets + 2), valueBuckets, missingIndex: valueBuckets, invalidIndex: valueBuckets + 1,
    length: valueBuckets + 2, lower, upper, representative, edges: null, sketch, moments: { kind: 'off' }, psiBins
  }
}

function buildRegressionLayout (spec: MonitorSpec): Layout {
  const t = spec.target
  if (t === undefined) throw new FedmonError('task regression needs target', 'ERR_SPEC') // specProblem says so first
  const maxRecords = spec.limits.maxRecordsPerAgent
  const builder = layoutBuilder(maxRecords)
  const { take, fixed } = builder
  const [lo, hi] = t.clip
  const b = t.precisionBits
  const step = (hi - lo) / 2 ** b
  const counters = { offset: take(REGRESSION_COUNTERS.length), names: REGRESSION_COUNTERS }
  const level = 2 ** b
  const sums = {
    errorPositive: fixed(level, 0),
    errorNegative: fixed(level, 0),
    errorSquares: fixed(level * level, 0),
    target: fixed(level, 0),
    targetSquares: fixed(level * level, 0),
    ape: fixed(t.mapeCap, b)
  }
  // magnitudes below half a step are 0 after rounding (errors) or land in the underflow bucket (values)
  const valueMax = Math.max(Math.abs(lo), Math.abs(hi))
  const prediction = sketchHistogram('(prediction)', t.alpha, Math.min(step / 2, valueMax / 2), valueMax, take, spec.drift.scoreBins)
  const target = sketchHistogram('(target)', t.alpha, Math.min(step / 2, valueMax / 2), valueMax, take, spec.drift.scoreBins)
  const error = sketchHistogram('(error)', t.alpha, step / 2, hi - lo, take, spec.drift.scoreBins)
  const features = featureLayouts(spec, builder)
  const taskLayout: RegressionLayout = { kind: 'regression', lo, hi, precisionBits: b, step, mapeCap: t.mapeCap, alpha: t.alpha, counters, sums, prediction, target, error }
  const end = builder.next()
  return {
    version: LAYOUT_VERSION,
    length: end,
    specHash: specHashOf(spec),
    maxEntry: Math.max(maxRecords, LIMB_MAX),
    maxRecords,
    // recordsInWindow is entry 0 of both tasks' counters: generic readers (data checks, DP) find it there
    counters: { offset: counters.offset, names: ['recordsInWindow'] },
    score: { bins: 0, scale: 'linear', logitRange: spec.score.logitRange, offset: end },
    sums: { kind: 'off' },
    calibration: { bins: 0, countsOffset: end },
    features,
    fixedPoint: { limbBits: 16 },
    task: taskLayout
  }
}

export function regressionLayoutOf (layout: Layout): RegressionLayout {
  if (layout.task.kind !== 'regression') throw new FedmonError(`layout is for task ${layout.task.kind}, not regression`, 'ERR_STATS_TASK')
  return layout.task
}

export function regressionCounterIndex (r: RegressionLayout, name: RegressionCounter): number {
  return r.counters.offset + r.counters.names.indexOf(name)
}

function labelDependentEntries (layout: Layout): Uint32Array {
  const r = regressionLayoutOf(layout)
  const picked: number[] = LABEL_DEPENDENT_COUNTERS.map(n => regressionCounterIndex(r, n))
  const range = (offset: number, length: number): void => { for (let i = 0; i < length; i++) picked.push(offset + i) }
  for (const fs of Object.values(r.sums)) range(fs.offset, fs.limbs)
  range(r.target.offset, r.target.length)
  range(r.error.offset, r.error.length)
  const out = Uint32Array.from(new Set(picked))
  out.sort()
  return out
}

/** The k-th smallest (0-based) value of a histogram, at its bucket's representative; null when empty. */
function orderStatistic (counts: ArrayLike<number>, representative: number[], k: number): number | null {
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]
    if (seen > k) return representative[i]
  }
  return null
}

export const ERROR_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95] as const

function performanceOf (r: RegressionLayout, v: Uint32Array): Report['performance'] {
  const c = (name: RegressionCounter): number => v[regressionCounterIndex(r, name)]
  const n = c('pairs')
  const step = r.step
  const exact = (fs: FixedSum): bigint => readFixedSumExact(v, fs)
  const pos = exact(r.sums.errorPositive); const neg = exact(r.sums.errorNegative)
  const bounded = (value: number | null, lowest = -Infinity): { value: number | null, lower: number | null, upper: number | null } =>
    value === null ? { value: null, lower: null, upper: null } : { value, lower: Math.max(lowest, value - step), upper: value + step }
  const mae = n > 0 ? step * Number(pos + neg) / n : null
  const bias = n > 0 ? step * Number(pos - neg) / n : null
  const sse = exact(r.sums.errorSquares)
  const rmse = n > 0 ? step * Math.sqrt(Number(sse) / n) : null
  // R² = 1 − Σd² / Σ(u − ū)², with n·Σ(u − ū)² = n·Σu² − (Σu)² exact in integers (no cancellation)
  const su = exact(r.sums.target); const su2 = exact(r.sums.targetSquares)
  const totalTimesN = BigInt(n) * su2 - su * su
  const r2 = n > 0 && totalTimesN > 0n ? 1 - Number(sse * BigInt(n)) / Number(totalTimesN) : null
  const nonZero = c('pairsNonZeroTarget')
  const mape = nonZero > 0 ? readFixedSum(v, r.sums.ape) / nonZero : null
  const e = v.subarray(r.error.offset, r.error.offset + r.error.valueBuckets)
  const quantiles: Record<string, number | null> = {}
  for (const q of ERROR_QUANTILES) quantiles[String(q)] = n > 0 ? orderStatistic(e, r.error.representative, Math.floor(q * (n - 1))) : null
  return {
    task: 'regression',
    mae: bounded(mae, 0),
    rmse: bounded(rmse, 0),
    r2,
    bias: bounded(bias),
    mape,
    errorQuantiles: {
      quantiles,
      relativeError: r.alpha,
      note: `error = prediction − target; each quantile is the lower order statistic (numpy method 'lower') within relative error ${r.alpha} (DDSketch) of the rounded error, which is within ${step} of the clipped one`
    },
    counts: { pairs: n, nonZeroTargets: nonZero, clippedPredictions: c('predictionClipped'), clippedTargets: c('targetClipped') },
    precision: {
      clip: [r.lo, r.hi],
      precisionBits: r.precisionBits,
      step,
      mapeCap: r.mapeCap,
      note: `predictions and targets clipped into [${r.lo}, ${r.hi}] and rounded to steps of ${step} (2^${r.precisionBits} levels): MAE, RMSE and bias of the clipped values lie within [lower, upper] (± one step); MAPE terms capped at ${r.mapeCap} and rounded to 2^-${r.precisionBits}`
    }
  } as unknown as Report['performance']
}

function reportBody ({ spec, layout, current, reference }: { spec: MonitorSpec, layout: Layout, current: Uint32Array, reference: import('../report-body.js').ReferenceInput | null }): ReportBody {
  const r = regressionLayoutOf(layout)
  if (current.length !== layout.length) throw new FedmonError(`vector length ${current.length} does not match the layout (${layout.length})`, 'ERR_STATS_LENGTH')
  const c = (name: RegressionCounter): number => current[regressionCounterIndex(r, name)]
  const drift = driftSummary(layout, reference, (cur, ref) => {
    const features: Record<string, FeatureDrift> = {}
    for (const f of [r.prediction, r.target]) features[f.name] = numericDriftOf(spec, f, cur, ref)
    return features
  }, current, spec)
  return {
    samples: { count: c('recordsInWindow'), labeled: c('targetValid'), positives: 0, unlabeled: c('targetMissing') + c('targetInvalid') },
    performance: performanceOf(r, current),
    drift,
    dataQuality: {
      records: c('recordsInWindow'),
      prediction: { missing: c('predictionMissing'), invalid: c('predictionInvalid'), clipped: c('predictionClipped') },
      target: { missing: c('targetMissing'), invalid: c('targetInvalid'), clipped: c('targetClipped') },
      ...dataQualityOfFeatures(layout, current)
    }
  }
}

function renderPerformance (report: Report, { num, int, table, paint }: RenderKit): string[] {
  const p = report.performance as Record<string, any>
  const rows: string[][] = [['metric', 'value', 'bound']]
  const bounded = (label: string, m: { value: number | null, lower: number | null, upper: number | null } | undefined): void => {
    rows.push([label, num(m?.value), m?.lower != null ? `[${num(m.lower)}, ${num(m.upper)}]` : ''])
  }
  bounded('MAE (mae)', p.mae)
  bounded('RMSE (rmse)', p.rmse)
  rows.push(['R² (r2)', num(p.r2), ''])
  bounded('bias, mean error (bias)', p.bias)
  rows.push(['MAPE (mape)', num(p.mape), p.counts !== undefined ? `${int(p.counts.nonZeroTargets)} non-zero targets` : ''])
  for (const [q, x] of Object.entries((p.errorQuantiles?.quantiles ?? {}) as Record<string, number | null>)) rows.push([`error p${Math.round(Number(q) * 100)}`, num(x), ''])
  const out = table(rows).map(l => '  ' + l)
  if (p.counts !== undefined) out.push(`  pairs ${int(p.counts.pairs)}; clipped: ${int(p.counts.clippedPredictions)} predictions, ${int(p.counts.clippedTargets)} targets`)
  if (p.precision?.note !== undefined) out.push(paint(`  sums: ${String(p.precision.note)}`, 'dim'))
  if (p.errorQuantiles?.note !== undefined) out.push(paint(`  quantiles: ${String(p.errorQuantiles.note)}`, 'dim'))
  return out
}

function fixedSums (t: import('./task.js').TaskLayout): FixedSum[] {
  return t.kind === 'regression' ? Object.values(t.sums) : []
}

export const regressionTask: Task = {
  name: 'regression',
  buildLayout: spec => buildRegressionLayout(spec),
  labelDependentEntries: layout => labelDependentEntries(layout),
  reportBody: opts => reportBody(opts),
  renderPerformance: (report, kit) => renderPerformance(report, kit),
  fixedSums: t => fixedSums(t)
}
