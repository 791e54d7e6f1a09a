/**
 * The global report body — samples, performance, drift, data quality — from a summed vector. The coordinator
 * calls it on the secure-aggregation sum, `fedmon evaluate` on one local vector: the same code either way.
 */
import type { Report, Window, FeatureDrift, Bounded } from '../report.js'
import type { MonitorSpec } from './spec.js'
import { type Layout, type CounterName, type FeatureLayout, type NumericFeatureLayout, type CategoricalFeatureLayout, type MomentsLayout, type ScoreSumsLayout, counterIndex, COUNTERS } from './layout.js'
import { readFixedSum, LIMB_BITS } from './fixed-point.js'
import { rocAucBounds, averagePrecision, expectedCalibrationError, thresholdMetrics, type CalibrationBin } from './performance.js'
import { estimatePerformance } from './estimated.js'
import { psi, jensenShannon, hellinger, ksBounded, wasserstein1, quantileGroups, regroup, chiSquareHomogeneity, PSI_EMPTY_BIN_PROPORTION } from './drift.js'
import { FedmonError } from '../errors.js'
import { reportHistograms } from './report-histograms.js'
import { taskOfLayout, type TaskLayout } from './tasks/index.js'
import { segmentReports, segmentsOf } from './segments.js'

/**
 * The reference window's summed vector. `specHash`: the spec hash it was summed under (stored with it); when it
 * is not this layout's (another spec, or an older layout version such as v1, whose vector counted undated
 * records), or the length differs, drift is not computed and the report says why — never a mixed comparison.
 */
export interface ReferenceInput { vector: Uint32Array, id: string | null, window: Window | null, specHash?: string }

export type ReportBody = Pick<Report, 'samples' | 'performance' | 'drift' | 'dataQuality' | 'histograms' | 'segments'>

/** What the report says of the score and loss sums: their precision, or that they are off and what that costs. */
export type ScoreSumsInfo =
  | { state: 'off', unavailable: string[], note: string }
  | { state: 'fixed', precisionBits: number, step: number, note: string }

/** What the report says of a numeric feature's moment sums (its mean/std). */
export type MomentsInfo =
  | { state: 'off', note: string }
  | { state: 'exact', precisionBits: number, step: number, clamp: number, note: string }
  | { state: 'clipped', precisionBits: number, step: number, clip: [number, number], note: string }

const SCORE_SUMS_UNAVAILABLE = ['log_loss', 'brier', 'ece', 'meanScore', 'reliability.meanScore', 'drift.score.meanShift', 'drift.score.stdRatio']

export function scoreSumsInfo (sums: ScoreSumsLayout): ScoreSumsInfo {
  if (sums.kind === 'off') {
    return { state: 'off', unavailable: SCORE_SUMS_UNAVAILABLE, note: 'score and loss sums are off in the spec (score.sums: false): log loss, Brier, ECE, mean score and the score\'s mean/std shift are not available' }
  }
  const b = sums.precisionBits
  return { state: 'fixed', precisionBits: b, step: 2 ** -b, note: `log loss, Brier and score sums: per-record terms rounded to multiples of 2^-${b}${sums.legacy ? ' (legacy precision: the spec sets no score.sums)' : ''}` }
}

export function momentsInfo (m: MomentsLayout): MomentsInfo {
  if (m.kind === 'off') return { state: 'off', note: 'moments are off in the spec: mean and std are not available' }
  if (m.kind === 'exact') {
    return { state: 'exact', precisionBits: m.scaleBits, step: 2 ** -m.scaleBits, clamp: m.clamp, note: `exact sums: terms rounded to multiples of 2^-${m.scaleBits}, values clamped to ±${m.clamp}` }
  }
  return {
    state: 'clipped',
    precisionBits: m.precisionBits,
    step: m.step,
    clip: [m.lo, m.hi],
    note: `values clipped into [${m.lo}, ${m.hi}] and summed in steps of ${m.step} (2^${m.precisionBits} levels): mean and std of the clipped values, each within ±${m.step / 2}`
  }
}

