/**
 * The global histograms a report carries, so a reader can draw what the figures were computed from (issue 13:
 * reference vs current per feature, ROC and precision-recall curves, the score distribution). Everything here
 * is a regrouping of the summed vector — nothing per site — and coarser than the sum itself:
 * - the score × label histogram in at most SCORE_HISTOGRAM_GROUPS groups of adjacent bins: the ROC and PR
 *   points at the group edges are exact points of the full-resolution curves (only thresholds are fewer);
 * - each numeric feature over the groups its PSI was computed on (reference quantiles, or the spec's edges),
 *   plus missing/invalid; each categorical feature over the spec's vocabulary, plus other and missing.
 */
import type { ReportHistograms, FeatureHistogram } from '../report.js'
import type { Layout, NumericFeatureLayout, CategoricalFeatureLayout } from './layout.js'
import { quantileGroups, regroup } from './drift.js'

/** At most this many score groups: ~2 KB of JSON per report, so 1,000 reports of history stay light. */
export const SCORE_HISTOGRAM_GROUPS = 100

/** Six significant digits: an edge is for drawing and labels, the counts are exact. */
const round6 = (x: number): number => Number(x.toPrecision(6))

/** The score at bin boundary b ∈ [0, bins] (0 and 1 at the ends; the logit scale's end bins take the tails). */
export function scoreBinEdge (layout: Layout, b: number): number {
  const { bins, scale, logitRange } = layout.score
  if (b <= 0) return 0
  if (b >= bins) return 1
  if (scale === 'linear') return b / bins
  return 1 / (1 + Math.exp(-(-logitRange + (b / bins) * 2 * logitRange)))
}

function scoreHistogram (layout: Layout, v: Uint32Array): ReportHistograms['score'] {
  const B = layout.score.bins; const o = layout.score.offset
  const size = Math.ceil(B / SCORE_HISTOGRAM_GROUPS)
  const ends: number[] = []
  for (let end = size - 1; end < B - 1; end += size) ends.push(end)
  ends.push(B - 1)
  const edges = [0, ...ends.map(e => round6(scoreBinEdge(layout, e + 1)))]
  return {
    edges,
    negative: regroup(v.subarray(o, o + B), ends),
    positive: regroup(v.subarray(o + B, o + 2 * B), ends),
    unlabeled: regroup(v.subarray(o + 2 * B, o + 3 * B), ends)
  }
}

/** null for an unbounded end (JSON has no Infinity). */
const bound = (x: number): number | null => (Number.isFinite(x) ? round6(x) : null)

function numericHistogram (f: NumericFeatureLayout, cur: Uint32Array, ref: Uint32Array | null): FeatureHistogram {
  const slice = (v: Uint32Array): Uint32Array => v.subarray(f.offset, f.offset + f.valueBuckets)
  const missing = (v: Uint32Array): number => v[f.offset + f.missingIndex] + v[f.offset + f.invalidIndex]
  // the groups drift used (report-body.ts numericDrift); without a reference, the current window's quantiles
  const ends = f.binning === 'edges'
    ? Array.from({ length: f.valueBuckets }, (_, i) => i)
    : quantileGroups(slice(ref ?? cur), f.psiBins)
  const starts = ends.map((_, i) => (i === 0 ? 0 : ends[i - 1] + 1))
  return {
    type: 'numeric',
    lower: starts.map(s => bound(f.lower[s])),
    upper: ends.map(e => bound(f.upper[e])),
    current: regroup(slice(cur), ends),
    reference: ref === null ? null : regroup(slice(ref), ends),
    missing: { current: missing(cur), reference: ref === null ? null : missing(ref) }
  }
}

function categoricalHistogram (f: CategoricalFeatureLayout, cur: Uint32Array, ref: Uint32Array | null): FeatureHistogram {
  const counts = (v: Uint32Array): number[] => Array.from(v.subarray(f.offset, f.offset + f.categories.length))
  return {
    type: 'categorical',
    categories: [...f.categories],
    current: counts(cur),
    reference: ref === null ? null : counts(ref),
    other: { current: cur[f.offset + f.otherIndex], reference: ref === null ? null : ref[f.offset + f.otherIndex] },
    missing: { current: cur[f.offset + f.missingIndex], reference: ref === null ? null : ref[f.offset + f.missingIndex] }
  }
}

/**
 * The report's `histograms`. `reference`: the reference window's vector when drift was computed against it
 * (same layout), else null — then only the current window's histograms are given.
 */
export function reportHistograms (layout: Layout, current: Uint32Array, reference: Uint32Array | null): ReportHistograms {
  const features: Record<string, FeatureHistogram> = {}
  for (const f of layout.features) {
    features[f.name] = f.type === 'numeric' ? numericHistogram(f, current, reference) : categoricalHistogram(f, current, reference)
  }
  // the reference window's score histogram is its own report's (histograms.score): not repeated in every report
  return { score: scoreHistogram(layout, current), features }
}
