/**
 * The multiclass task (issue 12 §2): a record has one probability per class of `classes` (an object column
 * `scores`, or one column per class) and its true class name as `label` (possibly late). What is summed:
 * - counters: validity of the probabilities (all present, numeric, finite, in [0, 1]), those whose sum is off 1
 *   by more than SUM_TOLERANCE (counted and reported, still used as given), label classes (a class, unlabeled, not
 *   a class) and the records every metric is over (labelled, with valid probabilities);
 * - per class c, the binary task's score × label histogram one-vs-rest: p_c binned by score.bins/scale, in three
 *   rows [rest, class c, unlabeled] — rocAucBounds (performance.ts) gives each class's AUC with its certified
 *   bound, the macro and prevalence-weighted AUC average them (their bounds too), and the rows' sum is p_c's
 *   distribution for drift;
 * - the predicted class (arg-max, ties to the first class in `classes`) of every scored record, laid out as a
 *   categorical feature's segment (classes, an always-empty `other`, then `missing`: records without valid
 *   probabilities), so its drift is categoricalDrift's;
 * - the confusion matrix (true × predicted) over the labelled scored records: accuracy, per-class precision,
 *   recall, F1 and their macro and weighted averages, exactly;
 * - top-label calibration: per confidence bin (max p, calibration.bins), labelled count and correct count, and
 *   the fixed-point Σ confidence; with the fixed-point Σ −ln clip(p_true) (log loss) and Σ_c (p_c − y_c)² (Brier),
 *   each term rounded to 2^-b (score.sums, as binary's; 24 bits without it, none with `false`).
 * Every count is at most maxRecordsPerAgent and every sum is sized in limbs for that many records at layout
 * time (entryAllocator.fixed), so n agents' sums cannot wrap (maxAgentsFor).
 */
import type { MonitorSpec } from '../spec.js'
import type { SumGroup, TaskSensitivity } from './task.js'
import type { Report, Bounded, FeatureDrift } from '../../report.js'
import {
  LAYOUT_VERSION, LOG_LOSS_EPS, specHashOf, entryAllocator, featureLayoutsOf, momentSumsOf, featureSensitivity,
  type FeatureLayout, type CategoricalFeatureLayout, type Layout
} from '../layout.js'
import { type FixedSum, readFixedSum, LIMB_MAX, LIMB_BITS, LOSS_SCALE_BITS } from '../fixed-point.js'
import { rocAucBounds, signedRocAucBounds, expectedCalibrationError, type CalibrationBin } from '../performance.js'
import { type ReportBody, type ReferenceInput, referenceMismatch, numericDrift, categoricalDrift, momentsInfo, scoreBinCenters, driftFrame, featureQuality } from '../report-body.js'
import { psi, jensenShannon, hellinger, ksBounded, wasserstein1, quantileGroups, regroup } from '../drift.js'
import { FedmonError } from '../../errors.js'

/** Per-record counters of the multiclass layout, in vector order. */
export const MULTICLASS_COUNTERS = [
  'recordsInWindow', // every record whose ts is in [from, to)
  'scoresValid', 'scoresMissing', 'scoresNotNumeric', 'scoresNotFinite', 'scoresOutOfRange', // every record: the worst of its K values
  'scoresNotSummingToOne', // of the valid ones, |Σ_c p_c − 1| > SUM_TOLERANCE (used as given, counted)
  'labelClass', 'labelUnlabeled', 'labelNotAClass', // every record: its label is a class, empty/absent, or something else
  'labeledScored', // labelled with valid probabilities: what every realised metric is over
  'sitesWithRecords' // the site indicator (shared/stats/contributing.ts)
] as const
export type MulticlassCounter = typeof MULTICLASS_COUNTERS[number]

/** Counters whose value changes when a label arrives. */
const LABEL_DEPENDENT_COUNTERS: readonly MulticlassCounter[] = ['labelClass', 'labelUnlabeled', 'labelNotAClass', 'labeledScored']

/** How far Σ_c p_c may be from 1 before the record counts in scoresNotSummingToOne. */
export const SUM_TOLERANCE = 0.01

