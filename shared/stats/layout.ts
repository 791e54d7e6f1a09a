import type { MonitorSpec, NumericFeatureSpec } from './spec.js'
import { FedmonError } from '../errors.js'
import { canonicalJson, sha256Hex } from './canonical.js'
import { type FixedSum, limbsFor, maxScaledTerm, LIMB_MAX, LOSS_SCALE_BITS, MOMENT_SCALE_BITS } from './fixed-point.js'
import { type SketchMapping, sketchMapping } from './sketch.js'

/**
 * The layout: which entry of the u32 vector counts what. It is a pure function of the (validated) spec, so
 * every agent and the coordinator derive the same one; the spec hash binds it into every round.
 *
 * Window rule (privacy): every entry counts or sums ONLY records whose ts lies in the round's window [from, to).
 * The agent's ledger refuses overlapping windows, which makes differencing impossible only if an entry depends on
 * nothing but the window's records: a figure that is the same in every scan of the same files (v1's
 * `recordsWithoutTimestamp`: undated records and JSONL lines that are not JSON) was revealed per agent by two
 * rounds over DISJOINT windows whose participant sets differ by one agent. v2 drops it from the vector; the agent
 * keeps that figure local (logged at each scan, shown by `fedmon evaluate`, never sent). Checked entry by entry:
 * the counters below, the score × label histogram, the loss, score and calibration sums (only records with
 * a ts in the window and a valid score), and the feature buckets and moments (the scan's per-feature query
 * reads only in-window records) — all in-window only. test/unit/scan-window-isolation.test.ts checks it.
 *
 * v3 adds one counter, `sitesWithRecords`: each agent writes 1 when it has at least one record in the window,
 * else 0, so the sum says how many sites the figures come from (issue 12 §3: "4 included" while 3 of them had no
 * record is one site's histogram; the coordinator refuses to publish below minAgents). It depends only on the
 * window's records too, and not on labels (never in a refresh sub-layout). Appending it to the counters shifts
 * every later offset by one: the version line is in the spec hash, so a stored v2 vector (a reference) is
 * recognised as another layout (report-body.ts referenceMismatch), never read with v3 offsets.
 */
export const LAYOUT_VERSION = 'fedmon-layout-v3'

/** Per-record counters over the records of the window (data quality, label classes, confusion at threshold). */
export const COUNTERS = [
  'recordsInWindow', // every record whose ts is in [from, to)
  'labelNegative', 'labelPositive', 'labelUnlabeled', 'labelInvalid', // all records in the window
  'scoreValid', 'scoreMissing', 'scoreNotNumeric', 'scoreNotFinite', 'scoreOutOfRange',
  'tp', 'fp', 'fn', 'tn', // labeled records with a valid score, predicted positive iff score >= threshold
  'predictedPositiveUnlabeled',
  'sitesWithRecords' // 1 when this site has ≥ 1 record in the window, else 0: summed, the number of contributing sites
] as const
export type CounterName = typeof COUNTERS[number]

export interface ScoreLayout {
  bins: number
  scale: 'linear' | 'logit'
  logitRange: number
  /** Histogram [class][bin], class 0 = negative, 1 = positive, 2 = unlabeled or invalid label. */
  offset: number
}

export interface NumericFeatureLayout {
  name: string
  type: 'numeric'
  binning: 'edges' | 'sketch'
  offset: number
  /** Ordered value buckets at offset .. offset+valueBuckets-1, then `missing`, then `invalid`. */
  valueBuckets: number
  missingIndex: number
  invalidIndex: number
  length: number
  /** Per value bucket: lower and upper bound and a representative value (for Wasserstein). */
  lower: number[]
  upper: number[]
  representative: number[]
  edges: number[] | null
  sketch: SketchMapping | null
  moments: MomentsLayout
  psiBins: number
}

/**
 * A numeric feature's moment sums (spec.ts MomentsSpec), for its mean and std. Three forms, because the spec
 * decides how much of a record a sum may carry (issue 10.3) and the legacy form must keep its layout:
 * - `exact` (no `moments` in the spec; the legacy layout): values clamped to ±clamp, Σ max(x, 0), Σ max(−x, 0)
 *   and Σ x², terms rounded to 2^-scaleBits. Unclipped in practice, so a sum over one record is that value.
 * - `clipped`: values clipped into [lo, hi] and mapped to integers u = round((x − lo)/step) ∈ [0, 2^precisionBits],
 *   step = (hi − lo)/2^precisionBits; Σu and Σu². One sum (no split by sign: that would be another cut point),
 *   and one record adds at most 2^bits to Σu and 2^(2·bits) to Σu².
 * - `off`: no sums; mean and std are unavailable.
 */
