/**
 * Pure SQL builders for the DuckDB scan (agent/scan.ts): per-record classification and binning of one window,
 * following the layout exactly (score bins, label classes, data-quality classes, feature buckets).
 * Every rule here has a JavaScript twin in shared/stats (sketch.indexOf, scoreBinOf) used by tests.
 */
import { type MonitorSpec, TRIMMED_WHITESPACE, trimWhitespace } from '../shared/stats/spec.js'
import type { Layout, NumericFeatureLayout, CategoricalFeatureLayout } from '../shared/stats/layout.js'
import { LOG_LOSS_EPS } from '../shared/stats/layout.js'

/** SQL string literal with quotes doubled (paths, categories, JSON keys). */
export function sqlString (s: string): string {
  if (s.includes('\0')) throw new RangeError('NUL byte in SQL string')
  return `'${s.replace(/'/g, "''")}'`
}

/** SQL identifier with double quotes doubled. */
export function sqlIdent (s: string): string {
  return `"${s.replace(/"/g, '""')}"`
}

/** A number as an exact SQL DOUBLE literal. */
export function sqlNumber (n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${n}`)
  return `${String(n)}::DOUBLE`
}

/** How a source column reads: the scan picks the cheapest exact conversion for each kind. */
export type ValueKind = 'number' | 'text' | 'bool' | 'timestamp' | 'absent'
export interface ColumnExpr { sql: string, kind: ValueKind }

/** A unit of epoch numbers (data.columns.tsUnit without `auto`). */
export type EpochUnit = 's' | 'ms' | 'us' | 'ns'

/**
 * The magnitude class of a numeric timestamp `x` (NULL when `x` is): 0 below 1e8, 1 from 1e8 (epoch seconds after
 * 1973), 2 from 1e11 (milliseconds), 3 from 1e14 (microseconds), 4 from 1e17 (nanoseconds). Each range is
 * 1973..5138 in its own unit, so the classes never overlap for real clocks.
 */
export function tsMagnitudeSql (x: string): string {
  return `(CASE WHEN ${x} IS NULL OR NOT isfinite(${x}) THEN NULL WHEN abs(${x}) >= 1e17 THEN 4 WHEN abs(${x}) >= 1e14 THEN 3 WHEN abs(${x}) >= 1e11 THEN 2 WHEN abs(${x}) >= 1e8 THEN 1 ELSE 0 END)`
}
/** The unit each magnitude class is read in by `auto` (class 0, tiny numbers, stays milliseconds as before). */
export const AUTO_UNIT_OF_MAGNITUDE: readonly EpochUnit[] = ['ms', 's', 'ms', 'us', 'ns']
/** The unit numbers of each magnitude class look like (class 0 looks like none). */
export const LOOKS_LIKE_OF_MAGNITUDE: ReadonlyArray<EpochUnit | null> = [null, 's', 'ms', 'us', 'ns']

function fromUnitSql (x: string, unit: EpochUnit): string {
  switch (unit) {
    case 's': return `(${x} * 1000)`
    case 'ms': return x
    case 'us': return `(${x} / 1000)`
    case 'ns': return `(${x} / 1000000)`
  }
}

/** Epoch milliseconds (DOUBLE) of a numeric timestamp `x` in `unit`; `auto` picks each number's unit by its magnitude. */
export function epochMsSql (x: string, unit: EpochUnit | 'auto'): string {
  if (unit !== 'auto') return fromUnitSql(x, unit)
  return `(CASE WHEN abs(${x}) >= 1e17 THEN ${fromUnitSql(x, 'ns')} WHEN abs(${x}) >= 1e14 THEN ${fromUnitSql(x, 'us')} WHEN abs(${x}) >= 1e8 AND abs(${x}) < 1e11 THEN ${fromUnitSql(x, 's')} ELSE ${x} END)`
}

/**
 * The readings of a ts column: `number`, its value when it is a number (or numeric text), in the column's own
 * unit; `instant`, epoch milliseconds when it is a typed timestamp or ISO-8601 text (naive text is UTC: the
 * scan's session time zone); `missing`, whether the value is absent.
 */
export function timestampPartsSql (c: ColumnExpr): { number: string, instant: string, missing: string } {
  switch (c.kind) {
    case 'number': return { number: `CAST(${c.sql} AS DOUBLE)`, instant: 'CAST(NULL AS DOUBLE)', missing: `(${c.sql}) IS NULL` }
    case 'timestamp': return { number: 'CAST(NULL AS DOUBLE)', instant: `CAST(epoch_ms(${c.sql}) AS DOUBLE)`, missing: `(${c.sql}) IS NULL` }
    case 'text': return {
      number: `TRY_CAST(${c.sql} AS DOUBLE)`,
      instant: `(CASE WHEN TRY_CAST(${c.sql} AS DOUBLE) IS NULL THEN CAST(epoch_ms(TRY_CAST(${c.sql} AS TIMESTAMPTZ)) AS DOUBLE) END)`,
      missing: `(${c.sql}) IS NULL`
    }
    case 'bool': return { number: 'CAST(NULL AS DOUBLE)', instant: 'CAST(NULL AS DOUBLE)', missing: `(${c.sql}) IS NULL` }
    default: return { number: 'CAST(NULL AS DOUBLE)', instant: 'CAST(NULL AS DOUBLE)', missing: 'true' }
  }
}

/** Numeric value of a column (NULL when missing or not numeric) and its quality class. */
export function numericSql (c: ColumnExpr): { value: string, isMissing: string, isNotNumeric: string } {
  switch (c.kind) {
    case 'number': return { value: `CAST(${c.sql} AS DOUBLE)`, isMissing: `(${c.sql}) IS NULL`, isNotNumeric: 'false' }
    case 'text': return { value: `TRY_CAST(${c.sql} AS DOUBLE)`, isMissing: `(${c.sql}) IS NULL`, isNotNumeric: `TRY_CAST(${c.sql} AS DOUBLE) IS NULL` }
    case 'absent': return { value: 'CAST(NULL AS DOUBLE)', isMissing: 'true', isNotNumeric: 'false' }
    default: return { value: 'CAST(NULL AS DOUBLE)', isMissing: `(${c.sql}) IS NULL`, isNotNumeric: 'true' }
  }
}

/** The characters trimmed from both ends of a value before label and category matching (TRIMMED_WHITESPACE in spec.ts). */
const TRIM_CHARS_SQL = [...TRIMMED_WHITESPACE].map(ch => `chr(${ch.charCodeAt(0)})`).join(' || ')

/** Text of a column, normalised for label and category matching (trimmed; numbers as DuckDB prints them). */
export function textSql (c: ColumnExpr): string {
  if (c.kind === 'absent') return 'CAST(NULL AS VARCHAR)'
  return `trim(CAST(${c.sql} AS VARCHAR), ${TRIM_CHARS_SQL})`
}

/**
 * A prediction id as join key: its text, trimmed, empty → NULL. Ids compare as text, so the number 17 in one
 * file and the string "17" in another are the same id (a float 17.0 prints as "17.0" and is not).
 */
export function idTextSql (c: ColumnExpr): string {
  return `nullif(${textSql(c)}, '')`
}

type LabelValue = string | number | boolean

/** SQL condition: normalised text `t` equals the label value `v` (numbers compared numerically, true ≡ 1). */
function labelMatch (t: string, v: LabelValue): string {
  if (typeof v === 'boolean' || v === 1 || v === 0) {
    const n = v === true || v === 1 ? 1 : 0
    return `(TRY_CAST(${t} AS DOUBLE) = ${n} OR lower(${t}) = ${sqlString(n === 1 ? 'true' : 'false')})`
  }
  if (typeof v === 'number') return `(TRY_CAST(${t} AS DOUBLE) = ${sqlNumber(v)})`
  return `(${t} = ${sqlString(v)})`
}

/** "1" and 1, "true" and true mean the same label value, whatever the YAML quoting; trimmed as the data is. */
function normaliseLabel (v: LabelValue): LabelValue {
  if (typeof v !== 'string') return v
  const t = trimWhitespace(v)
  if (/^(true|false)$/i.test(t)) return t.toLowerCase() === 'true'
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return Number(t)
  return t
}

/** Label class: 0 negative, 1 positive, 2 unlabeled (null/absent/empty), 3 invalid. */
export function labelClassSql (spec: MonitorSpec, c: ColumnExpr): string {
  const positive = normaliseLabel(spec.label.positive)
  const negatives = spec.label.negative?.map(normaliseLabel)
  const isOneZero = (v: LabelValue): boolean => v === 1 || v === 0 || typeof v === 'boolean'
  const numericOnly = isOneZero(positive) || typeof positive === 'number'
  // Typed columns (Parquet, inferred JSON) compare without going through text: much cheaper per record.
  if (c.kind === 'absent') return '2'
  if ((c.kind === 'number' || c.kind === 'bool') && numericOnly && (negatives === undefined || negatives.every(v => typeof v !== 'string'))) {
    const x = c.kind === 'bool' ? `CAST(${c.sql} AS INTEGER)` : c.sql
    const num = (v: LabelValue): string => (v === true ? '1' : v === false ? '0' : sqlNumber(v as number))
    const neg = negatives !== undefined ? negatives.map(v => `${x} = ${num(v)}`).join(' OR ') : isOneZero(positive) ? `${x} = ${positive === 1 || positive === true ? 0 : 1}` : 'true'
    return `(CASE WHEN ${x} IS NULL THEN 2 WHEN ${x} = ${num(positive)} THEN 1 WHEN ${neg} THEN 0 ELSE 3 END)`
  }
  const t = `nullif(${textSql(c)}, '')`
  const pos = labelMatch(t, positive)
  let neg: string
  if (negatives !== undefined) neg = negatives.map(v => labelMatch(t, v)).join(' OR ')
  else if (isOneZero(positive)) neg = labelMatch(t, positive === 1 || positive === true ? 0 : 1)
  else neg = 'true' // any other non-null value is a negative
  return `(CASE WHEN ${t} IS NULL THEN 2 WHEN ${pos} THEN 1 WHEN ${neg} THEN 0 ELSE 3 END)`
}

/** Score bin (0..bins-1) of a valid score `s` in [0, 1]: the SQL twin of scoreBinOf. */
export function scoreBinSql (layout: Layout, s: string): string {
  const { bins, scale, logitRange } = layout.score
  if (scale === 'linear') return `least(CAST(floor(${s} * ${bins}) AS INTEGER), ${bins - 1})`
  // logit: uniform on [-R, R]; guard ln() against 0 and 1 (DuckDB raises on ln(0)).
  const z = `ln(${s} / (1 - ${s}))`
  return `(CASE WHEN ${s} <= 0 THEN 0 WHEN ${s} >= 1 THEN ${bins - 1} ELSE least(greatest(CAST(floor((${z} + ${sqlNumber(logitRange)}) / ${sqlNumber(2 * logitRange)} * ${bins}) AS INTEGER), 0), ${bins - 1}) END)`
}

/** Value-bucket index of a finite value `v` for a numeric feature (edges or sketch). */
export function numericBucketSql (f: Pick<NumericFeatureLayout, 'edges' | 'sketch'>, v: string): string {
  if (f.edges !== null) {
    // bucket = number of edges <= v
    const arms = f.edges.map((e, i) => `WHEN ${v} < ${sqlNumber(e)} THEN ${i}`).join(' ')
    return `(CASE ${arms} ELSE ${f.edges.length} END)`
  }
  const m = f.sketch
  if (m === null) throw new Error('numeric feature without edges or sketch')
  const log = (a: string): string => `least(greatest(CAST(ceil(ln(${a}) / ${sqlNumber(m.lnGamma)}) AS INTEGER), ${m.iMin}), ${m.iMax})`
  const min = sqlNumber(m.min)
  const max = sqlNumber(m.max)
  return `(CASE WHEN ${v} = 0 THEN ${m.zeroIndex}
    WHEN ${v} > 0 THEN (CASE WHEN ${v} < ${min} THEN ${m.zeroIndex + 1} WHEN ${v} > ${max} THEN ${m.valueBuckets - 1} ELSE ${m.zeroIndex + 2 - m.iMin} + ${log(v)} END)
    ELSE (CASE WHEN -${v} < ${min} THEN ${m.zeroIndex - 1} WHEN -${v} > ${max} THEN 0 ELSE ${1 + m.iMax} - ${log(`-${v}`)} END) END)`
}

/**
 * Bucket (relative to the feature's offset) for a numeric feature: value bucket, missing or invalid; and the
 * per-record value its moments sum (null when the spec turns them off), NULL for values that are not finite:
 * `exact` moments: the value clamped to [-clamp, clamp] (DOUBLE, summed by momentTermsSql);
 * `clipped` moments: the integer u = round((clip(x) − lo)/(hi − lo) · 2^bits) ∈ [0, 2^bits] (BIGINT; twin:
 * clippedLevelOf in shared/stats/layout.ts).
 */
export function numericFeatureSql (f: NumericFeatureLayout, c: ColumnExpr): { bucket: string, value: string | null } {
  const n = numericSql(c)
  const v = n.value
  const bucket = `(CASE WHEN ${n.isMissing} THEN ${f.missingIndex} WHEN ${n.isNotNumeric} OR NOT isfinite(${v}) THEN ${f.invalidIndex} ELSE ${numericBucketSql(f, v)} END)`
  const m = f.moments
  if (m.kind === 'off') return { bucket, value: null }
  if (m.kind === 'exact') return { bucket, value: `(CASE WHEN isfinite(${v}) THEN least(greatest(${v}, ${sqlNumber(-m.clamp)}), ${sqlNumber(m.clamp)}) END)` }
  // divide by the width, then scale by a power of two (exact): the level does not depend on how 2^bits/width rounds
  const clipped = `least(greatest(${v}, ${sqlNumber(m.lo)}), ${sqlNumber(m.hi)})`
  return { bucket, value: `(CASE WHEN isfinite(${v}) THEN CAST(round((${clipped} - ${sqlNumber(m.lo)}) / ${sqlNumber(m.hi - m.lo)} * ${sqlNumber(2 ** m.precisionBits)}) AS BIGINT) END)` }
}

export function categoricalFeatureSql (f: CategoricalFeatureLayout, c: ColumnExpr): string {
  const t = `nullif(${textSql(c)}, '')`
  const list = `[${f.categories.map(sqlString).join(', ')}]`
  const general = `(CASE WHEN ${t} IS NULL THEN ${f.missingIndex} ELSE coalesce(nullif(list_position(${list}, ${t}), 0) - 1, ${f.otherIndex}) END)`
  if (c.kind === 'absent') return general
  // Fast path without per-record string copies: a value exactly equal to a category that trimming leaves
  // unchanged (every category of a valid spec) gets that category's (first) index, as the general rule would.
  const arms: string[] = []
  const seen = new Set<string>()
  f.categories.forEach((cat, i) => {
    if (cat !== '' && cat === trimWhitespace(cat) && !seen.has(cat)) arms.push(`WHEN ${sqlString(cat)} THEN ${i}`)
    seen.add(cat)
  })
  if (arms.length === 0) return general
  return `(CASE CAST(${c.sql} AS VARCHAR) ${arms.join(' ')} ELSE ${general} END)`
}

/** Score quality class: 0 valid, 1 missing, 2 not numeric, 3 not finite, 4 outside [0, 1]. */
export function scoreClassSql (c: ColumnExpr): { cls: string, value: string } {
  const n = numericSql(c)
  const cls = `(CASE WHEN ${n.isMissing} THEN 1 WHEN ${n.isNotNumeric} THEN 2 WHEN NOT isfinite(${n.value}) THEN 3 WHEN ${n.value} < 0 OR ${n.value} > 1 THEN 4 ELSE 0 END)`
  return { cls, value: n.value }
}

/**
 * Per-record fixed-point terms as BIGINT (each term < 2^31 at 2^24 scale; DuckDB sums BIGINT into a 128-bit
 * accumulator), NULL unless the record has a valid score `s` and a label class `y` in {0, 1}.
 */
export function lossTermsSql (s: string, y: string, scaleBits: number): { logLoss: string, brier: string } {
  const scale = sqlNumber(2 ** scaleBits)
  const eps = sqlNumber(LOG_LOSS_EPS)
  const p = `least(greatest(${s}, ${eps}), 1 - ${eps})`
  return {
    // one ln and one cast per record, the CASE only picks its argument (measured 2x cheaper than a CASE of casts)
    logLoss: `CAST(round(-ln(CASE WHEN ${y} = 1 THEN ${p} WHEN ${y} = 0 THEN 1 - ${p} END) * ${scale}) AS BIGINT)`,
    brier: `(CASE WHEN ${y} IN (0, 1) THEN CAST(round((${s} - ${y}) * (${s} - ${y}) * ${scale}) AS BIGINT) END)`
  }
}

/**
 * Fixed-point moment sums of a clamped value `v` (|v| ≤ 1e12): |v|·2^16 < 2^57 fits a BIGINT; v²·2^16 only
 * does below 2^23, so larger squares take a (slower, rare) HUGEINT path. The caller groups by `isNegative`:
 * `absolute` summed over the non-negative values is Σ round(max(v, 0)·2^16), over the negative ones
 * Σ round(max(−v, 0)·2^16) (abs(v) is exactly −v there), with one cast per record instead of two.
 */
export function momentTermsSql (v: string, scaleBits: number): { isNegative: string, absolute: string, squareSmall: string, squareLarge: string } {
  const scale = sqlNumber(2 ** scaleBits)
  const small = `abs(${v}) < ${sqlNumber(2 ** 23)}`
  return {
    isNegative: `(${v} < 0)`,
    absolute: `sum(CAST(round(abs(${v}) * ${scale}) AS BIGINT))`,
    // CASE, not FILTER, for both casts: DuckDB evaluates a FILTERed aggregate's input on every row, and the
    // HUGEINT cast of every record's square was most of the moments' cost (measured 28 ms → 11 ms per 1M records)
    squareSmall: `sum(CASE WHEN ${small} THEN CAST(round(${v} * ${v} * ${scale}) AS BIGINT) END)`,
    squareLarge: `sum(CASE WHEN NOT (${small}) THEN CAST(round(${v} * ${v} * ${scale}) AS HUGEINT) END)`
  }
}