/** The largest log-loss term: probabilities are clipped to [eps, 1 − eps], eps = 2^-52 (scikit-learn's). */
const MAX_LOG_LOSS_TERM = -Math.log(LOG_LOSS_EPS)

export type MulticlassSumsLayout =
  | { kind: 'off' }
  | { kind: 'fixed', precisionBits: number, legacy: boolean, logLoss: FixedSum, brier: FixedSum, confidence: FixedSum[] }

export interface MulticlassLayout {
  task: 'multiclass'
  version: string
  length: number
  specHash: string
  maxEntry: number
  maxRecords: number
  classes: string[]
  counters: { offset: number, names: readonly MulticlassCounter[] }
  /** The per-class probability histograms: class c's rows [rest, class, unlabeled] at offset + 3·bins·c. */
  score: Layout['score']
  /** The predicted class of every scored record, as a categorical segment (`missing`: records without valid probabilities). */
  predicted: CategoricalFeatureLayout
  /** K × K counts, row = true class, column = predicted (row-major). */
  confusion: { offset: number }
  /** Per confidence bin: labelled count, correct count (countsOffset + 2·b, + 1). */
  calibration: { bins: number, countsOffset: number }
  sums: MulticlassSumsLayout
  features: FeatureLayout[]
  fixedPoint: { limbBits: number }
}

export const PREDICTED_NAME = '(predicted class)'

export function buildMulticlassLayout (spec: MonitorSpec): MulticlassLayout {
  if (spec.classes === undefined) throw new FedmonError('a multiclass spec needs classes (specProblem checks it)', 'ERR_LAYOUT_TASK')
  const classes = [...spec.classes]
  const K = classes.length
  const maxRecords = spec.limits.maxRecordsPerAgent
  // privacy.dp: every sum is one raw entry whose per-record change its maxTerm bounds (shared/dp/sensitivity.ts)
  const alloc = entryAllocator(maxRecords, { raw: spec.privacy?.dp !== undefined })
  const { take, fixed } = alloc
  const counters = { offset: take(MULTICLASS_COUNTERS.length), names: MULTICLASS_COUNTERS }
  const B = spec.score.bins
  const score = { bins: B, scale: spec.score.scale, logitRange: spec.score.logitRange, offset: take(3 * B * K) }
  const predicted: CategoricalFeatureLayout = { name: PREDICTED_NAME, type: 'categorical', offset: take(K + 2), categories: classes, otherIndex: K, missingIndex: K + 1, length: K + 2 }
  const confusion = { offset: take(K * K) }
  const calBins = spec.calibration.bins
  const calibration = { bins: calBins, countsOffset: take(2 * calBins) }
  const sumsSpec = spec.score.sums
  const bits = sumsSpec === undefined ? LOSS_SCALE_BITS : sumsSpec === false ? null : sumsSpec.precisionBits
  const sums: MulticlassSumsLayout = bits === null
    ? { kind: 'off' }
    : { kind: 'fixed', precisionBits: bits, legacy: sumsSpec === undefined, logLoss: fixed(MAX_LOG_LOSS_TERM, bits), brier: fixed(2, bits), confidence: Array.from({ length: calBins }, () => fixed(1, bits)) }
  const features = featureLayoutsOf(spec.features, alloc)
  return {
    task: 'multiclass',
    version: LAYOUT_VERSION,
    length: alloc.length,
    specHash: specHashOf(spec),
    maxEntry: Math.max(maxRecords, LIMB_MAX, alloc.maxRawEntry),
    maxRecords,
    classes,
    counters,
    score,
    predicted,
    confusion,
    calibration,
    sums,
    features,
    fixedPoint: { limbBits: LIMB_BITS }
  }
}

export function multiclassCounterIndex (layout: MulticlassLayout, name: MulticlassCounter): number {
  return layout.counters.offset + layout.counters.names.indexOf(name)
}

/** Offset of class c's histogram row: 0 rest (labelled, another class), 1 class c, 2 unlabeled or not a class. */
export function classRowOffset (layout: MulticlassLayout, c: number, row: 0 | 1 | 2): number {
  return layout.score.offset + (3 * c + row) * layout.score.bins
}

