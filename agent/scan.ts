/**
 * The agent's local scan: DuckDB reads the site's prediction logs in place (JSONL, CSV or Parquet), classifies
 * and bins every record of one window in SQL (GROUP BY bucket), and returns the u32 vector of the layout.
 * Bad records of the window are counted in explicit data-quality entries, never dropped and never fatal; an
 * unreadable file or a glob matching nothing is a FedmonError naming it. Records without a usable ts belong to
 * no window: they never reach the vector (see the window rule in shared/stats/layout.ts), only the local figure.
 *
 * Labels joined by prediction id (data.labels): label records are read into a table of one label per id (the
 * latest ts wins), which is LEFT JOINed to the window's predictions on the id. A joined label overrides the log's
 * own label column; a prediction without an id, or whose id has no label record, keeps its own. Labels only
 * attach to records of `w` (the window's), so the window rule holds; labels for ids no prediction has are only
 * a local figure. Without a label source the SQL is exactly the plain scan's (no id read, no join).
 */
import { accessSync, closeSync, constants as fsConstants, openSync, readSync } from 'node:fs'
import { gunzipSync, constants as zlibConstants } from 'node:zlib'
import { DuckDBInstance, type DuckDBConnection, type DuckDBType, DuckDBTypeId } from '@duckdb/node-api'
import { FedmonError } from '../shared/errors.js'
import type { MonitorSpec } from '../shared/stats/spec.js'
import { type Layout, COUNTERS, type CounterName, type FeatureLayout } from '../shared/stats/layout.js'
import type { TaskLayout } from '../shared/stats/tasks/index.js'
import { taskScanOf, taskScanOfSpec, taskColumnsOf } from './scan-tasks.js'
import { segmentsOf, cellSpecOf, type SegmentsLayout } from '../shared/stats/segments.js'
import { type DataSource, type DataFormat, type LabelSource, dataFormatOf } from '../shared/stats/data-source.js'
import { writeLimbs } from '../shared/stats/fixed-point.js'
import {
  type ColumnExpr, type ValueKind, type EpochUnit, sqlString, sqlIdent, sqlNumber, timestampPartsSql, epochMsSql, tsMagnitudeSql, idTextSql,
  AUTO_UNIT_OF_MAGNITUDE, scoreClassSql, labelClassSql, scoreBinSql, numericFeatureSql, categoricalFeatureSql, lossTermsSql, momentTermsSql
} from './scan-sql.js'

export class ScanError extends FedmonError {
  /**
   * The problem in words fit to leave the site (a signed decline): the file or column and the kind of problem,
   * never DuckDB's text, which may quote a data value. The message (for the local log) may.
   */
  readonly reason: string
  constructor (message: string, code: string, options?: { cause?: unknown, reason?: string }) {
    super(message, code, options)
    this.name = 'ScanError'
    this.reason = options?.reason ?? message
  }
}

export interface ScanOptions {
  spec: MonitorSpec
  layout: TaskLayout
  source: DataSource
  /** [from, to) in epoch milliseconds. */
  window: { from: number, to: number }
  signal?: AbortSignal
  /**
   * When to profile the timestamps of the whole source (one more pass over the files): `when-empty` (default)
   * only when no record falls in the window, to tell why; `always` for `fedmon check`.
   */
  profile?: 'always' | 'when-empty'
  /**
   * Epoch ms: count only the label source's labels recorded by then (label ts ≤ cutoff), for label-refresh
   * rounds that cut every site at the same instant. Applies when the label source has timestamps (some label
   * record has a ts value); then a label record without a usable ts does not count. Ignored without data.labels
   * (labels inside the logs carry no time of their own).
   */
  labelCutoff?: number
}

/** The label source (data.labels) as the scan read it: for the site's operator only, never sent. */
export interface LabelFigures {
  /** The label files the glob matched (none yet is no error: labels arrive late). */
  files: string[]
  /** Rows read from the label files. */
  records: number
  /** Label records without an id (or lines that are not JSON): ignored. */
  withoutId: number
  /** Label records with an id but an empty label: ignored (they say nothing). */
  withoutLabel: number
  /** Label records recorded after the label cutoff, or without a usable ts under one: ignored. */
  afterCutoff: number
  /** Distinct ids with a label (after the rules above). */
  ids: number
  /** Of those, ids with more than one label record (the latest ts won). */
  duplicateIds: number
  /** Of those, ids that no prediction record of the source has (in any window). Local only, never in the vector. */
  unknownIds: number
  /** The window's predictions that got a joined label. */
  joined: number
  /** The window's predictions without an id (they keep their own label, if any). */
  predictionsWithoutId: number
  /** Whether a label cutoff was applied (given, and the label source has timestamps). */
  cutoffApplied: boolean
}

/** The ts column over every record of the source (not only the window's): for the operator, never sent. */
export interface TimestampProfile {
  records: number
  /** Records with a usable (finite) ts, in any window. */
  usable: number
  /** Records without a ts value. */
  missing: number
  /** Records whose ts value is neither a number nor a timestamp (nor ISO-8601 text). */
  bad: number
  /** First and last usable ts (epoch ms), null when none. */
  first: number | null
  last: number | null
  /** Numeric ts values by magnitude: below 1e8, and those that look like epoch s, ms, µs and ns (tsMagnitudeSql). */
  magnitudes: { tiny: number, s: number, ms: number, us: number, ns: number }
}

/** Figures about the site's files that are for its own operator only: never in the vector, never sent. */
export interface LocalDataQuality {
  /** Records whose ts is missing or unparseable, and JSONL lines that are not a JSON object: in no window. */
  recordsWithoutTimestamp: number
  /** Records whose ts falls in the window, valid or not (the agent's policy.minRecords is checked against it). */
  recordsInWindow: number
  /**
   * CSV rows that are not well-formed CSV (an unterminated quote, invalid UTF-8): each is a record without a usable
   * ts (counted in recordsWithoutTimestamp too), and the rows around it are read as usual.
   */
  malformedRows: number
  /** How the window's numeric timestamps were read: records per unit (data.columns.tsUnit, or detected by `auto`). */
  tsUnits: Partial<Record<EpochUnit, number>>
  /** The whole source's timestamps (ScanOptions.profile), or undefined when not profiled. */
  timestamps?: TimestampProfile
  /** The label source's figures; undefined without data.labels. */
  labels?: LabelFigures
}

export interface ScanResult {
  /** The window's vector for the layout: the only thing that leaves the site (masked). */
  vector: Uint32Array
  local: LocalDataQuality
}

/** Scans the source's files for one window and returns this agent's vector for the layout. */
export async function scanWindow (opts: ScanOptions): Promise<Uint32Array> {
  return (await scanWindowDetailed(opts)).vector
}