export type MomentsLayout =
  | { kind: 'off' }
  | { kind: 'exact', clamp: number, scaleBits: number, sumPositive: FixedSum, sumNegative: FixedSum, sumSquares: FixedSum }
  | { kind: 'clipped', lo: number, hi: number, precisionBits: number, step: number, sum: FixedSum, sumSquares: FixedSum }

/**
 * The score and loss sums (spec.ts ScoreSumsSpec): log loss and Brier (labeled records), Σs and Σs² (every valid
 * score), Σs per calibration bin (its labeled records), each term rounded to 2^-precisionBits. `legacy`: the
 * spec has no `score.sums` (24 bits, the layout before issue 10.3). `off`: none of these entries exist.
 */
export type ScoreSumsLayout =
  | { kind: 'off' }
  | { kind: 'fixed', precisionBits: number, legacy: boolean, logLoss: FixedSum, brier: FixedSum, scoreSum: FixedSum, scoreSumSquares: FixedSum, calibration: FixedSum[] }

export interface CategoricalFeatureLayout {
  name: string
  type: 'categorical'
  offset: number
  categories: string[]
  otherIndex: number
  missingIndex: number
  length: number
}

export type FeatureLayout = NumericFeatureLayout | CategoricalFeatureLayout

export interface CalibrationLayout {
  bins: number
  /** Per bin: labeled count, positive count (offset + 2·b, offset + 2·b + 1). Per-bin Σ score: sums.calibration. */
  countsOffset: number
}

export interface Layout {
  version: string
  length: number
  /** Hex SHA-256 of the canonical spec (with defaults applied). */
  specHash: string
  /** The largest value one agent can put in one entry: a count (≤ maxRecords) or a 16-bit limb. */
  maxEntry: number
  maxRecords: number
  counters: { offset: number, names: readonly CounterName[] }
  score: ScoreLayout
  /** The score and loss sums, or `off`. */
  sums: ScoreSumsLayout
  calibration: CalibrationLayout
  /** Sorted by name, so key order in the spec never matters. */
  features: FeatureLayout[]
  fixedPoint: { limbBits: number }
}

/** Largest per-record log-loss term: predictions are clipped to [eps, 1 − eps], eps = 2^-52 (as scikit-learn). */
export const LOG_LOSS_EPS = 2 ** -52
const MAX_LOG_LOSS_TERM = -Math.log(LOG_LOSS_EPS)

export function specHashOf (spec: MonitorSpec): string {
  return sha256Hex(`${LAYOUT_VERSION}\n${canonicalJson(spec)}`)
}

/**
 * Hands out consecutive entries of the vector, in call order (the order IS the layout); `fixed` takes a limb group
 * sized so that maxRecords terms of at most maxTerm each fit one agent's limbs (and so 2^16 agents' sum a u32).
 */
export interface EntryAllocator {
  take: (n: number) => number
  fixed: (maxTerm: number, scaleBits: number) => FixedSum
  /** Entries taken so far: the layout's length once every segment is taken. */
  readonly length: number
  readonly maxRecords: number
  /** The largest value one agent may put in a raw sum entry (0 without raw sums). */
  readonly maxRawEntry: number
}

/**
 * `raw` (privacy.dp): every sum is one raw entry (fixed-point.ts FixedSum.raw) that a record moves by its maxTerm
 * only; otherwise limbsFor sizes each sum so that maxRecords terms fit its limbs (one agent never overflows them).
 */
export function entryAllocator (maxRecords: number, opts: { raw?: boolean } = {}): EntryAllocator {
  let next = 0
  const take = (n: number): number => { const at = next; next += n; return at }
  let maxRawEntry = 0
  return {
    take,
    fixed: (maxTerm, scaleBits) => {
      const scaled = Number(maxScaledTerm(maxTerm, scaleBits))
      if (opts.raw === true) {
        maxRawEntry = Math.max(maxRawEntry, maxRecords * scaled)
        return { offset: take(1), limbs: 1, scaleBits, maxTerm: scaled, raw: true }
      }
      const limbs = limbsFor(maxRecords, maxTerm, scaleBits)
      return { offset: take(limbs), limbs, scaleBits, maxTerm: scaled }
    },
    get length () { return next },
    get maxRawEntry () { return maxRawEntry },
    maxRecords
  }
}