export function multiclassFixedSums (layout: MulticlassLayout): FixedSum[] {
  const s = layout.sums
  const own = s.kind === 'fixed' ? [s.logLoss, s.brier, ...s.confidence] : []
  return [...own, ...layout.features.flatMap(f => (f.type === 'numeric' ? momentSumsOf(f.moments) : []))]
}

/**
 * The entries a label refresh sums again: the label counters, every class's histogram (a label moves a record
 * between its rows), the confusion matrix, the calibration counts and the loss and confidence sums (labelled
 * records only). Label-independent: recordsInWindow, the probabilities' validity, the predicted-class segment,
 * the site indicator and the features.
 */
export function multiclassLabelDependentEntries (layout: MulticlassLayout): Uint32Array {
  const picked: number[] = LABEL_DEPENDENT_COUNTERS.map(name => multiclassCounterIndex(layout, name))
  const range = (offset: number, length: number): void => { for (let i = 0; i < length; i++) picked.push(offset + i) }
  const K = layout.classes.length
  range(layout.score.offset, 3 * layout.score.bins * K)
  range(layout.confusion.offset, K * K)
  range(layout.calibration.countsOffset, 2 * layout.calibration.bins)
  const s = layout.sums
  if (s.kind === 'fixed') for (const fs of [s.logLoss, s.brier, ...s.confidence]) range(fs.offset, fs.limbs)
  const out = Uint32Array.from(new Set(picked))
  out.sort()
  return out
}

// ---------------------------------------------------------------------------------------------------------
// Metrics from the summed vector

const NONE: Bounded = { value: null, lower: null, upper: null }

export interface ClassFigures { auc: Bounded, precision: number | null, recall: number | null, f1: number | null, support: number }

/** The confusion matrix of a vector (rows true, columns predicted). */
export function confusionMatrix (layout: MulticlassLayout, v: Uint32Array): number[][] {
  const K = layout.classes.length
  return Array.from({ length: K }, (_, t) => Array.from(v.subarray(layout.confusion.offset + t * K, layout.confusion.offset + (t + 1) * K)))
}

/**
 * Averages of per-class figures over the classes present (true or predicted, as scikit-learn's labels default),
 * a class's undefined precision or recall counting 0 (scikit-learn's zero_division default).
 */
function averages (perClass: ClassFigures[], present: boolean[], support: number[]): { macro: (k: 'precision' | 'recall' | 'f1') => number | null, weighted: (k: 'f1') => number | null } {
  const idx = perClass.map((_, c) => c).filter(c => present[c])
  const total = support.reduce((a, b) => a + b, 0)
  return {
    macro: k => (idx.length === 0 ? null : idx.reduce((a, c) => a + (perClass[c][k] ?? 0), 0) / idx.length),
    weighted: k => (total === 0 ? null : idx.reduce((a, c) => a + (perClass[c][k] ?? 0) * support[c], 0) / total)
  }
}

/** The mean of bounded figures with weights, over those defined: value, lower and upper each averaged. */
function meanBounded (items: Array<{ b: Bounded, w: number }>): Bounded {
  const defined = items.filter(i => i.b.value !== null && i.w > 0)
  const W = defined.reduce((a, i) => a + i.w, 0)
  if (defined.length === 0 || W === 0) return NONE
  const avg = (k: 'value' | 'lower' | 'upper'): number => defined.reduce((a, i) => a + (i.b[k] ?? 0) * i.w, 0) / W
  return { value: avg('value'), lower: avg('lower'), upper: avg('upper') }
}

