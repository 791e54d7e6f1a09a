/**
 * Performance estimated before labels arrive: confidence-based performance estimation (CBPE, as in NannyML),
 * federated — from the summed score histogram alone, no labels of the current window needed.
 *
 * If the model's scores, after calibration, are the probabilities of the positive class, then a record with
 * calibrated probability p is a positive with probability p, and the expected confusion matrix at the
 * threshold, and the expected ROC curve, follow from the histogram of scores: each score bin holds n·p
 * expected positives and n·(1 − p) expected negatives. The calibration map comes from the REFERENCE window's
 * labelled score histogram (positives / labelled per score bin), made monotone by isotonic regression (pool
 * adjacent violators, weighted by the labelled counts — bins with few labels are pooled with their
 * neighbours); without enough reference labels the scores themselves are taken as calibrated, and the report
 * says so. Valid under covariate shift only: when the relation between inputs and outcome changes (concept
 * drift) the estimate stays where it was while the realised metrics move — test/unit/stats-estimated.test.ts
 * shows both.
 */
import type { Layout } from './layout.js'
import { rocAucBounds } from './performance.js'

/** Fewer labelled reference records than this and the reference is not used to calibrate. */
export const MIN_CALIBRATION_LABELS = 200

export interface EstimatedPerformance {
  method: 'cbpe'
  auc: number | null
  precision: number | null
  recall: number | null
  f1: number | null
  accuracy: number | null
  /** The expected confusion counts at the threshold (fractional). */
  confusion: { tp: number, fp: number, fn: number, tn: number }
  calibration: { source: 'reference' | 'scores', referenceLabels: number, note: string }
  /** How complete the current window's labels are (labelled share of the scored records). */
  labels: { coverage: number | null, labeled: number, unlabeled: number }
}

/** Lower and upper score edges of every histogram bin, in probability (the scan's binning, inverted). */
export function scoreBinEdges (layout: Layout): { lower: number[], upper: number[] } {
  const { bins, scale, logitRange } = layout.score
  const lower: number[] = []
  const upper: number[] = []
  const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z))
  for (let b = 0; b < bins; b++) {
    if (scale === 'linear') {
      lower.push(b / bins)
      upper.push(b === bins - 1 ? 1 : (b + 1) / bins)
    } else {
      // Uniform in logit(p) over [-logitRange, logitRange]; the end bins take the tails.
      lower.push(b === 0 ? 0 : sigmoid(-logitRange + 2 * logitRange * b / bins))
      upper.push(b === bins - 1 ? 1 : sigmoid(-logitRange + 2 * logitRange * (b + 1) / bins))
    }
  }
  return { lower, upper }
}

/**
 * Isotonic (non-decreasing) regression of `rate` with weights `weight` by pool-adjacent-violators; entries
 * with zero weight take the value of the pooled block before them (or after, at the start).
 */
export function isotonic (rate: number[], weight: number[]): number[] {
  const blocks: Array<{ sum: number, weight: number, start: number, end: number }> = []
  for (let i = 0; i < rate.length; i++) {
    if (!(weight[i] > 0)) continue
    blocks.push({ sum: rate[i] * weight[i], weight: weight[i], start: i, end: i })
    while (blocks.length > 1) {
      const last = blocks[blocks.length - 1]
      const prev = blocks[blocks.length - 2]
      if (prev.sum / prev.weight <= last.sum / last.weight) break
      blocks.splice(blocks.length - 2, 2, { sum: prev.sum + last.sum, weight: prev.weight + last.weight, start: prev.start, end: last.end })
    }
  }
  const out = new Array<number>(rate.length).fill(NaN)
  for (const b of blocks) for (let i = b.start; i <= b.end; i++) out[i] = b.sum / b.weight
  let lastValue = blocks.length > 0 ? blocks[0].sum / blocks[0].weight : NaN
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i])) out[i] = lastValue
    else lastValue = out[i]
  }
  return out
}

/**
 * CBPE from the current window's score histogram (every scored record, labelled or not) and, when given, the
 * reference window's labelled score histogram.
 */
export function estimatePerformance (layout: Layout, threshold: number, current: ArrayLike<number>, reference: ArrayLike<number> | null): EstimatedPerformance {
  const B = layout.score.bins
  const o = layout.score.offset
  const { lower, upper } = scoreBinEdges(layout)
  const n = new Array<number>(B)
  let labeled = 0
  let unlabeled = 0
  for (let b = 0; b < B; b++) {
    const neg = current[o + b]; const pos = current[o + B + b]; const unl = current[o + 2 * B + b]
    n[b] = neg + pos + unl
    labeled += neg + pos
    unlabeled += unl
  }
  // The calibration map p(bin).
  let p: number[]
  let calibration: EstimatedPerformance['calibration']
  let referenceLabels = 0
  if (reference !== null) for (let b = 0; b < B; b++) referenceLabels += reference[o + b] + reference[o + B + b]
  if (reference !== null && referenceLabels >= MIN_CALIBRATION_LABELS) {
    const weight = Array.from({ length: B }, (_, b) => reference[o + b] + reference[o + B + b])
    const rate = weight.map((w, b) => (w > 0 ? reference[o + B + b] / w : 0))
    p = isotonic(rate, weight)
    calibration = { source: 'reference', referenceLabels, note: `scores calibrated on the reference window's ${referenceLabels} labelled records (isotonic, per score bin)` }
  } else {
    p = lower.map((lo, b) => (lo + upper[b]) / 2)
    calibration = {
      source: 'scores',
      referenceLabels,
      note: reference === null
        ? 'no reference window: scores taken as calibrated probabilities'
        : `the reference has only ${referenceLabels} labelled records (< ${MIN_CALIBRATION_LABELS}): scores taken as calibrated probabilities`
    }
  }
  const expPos = n.map((x, b) => x * p[b])
  const expNeg = n.map((x, b) => x * (1 - p[b]))
  // Predicted positive iff score ≥ threshold; a bin the threshold cuts is split in proportion to its width.
  let tp = 0; let fp = 0; let fn = 0; let tn = 0
  for (let b = 0; b < B; b++) {
    const width = upper[b] - lower[b]
    const above = lower[b] >= threshold ? 1 : upper[b] <= threshold ? 0 : (width > 0 ? (upper[b] - threshold) / width : 1)
    tp += above * expPos[b]; fp += above * expNeg[b]
    fn += (1 - above) * expPos[b]; tn += (1 - above) * expNeg[b]
  }
  const ratio = (a: number, d: number): number | null => (d > 0 ? a / d : null)
  const precision = ratio(tp, tp + fp)
  const recall = ratio(tp, tp + fn)
  const total = tp + fp + fn + tn
  return {
    method: 'cbpe',
    auc: total > 0 ? rocAucBounds(expNeg, expPos).value : null,
    precision,
    recall,
    f1: precision !== null && recall !== null && precision + recall > 0 ? 2 * precision * recall / (precision + recall) : null,
    accuracy: ratio(tp + tn, total),
    confusion: { tp, fp, fn, tn },
    calibration,
    labels: { coverage: ratio(labeled, labeled + unlabeled), labeled, unlabeled }
  }
}
