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

export const DataSource = z.strictObject({
  path: z.string().min(1),
  format: z.enum(['jsonl', 'csv', 'parquet']).optional(),
  columns: z.strictObject({
    ts: ColumnName.optional(),
    tsUnit: TsUnit.optional(),
    score: ColumnName.optional(),
    label: ColumnName.optional(),
    /** feature name → column. JSONL default: `features.NAME`; CSV/Parquet default: `NAME`. Dotted = nested. */
    features: z.record(z.string(), ColumnName).optional()
  }).optional()
})
export type DataSource = z.infer<typeof DataSource>

export type DataFormat = 'jsonl' | 'csv' | 'parquet'

/** The format of `source`, from `format` or the path's extension; null when neither says. */
export function dataFormatOf (source: DataSource): DataFormat | null {
  if (source.format !== undefined) return source.format
  const p = source.path.toLowerCase().replace(/\.(gz|zst)$/, '')
  if (p.endsWith('.jsonl') || p.endsWith('.ndjson')) return 'jsonl'
  if (p.endsWith('.csv') || p.endsWith('.tsv')) return 'csv'
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet'
  return null
}