/** scanWindow plus the local data-quality figures (logged by the agent, shown by `fedmon evaluate`). */
export async function scanWindowDetailed (opts: ScanOptions): Promise<ScanResult> {
  const { spec, layout, source, window, signal } = opts
  signal?.throwIfAborted()
  if (!(window.from < window.to)) throw new ScanError(`empty window: from ${window.from} must be before to ${window.to}`, 'ERR_SCAN_WINDOW')
  const format = dataFormatOf(source)
  if (format === null) throw new ScanError(`cannot tell the data format of ${source.path}: use .jsonl, .csv or .parquet, or set data.format`, 'ERR_SCAN_FORMAT')
  const labelFormat = source.labels !== undefined ? labelFormatOf(source.labels) : null
  if (source.labels !== undefined && taskScanOf(layout) !== null) throw new ScanError(`data.labels joins binary labels only: a ${spec.task ?? 'binary'} spec reads its truth from the logs' own column (data.columns.label)`, 'ERR_SCAN_TASK_LABELS')
  if (opts.labelCutoff !== undefined && !Number.isFinite(opts.labelCutoff)) throw new ScanError(`label cutoff must be a finite epoch-ms instant, got ${opts.labelCutoff}`, 'ERR_SCAN_LABEL_CUTOFF')

  const instance = await DuckDBInstance.create(':memory:', { threads: '2' })
  const conn = await instance.connect()
  const onAbort = (): void => { conn.interrupt() }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    await conn.run("SET TimeZone = 'UTC'")
    await conn.run('SET preserve_insertion_order = false') // parallel, unordered temp-table writes
    const files = await listFiles(conn, source.path)
    const labels = source.labels !== undefined && labelFormat !== null ? await readLabels(conn, spec, source.labels, labelFormat, opts.labelCutoff) : null
    signal?.throwIfAborted()
    const read = await materialize(conn, { spec, layout, source, format, files, window, joinLabels: labels !== null })
    signal?.throwIfAborted()
    try {
      const result = await aggregate(conn, spec, layout, signal)
      result.local.malformedRows = read.malformedRows
      result.local.tsUnits = await tsUnitsOf(conn, source)
      if (opts.profile === 'always' || result.local.recordsInWindow === 0) result.local.timestamps = await profileTimestamps(conn, read.sql)
      if (labels !== null && read.idsSql !== null) result.local.labels = await joinFigures(conn, labels, read.idsSql)
      return result
    } catch (err) {
      // Parquet is read by the aggregate queries themselves (`w` is a view): a damaged page fails there
      if (format === 'parquet' && !(err instanceof FedmonError) && signal?.aborted !== true) throw readError(source, files, err)
      throw err
    }
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason
    if (err instanceof FedmonError) throw err
    throw new ScanError(`scan of ${source.path} failed: ${firstLine(err)}`, 'ERR_SCAN', { cause: err, reason: `the scan of ${source.path} failed (${errorKind(err)}; details in the agent's log)` })
  } finally {
    signal?.removeEventListener('abort', onAbort)
    conn.closeSync()
    instance.closeSync()
  }
}

/**
 * Checks that the source names a known format and that its glob matches readable files; returns them.
 * The agent calls it at start so a wrong `data.path` is one clear error then, not a failed round later.
 */