/** One line on the fixed-point sums of this layout: the precision (and clip) actually used, or that they are off. */
export function fixedPointNote (layout: Layout): string {
  const parts = [scoreSumsInfo(layout.sums).note]
  const byState = new Map<string, string[]>()
  for (const f of layout.features) {
    if (f.type !== 'numeric') continue
    const m = f.moments
    const key = m.kind === 'off' ? 'moments off' : m.kind === 'exact' ? `exact moments at 2^-${m.scaleBits} (values clamped to ±${m.clamp})` : `moments clipped into [${m.lo}, ${m.hi}] at 2^${m.precisionBits} levels`
    byState.set(key, [...(byState.get(key) ?? []), f.name])
  }
  for (const [key, names] of byState) parts.push(`${names.join(', ')}: ${key}`)
  return `${parts.join('; ')}; ${LIMB_BITS}-bit limbs per u32 entry`
}

/** The report body of any task's summed vector: the task's module computes it (shared/stats/tasks/). */
export function computeReportBody (opts: { spec: MonitorSpec, layout: TaskLayout, current: Uint32Array, reference: ReferenceInput | null, cellSites?: 'count' | 'ignore', countSlack?: number }): ReportBody {
  const task = taskOfLayout(opts.layout)
  const segments = segmentsOf(opts.layout)
  if (segments === null) return task.reportBody(opts)
  // segmented (shared/stats/segments.ts): the task's body over the overall part of the vector, then each cell's
  const overall = { ...opts.layout, length: segments.offset }
  const current = opts.current.subarray(0, segments.offset)
  if (opts.current.length !== opts.layout.length) throw new FedmonError(`vector length ${opts.current.length} does not match the layout (${opts.layout.length})`, 'ERR_STATS_LENGTH')
  const reference = opts.reference === null
    ? null
    : opts.reference.vector.length === opts.layout.length ? { ...opts.reference, vector: opts.reference.vector.subarray(0, segments.offset) } : opts.reference
  const body = task.reportBody({ spec: opts.spec, layout: overall, current, reference })
  body.segments = segmentReports({
    spec: opts.spec, layout: opts.layout, current: opts.current, reference: opts.reference, sites: opts.cellSites, countSlack: opts.countSlack,
    body: cell => taskOfLayout(cell.layout).reportBody(cell),
    recordsInWindow: (cellLayout, v) => taskOfLayout(cellLayout).recordsInWindow(cellLayout, v)
  })
  return body
}

/** The binary task's report body (shared/stats/tasks/binary.ts). */
export function binaryReportBody (opts: { spec: MonitorSpec, layout: Layout, current: Uint32Array, reference: ReferenceInput | null }): ReportBody {
  const { spec, layout, current, reference } = opts
  if (current.length !== layout.length) throw new FedmonError(`vector length ${current.length} does not match the layout (${layout.length})`, 'ERR_STATS_LENGTH')
  const mismatch = reference !== null ? referenceMismatch(layout, reference) : null
  const count = (name: CounterName, v: Uint32Array = current): number => v[counterIndex(layout, name)]
  const labeled = count('labelNegative') + count('labelPositive')
  const performance = performanceOf(spec, layout, current)
  // Estimated before labels (CBPE), calibrated on the reference when it is comparable.
  performance.estimated = estimatePerformance(layout, spec.threshold, current, reference !== null && mismatch === null ? reference.vector : null)
  return {
    samples: { count: count('recordsInWindow'), labeled, positives: count('labelPositive'), unlabeled: count('labelUnlabeled') + count('labelInvalid') },
    performance,
    drift: reference === null
      ? { reference: null, features: {}, score: null, note: 'no reference window: drift not computed' }
      : mismatch !== null
        ? { reference: { id: reference.id, window: reference.window }, features: {}, score: null, note: mismatch.note, referenceMismatch: mismatch.detail }
        : driftOf(spec, layout, current, reference),
    dataQuality: dataQualityOf(layout, current),
    histograms: reportHistograms(layout, current, reference !== null && mismatch === null ? reference.vector : null)
  }
}