/** The feature segments, sorted by name (key order in the spec never matters): every task's layout ends with them. */
export function featureLayoutsOf (features: MonitorSpec['features'], alloc: EntryAllocator): FeatureLayout[] {
  const out: FeatureLayout[] = []
  for (const name of Object.keys(features).sort()) {
    const f = features[name]
    if (f.type === 'categorical') {
      const length = f.categories.length + 2
      out.push({ name, type: 'categorical', offset: alloc.take(length), categories: [...f.categories], otherIndex: f.categories.length, missingIndex: f.categories.length + 1, length })
      continue
    }
    out.push(numericFeatureLayout(name, f, alloc))
  }
  return out
}

/** One numeric value's segment: its buckets (edges or sketch), missing, invalid, then its moment sums. */
export function numericFeatureLayout (name: string, f: Pick<NumericFeatureSpec, 'edges' | 'alpha' | 'range' | 'bins' | 'moments'>, alloc: EntryAllocator): NumericFeatureLayout {
  const { take, fixed } = alloc
  let lower: number[], upper: number[], representative: number[]
  let sketch: SketchMapping | null = null
  if (f.edges !== undefined) {
    const e = f.edges
    lower = [-Infinity, ...e]
    upper = [...e, Infinity]
    representative = lower.map((lo, i) => {
      const hi = upper[i]
      if (!Number.isFinite(lo)) return hi
      if (!Number.isFinite(hi)) return lo
      return (lo + hi) / 2
    })
  } else {
    sketch = sketchMapping(f.alpha, f.range[0], f.range[1])
    ;({ lower, upper, representative } = sketch.buckets())
  }
  const valueBuckets = lower.length
  const offset = take(valueBuckets + 2)
  let moments: MomentsLayout
  if (f.moments === undefined) {
    const clamp = f.range[1]
    moments = { kind: 'exact', clamp, scaleBits: MOMENT_SCALE_BITS, sumPositive: fixed(clamp, MOMENT_SCALE_BITS), sumNegative: fixed(clamp, MOMENT_SCALE_BITS), sumSquares: fixed(clamp * clamp, MOMENT_SCALE_BITS) }
  } else if (f.moments === false) {
    moments = { kind: 'off' }
  } else {
    const [lo, hi] = f.moments.clip
    const bits = f.moments.precisionBits
    moments = { kind: 'clipped', lo, hi, precisionBits: bits, step: (hi - lo) / 2 ** bits, sum: fixed(2 ** bits, 0), sumSquares: fixed(4 ** bits, 0) }
  }
  return {
    name,
    type: 'numeric',
    binning: f.edges !== undefined ? 'edges' : 'sketch',
    offset,
    valueBuckets,
    missingIndex: valueBuckets,
    invalidIndex: valueBuckets + 1,
    length: valueBuckets + 2,
    lower,
    upper,
    representative,
    edges: f.edges !== undefined ? [...f.edges] : null,
    sketch,
    moments,
    psiBins: f.edges !== undefined ? valueBuckets : f.bins
  }
}

/**
 * The binary task's layout (shared/stats/tasks/binary.ts). A spec of another task has no binary layout: use
 * buildTaskLayout (shared/stats/tasks/index.ts), which every task's caller goes through.
 */
