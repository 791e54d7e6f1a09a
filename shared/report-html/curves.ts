/**
 * Curves from a report's regrouped score histogram (shared/report.ts ScoreHistogram). Each group edge is one
 * threshold, so every point is an exact point of the full-resolution curve (there are just fewer of them).
 */
import type { ScoreHistogram } from '../report.js'

export interface RocCurve { fpr: number[], tpr: number[], thresholds: number[] }
export interface PrCurve { recall: number[], precision: number[], thresholds: number[] }

const total = (a: number[]): number => a.reduce((s, x) => s + x, 0)

/** ROC points, predicting positive at score ≥ threshold, from the highest threshold (0, 0) down to (1, 1). */
export function rocCurve (h: ScoreHistogram): RocCurve | null {
  const P = total(h.positive); const N = total(h.negative)
  if (P === 0 || N === 0) return null
  const fpr = [0]; const tpr = [0]; const thresholds = [1]
  let tp = 0; let fp = 0
  for (let g = h.positive.length - 1; g >= 0; g--) {
    tp += h.positive[g]; fp += h.negative[g]
    if (h.positive[g] === 0 && h.negative[g] === 0 && g > 0) continue
    fpr.push(fp / N); tpr.push(tp / P); thresholds.push(h.edges[g])
  }
  return { fpr, tpr, thresholds }
}

/** Precision-recall points from the highest threshold down (groups with no labeled record add no point). */
export function prCurve (h: ScoreHistogram): PrCurve | null {
  const P = total(h.positive)
  if (P === 0) return null
  const recall: number[] = []; const precision: number[] = []; const thresholds: number[] = []
  let tp = 0; let fp = 0
  for (let g = h.positive.length - 1; g >= 0; g--) {
    if (h.positive[g] === 0 && h.negative[g] === 0) continue
    tp += h.positive[g]; fp += h.negative[g]
    recall.push(tp / P); precision.push(tp / (tp + fp)); thresholds.push(h.edges[g])
  }
  return { recall, precision, thresholds }
}