/** Why a reference vector cannot be compared with this layout's vectors, or null when it can. */
export function referenceMismatch (layout: Pick<Layout, 'specHash' | 'length' | 'version'>, reference: ReferenceInput): { note: string, detail: { specHash: string | null, vectorLength: number, expectedSpecHash: string, expectedVectorLength: number } } | null {
  const hashDiffers = reference.specHash !== undefined && reference.specHash !== layout.specHash
  const lengthDiffers = reference.vector.length !== layout.length
  if (!hashDiffers && !lengthDiffers) return null
  const what = hashDiffers
    ? `was summed under spec hash ${reference.specHash?.slice(0, 12) ?? '?'}…, this round under ${layout.specHash.slice(0, 12)}… (another spec or vector layout; this one is ${layout.version})`
    : `has ${reference.vector.length} entries, this layout ${layout.length}`
  return {
    note: `reference ${reference.id ?? '(local)'} ${what}: drift not computed; run a new reference round with this spec`,
    detail: { specHash: reference.specHash ?? null, vectorLength: reference.vector.length, expectedSpecHash: layout.specHash, expectedVectorLength: layout.length }
  }
}

function scoreHistogram (layout: Layout, v: Uint32Array): { neg: Uint32Array, pos: Uint32Array, unl: Uint32Array } {
  const B = layout.score.bins; const o = layout.score.offset
  return { neg: v.subarray(o, o + B), pos: v.subarray(o + B, o + 2 * B), unl: v.subarray(o + 2 * B, o + 3 * B) }
}

function performanceOf (spec: MonitorSpec, layout: Layout, v: Uint32Array): Report['performance'] {
  const { neg, pos } = scoreHistogram(layout, v)
  let P = 0; let N = 0
  for (let b = 0; b < neg.length; b++) { P += pos[b]; N += neg[b] }
  const labeled = P + N
  const auc: Bounded = rocAucBounds(neg, pos)
  const cal = layout.calibration
  const sums = layout.sums
  const reliability: CalibrationBin[] = []
  for (let b = 0; b < cal.bins; b++) {
    const n = v[cal.countsOffset + 2 * b]; const p = v[cal.countsOffset + 2 * b + 1]
    const meanScore = sums.kind === 'fixed' && n > 0 ? readFixedSum(v, sums.calibration[b]) / n : null
    reliability.push({ lower: b / cal.bins, upper: (b + 1) / cal.bins, count: n, positives: p, meanScore, fractionPositive: n > 0 ? p / n : null })
  }
  // without sums, no figure that needs them is computed: null (the report says why in `sums`), never 0
  const sum = (fs: 'logLoss' | 'brier' | 'scoreSum'): number | null => (sums.kind === 'fixed' ? readFixedSum(v, sums[fs]) : null)
  const per = (x: number | null, n: number): number | null => (x !== null && n > 0 ? x / n : null)
  const c = (name: CounterName): number => v[counterIndex(layout, name)]
  const confusion = { tp: c('tp'), fp: c('fp'), fn: c('fn'), tn: c('tn') }
  const atThreshold = thresholdMetrics(confusion)
  const scored = c('scoreValid')
  return {
    auc,
    pr_auc: averagePrecision(neg, pos),
    log_loss: per(sum('logLoss'), labeled),
    brier: per(sum('brier'), labeled),
    ece: sums.kind === 'fixed' ? expectedCalibrationError(reliability) : null,
    threshold: spec.threshold,
    precision: atThreshold.precision,
    recall: atThreshold.recall,
    f1: atThreshold.f1,
    accuracy: atThreshold.accuracy,
    specificity: atThreshold.specificity,
    confusion,
    prevalence: labeled > 0 ? P / labeled : null,
    meanScore: per(sum('scoreSum'), scored),
    predictedPositiveRate: scored > 0 ? (confusion.tp + confusion.fp + c('predictedPositiveUnlabeled')) / scored : null,
    counts: { total: scored, labeled, positives: P },
    reliability,
    aucBoundWidth: auc.lower !== null && auc.upper !== null ? auc.upper - auc.lower : null,
    sums: scoreSumsInfo(sums),
    fixedPoint: fixedPointNote(layout)
  }
}

interface Moments { count: number, mean: number | null, std: number | null }

function moments (count: number, sum: number, sumSquares: number): Moments {
  if (count === 0) return { count, mean: null, std: null }
  const mean = sum / count
  return { count, mean, std: Math.sqrt(Math.max(0, sumSquares / count - mean * mean)) }
}

