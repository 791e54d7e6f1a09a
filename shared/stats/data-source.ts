import { z } from 'zod'

/** Column names reach the scan's SQL, whose strings cannot hold NUL. */
const ColumnName = z.string().min(1).refine(c => !c.includes('\u0000'), 'must not contain a NUL character')

/**
 * The agent config's `data` section: where a site's prediction logs are and how their columns are named.
 * Format comes from the extension (.jsonl/.ndjson, .csv/.tsv, .parquet/.pq; optionally .gz/.zst) unless `format` is given.
 */
/**
 * The unit of numeric timestamps (epoch s, ms, µs or ns). `auto` (the default) reads each number by its
 * magnitude: [1e8, 1e11) seconds, [1e11, 1e14) milliseconds, [1e14, 1e17) microseconds, from 1e17 nanoseconds
 * (each range is 1973..5138 in its unit); smaller numbers are milliseconds (1970). ISO-8601 text is read as
 * written; without an offset it is UTC.
 */
export const TS_UNITS = ['auto', 's', 'ms', 'us', 'ns'] as const
export const TsUnit = z.enum(TS_UNITS, { error: `tsUnit must be one of ${TS_UNITS.join(', ')}` })
export type TsUnit = z.infer<typeof TsUnit>

export const DATA_FORMATS = ['jsonl', 'csv', 'parquet'] as const
const DataFormatName = z.enum(DATA_FORMATS, { error: `format must be one of ${DATA_FORMATS.join(', ')}` })

/**
 * `data.labels`: labels kept apart from the prediction logs (they often arrive days or weeks later), one record
 * per label: the prediction's id, the label, and when it was recorded. Read in place like the logs. The scan
 * joins them to the window's predictions by id (agent/scan.ts): per id the label record with the latest ts
 * wins, and a joined label overrides the prediction log's own label column.
 */
export const LabelSource = z.strictObject({
  path: z.string().min(1),
  format: DataFormatName.optional(),
  columns: z.strictObject({
    /** The prediction id the label belongs to (default `id`). */
    id: ColumnName.optional(),
    /** The label value (default `label`), read with the spec's label rules. */
    label: ColumnName.optional(),
    /** When the label was recorded (default `ts`): the latest wins; a label-refresh cutoff compares it. */
    ts: ColumnName.optional(),
    tsUnit: TsUnit.optional()
  }).optional()
})
export type LabelSource = z.infer<typeof LabelSource>

export const DataSource = z.strictObject({
  path: z.string().min(1),
  format: DataFormatName.optional(),
  columns: z.strictObject({
    /** The prediction id (default `id`): what a separate label source (`labels`) joins on. */
    id: ColumnName.optional(),
    ts: ColumnName.optional(),
    tsUnit: TsUnit.optional(),
    score: ColumnName.optional(),
    label: ColumnName.optional(),
    /** feature name → column. JSONL default: `features.NAME`; CSV/Parquet default: `NAME`. Dotted = nested. */
    features: z.record(z.string(), ColumnName).optional()
  }).optional(),
  labels: LabelSource.optional()
})
export type DataSource = z.infer<typeof DataSource>

export type DataFormat = 'jsonl' | 'csv' | 'parquet'

/** The format of `source`, from `format` or the path's extension; null when neither says. */
export function dataFormatOf (source: { path: string, format?: DataFormat }): DataFormat | null {
  if (source.format !== undefined) return source.format
  const p = source.path.toLowerCase().replace(/\.(gz|zst)$/, '')
  if (p.endsWith('.jsonl') || p.endsWith('.ndjson')) return 'jsonl'
  if (p.endsWith('.csv') || p.endsWith('.tsv')) return 'csv'
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet'
  return null
}
