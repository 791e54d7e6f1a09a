/**
 * Performance metrics from a score × label histogram (bins ordered by increasing score). Pure functions over
 * counts, so they give the same answer on one site's vector and on the federation's sum.
 */
import type { Bounded } from '../report.js'

/**
 * ROC AUC with certified bounds. Pairs (positive, negative) in different bins are ordered exactly; pairs in the
 * same bin are ties of unknown order. With P positives, N negatives, p_b / n_b per bin and C_b = negatives in
 * lower bins: L = Σ p_b·C_b / (P·N), T = Σ p_b·n_b / (P·N); the exact AUC of the raw scores (ties counted ½)
 * lies in [L, L + T], and value = L + T/2 (exact when the bins do not merge distinct scores).
 */
/**
 * rocAucBounds over signed histograms (privacy.dp: the noisy sum read without clamping at zero; the formula is
 * bilinear, so the noise stays unbiased). A negative cell can make the tie term negative: the interval is kept
 * ordered and inside [0, 1].
 */
export function signedRocAucBounds (neg: ArrayLike<number>, pos: ArrayLike<number>): Bounded {
  const a = rocAucBounds(neg, pos)
  if (a.value === null || a.lower === null || a.upper === null) return a
  const clip = (x: number): number => Math.min(1, Math.max(0, x))
  return { value: clip(a.value), lower: clip(Math.min(a.lower, a.upper)), upper: clip(Math.max(a.lower, a.upper)) }
}

export function rocAucBounds (neg: ArrayLike<number>, pos: ArrayLike<number>): Bounded {
  let P = 0; let N = 0
  for (let b = 0; b < pos.length; b++) { P += pos[b]; N += neg[b] }
  if (P === 0 || N === 0) return { value: null, lower: null, upper: null }
  let below = 0; let lower = 0; let tied = 0
  for (let b = 0; b < pos.length; b++) {
    lower += pos[b] * below
    tied += pos[b] * neg[b]
    below += neg[b]
  }
  const pn = P * N
  const L = lower / pn
  const T = tied / pn
  return { value: L + T / 2, lower: L, upper: Math.min(1, L + T) }
}

/**
 * Average precision (scikit-learn's definition, Σ (R_k − R_{k−1})·P_k over decreasing thresholds), with each
 * bin as one threshold: equals scikit-learn's value when no bin merges distinct scores.
 */
export function averagePrecision (neg: ArrayLike<number>, pos: ArrayLike<number>): number | null {
  let P = 0
  for (let b = 0; b < pos.length; b++) P += pos[b]
  if (P === 0) return null
  let tp = 0; let fp = 0; let ap = 0; let prevRecall = 0
  for (let b = pos.length - 1; b >= 0; b--) {
    if (pos[b] === 0 && neg[b] === 0) continue
    tp += pos[b]; fp += neg[b]
    const recall = tp / P
    ap += (recall - prevRecall) * (tp / (tp + fp))
    prevRecall = recall
  }
  return ap
}

export interface CalibrationBin { lower: number, upper: number, count: number, positives: number, meanScore: number | null, fractionPositive: number | null }

/** Expected calibration error Σ (n_b / N)·|fraction positive_b − mean score_b| over equal-width bins. */
export function expectedCalibrationError (bins: CalibrationBin[]): number | null {
  const total = bins.reduce((a, b) => a + b.count, 0)
  if (total === 0) return null
  let ece = 0
  for (const b of bins) {
    if (b.count === 0 || b.meanScore === null || b.fractionPositive === null) continue
    ece += (b.count / total) * Math.abs(b.fractionPositive - b.meanScore)
  }
  return ece
}

export interface Confusion { tp: number, fp: number, fn: number, tn: number }

export function thresholdMetrics (c: Confusion): { precision: number | null, recall: number | null, f1: number | null, accuracy: number | null, specificity: number | null } {
  const div = (a: number, b: number): number | null => (b === 0 ? null : a / b)
  const precision = div(c.tp, c.tp + c.fp)
  const recall = div(c.tp, c.tp + c.fn)
  const f1 = div(2 * c.tp, 2 * c.tp + c.fp + c.fn)
  return { precision, recall, f1, accuracy: div(c.tp + c.tn, c.tp + c.fp + c.fn + c.tn), specificity: div(c.tn, c.tn + c.fp) }
}