const NO_MOMENTS: Moments = { count: 0, mean: null, std: null }

/**
 * A numeric feature's mean and std from its moment sums, or null when the spec turns them off. `clipped`: the
 * levels u are exact integers, so mean = lo + step·Σu/n and std = step·std(u) hold for the rounded clipped
 * values, which differ from the clipped values by at most step/2 each (so do their mean and std).
 */
function featureMoments (f: NumericFeatureLayout, v: Uint32Array, count: number): Moments | null {
  const m = f.moments
  if (m.kind === 'off') return null
  if (m.kind === 'exact') return moments(count, readFixedSum(v, m.sumPositive) - readFixedSum(v, m.sumNegative), readFixedSum(v, m.sumSquares))
  const u = moments(count, readFixedSum(v, m.sum), readFixedSum(v, m.sumSquares))
  return { count, mean: u.mean === null ? null : m.lo + m.step * u.mean, std: u.std === null ? null : m.step * u.std }
}

/**
 * Mean and std of a histogram with each bucket's mass at its representative value: the scale that normalises
 * the Wasserstein distance when the spec sums no moments (stated in the report as `wassersteinScale`).
 */
function histogramMoments (counts: ArrayLike<number>, at: ArrayLike<number>): Moments {
  let n = 0; let s = 0; let s2 = 0
  for (let i = 0; i < counts.length; i++) { n += counts[i]; s += counts[i] * at[i]; s2 += counts[i] * at[i] * at[i] }
  return moments(n, s, s2)
}

/** Mean shift in reference standard deviations and the std ratio, with both sides' moments. */
function shiftOf (mr: Moments, mc: Moments): Pick<FeatureDrift, 'meanShift' | 'stdRatio'> & { mean: { reference: number | null, current: number | null }, std: { reference: number | null, current: number | null } } {
  const refStd = mr.std !== null && mr.std > 0 ? mr.std : null
  return {
    meanShift: mr.mean !== null && mc.mean !== null && refStd !== null ? (mc.mean - mr.mean) / refStd : null,
    stdRatio: mc.std !== null && refStd !== null ? mc.std / refStd : null,
    mean: { reference: mr.mean, current: mc.mean },
    std: { reference: mr.std, current: mc.std }
  }
}

function statusOf (spec: MonitorSpec, d: { psi: number | null, js: number | null, wassersteinNorm: number | null, type: FeatureDrift['type'] }): FeatureDrift['status'] {
  if (d.psi === null && d.js === null) return 'unknown'
  const t = spec.drift
  const distanceDrift = d.type === 'categorical'
    ? d.js !== null && d.js >= t.js.drift
    : d.wassersteinNorm !== null && d.wassersteinNorm >= t.wasserstein.drift
  if (distanceDrift || (d.psi !== null && d.psi >= t.psi.alert)) return 'drift'
  if (d.psi !== null && d.psi >= t.psi.warn) return 'warn'
  return 'ok'
}

const rate = (part: number, total: number): number | null => (total > 0 ? part / total : null)

export function numericDrift (spec: MonitorSpec, f: NumericFeatureLayout, cur: Uint32Array, ref: Uint32Array): FeatureDrift {
  const slice = (v: Uint32Array): Uint32Array => v.subarray(f.offset, f.offset + f.valueBuckets)
  const rv = slice(ref); const cv = slice(cur)
  const missing = (v: Uint32Array): number => v[f.offset + f.missingIndex] + v[f.offset + f.invalidIndex]
  const total = (v: Uint32Array): number => slice(v).reduce((a, b) => a + b, 0) + missing(v)
  // PSI / JS / Hellinger: reference-quantile groups (or the explicit edge bins), plus one missing/invalid bin
  const ends = f.binning === 'edges' ? Array.from({ length: f.valueBuckets }, (_, i) => i) : quantileGroups(rv, f.psiBins)
  const rb = [...regroup(rv, ends), missing(ref)]; const cb = [...regroup(cv, ends), missing(cur)]
  const mom = (v: Uint32Array): Moments | null => featureMoments(f, v, slice(v).reduce((a, b) => a + b, 0))
  const mr = mom(ref); const mc = mom(cur)
  const w = wasserstein1(rv, cv, f.representative)
  const scale = mr ?? histogramMoments(rv, f.representative)
  const wNorm = w !== null && scale.std !== null ? (scale.std > 0 ? w / scale.std : (w === 0 ? 0 : Infinity)) : null
  const d = { psi: psi(rb, cb), js: jensenShannon(rb, cb), wassersteinNorm: wNorm === Infinity ? null : wNorm, type: 'numeric' as const }
  return {
    type: 'numeric',
    psi: d.psi,
    js: d.js,
    ks: ksBounded(rv, cv),
    wasserstein: d.wassersteinNorm,
    wassersteinRaw: w,
    hellinger: hellinger(rb, cb),
    ...shiftOf(mr ?? NO_MOMENTS, mc ?? NO_MOMENTS),
    moments: momentsInfo(f.moments),
    ...(mr === null ? { wassersteinScale: 'reference std from the histogram (moments off)' } : {}),
    missingRate: { reference: rate(missing(ref), total(ref)), current: rate(missing(cur), total(cur)) },
    bins: rb.length,
    status: statusOf(spec, d)
  }
}