export function multiclassReportBody (opts: { spec: MonitorSpec, layout: MulticlassLayout, current: Uint32Array, reference: ReferenceInput | null }): ReportBody {
  const { spec, layout, current, reference } = opts
  if (current.length !== layout.length) throw new FedmonError(`vector length ${current.length} does not match the layout (${layout.length})`, 'ERR_STATS_LENGTH')
  const c = (name: MulticlassCounter): number => current[multiclassCounterIndex(layout, name)]
  const mismatch = reference !== null ? referenceMismatch(layout, reference) : null
  return {
    samples: { count: c('recordsInWindow'), labeled: c('labelClass'), positives: null, unlabeled: c('labelUnlabeled') + c('labelNotAClass') },
    performance: multiclassPerformance(layout, current),
    drift: reference === null
      ? { reference: null, features: {}, score: null, note: 'no reference window: drift not computed' }
      : mismatch !== null
        ? { reference: { id: reference.id, window: reference.window }, features: {}, score: null, note: mismatch.note, referenceMismatch: mismatch.detail }
        : multiclassDrift(spec, layout, current, reference),
    dataQuality: multiclassDataQuality(layout, current)
  }
}

function sumsInfo (sums: MulticlassSumsLayout): Record<string, unknown> {
  if (sums.kind === 'off') return { state: 'off', unavailable: ['log_loss', 'brier', 'ece', 'reliability.meanConfidence'], note: 'loss sums are off in the spec (score.sums: false): log loss, Brier and ECE are not available' }
  const b = sums.precisionBits
  return { state: 'fixed', precisionBits: b, step: 2 ** -b, note: `log loss (−ln p_true, p clipped to [2^-52, 1 − 2^-52]), Brier (Σ_c (p_c − y_c)²) and confidence sums: per-record terms rounded to multiples of 2^-${b}, so each mean is within ±2^-${b + 1} of the data's${sums.legacy ? ' (legacy precision: the spec sets no score.sums)' : ''}` }
}

/**
 * privacy.dp (shared/dp/sensitivity.ts), from the scan's rules (agent/scan-tasks.ts): every record in the window
 * is counted once, in one probability class and one label class, flips the site indicator at most, and a scored
 * one may count in scoresNotSummingToOne and labeledScored — 6 counters. A record lands in one predicted-class
 * cell (`missing` when not scored); a scored record in one bin of each of the K class histograms; a labelled
 * scored one in one confusion cell and in its confidence bin's labelled and maybe correct count. Features as
 * usual. Raw sums: a labelled scored record adds its log-loss and Brier terms and one bin's Σ confidence.
 */
export function multiclassDpSensitivity (layout: MulticlassLayout): TaskSensitivity {
  const features = featureSensitivity(layout.features)
  const s = layout.sums
  const sums: SumGroup[] = s.kind === 'fixed' && s.logLoss.raw === true
    ? [
        { name: 'log loss', maxTerm: s.logLoss.maxTerm, entries: [s.logLoss.offset] },
        { name: 'Brier', maxTerm: s.brier.maxTerm, entries: [s.brier.offset] },
        ...(s.confidence.length > 0 ? [{ name: 'confidence sums (one bin)', maxTerm: Math.max(...s.confidence.map(c => c.maxTerm)), entries: s.confidence.map(c => c.offset) }] : [])
      ]
    : []
  return {
    countGroups: [
      { name: 'counters', touched: 6 },
      { name: 'predicted class', touched: 1 },
      { name: 'class probability histograms (one bin per class)', touched: layout.classes.length },
      { name: 'confusion matrix', touched: 1 },
      { name: 'calibration counts', touched: 2 },
      ...features.countGroups
    ],
    sums: [...sums, ...features.sums]
  }
}

/** privacy.dp: each class's AUC from its signed histogram rows, and the macro and weighted AUC from them. */
export function multiclassSignedAucs (layout: MulticlassLayout, performance: Report['performance'], v: Int32Array): void {
  const perf = performance as Report['performance'] & { per_class?: Record<string, ClassFigures>, macro_auc?: Bounded, weighted_auc?: Bounded }
  const B = layout.score.bins
  const perClass = perf.per_class
  if (perClass === undefined) return
  layout.classes.forEach((name, k) => {
    const figures = perClass[name]
    if (figures === undefined) return
    const rest = v.subarray(classRowOffset(layout, k, 0), classRowOffset(layout, k, 0) + B)
    const own = v.subarray(classRowOffset(layout, k, 1), classRowOffset(layout, k, 1) + B)
    figures.auc = signedRocAucBounds(rest, own)
  })
  const figures = layout.classes.map(name => perClass[name]).filter((f): f is ClassFigures => f !== undefined)
  perf.macro_auc = meanBounded(figures.map(f => ({ b: f.auc, w: 1 })))
  perf.weighted_auc = meanBounded(figures.map(f => ({ b: f.auc, w: f.support })))
  perf.auc = perf.macro_auc
}