export async function checkDataSource (source: DataSource): Promise<string[]> {
  if (dataFormatOf(source) === null) throw new ScanError(`cannot tell the data format of ${source.path}: use .jsonl, .csv or .parquet, or set data.format`, 'ERR_SCAN_FORMAT')
  if (source.labels !== undefined) labelFormatOf(source.labels) // label files may not exist yet: only the format is checked
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' })
  const conn = await instance.connect()
  try {
    return await listFiles(conn, source.path)
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

async function listFiles (conn: DuckDBConnection, pattern: string): Promise<string[]> {
  let files: string[]
  try {
    const r = await conn.runAndReadAll(`SELECT file FROM glob(${sqlString(pattern)}) ORDER BY file`)
    files = r.getRows().map(row => String(row[0]))
  } catch (err) {
    throw new ScanError(`cannot list data files ${pattern}: ${firstLine(err)}`, 'ERR_SCAN_GLOB', { cause: err })
  }
  if (files.length === 0) throw new ScanError(`no data file matches ${pattern}`, 'ERR_SCAN_NO_FILES')
  for (const f of files) {
    try {
      accessSync(f, fsConstants.R_OK)
    } catch (err) {
      throw new ScanError(`cannot read data file ${f}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`, 'ERR_SCAN_READ', { cause: err })
    }
  }
  return files
}

/** A column path: the whole string when the file has that column, else its dot-separated parts. */
type ColumnPath = string[]

/** `outputs`: the task's output columns when it has several (multiclass: one per class), read instead of `score`. */
interface Paths { ts: ColumnPath, score: ColumnPath, outputs: ColumnPath[] | null, label: ColumnPath, id: ColumnPath, features: Map<string, ColumnPath>, segments: ColumnPath[] }

function columnPaths (spec: MonitorSpec, source: DataSource, format: DataFormat): Paths {
  const cols = source.columns
  const one = (mapped: string | undefined, fallback: string): ColumnPath => [mapped ?? fallback]
  const features = new Map<string, ColumnPath>()
  for (const name of Object.keys(spec.features)) {
    const mapped = cols?.features?.[name] ?? spec.features[name].column
    features.set(name, mapped !== undefined ? [mapped] : format === 'jsonl' ? ['features', name] : [name])
  }
  // the task's two roles: the model's output (binary: score) and the truth (binary: label), mapped by the site
  const roles = taskColumnsOf(spec)
  const score = one(cols?.score, roles.output)
  const outputs = taskScanOfSpec(spec)?.outputPaths?.(spec, score[0]) ?? null
  // a segment column that is one of the spec's features is read as that feature (the site's mapping applies);
  // any other by its name, as the site's records have it
  const segments = (spec.segments ?? []).map(s => features.get(s.column) ?? [s.column])
  return { ts: one(cols?.ts, 'ts'), score, outputs, label: one(cols?.label, roles.truth), id: one(cols?.id, 'id'), features, segments }
}

/** The columns a materialisation reads: the prediction id only when labels are joined (else it costs a column). */
function readColumnPaths (paths: Paths, joinLabels: boolean): ColumnPath[] {
  return [paths.ts, ...(paths.outputs ?? [paths.score]), paths.label, ...(joinLabels ? [paths.id] : []), ...paths.features.values(), ...paths.segments]
}

/** The columns a scan reads for `spec` from `source`, as the site names them (dotted = nested), for messages. */
export function columnNamesFor (spec: MonitorSpec, source: DataSource): { ts: string, score: string, label: string, id: string, features: Map<string, string> } {
  const paths = columnPaths(spec, source, dataFormatOf(source) ?? 'jsonl')
  // several output columns (multiclass per-class columns): named together
  const score = paths.outputs !== null && paths.outputs.some(p => p.length === 1) ? paths.outputs.map(p => p.join('.')).join(', ') : paths.score.join('.')
  return { ts: paths.ts.join('.'), score, label: paths.label.join('.'), id: paths.id.join('.'), features: new Map([...paths.features].map(([k, v]) => [k, v.join('.')])) }
}

interface Columns { names: string[], types: DuckDBType[] }

/** Resolves a path against the reader's columns into an SQL expression and the kind of values it yields. */
function resolveColumn (columns: Columns, path: ColumnPath): ColumnExpr {
  const whole = path.length === 1 ? path[0] : path.join('.')
  // a path of several parts keeps its parts (a key may hold dots: a class name inside a scores object); only its
  // first part is a column name that may be dotted (nested)
  const parts = columns.names.includes(whole) ? [whole] : path.length > 1 ? (columns.names.includes(path[0]) ? path : [...path[0].split('.'), ...path.slice(1)]) : whole.split('.')
  let idx = columns.names.indexOf(parts[0])
  if (idx < 0) return { sql: 'NULL', kind: 'absent' }
  let type = columns.types[idx]
  let sql = sqlIdent(parts[0])
  for (let i = 1; i < parts.length; i++) {
    if (type.typeId === DuckDBTypeId.STRUCT) {
      idx = type.entryNames.indexOf(parts[i])
      if (idx < 0) return { sql: 'NULL', kind: 'absent' }
      sql = `struct_extract(${sql}, ${sqlString(parts[i])})`
      type = type.entryTypes[idx]
    } else if (type.typeId === DuckDBTypeId.MAP) {
      // a Parquet map (e.g. {class: probability}): the key's value, NULL when the record has no such key
      sql = `map_extract_value(${sql}, ${sqlString(parts[i])})`
      type = type.valueType
    } else if (type.typeId === DuckDBTypeId.VARCHAR && type.alias === 'JSON') {
      // the rest of the path addresses inside the JSON value; ->> yields its text (NULL when absent)
      return { sql: `json_extract_string(${sql}, ${sqlString(jsonPathOf(parts.slice(i)))})`, kind: 'text' }
    } else if (type.typeId === DuckDBTypeId.VARCHAR) {
      // text holding a JSON object (a CSV cell): inside it when it is JSON, else NULL (missing)
      return { sql: `json_extract_string(TRY_CAST(${sql} AS JSON), ${sqlString(jsonPathOf(parts.slice(i)))})`, kind: 'text' }
    } else {
      return { sql: 'NULL', kind: 'absent' }
    }
  }
  // a JSON value (DuckDB's type for mixed-type fields): its text, strings unquoted
  if (type.typeId === DuckDBTypeId.VARCHAR && type.alias === 'JSON') return { sql: `json_extract_string(${sql}, '$')`, kind: 'text' }
  return { sql, kind: kindOf(type) }
}

/** A JSON path of object keys, each quoted (keys may hold dots, quotes or backslashes). */
function jsonPathOf (keys: string[]): string {
  return '$' + keys.map(k => `."${k.replace(/["\\]/g, m => '\\' + m)}"`).join('')
}

function kindOf (type: DuckDBType): ValueKind {
  switch (type.typeId) {
    case DuckDBTypeId.TINYINT: case DuckDBTypeId.SMALLINT: case DuckDBTypeId.INTEGER: case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UTINYINT: case DuckDBTypeId.USMALLINT: case DuckDBTypeId.UINTEGER: case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT: case DuckDBTypeId.UHUGEINT: case DuckDBTypeId.FLOAT: case DuckDBTypeId.DOUBLE: case DuckDBTypeId.DECIMAL:
      return 'number'
    case DuckDBTypeId.BOOLEAN: return 'bool'
    case DuckDBTypeId.TIMESTAMP: case DuckDBTypeId.TIMESTAMP_S: case DuckDBTypeId.TIMESTAMP_MS: case DuckDBTypeId.TIMESTAMP_NS:
    case DuckDBTypeId.TIMESTAMP_TZ: case DuckDBTypeId.DATE:
      return 'timestamp'
    case DuckDBTypeId.SQLNULL: return 'absent'
    default: return 'text' // VARCHAR, JSON, ENUM, and anything else compared by its text
  }
}

/** Types DuckDB's JSON reader guesses from the text of strings. */
const GUESSED_FROM_STRINGS = new Set<DuckDBTypeId>([
  DuckDBTypeId.DATE, DuckDBTypeId.TIME, DuckDBTypeId.TIME_TZ, DuckDBTypeId.TIMESTAMP, DuckDBTypeId.TIMESTAMP_S,
  DuckDBTypeId.TIMESTAMP_MS, DuckDBTypeId.TIMESTAMP_NS, DuckDBTypeId.TIMESTAMP_TZ, DuckDBTypeId.INTERVAL, DuckDBTypeId.UUID
])

/**
 * The type to read an inferred JSONL column with. DuckDB guesses dates in strings: a score "-Infinity" reads as
 * DATE '-infinity' when it is the only score in the file (not numeric), but as text when numbers share the
 * column (not finite) — a record's class must not depend on the other records of the file (nor on records
 * outside the window). So every field but the ts reads as text where DuckDB guessed such a type, exactly as
 * the text reader reads it.
 */
function readTypeOf (type: DuckDBType, isTs: boolean): string {
  if (!isTs && GUESSED_FROM_STRINGS.has(type.typeId)) return 'VARCHAR'
  if (type.typeId === DuckDBTypeId.STRUCT) return `STRUCT(${type.entryNames.map((n, i) => `${sqlIdent(n)} ${readTypeOf(type.entryTypes[i], false)}`).join(', ')})`
  return type.toString()
}

interface MaterializeOpts { spec: MonitorSpec, layout: TaskLayout, source: DataSource, format: DataFormat, files: string[], window: { from: number, to: number }, joinLabels: boolean }

/**
 * Defines `w`: one row per record that is in the window or has no usable ts, with its classes, bins and clamped
 * values. JSONL and CSV are parsed once into a compact temp table (re-parsing them per query costs far more).
 * Parquet stays a view: each aggregate query reads only the columns it needs and computes only its own
 * expressions, and no query repeats another's, so materialising would only add the table write (measured on
 * 1M records: view 0.57 s CPU vs table 0.68 s). JSONL is first read with DuckDB's type inference (fast); if a later
 * record contradicts the inferred types, it is re-read with every field as text, which never fails on a
 * well-formed line.
 */
interface Materialized {
  /** Every record of the source, read and classed (`reading`). */
  sql: string
  malformedRows: number
  /** With labels joined: the prediction ids of every record of the source (only that column is read). */
  idsSql: string | null
}

async function materialize (conn: DuckDBConnection, o: MaterializeOpts): Promise<Materialized> {
  const fileList = `[${o.files.map(sqlString).join(', ')}]`
  const paths = columnPaths(o.spec, o.source, o.format)
  // `complete`: use this reader only if it has every column the spec needs (an inferred JSON schema may miss a key
  // that first appears after DuckDB's sample; the text reader then extracts it from every record)
  const readers: Array<{ sql: string, complete: boolean }> = []
  if (o.format === 'parquet') readers.push({ sql: `read_parquet(${fileList}, union_by_name = true)`, complete: false })
  else if (o.format === 'csv') readers.push({ sql: `read_csv(${fileList}, header = true, all_varchar = true, union_by_name = true, ${csvDialect(o.source.path)})`, complete: false })
  else {
    // A UTF-8 BOM: read_json refuses the file (duckdb#16568) and its ignore_errors pass would lose the first
    // record, so such files are read line by line (BOM skipped; ~3x slower, so only then). A zstd file's first
    // bytes cannot be checked without decompressing it (no zstd in Node 20): line by line if the fast readers fail.
    const boms = o.files.map(leadingBom)
    const hasBom = boms.includes('bom')
    // DuckDB infers the types from a sample; passing the needed columns with those types explicitly reads
    // faster than letting it re-infer (measured 1.26 s → 0.75 s per 1M records).
    const inferred = hasBom ? null : await describe(conn, `read_json(${fileList}, format = 'newline_delimited')`).catch(() => null) // malformed: the text reader reports it
    if (inferred !== null) {
      const needed = new Set(readColumnPaths(paths, o.joinLabels).map(p => (inferred.names.includes(p.join('.')) ? p.join('.') : (p.length > 1 ? p[0] : p[0].split('.')[0]))))
      const cols = inferred.names.map((n, i) => [n, inferred.types[i]] as const).filter(([n]) => needed.has(n))
      const tsColumn = paths.ts.join('.')
      if (cols.length > 0) readers.push({ sql: `read_json(${fileList}, format = 'newline_delimited', columns = {${cols.map(([n, t]) => `${sqlString(n)}: ${sqlString(readTypeOf(t, n === tsColumn))}`).join(', ')}})`, complete: true })
    }
    // records = true: a line that is valid JSON but no object (`[1]`, `42`) must not switch the reader to
    // reading whole values into the first column (records = 'auto' does), which left every record without a ts.
    const columns = `columns = ${sqlColumns(robustJsonColumns(paths, o.joinLabels))}, records = true`
    if (!hasBom) readers.push({ sql: `read_json(${fileList}, format = 'newline_delimited', ${columns})`, complete: false })
    if (hasBom || boms.includes('unknown')) readers.push({ sql: jsonLinesReader(fileList, paths, o.joinLabels), complete: false })
    // Last resort for lines that are not JSON (e.g. a torn last line of a log being written): DuckDB then yields
    // an all-NULL row for each, so they are counted as records without a usable ts instead of failing the scan.
    readers.push({ sql: `read_json(${fileList}, format = 'newline_delimited', ${columns}, ignore_errors = true)`, complete: false })
  }
  let lastErr: unknown
  for (const reader of readers) {
    try {
      await conn.run('DROP TABLE IF EXISTS w')
      const columns = await describe(conn, reader.sql)
      if (reader.complete && readColumnPaths(paths, o.joinLabels).some(p => resolveColumn(columns, p).kind === 'absent')) continue
      const reading = readingSql(o, paths, reader.sql, columns)
      // with a join, a view would redo it in every aggregate query: a table joins once
      // (a task whose queries each reread many columns, multiclass's K probabilities, reads them once into a table;
      // so does a segmented layout, read once per cell: shared/stats/segments.ts; and a spec with more than 4
      // features, one query each: 20 features over 1M Parquet records, 5.5 s as a view → 2.6 s as a table)
      await conn.run(`CREATE TEMP ${o.format === 'parquet' && !o.joinLabels && taskScanOf(o.layout)?.readOnce !== true && segmentsOf(o.layout) === null && o.layout.features.length <= 4 ? 'VIEW' : 'TABLE'} w AS ${windowSql(o, reading)}`)
      return { sql: reading, malformedRows: 0, idsSql: o.joinLabels ? idsSql(reader.sql, columns, paths) : null }
    } catch (err) {
      lastErr = err
    }
  }
  if (o.format === 'csv') {
    // A malformed row (an unterminated quote swallows the rest of the file, invalid UTF-8) fails DuckDB's CSV
    // reader for the whole file: read it again line by line, each malformed row one record without a ts.
    try {
      const { sql, malformedRows } = await csvLinesReader(conn, o.files, o.source.path)
      const columns = await describe(conn, sql)
      const reading = readingSql(o, paths, sql, columns)
      await conn.run('DROP TABLE IF EXISTS w')
      await conn.run(`CREATE TEMP TABLE w AS ${windowSql(o, reading)}`)
      return { sql: reading, malformedRows, idsSql: o.joinLabels ? idsSql(sql, columns, paths) : null }
    } catch (err) {
      lastErr = err
    }
  }
  throw readError(o.source, o.files, lastErr)
}

function readError (source: DataSource, files: string[], cause: unknown): ScanError {
  const text = firstLine(cause)
  // DuckDB usually names the file it failed on; else all of them are named
  const named = files.find(f => text.includes(f))
  const format = { jsonl: 'JSON lines', csv: 'CSV', parquet: 'Parquet' }[dataFormatOf(source) ?? 'jsonl']
  const which = named !== undefined ? `data file ${named}` : files.length === 1 ? `data file ${files[0]}` : `data files ${source.path} (${files.length} files)`
  return new ScanError(`cannot read data files ${source.path} (${files.join(', ').slice(0, 500)}): ${text}`, 'ERR_SCAN_READ', {
    cause,
    reason: `${which} cannot be read as ${format} (${errorKind(cause)}; details in the agent's log)`
  })
}

/** DuckDB's error class ("Invalid Input Error", "IO Error"…) without its text: it may quote data. */
function errorKind (err: unknown): string {
  const kind = /^([A-Z][A-Za-z ]{0,40} Error):/.exec(firstLine(err))?.[1]
  return kind ?? 'error'
}

/**
 * The CSV dialect, fixed rather than sniffed: DuckDB's sniffer, given one row with a wrong number of fields,
 * falls back to a one-column dialect and every record of the file silently loses its columns. Short rows are
 * padded with NULLs (their missing fields are counted as missing); an unterminated quote refuses the file.
 */
function csvDialect (path: string): string {
  const p = path.toLowerCase().replace(/\.(gz|zst)$/, '')
  const delim = p.endsWith('.tsv') ? "delim = '\\t', " : p.endsWith('.csv') ? "delim = ',', " : '' // other names: sniff the delimiter
  return `${delim}quote = '"', escape = '"', null_padding = true`
}

/** Longest CSV line the line-by-line reading takes (read_csv's own default); a longer one is a malformed row. */
const MAX_CSV_LINE_BYTES = 2 * 1024 * 1024

/** No delimiter, in effect, for reading whole lines: a line holding this sequence is a malformed row. */
const LINE_DELIMITER = '\u0001\u0002\u0003\u0004'

/** The delimiter of a CSV file for the line-by-line reading: by extension, else the most frequent in the header. */
function csvDelimiter (path: string, header: string): string {
  const p = path.toLowerCase().replace(/\.(gz|zst)$/, '')
  if (p.endsWith('.tsv')) return '\t'
  if (p.endsWith('.csv')) return ','
  const counts = [',', '\t', ';', '|'].map(d => [d, header.split(d).length] as const)
  return counts.reduce((a, b) => (b[1] > a[1] ? b : a))[0]
}

/**
 * CSV line by line, for files DuckDB's CSV reader refuses: each physical line that is a well-formed CSV record by
 * itself (RFC 4180 quoting, no field spanning lines) gives its fields; any other line (an unterminated quote,
 * invalid UTF-8, a line longer than MAX_CSV_LINE_BYTES) gives a row of NULLs, i.e. a record without a usable ts.
 * Fields match the strict reader: empty unquoted → NULL, `""` → empty text, doubled quotes undone; short rows are
 * padded with NULLs, extra fields ignored; files are united by column name. A quoted field spanning lines,
 * which the strict reader takes, is malformed here (only files with some malformed row are read this way).
 * Returns the reader and the number of malformed rows.
 */
async function csvLinesReader (conn: DuckDBConnection, files: string[], path: string): Promise<{ sql: string, malformedRows: number }> {
  // delim '' would be NUL, splitting lines at NUL bytes (data in a quoted field): a 4-byte control sequence instead
  const lines = (file: string, skip: number): string => `read_csv(${sqlString(file)}, columns = {'line': 'VARCHAR'}, header = false, delim = ${sqlString(LINE_DELIMITER)}, quote = '', escape = '',
    auto_detect = false, skip = ${skip}, max_line_size = ${MAX_CSV_LINE_BYTES}, store_rejects = true, rejects_table = 'fedmon_csv_rejects', rejects_scan = 'fedmon_csv_scans')`
  const rtrimCr = (x: string): string => `rtrim(${x}, chr(13))`
  const headers: string[][] = []
  const delims: string[] = []
  await conn.run('SET preserve_insertion_order = true') // LIMIT 1 is the file's first line
  try {
    for (const file of files) {
      const first = (await conn.runAndReadAll(`SELECT ${rtrimCr('line')} FROM ${lines(file, 0)} LIMIT 1`)).getRows()
      const header = first.length > 0 && first[0][0] !== null ? String(first[0][0]) : ''
      const delim = csvDelimiter(path, header)
      delims.push(delim)
      headers.push(header === '' ? [] : splitCsvHeader(header, delim))
    }
  } finally {
    await conn.run('SET preserve_insertion_order = false')
  }
  const names = [...new Set(headers.flat())]
  await conn.run('DROP TABLE IF EXISTS fedmon_csv_rows')
  await conn.run(`CREATE TEMP TABLE fedmon_csv_rows (${names.map(n => `${sqlIdent(n)} VARCHAR`).concat(['fedmon_malformed BOOLEAN']).join(', ')})`)
  let malformedRows = 0
  for (const [k, file] of files.entries()) {
    if (headers[k].length === 0) continue
    const d = delims[k].replace(/[|\\.^$*+?()[\]{}]/g, m => '\\' + m)
    const field = `"(?:[^"]|"")*"|[^"${d}][^${d}]*|`
    const valid = `regexp_full_match(line, ${sqlString(`(?:${field})(?:${d}(?:${field}))*`)})`
    const fields = `regexp_extract_all(line || ${sqlString(delims[k])}, ${sqlString(`(${field})${d}`)}, 1)`
    const unquote = (f: string): string => `(CASE WHEN ${f} = '' THEN NULL WHEN starts_with(${f}, '"') THEN replace(${f}[2:-2], '""', '"') ELSE ${f} END)`
    const select = names.map((n) => {
      const i = headers[k].indexOf(n)
      return i < 0 ? `NULL AS ${sqlIdent(n)}` : `${unquote(`f[${i + 1}]`)} AS ${sqlIdent(n)}`
    })
    await conn.run('DROP TABLE IF EXISTS fedmon_csv_rejects; DROP TABLE IF EXISTS fedmon_csv_scans')
    await conn.run(`INSERT INTO fedmon_csv_rows SELECT ${select.join(', ')}, f IS NULL FROM (
        SELECT CASE WHEN ${valid} THEN ${fields} END AS f FROM (SELECT ${rtrimCr('line')} AS line FROM ${lines(file, 1)}) WHERE line <> '')`)
    // Lines the line reader itself rejects (invalid UTF-8, too long): one malformed row each
    const rejected = Number((await conn.runAndReadAll('SELECT count(DISTINCT line) FROM fedmon_csv_rejects')).getRows()[0][0])
    if (rejected > 0) await conn.run(`INSERT INTO fedmon_csv_rows (fedmon_malformed) SELECT true FROM range(${rejected})`)
  }
  malformedRows = Number((await conn.runAndReadAll('SELECT count(*) FROM fedmon_csv_rows WHERE fedmon_malformed')).getRows()[0][0])
  return { sql: `(SELECT * EXCLUDE (fedmon_malformed) FROM fedmon_csv_rows)`, malformedRows }
}

/** The column names of a CSV header line (quotes undone); the header must be well-formed. */
function splitCsvHeader (line: string, delim: string): string[] {
  const out: string[] = []
  let i = 0
  while (i <= line.length) {
    let value = ''
    if (line[i] === '"') {
      i++
      while (i < line.length && !(line[i] === '"' && line[i + 1] !== '"')) { value += line[i]; i += line[i] === '"' ? 2 : 1 }
      i++
    } else {
      const end = line.indexOf(delim, i)
      value = line.slice(i, end < 0 ? line.length : end)
      i = end < 0 ? line.length : end
    }
    out.push(value)
    i += delim.length
    if (i > line.length) break
  }
  return out
}

/** Top-level JSON keys and their types for the robust passes: leaves as VARCHAR, parents of nested paths as JSON. */
function robustJsonColumns (paths: Paths, joinLabels: boolean): Map<string, 'VARCHAR' | 'JSON'> {
  const cols = new Map<string, 'VARCHAR' | 'JSON'>()
  const add = (p: ColumnPath): void => {
    const parts = p.length > 1 ? p : p[0].split('.')
    if (parts.length === 1) { if (!cols.has(parts[0])) cols.set(parts[0], 'VARCHAR') } else cols.set(parts[0], 'JSON')
  }
  for (const p of readColumnPaths(paths, joinLabels)) add(p)
  return cols
}

const sqlColumns = (cols: Map<string, string>): string => `{${[...cols].map(([k, t]) => `${sqlString(k)}: ${sqlString(t)}`).join(', ')}}`

/** Longest JSONL line read, as read_json's default maximum_object_size (read_csv's own default is 2 MB). */
const MAX_JSON_LINE_BYTES = 16 * 1024 * 1024

/**
 * JSONL line by line through DuckDB's CSV reader (no delimiter, no quoting), which skips a leading UTF-8 BOM.
 * It yields the robust reader's columns with its meaning: a line that is not a JSON object gives an all-NULL row
 * (as read_json's ignore_errors does), a blank line no row, a leaf its text (strings unquoted), a parent its JSON.
 */
function jsonLinesReader (fileList: string, paths: Paths, joinLabels: boolean): string {
  const select = [...robustJsonColumns(paths, joinLabels)].map(([key, type]) =>
    `${type === 'JSON' ? 'json_extract' : 'json_extract_string'}(j, ${sqlString(jsonPathOf([key]))}) AS ${sqlIdent(key)}`)
  const blank = "chr(32) || chr(9) || chr(13)" // JSON whitespace on a line (the \n ends it)
  return `(SELECT ${select.join(', ')} FROM (
      SELECT CASE WHEN json_valid(line) THEN (CASE WHEN json_type(line) = 'OBJECT' THEN CAST(line AS JSON) END) END AS j
      FROM read_csv(${fileList}, columns = {'line': 'VARCHAR'}, header = false, delim = '', quote = '', escape = '',
        auto_detect = false, max_line_size = ${MAX_JSON_LINE_BYTES}, buffer_size = ${2 * MAX_JSON_LINE_BYTES})
      WHERE trim(line, ${blank}) <> ''))`
}

/** Whether a data file's content starts with a UTF-8 BOM; 'unknown' when that needs a decompressor we lack (zstd). */
function leadingBom (file: string): 'bom' | 'none' | 'unknown' {
  const isBom = (b: Buffer): boolean => b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf
  let head: Buffer
  try {
    const fd = openSync(file, 'r')
    try {
      head = Buffer.alloc(4096)
      head = head.subarray(0, readSync(fd, head, 0, head.length, 0))
    } finally {
      closeSync(fd)
    }
  } catch {
    return 'unknown' // DuckDB's read then names the problem
  }
  if (head[0] === 0x1f && head[1] === 0x8b) { // gzip: inflate what the first block gives
    try {
      return isBom(gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH })) ? 'bom' : 'none'
    } catch {
      return 'unknown'
    }
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'unknown' // zstd frame
  return isBom(head) ? 'bom' : 'none'
}

async function describe (conn: DuckDBConnection, reader: string): Promise<Columns> {
  const r = await conn.run(`SELECT * FROM ${reader} LIMIT 0`)
  return { names: r.columnNames(), types: r.columnTypes() }
}

/**
 * One row per record of the source (every window), with its ts in epoch ms (`ts_ms`, NULL or not finite when
 * unusable), the ts's magnitude class (`ts_mag`), whether its ts is missing, and its classes and bins.
 */
function readingSql (o: MaterializeOpts, paths: Paths, reader: string, columns: Columns): string {
  const ts = timestampPartsSql(resolveColumn(columns, paths.ts))
  const outputs = paths.outputs?.map(p => resolveColumn(columns, p))
  const inner: string[] = [`${ts.number} AS ts_num`, `${ts.instant} AS ts_instant`, `${ts.missing} AS ts_missing`, ...taskRecordSql(o, resolveColumn(columns, paths.score), resolveColumn(columns, paths.label), outputs)]
  if (o.joinLabels) inner.push(`${idTextSql(resolveColumn(columns, paths.id))} AS pred_id`)
  const taskValues = taskScanOf(o.layout)?.numericValues(o.layout) ?? []
  const rolePaths = { output: paths.score, truth: paths.label }
  for (const [i, f] of binnedLayouts(o.layout).entries()) {
    const own = taskValues.find(v => v.layout === f)
    const col = resolveColumn(columns, own !== undefined ? rolePaths[own.role] : paths.features.get(f.name) ?? [f.name])
    if (f.type === 'numeric') {
      const { bucket, value } = numericFeatureSql(f, col)
      inner.push(`${bucket} AS fb${i}`)
      if (value !== null) inner.push(`${value} AS fv${i}`)
    } else {
      inner.push(`${categoricalFeatureSql(f, col)} AS fb${i}`)
    }
  }
  // per segment column, the record's cell: the declared value's index, or values.length (`other`, missing too)
  for (const [k, c] of (segmentsOf(o.layout)?.columns ?? []).entries()) {
    const n = c.values.length
    const cell = categoricalFeatureSql({ name: c.column, type: 'categorical', offset: 0, categories: c.values, otherIndex: n, missingIndex: n, length: n + 1 }, resolveColumn(columns, paths.segments[k]))
    inner.push(`CAST(${cell} AS USMALLINT) AS ${SEGMENT_COLUMN_PREFIX}${k}`)
  }
  const unit = o.source.columns?.tsUnit ?? 'auto'
  return `(SELECT COALESCE(${epochMsSql('ts_num', unit)}, ts_instant) AS ts_ms, ${tsMagnitudeSql('ts_num')} AS ts_mag, * EXCLUDE (ts_num, ts_instant)
    FROM (SELECT ${inner.join(',\n      ')} FROM ${reader}))`
}

/** The task's per-record classes (binary: score class and value, label class; other tasks: agent/scan-tasks.ts). */
function taskRecordSql (o: MaterializeOpts, output: ColumnExpr, truth: ColumnExpr, outputs?: ColumnExpr[]): string[] {
  const taskScan = taskScanOf(o.layout)
  if (taskScan !== null) return taskScan.recordSql(o.spec, o.layout, output, truth, outputs)
  const score = scoreClassSql(output)
  return [`${score.cls} AS score_class`, `${score.value} AS s_raw`, `${labelClassSql(o.spec, truth)} AS label_class`]
}

/** The segments binned per record (fb*, fv*): the features, then the task's own values binned like numeric features. */
function binnedLayouts (layout: TaskLayout): FeatureLayout[] {
  return [...layout.features, ...(taskScanOf(layout)?.numericValues(layout).map(v => v.layout) ?? [])]
}

const HAS_TS = 'ts_ms IS NOT NULL AND isfinite(ts_ms)'

/**
 * The SELECT behind `w`: the records that are in the window or have no usable ts. With labels joined, each
 * record's label class is its joined label's when its id has one (`fedmon_labels`, one row per id), else its own;
 * `joined` and `without_id` say which, for the local figures.
 */
function windowSql (o: MaterializeOpts, reading: string): string {
  // s and fv* are NULL outside the window (records without ts), so plain sums over `w` need no filter
  const summed = binnedLayouts(o.layout).flatMap((f, i) => (f.type === 'numeric' && f.moments.kind !== 'off' ? [i] : []))
  const values = summed.map(i => `CASE WHEN ${HAS_TS} THEN fv${i} END AS fv${i}`)
  const inWindow = `NOT (${HAS_TS}) OR (ts_ms >= ${sqlNumber(o.window.from)} AND ts_ms < ${sqlNumber(o.window.to)})`
  const taskScan = taskScanOf(o.layout)
  if (taskScan !== null) { // another task's classes (no label join: scanWindowDetailed refuses data.labels for it)
    const excludedColumns = ['ts_ms', 'ts_missing', ...taskScan.recordColumns, ...summed.map(i => `fv${i}`)]
    return `SELECT (${HAS_TS}) AS has_ts, ${[...taskScan.windowSql(HAS_TS), ...values, `* EXCLUDE (${excludedColumns.join(', ')})`].join(', ')}
    FROM ${reading}
    WHERE ${inWindow}`
  }
  const excluded = ['ts_ms', 'ts_missing', 'score_class', 's_raw', 'label_class', ...(o.joinLabels ? ['pred_id'] : []), ...summed.map(i => `fv${i}`)]
  if (!o.joinLabels) {
    return `SELECT (${HAS_TS}) AS has_ts, score_class, CASE WHEN score_class = 0 AND ${HAS_TS} THEN s_raw END AS s, label_class,
      ${[...values, `* EXCLUDE (${excluded.join(', ')})`].join(', ')}
    FROM ${reading}
    WHERE ${inWindow}`
  }
  // the window filter first, then the join: only the window's records meet the labels
  return `SELECT (${HAS_TS}) AS has_ts, score_class, CASE WHEN score_class = 0 AND ${HAS_TS} THEN s_raw END AS s,
      coalesce(fedmon_labels.label_class, r.label_class) AS label_class, fedmon_labels.label_class IS NOT NULL AS joined, pred_id IS NULL AS without_id,
      ${[...values, `r.* EXCLUDE (${excluded.join(', ')})`].join(', ')}
    FROM (SELECT * FROM ${reading} WHERE ${inWindow}) r LEFT JOIN fedmon_labels ON r.pred_id = fedmon_labels.id`
}

/** The ids of every record of the source: the reader projects only the id column (no classing of the rest). */
function idsSql (reader: string, columns: Columns, paths: Paths): string {
  return `(SELECT ${idTextSql(resolveColumn(columns, paths.id))} AS pred_id FROM ${reader})`
}

/** The format of the label files, or the error naming data.labels. */
function labelFormatOf (labels: LabelSource): DataFormat {
  const format = dataFormatOf(labels)
  if (format === null) throw new ScanError(`cannot tell the format of the label files ${labels.path}: use .jsonl, .csv or .parquet, or set data.labels.format`, 'ERR_SCAN_FORMAT')
  return format
}

/** The label files the glob matches; none is no error (the labels of a window may not have arrived yet). */
async function listLabelFiles (conn: DuckDBConnection, pattern: string): Promise<string[]> {
  try {
    return await listFiles(conn, pattern)
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SCAN_NO_FILES') return []
    throw err
  }
}

interface LabelTable { files: string[], records: number, withoutId: number, withoutLabel: number, afterCutoff: number, ids: number, duplicateIds: number, cutoffApplied: boolean }

/**
 * Reads the label source into `fedmon_labels` (id, label_class): per id, the label of the record with the latest
 * ts (a record without a usable ts is older than any; equal ts: the higher class — positive over negative,
 * invalid over both, so conflicting labels at one instant never silently pass as a negative). Label records
 * without an id or with an empty label say nothing and are left out; with a cutoff (and timestamps in the
 * source), so are those recorded after it or at no known time. The label is classed by the spec's rules.
 */
async function readLabels (conn: DuckDBConnection, spec: MonitorSpec, src: LabelSource, format: DataFormat, cutoff: number | undefined): Promise<LabelTable> {
  const files = await listLabelFiles(conn, src.path)
  const cols = { id: src.columns?.id ?? 'id', label: src.columns?.label ?? 'label', ts: src.columns?.ts ?? 'ts' }
  await conn.run('DROP TABLE IF EXISTS fedmon_label_records')
  if (files.length === 0) {
    await conn.run('CREATE TEMP TABLE fedmon_label_records (id VARCHAR, label_class INTEGER, ts_ms DOUBLE, ts_missing BOOLEAN)')
  } else {
    const fileList = `[${files.map(sqlString).join(', ')}]`
    // label columns are top-level names; JSONL values read as text (a label may be 1, "1" or true)
    const reader = format === 'parquet'
      ? `read_parquet(${fileList}, union_by_name = true)`
      : format === 'csv'
        ? `read_csv(${fileList}, header = true, all_varchar = true, union_by_name = true, ${csvDialect(src.path)})`
        : `read_json(${fileList}, format = 'newline_delimited', records = true, ignore_errors = true, columns = ${sqlColumns(new Map([cols.id, cols.label, cols.ts].map(c => [c, 'VARCHAR'])))})`
    try {
      const columns = await describe(conn, reader)
      const col = (name: string): ColumnExpr => resolveColumn(columns, [name])
      const ts = timestampPartsSql(col(cols.ts))
      await conn.run(`CREATE TEMP TABLE fedmon_label_records AS
        SELECT id, label_class, COALESCE(${epochMsSql('ts_num', src.columns?.tsUnit ?? 'auto')}, ts_instant) AS ts_ms, ts_missing FROM (
          SELECT ${idTextSql(col(cols.id))} AS id, ${labelClassSql(spec, col(cols.label))} AS label_class,
            ${ts.number} AS ts_num, ${ts.instant} AS ts_instant, ${ts.missing} AS ts_missing
          FROM ${reader})`)
    } catch (err) {
      const text = firstLine(err)
      const named = files.find(f => text.includes(f))
      const which = named !== undefined ? `label file ${named}` : files.length === 1 ? `label file ${files[0]}` : `label files ${src.path} (${files.length} files)`
      throw new ScanError(`cannot read label files ${src.path} (${files.join(', ').slice(0, 500)}): ${text}`, 'ERR_SCAN_LABELS_READ', {
        cause: err,
        reason: `${which} cannot be read as ${{ jsonl: 'JSON lines', csv: 'CSV', parquet: 'Parquet' }[format]} (${errorKind(err)}; details in the agent's log)`
      })
    }
  }
  const hasTs = Boolean((await conn.runAndReadAll('SELECT coalesce(bool_or(NOT ts_missing), false) FROM fedmon_label_records')).getRows()[0][0])
  const cutoffApplied = cutoff !== undefined && hasTs
  const usableTs = 'ts_ms IS NOT NULL AND isfinite(ts_ms)'
  const inTime = cutoffApplied ? `(${usableTs} AND ts_ms <= ${sqlNumber(cutoff)})` : 'true'
  const [row] = (await conn.runAndReadAll(`SELECT count(*), count(*) FILTER (id IS NULL), count(*) FILTER (id IS NOT NULL AND label_class = 2),
      count(*) FILTER (id IS NOT NULL AND label_class <> 2 AND NOT ${inTime}) FROM fedmon_label_records`)).getRows()
  await conn.run('DROP TABLE IF EXISTS fedmon_labels')
  await conn.run(`CREATE TEMP TABLE fedmon_labels AS
    SELECT id, arg_max(label_class, (CASE WHEN ${usableTs} THEN ts_ms ELSE '-inf'::DOUBLE END, label_class)) AS label_class, count(*) AS n
    FROM fedmon_label_records WHERE id IS NOT NULL AND label_class <> 2 AND ${inTime} GROUP BY id`)
  const [ids] = (await conn.runAndReadAll('SELECT count(*), count(*) FILTER (n > 1) FROM fedmon_labels')).getRows()
  const n = (x: unknown): number => Number(x ?? 0)
  return { files, records: n(row[0]), withoutId: n(row[1]), withoutLabel: n(row[2]), afterCutoff: n(row[3]), ids: n(ids[0]), duplicateIds: n(ids[1]), cutoffApplied }
}

/** The label figures of the scan: the label table's, plus what the join did in the window and the unknown ids. */
async function joinFigures (conn: DuckDBConnection, labels: LabelTable, predictionIds: string): Promise<LabelFigures> {
  const [win] = (await conn.runAndReadAll('SELECT count(*) FILTER (joined), count(*) FILTER (without_id) FROM w WHERE has_ts')).getRows()
  // ids of the whole source (every window): a label for a prediction of another window is not unknown. The label
  // ids are the hash join's build side (the predictions are the larger side, streamed once).
  const unknown = labels.ids === 0
    ? 0
    : labels.ids - Number((await conn.runAndReadAll(`SELECT count(*) FROM fedmon_labels SEMI JOIN ${predictionIds} p ON fedmon_labels.id = p.pred_id`)).getRows()[0][0])
  const { files, records, withoutId, withoutLabel, afterCutoff, ids, duplicateIds, cutoffApplied } = labels
  return { files, records, withoutId, withoutLabel, afterCutoff, ids, duplicateIds, unknownIds: unknown, joined: Number(win[0]), predictionsWithoutId: Number(win[1]), cutoffApplied }
}

/** How the window's numeric timestamps were read: records per unit. */
async function tsUnitsOf (conn: DuckDBConnection, source: DataSource): Promise<Partial<Record<EpochUnit, number>>> {
  const rows = (await conn.runAndReadAll('SELECT ts_mag, count(*) FROM w WHERE has_ts AND ts_mag IS NOT NULL GROUP BY ALL')).getRows()
  const unit = source.columns?.tsUnit ?? 'auto'
  const out: Partial<Record<EpochUnit, number>> = {}
  for (const [mag, n] of rows) {
    const u = unit === 'auto' ? AUTO_UNIT_OF_MAGNITUDE[Number(mag)] : unit
    out[u] = (out[u] ?? 0) + Number(n)
  }
  return out
}

/** The ts column over every record of the source (another pass over the files). */
async function profileTimestamps (conn: DuckDBConnection, reading: string): Promise<TimestampProfile> {
  const [row] = (await conn.runAndReadAll(`SELECT count(*), count(*) FILTER (${HAS_TS}), count(*) FILTER (ts_missing),
      count(*) FILTER (NOT ts_missing AND NOT (${HAS_TS})), min(ts_ms) FILTER (${HAS_TS}), max(ts_ms) FILTER (${HAS_TS}),
      count(*) FILTER (ts_mag = 0), count(*) FILTER (ts_mag = 1), count(*) FILTER (ts_mag = 2), count(*) FILTER (ts_mag = 3), count(*) FILTER (ts_mag = 4)
    FROM ${reading}`)).getRows()
  const n = (i: number): number => Number(row[i] ?? 0)
  const t = (i: number): number | null => (row[i] === null ? null : Math.floor(Number(row[i])))
  return { records: n(0), usable: n(1), missing: n(2), bad: n(3), first: t(4), last: t(5), magnitudes: { tiny: n(6), s: n(7), ms: n(8), us: n(9), ns: n(10) } }
}

/** Runs the GROUP BY queries over `w` and fills the vector; undated records are only counted, for the local figure. */
/**
 * The binary task's entries: counters, score × label histogram, calibration bins and the loss sums.
 */
async function aggregateBinary (conn: DuckDBConnection, spec: MonitorSpec, layout: Layout, vec: Uint32Array, setCount: (index: number, value: bigint, what: string) => void): Promise<{ recordsInWindow: bigint, withoutTimestamp: bigint }> {
  const big = (x: unknown): bigint => (x === null || x === undefined ? 0n : BigInt(x as bigint | number))
  // 1. counters, score × label histogram, calibration bins and the loss sums: one GROUP BY over the record
  //    classes and score bins (at most ~3 × (bins + calibration bins) groups), folded here. The sums are taken at
  //    the spec's precision (layout.sums), or not at all.
  const sums = layout.sums
  let sumColumns = 'NULL, NULL, NULL, NULL'
  if (sums.kind === 'fixed') {
    const scale = sqlNumber(2 ** sums.precisionBits)
    const loss = lossTermsSql('s', 'label_class', sums.precisionBits)
    sumColumns = `sum(${loss.logLoss}), sum(${loss.brier}), sum(CAST(round(s * ${scale}) AS BIGINT)), sum(CAST(round(s * s * ${scale}) AS BIGINT))`
  }
  const cal = layout.calibration
  const rows = (await conn.runAndReadAll(`SELECT has_ts, score_class, label_class, s >= ${sqlNumber(spec.threshold)} AS predicted,
      ${scoreBinSql(layout, 's')} AS sb, least(CAST(floor(s * ${cal.bins}) AS INTEGER), ${cal.bins - 1}) AS cb, count(*),
      ${sumColumns}
    FROM w GROUP BY ALL`)).getRows()
  const counts = new Map<CounterName, bigint>(COUNTERS.map(n => [n, 0n]))
  const add = (name: CounterName, n: bigint): void => { counts.set(name, (counts.get(name) ?? 0n) + n) }
  const scoreClassNames: CounterName[] = ['scoreValid', 'scoreMissing', 'scoreNotNumeric', 'scoreNotFinite', 'scoreOutOfRange']
  const labelClassNames: CounterName[] = ['labelNegative', 'labelPositive', 'labelUnlabeled', 'labelInvalid']
  const scoreHist = new Array<bigint>(3 * layout.score.bins).fill(0n)
  const calCounts = new Array<bigint>(2 * cal.bins).fill(0n)
  const calSums = new Array<bigint>(cal.bins).fill(0n)
  let logLoss = 0n; let brier = 0n; let scoreSum = 0n; let scoreSumSquares = 0n
  let withoutTimestamp = 0n
  for (const [hasTs, scoreClass, labelClass, predicted, sb, cb, n, ll, br, sp, sp2] of rows) {
    const count = big(n)
    // in no window: nothing of these records may reach the vector (the same count in every scan of the files)
    if (hasTs !== true) { withoutTimestamp += count; continue }
    add('recordsInWindow', count)
    add(labelClassNames[Number(labelClass)], count)
    add(scoreClassNames[Number(scoreClass)], count)
    if (Number(scoreClass) !== 0) continue
    const y = Number(labelClass)
    scoreHist[Math.min(y, 2) * layout.score.bins + Number(sb)] += count
    scoreSum += big(sp); scoreSumSquares += big(sp2)
    if (y === 0 || y === 1) {
      add(y === 1 ? (predicted === true ? 'tp' : 'fn') : (predicted === true ? 'fp' : 'tn'), count)
      logLoss += big(ll); brier += big(br)
      calCounts[2 * Number(cb)] += count
      if (y === 1) calCounts[2 * Number(cb) + 1] += count
      calSums[Number(cb)] += big(sp)
    } else if (predicted === true) {
      add('predictedPositiveUnlabeled', count)
    }
  }
  // the per-site indicator (layout v3): summed, how many sites the window's figures come from
  counts.set('sitesWithRecords', (counts.get('recordsInWindow') ?? 0n) > 0n ? 1n : 0n)
  COUNTERS.forEach((name, k) => { setCount(layout.counters.offset + k, counts.get(name) ?? 0n, name) })
  scoreHist.forEach((n, i) => { setCount(layout.score.offset + i, n, 'score bin') })
  calCounts.forEach((n, i) => { setCount(cal.countsOffset + i, n, 'calibration bin') })
  if (sums.kind === 'fixed') {
    calSums.forEach((n, b) => { writeLimbs(vec, sums.calibration[b], n) })
    writeLimbs(vec, sums.logLoss, logLoss)
    writeLimbs(vec, sums.brier, brier)
    writeLimbs(vec, sums.scoreSum, scoreSum)
    writeLimbs(vec, sums.scoreSumSquares, scoreSumSquares)
  }
  return { recordsInWindow: counts.get('recordsInWindow') ?? 0n, withoutTimestamp }
}

/** The cell columns of `w` (readingSql): fedmon_seg0, fedmon_seg1, … one per segment column. */
const SEGMENT_COLUMN_PREFIX = 'fedmon_seg'

/**
 * A segmented layout's vector: the overall entries from `w` as without segments, then per cell the task's own
 * aggregation over a table `w` of that cell's records alone — the same queries as a scan of only those records,
 * so a cell's slice is exactly that scan's vector — and the cell's site indicator. The files are read once
 * (into `w`); each cell copies its rows out of it, so a column's cells together read the window once more.
 */
async function aggregate (conn: DuckDBConnection, spec: MonitorSpec, layout: TaskLayout, signal?: AbortSignal): Promise<ScanResult> {
  const segments = segmentsOf(layout)
  if (segments === null) return await aggregateOne(conn, spec, layout, signal)
  const overall = await aggregateOne(conn, spec, { ...layout, length: segments.offset }, signal)
  const vec = new Uint32Array(layout.length)
  vec.set(overall.vector)
  await conn.run('ALTER TABLE w RENAME TO fedmon_window')
  try {
    const windowColumns = (await describe(conn, 'fedmon_window')).names
    for (const cell of segments.cells) {
      signal?.throwIfAborted()
      const k = segments.columns.findIndex(c => c.column === cell.column)
      await conn.run(`CREATE OR REPLACE TEMP TABLE w AS SELECT ${cellProjection(windowColumns, layout, cell.layout, segments).join(', ')}
        FROM fedmon_window WHERE ${SEGMENT_COLUMN_PREFIX}${k} = ${cell.valueIndex}`)
      const own = await aggregateOne(conn, cellSpecOf(spec, cell), cell.layout, signal)
      vec.set(own.vector, cell.offset)
      vec[cell.sitesIndex] = own.local.recordsInWindow > 0 ? 1 : 0
    }
  } finally {
    await conn.run('DROP TABLE IF EXISTS w')
    await conn.run('ALTER TABLE fedmon_window RENAME TO w')
  }
  return { vector: vec, local: overall.local }
}

/**
 * The columns of a cell's `w`: the window's, with the binned columns (fb*, fv*) renumbered from the overall
 * layout's order to the cell layout's (a performance-only cell has no features: its task values come first).
 */
function cellProjection (columns: string[], layout: TaskLayout, cellLayout: TaskLayout, segments: SegmentsLayout): string[] {
  const overallNames = binnedLayouts({ ...layout, length: segments.offset }).map(f => f.name)
  const cellIndex = new Map(binnedLayouts(cellLayout).map((f, j) => [overallNames.indexOf(f.name), j]))
  const out: string[] = []
  for (const name of columns) {
    const m = /^f([bv])(\d+)$/.exec(name)
    if (m === null) { if (!name.startsWith(SEGMENT_COLUMN_PREFIX)) out.push(sqlIdent(name)); continue }
    const j = cellIndex.get(Number(m[2]))
    if (j !== undefined) out.push(`${sqlIdent(name)} AS f${m[1]}${j}`)
  }
  return out
}

async function aggregateOne (conn: DuckDBConnection, spec: MonitorSpec, layout: TaskLayout, signal?: AbortSignal): Promise<ScanResult> {
  const vec = new Uint32Array(layout.length)
  const maxRecords = layout.maxRecords
  const capError = (n: bigint, what: string): ScanError => new ScanError(`${what}: ${n} records exceed limits.maxRecordsPerAgent = ${maxRecords} for one window; use a shorter window or raise the limit in the spec`, 'ERR_SCAN_RECORD_CAP')
  const setCount = (index: number, value: bigint, what: string): void => {
    if (value > BigInt(maxRecords)) throw capError(value, what)
    vec[index] = Number(value)
  }
  const big = (x: unknown): bigint => (x === null || x === undefined ? 0n : BigInt(x as bigint | number))

  // 1. the task's own entries (binary: aggregateBinary below; other tasks: agent/scan-tasks.ts)
  const taskScan = taskScanOf(layout)
  const own = taskScan !== null ? await taskScan.aggregate(conn, layout, vec, setCount) : await aggregateBinary(conn, spec, layout as Layout, vec, setCount)
  signal?.throwIfAborted()

  // 2. per feature, one GROUP BY bucket that also sums a numeric feature's moments (fv* is NULL for bad values;
  //    records without ts have no bucket and no value): it reads only that feature's column, and the integer
  //    sums of the groups add up to exactly the ungrouped sums.
  for (const [i, f] of binnedLayouts(layout).entries()) {
    signal?.throwIfAborted()
    const moments = f.type === 'numeric' ? f.moments : null
    let terms = ''
    if (moments?.kind === 'exact') {
      const m = momentTermsSql(`fv${i}`, moments.scaleBits)
      terms = `, ${m.isNegative}, ${m.absolute}, ${m.squareSmall}, ${m.squareLarge}`
    } else if (moments?.kind === 'clipped') {
      // fv is the level u ∈ [0, 2^24]: u² < 2^49 is a BIGINT, the sums HUGEINTs
      terms = `, false, sum(fv${i}), sum(fv${i} * fv${i}), NULL`
    }
    const r = await conn.runAndReadAll(`SELECT fb${i}, count(*)${terms} FROM w WHERE has_ts GROUP BY ALL`)
    const buckets = new Map<number, bigint>() // a bucket spanning 0 comes in two groups (by sign)
    let positive = 0n; let negative = 0n; let squares = 0n
    for (const [b, n, isNegative, absolute, sqSmall, sqLarge] of r.getRows()) {
      buckets.set(Number(b), (buckets.get(Number(b)) ?? 0n) + big(n))
      if (terms === '') continue
      if (isNegative === true) negative += big(absolute); else positive += big(absolute)
      squares += big(sqSmall) + big(sqLarge)
    }
    for (const [b, n] of buckets) setCount(f.offset + b, n, `feature ${f.name}`)
    if (moments?.kind === 'exact') {
      writeLimbs(vec, moments.sumPositive, positive)
      writeLimbs(vec, moments.sumNegative, negative)
      writeLimbs(vec, moments.sumSquares, squares)
    } else if (moments?.kind === 'clipped') {
      writeLimbs(vec, moments.sum, positive)
      writeLimbs(vec, moments.sumSquares, squares)
    }
  }
  return { vector: vec, local: { recordsWithoutTimestamp: Number(own.withoutTimestamp), recordsInWindow: Number(own.recordsInWindow), malformedRows: 0, tsUnits: {} } }
}

function firstLine (err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err)
  return msg.split('\n')[0]
}