export function categoricalDrift (spec: MonitorSpec, f: CategoricalFeatureLayout, cur: Uint32Array, ref: Uint32Array): FeatureDrift {
  const rb = Array.from(ref.subarray(f.offset, f.offset + f.length)); const cb = Array.from(cur.subarray(f.offset, f.offset + f.length))
  const total = (b: number[]): number => b.reduce((a, x) => a + x, 0)
  const d = { psi: psi(rb, cb), js: jensenShannon(rb, cb), wassersteinNorm: null, type: 'categorical' as const }
  return {
    type: 'categorical',
    psi: d.psi,
    js: d.js,
    hellinger: hellinger(rb, cb),
    chi2: chiSquareHomogeneity(rb, cb),
    missingRate: { reference: rate(rb[f.missingIndex], total(rb)), current: rate(cb[f.missingIndex], total(cb)) },
    unseenRate: { reference: rate(rb[f.otherIndex], total(rb)), current: rate(cb[f.otherIndex], total(cb)) },
    bins: rb.length,
    status: statusOf(spec, d)
  }
}

/** The value each score bin stands for (its midpoint on the binning scale). */
export function scoreBinCenters (layout: Layout): number[] {
  const { bins, scale, logitRange } = layout.score
  return Array.from({ length: bins }, (_, b) => {
    if (scale === 'linear') return (b + 0.5) / bins
    const z = -logitRange + ((b + 0.5) / bins) * 2 * logitRange
    return 1 / (1 + Math.exp(-z))
  })
}

function scoreDrift (spec: MonitorSpec, layout: Layout, cur: Uint32Array, ref: Uint32Array): FeatureDrift {
  const dist = (v: Uint32Array): number[] => {
    const { neg, pos, unl } = scoreHistogram(layout, v)
    return Array.from(neg, (n, b) => n + pos[b] + unl[b])
  }
  const rv = dist(ref); const cv = dist(cur)
  const ends = quantileGroups(rv, spec.drift.scoreBins)
  const rb = regroup(rv, ends); const cb = regroup(cv, ends)
  const c = (name: CounterName, v: Uint32Array): number => v[counterIndex(layout, name)]
  const sums = layout.sums
  const mom = (v: Uint32Array): Moments | null => (sums.kind === 'fixed' ? moments(c('scoreValid', v), readFixedSum(v, sums.scoreSum), readFixedSum(v, sums.scoreSumSquares)) : null)
  const mr = mom(ref); const mc = mom(cur)
  const centers = scoreBinCenters(layout)
  const w = wasserstein1(rv, cv, centers)
  const scale = mr ?? histogramMoments(rv, centers)
  const wNorm = w !== null && scale.std !== null && scale.std > 0 ? w / scale.std : null
  const bad = (v: Uint32Array): number => c('recordsInWindow', v) - c('scoreValid', v)
  const d = { psi: psi(rb, cb), js: jensenShannon(rb, cb), wassersteinNorm: wNorm, type: 'score' as const }
  return {
    type: 'score',
    psi: d.psi,
    js: d.js,
    ks: ksBounded(rv, cv),
    wasserstein: wNorm,
    wassersteinRaw: w,
    hellinger: hellinger(rb, cb),
    ...shiftOf(mr ?? NO_MOMENTS, mc ?? NO_MOMENTS),
    ...(mr === null ? { moments: { state: 'off', note: 'score sums are off in the spec: mean and std are not available' }, wassersteinScale: 'reference std from the histogram (score sums off)' } : {}),
    missingRate: { reference: rate(bad(ref), c('recordsInWindow', ref)), current: rate(bad(cur), c('recordsInWindow', cur)) },
    bins: rb.length,
    status: statusOf(spec, d)
  }
}