function multiclassPerformance (layout: MulticlassLayout, v: Uint32Array): Report['performance'] {
  const { classes } = layout
  const K = classes.length
  const B = layout.score.bins
  const c = (name: MulticlassCounter): number => v[multiclassCounterIndex(layout, name)]
  const matrix = confusionMatrix(layout, v)
  const support = matrix.map(row => row.reduce((a, b) => a + b, 0))
  const predictedCount = classes.map((_, p) => matrix.reduce((a, row) => a + row[p], 0))
  const n = support.reduce((a, b) => a + b, 0)
  const div = (a: number, b: number): number | null => (b === 0 ? null : a / b)
  const perClass: ClassFigures[] = classes.map((_, k) => {
    const tp = matrix[k][k]
    const rest = v.subarray(classRowOffset(layout, k, 0), classRowOffset(layout, k, 0) + B)
    const own = v.subarray(classRowOffset(layout, k, 1), classRowOffset(layout, k, 1) + B)
    return {
      auc: rocAucBounds(rest, own),
      precision: div(tp, predictedCount[k]),
      recall: div(tp, support[k]),
      f1: div(2 * tp, support[k] + predictedCount[k]),
      support: support[k]
    }
  })
  const present = classes.map((_, k) => support[k] + predictedCount[k] > 0)
  const avg = averages(perClass, present, support)
  const aucClasses = perClass.filter(f => f.auc.value !== null).length
  const macroAuc = meanBounded(perClass.map(f => ({ b: f.auc, w: 1 })))
  const weightedAuc = meanBounded(perClass.map(f => ({ b: f.auc, w: f.support })))
  const trace = matrix.reduce((a, row, k) => a + row[k], 0)
  const sums = layout.sums
  const reliability: Array<CalibrationBin & { meanConfidence: number | null, accuracy: number | null }> = []
  const cal = layout.calibration
  for (let b = 0; b < cal.bins; b++) {
    const count = v[cal.countsOffset + 2 * b]; const correct = v[cal.countsOffset + 2 * b + 1]
    const meanScore = sums.kind === 'fixed' && count > 0 ? readFixedSum(v, sums.confidence[b]) / count : null
    const fraction = count > 0 ? correct / count : null
    reliability.push({ lower: b / cal.bins, upper: (b + 1) / cal.bins, count, positives: correct, meanScore, fractionPositive: fraction, meanConfidence: meanScore, accuracy: fraction })
  }
  const per = (fs: FixedSum | undefined): number | null => (fs !== undefined && n > 0 ? readFixedSum(v, fs) / n : null)
  const perClassOut: Record<string, ClassFigures> = {}
  classes.forEach((name, k) => { perClassOut[name] = perClass[k] })
  return {
    auc: macroAuc,
    macro_auc: macroAuc,
    weighted_auc: weightedAuc,
    ...(aucClasses < K ? { aucNote: `${K - aucClasses} of ${K} classes have no labelled record of their own or none of another class: their AUC is undefined and left out of macro_auc and weighted_auc` } : {}),
    accuracy: div(trace, n),
    macro_f1: avg.macro('f1'),
    weighted_f1: avg.weighted('f1'),
    macro_precision: avg.macro('precision'),
    macro_recall: avg.macro('recall'),
    log_loss: per(sums.kind === 'fixed' ? sums.logLoss : undefined),
    brier: per(sums.kind === 'fixed' ? sums.brier : undefined),
    ece: sums.kind === 'fixed' ? expectedCalibrationError(reliability) : null,
    confusion: { classes: [...classes], matrix },
    per_class: perClassOut,
    counts: { scored: c('scoresValid'), labeled: n, notSummingToOne: c('scoresNotSummingToOne') },
    reliability,
    aucBoundWidth: macroAuc.lower !== null && macroAuc.upper !== null ? macroAuc.upper - macroAuc.lower : null,
    sums: sumsInfo(sums),
    fixedPoint: `${sums.kind === 'fixed' ? `loss and confidence sums at 2^-${sums.precisionBits}` : 'loss sums off'}; ${LIMB_BITS}-bit limbs per u32 entry`
  }
}