export function buildLayout (spec: MonitorSpec): Layout {
  if (spec.task !== undefined && spec.task !== 'binary') throw new FedmonError(`a ${spec.task} spec has no binary layout (build it with buildTaskLayout)`, 'ERR_LAYOUT_TASK')
  const maxRecords = spec.limits.maxRecordsPerAgent
  const alloc = entryAllocator(maxRecords, { raw: spec.privacy?.dp !== undefined })
  const { take, fixed } = alloc

  // The order of the segments is the legacy layout's: a spec without the sums options keeps every offset.
  const counters = { offset: take(COUNTERS.length), names: COUNTERS }
  const score: ScoreLayout = { bins: spec.score.bins, scale: spec.score.scale, logitRange: spec.score.logitRange, offset: take(3 * spec.score.bins) }
  const sumsSpec = spec.score.sums
  const sumBits = sumsSpec === undefined ? LOSS_SCALE_BITS : sumsSpec === false ? null : sumsSpec.precisionBits
  const lossSums = sumBits === null
    ? null
    : { logLoss: fixed(MAX_LOG_LOSS_TERM, sumBits), brier: fixed(1, sumBits), scoreSum: fixed(1, sumBits), scoreSumSquares: fixed(1, sumBits) }
  const calBins = spec.calibration.bins
  const calibration: CalibrationLayout = { bins: calBins, countsOffset: take(2 * calBins) }
  const sums: ScoreSumsLayout = sumBits === null || lossSums === null
    ? { kind: 'off' }
    : { kind: 'fixed', precisionBits: sumBits, legacy: sumsSpec === undefined, ...lossSums, calibration: Array.from({ length: calBins }, () => fixed(1, sumBits)) }

  const features = featureLayoutsOf(spec.features, alloc)
  return {
    version: LAYOUT_VERSION,
    length: alloc.length,
    specHash: specHashOf(spec),
    maxEntry: Math.max(maxRecords, LIMB_MAX, alloc.maxRawEntry),
    maxRecords,
    counters,
    score,
    sums,
    calibration,
    features,
    fixedPoint: { limbBits: 16 }
  }
}

/** Index of counter `name` in the vector. */
export function counterIndex (layout: Layout, name: CounterName): number {
  return layout.counters.offset + layout.counters.names.indexOf(name)
}

/** The largest number of agents whose vectors can be summed without wrapping an entry mod 2^32. */
export function maxAgentsFor (layout: Pick<Layout, 'maxEntry'>): number {
  return Math.floor((2 ** 32 - 1) / layout.maxEntry)
}

/** Score bin of a valid score s ∈ [0, 1] — the JavaScript twin of the scan's SQL (agent/scan-sql.ts). */
export function scoreBinOf (layout: Layout, s: number): number {
  const { bins, scale, logitRange } = layout.score
  if (scale === 'linear') return Math.min(Math.floor(s * bins), bins - 1)
  if (s <= 0) return 0
  if (s >= 1) return bins - 1
  const z = Math.log(s / (1 - s))
  return Math.min(Math.max(Math.floor((z + logitRange) / (2 * logitRange) * bins), 0), bins - 1)
}

/** The level a `clipped` moment sums for a finite value x — the JavaScript twin of the scan's SQL (agent/scan-sql.ts). */
export function clippedLevelOf (m: { lo: number, hi: number, precisionBits: number }, x: number): number {
  const clipped = Math.min(Math.max(x, m.lo), m.hi)
  return Math.round((clipped - m.lo) / (m.hi - m.lo) * 2 ** m.precisionBits)
}

/** The limb groups of a numeric feature's moments (none when they are off). */
export function momentSumsOf (m: MomentsLayout): FixedSum[] {
  if (m.kind === 'exact') return [m.sumPositive, m.sumNegative, m.sumSquares]
  if (m.kind === 'clipped') return [m.sum, m.sumSquares]
  return []
}

/**
 * privacy.dp: what one record moves in the feature segments — one bucket of each feature (a value bucket, missing
 * or invalid), and each numeric feature's raw Σu and Σu² by at most their maxTerm when its value is valid.
 */
export function featureSensitivity (features: readonly FeatureLayout[]): { countGroups: Array<{ name: string, touched: number }>, sums: Array<{ name: string, maxTerm: number, entries: number[] }> } {
  const sums: Array<{ name: string, maxTerm: number, entries: number[] }> = []
  for (const f of features) {
    if (f.type !== 'numeric') continue
    for (const [i, fs] of momentSumsOf(f.moments).entries()) {
      if (fs.raw === true) sums.push({ name: `feature ${f.name} ${i === 0 ? 'sum' : 'sum of squares'}`, maxTerm: fs.maxTerm, entries: [fs.offset] })
    }
  }
  return { countGroups: features.map(f => ({ name: `feature ${f.name}`, touched: 1 })), sums }
}

/** Every fixed-point limb group of the layout (the remaining entries are plain counts). */
export function fixedSumsOf (layout: Layout): FixedSum[] {
  const s = layout.sums
  const out = s.kind === 'fixed' ? [s.logLoss, s.brier, s.scoreSum, s.scoreSumSquares, ...s.calibration] : []
  for (const f of layout.features) if (f.type === 'numeric') out.push(...momentSumsOf(f.moments))
  return out
}