function driftOf (spec: MonitorSpec, layout: Layout, cur: Uint32Array, reference: ReferenceInput): Report['drift'] {
  const ref = reference.vector
  const features: Record<string, FeatureDrift> = {}
  for (const f of layout.features) {
    features[f.name] = f.type === 'numeric' ? numericDrift(spec, f, cur, ref) : categoricalDrift(spec, f, cur, ref)
  }
  return {
    ...driftFrame(spec, reference, ref[counterIndex(layout, 'recordsInWindow')]),
    features,
    score: scoreDrift(spec, layout, cur, ref)
  } as Report['drift']
}

/** What every task's drift section carries besides its figures: the reference, the thresholds and rules, a note on a small reference. */
export function driftFrame (spec: MonitorSpec, reference: ReferenceInput, refRecords: number): Pick<Report['drift'], 'reference' | 'thresholds' | 'psiRule' | 'note'> {
  return {
    reference: { id: reference.id, window: reference.window },
    thresholds: { psi: spec.drift.psi, js: spec.drift.js.drift, wasserstein: spec.drift.wasserstein.drift },
    psiRule: `empty bins get proportion ${PSI_EMPTY_BIN_PROPORTION} before the logarithm`,
    ...(refRecords < 1000 ? { note: `reference window has only ${refRecords} records (< 1000): distances are noisy` } : {})
  }
}

/** Every task's per-feature data-quality counts: missing, invalid and out-of-range (numeric), missing and unseen (categorical). */
export function featureQuality (layoutFeatures: readonly FeatureLayout[], v: Uint32Array): Record<string, Record<string, number>> {
  const features: Record<string, Record<string, number>> = {}
  for (const f of layoutFeatures) {
    if (f.type === 'numeric') {
      const fv = v.subarray(f.offset, f.offset + f.length)
      const entry: Record<string, number> = { missing: fv[f.missingIndex], invalid: fv[f.invalidIndex] }
      if (f.binning === 'sketch') entry.outOfRange = fv[0] + fv[f.valueBuckets - 1] // beyond ±range max
      else { entry.belowFirstEdge = fv[0]; entry.aboveLastEdge = fv[f.valueBuckets - 1] }
      features[f.name] = entry
    } else {
      features[f.name] = { missing: v[f.offset + f.missingIndex], unseenCategory: v[f.offset + f.otherIndex] }
    }
  }
  return features
}

function dataQualityOf (layout: Layout, v: Uint32Array): Report['dataQuality'] {
  const counters: Record<string, number> = {}
  for (const name of COUNTERS) counters[name] = v[counterIndex(layout, name)]
  const features = featureQuality(layout.features, v)
  const moments: Record<string, MomentsInfo> = {}
  for (const f of layout.features) if (f.type === 'numeric') moments[f.name] = momentsInfo(f.moments)
  // No count of undated records here: it is not in the vector (layout v2, see the window rule in layout.ts);
  // `fedmon evaluate` adds the site's own figure from its scan.
  return {
    records: counters.recordsInWindow,
    score: { missing: counters.scoreMissing, notNumeric: counters.scoreNotNumeric, notFinite: counters.scoreNotFinite, outOfRange: counters.scoreOutOfRange },
    label: { invalid: counters.labelInvalid, unlabeled: counters.labelUnlabeled },
    features,
    // the precision and clip of every sum this vector carries (issue 10.3): what a reader may trust, and why
    // a figure is missing
    sums: { score: scoreSumsInfo(layout.sums), moments },
    fixedPoint: fixedPointNote(layout)
  }
}