const rate = (part: number, total: number): number | null => (total > 0 ? part / total : null)

/** Class k's probability distribution (its three rows summed) against the reference's: drift.ts on the score bins. */
function classScoreDrift (spec: MonitorSpec, layout: MulticlassLayout, k: number, cur: Uint32Array, ref: Uint32Array): FeatureDrift {
  const B = layout.score.bins
  const dist = (v: Uint32Array): number[] => {
    const out = new Array<number>(B).fill(0)
    for (let row = 0; row < 3; row++) { const o = classRowOffset(layout, k, row as 0 | 1 | 2); for (let b = 0; b < B; b++) out[b] += v[o + b] }
    return out
  }
  const rv = dist(ref); const cv = dist(cur)
  const ends = quantileGroups(rv, spec.drift.scoreBins)
  const rb = regroup(rv, ends); const cb = regroup(cv, ends)
  const centers = scoreBinCenters({ score: layout.score } as Layout)
  const w = wasserstein1(rv, cv, centers)
  // the scale: the reference's std from its histogram (bin centres), as binary's score drift without sums
  let n = 0; let s = 0; let s2 = 0
  for (let b = 0; b < B; b++) { n += rv[b]; s += rv[b] * centers[b]; s2 += rv[b] * centers[b] * centers[b] }
  const std = n > 0 ? Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)) : null
  const wNorm = w !== null && std !== null && std > 0 ? w / std : null
  const p = psi(rb, cb); const js = jensenShannon(rb, cb)
  const t = spec.drift
  const status: FeatureDrift['status'] = p === null && js === null
    ? 'unknown'
    : (wNorm !== null && wNorm >= t.wasserstein.drift) || (p !== null && p >= t.psi.alert) ? 'drift' : p !== null && p >= t.psi.warn ? 'warn' : 'ok'
  const invalid = (v: Uint32Array): number => v[layout.predicted.offset + layout.predicted.missingIndex]
  const records = (v: Uint32Array): number => v[multiclassCounterIndex(layout, 'recordsInWindow')]
  return {
    type: 'score',
    psi: p,
    js,
    ks: ksBounded(rv, cv),
    wasserstein: wNorm,
    wassersteinRaw: w,
    hellinger: hellinger(rb, cb),
    wassersteinScale: 'reference std from the histogram',
    missingRate: { reference: rate(invalid(ref), records(ref)), current: rate(invalid(cur), records(cur)) },
    bins: rb.length,
    status
  }
}

function multiclassDrift (spec: MonitorSpec, layout: MulticlassLayout, cur: Uint32Array, reference: ReferenceInput): Report['drift'] {
  const ref = reference.vector
  const features: Record<string, FeatureDrift> = {}
  for (const f of layout.features) features[f.name] = f.type === 'numeric' ? numericDrift(spec, f, cur, ref) : categoricalDrift(spec, f, cur, ref)
  const classScores: Record<string, FeatureDrift> = {}
  layout.classes.forEach((name, k) => { classScores[name] = classScoreDrift(spec, layout, k, cur, ref) })
  return {
    ...driftFrame(spec, reference, ref[multiclassCounterIndex(layout, 'recordsInWindow')]),
    features,
    score: null,
    predicted: categoricalDrift(spec, layout.predicted, cur, ref),
    classScores,
  }
}

function multiclassDataQuality (layout: MulticlassLayout, v: Uint32Array): Report['dataQuality'] {
  const c = (name: MulticlassCounter): number => v[multiclassCounterIndex(layout, name)]
  const features = featureQuality(layout.features, v)
  const notSumming = c('scoresNotSummingToOne')
  return {
    records: c('recordsInWindow'),
    scores: { missing: c('scoresMissing'), notNumeric: c('scoresNotNumeric'), notFinite: c('scoresNotFinite'), outOfRange: c('scoresOutOfRange'), notSummingToOne: notSumming },
    label: { unlabeled: c('labelUnlabeled'), notAClass: c('labelNotAClass') },
    ...(notSumming > 0 ? { note: `${notSumming} records' probabilities do not sum to 1 (±${SUM_TOLERANCE}): they are used as given (not renormalised); check that the columns are the model's softmax outputs` } : {}),
    features,
    sums: { moments: Object.fromEntries(layout.features.flatMap(f => (f.type === 'numeric' ? [[f.name, momentsInfo(f.moments)]] : []))) }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The terminal report, the site's data check and its policy

/** The Performance section of a multiclass report: macro figures, the per-class table and the confusion matrix. */
export function multiclassPerformanceLines (report: Report, tools: { num: (x: unknown, digits?: number) => string, int: (x: unknown) => string, table: (rows: string[][]) => string[], paint: (s: string, ...codes: Array<'dim'>) => string }): string[] {
  const { num, int, table, paint } = tools
  const p = report.performance as Record<string, any>
  const bound = (b: Bounded | undefined): string => (b !== undefined && b.lower !== null && b.upper !== null ? `[${num(b.lower)}, ${num(b.upper)}]` : '')
  const out: string[] = []
  const rows: string[][] = [['metric', 'value', 'bound']]
  rows.push(['macro AUC (one-vs-rest)', num(p.macro_auc?.value), bound(p.macro_auc)])
  rows.push(['weighted AUC (by prevalence)', num(p.weighted_auc?.value), bound(p.weighted_auc)])
  for (const [label, key] of [['accuracy', 'accuracy'], ['macro F1', 'macro_f1'], ['weighted F1', 'weighted_f1'], ['macro precision', 'macro_precision'], ['macro recall', 'macro_recall'], ['log loss', 'log_loss'], ['Brier (Σ over classes)', 'brier'], ['ECE (top-label)', 'ece']]) rows.push([label, num(p[key]), ''])
  out.push(...table(rows).map(l => '  ' + l))
  if (typeof p.aucNote === 'string') out.push(paint(`  ${p.aucNote}`, 'dim'))
  out.push('')
  const perClass = (p.per_class ?? {}) as Record<string, ClassFigures>
  const classRows: string[][] = [['class', 'AUC', 'bound', 'precision', 'recall', 'F1', 'support']]
  for (const [name, f] of Object.entries(perClass)) classRows.push([name, num(f.auc.value), bound(f.auc), num(f.precision), num(f.recall), num(f.f1), int(f.support)])
  out.push(...table(classRows).map(l => '  ' + l))
  const confusion = p.confusion as { classes: string[], matrix: number[][] } | undefined
  if (confusion !== undefined) {
    out.push('')
    out.push('  confusion (rows: true class, columns: predicted)')
    out.push(...table([['', ...confusion.classes], ...confusion.matrix.map((row, k) => [confusion.classes[k], ...row.map(x => int(x))])]).map(l => '    ' + l))
  }
  const counts = p.counts as { scored: number, labeled: number, notSummingToOne: number } | undefined
  if (counts !== undefined) out.push(`  ${int(counts.labeled)} labelled records with probabilities of ${int(counts.scored)} scored${counts.notSummingToOne > 0 ? `; ${int(counts.notSummingToOne)} do not sum to 1` : ''}`)
  const note = (p.sums as { note?: string } | undefined)?.note
  if (note !== undefined) out.push(paint(`  precision: ${note}`, 'dim'))
  return out
}

/**
 * What makes a multiclass window's contribution garbage, in words fit for a signed decline (the column and the
 * kind of problem as a share of records, never a value): probabilities mostly unusable (a wrong scores column), or
 * labels mostly not one of the classes (a wrong label column or class names). Missing labels are late labels.
 */
export function multiclassWindowProblem (layout: MulticlassLayout, vector: Uint32Array, columns: { scores: string, label: string }, maxBadFraction: number): string | null {
  const c = (name: MulticlassCounter): number => vector[multiclassCounterIndex(layout, name)]
  const records = c('recordsInWindow')
  if (records === 0) return null
  const percent = (part: number): string => `${Math.max(1, Math.round(100 * part / records))} %`
  const bad = records - c('scoresValid')
  if (bad > maxBadFraction * records) {
    const kinds = ([['scoresMissing', 'missing'], ['scoresNotNumeric', 'not a number'], ['scoresNotFinite', 'not finite'], ['scoresOutOfRange', 'outside [0, 1]']] as const).filter(([k]) => c(k) > 0).map(([, w]) => w)
    return `column \`${columns.scores}\`: ${percent(bad)} of the window's records have no usable probability for every class (${kinds.join(', ')}), more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.score (the per-class probabilities) and the spec's classes`
  }
  const notAClass = c('labelNotAClass')
  if (notAClass > maxBadFraction * records) {
    return `column \`${columns.label}\`: ${percent(notAClass)} of the window's records have a label that is none of the spec's ${layout.classes.length} classes, more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.label and the spec's classes`
  }
  return null
}

/** Warnings (not declines) of a multiclass window: probabilities that do not sum to 1 are used as given. */
export function multiclassWindowWarnings (layout: MulticlassLayout, vector: Uint32Array, columns: { scores: string }): string[] {
  const n = vector[multiclassCounterIndex(layout, 'scoresNotSummingToOne')]
  const valid = vector[multiclassCounterIndex(layout, 'scoresValid')]
  if (n === 0) return []
  return [`column \`${columns.scores}\`: ${Math.max(1, Math.round(100 * n / valid))} % of the window's records have probabilities that do not sum to 1 (±${SUM_TOLERANCE}); they are used as given`]
}

/** The columns a multiclass spec reads (the site's policy.allowedColumns checks them). */
export function multiclassColumns (spec: MonitorSpec): string[] {
  const perClass = spec.scores?.columns
  const scores = perClass !== undefined ? Object.values(perClass) : [spec.scores?.column ?? 'scores']
  return [...scores, spec.label.column, ...Object.entries(spec.features).map(([name, f]) => f.column ?? name)]
}

/**
 * A site's policy (shared/secagg/policy.ts AgentPolicy) against a multiclass spec: the refusal reason, or null.
 * Each class's probability is cut into score.bins like binary's score; the loss sums are at the spec's precision.
 */
export function multiclassPolicyProblem (policy: { allowedColumns?: string[], allowSums?: boolean, maxSumPrecisionBits?: number, maxScoreBins?: number, maxBucketsPerFeature?: number, maxBucketsPerColumn?: number }, spec: MonitorSpec, layout: MulticlassLayout): string | null {
  if (policy.allowedColumns !== undefined) {
    const allowed = new Set(policy.allowedColumns)
    const forbidden = multiclassColumns(spec).filter(col => !allowed.has(col))
    if (forbidden.length > 0) return `the spec reads column(s) this agent does not share: ${forbidden.slice(0, 5).join(', ')}`
  }
  if (policy.maxScoreBins !== undefined && layout.score.bins > policy.maxScoreBins) return `the spec cuts each class's probability into ${layout.score.bins} bins, this agent allows at most ${policy.maxScoreBins} (policy.maxScoreBins): set score.bins`
  const s = layout.sums
  if (s.kind === 'fixed') {
    if (policy.allowSums === false) return 'a multiclass spec sums per-record log-loss, Brier and confidence terms; this agent contributes no sums (policy.allowSums: false): set score.sums: false'
    if (policy.maxSumPrecisionBits !== undefined && s.precisionBits > policy.maxSumPrecisionBits) return `the spec's loss sums are at ${s.precisionBits} bits, this agent allows at most ${policy.maxSumPrecisionBits} bits (policy.maxSumPrecisionBits): set score.sums: { precisionBits: ${policy.maxSumPrecisionBits} }`
  }
  const perColumn = policy.maxBucketsPerColumn ?? policy.maxBucketsPerFeature
  if (perColumn !== undefined) {
    for (const f of layout.features) if (f.length > perColumn) return `feature ${f.name} has ${f.length} buckets, this agent allows at most ${perColumn} per feature`
  }
  return null
}
