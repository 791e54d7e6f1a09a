/**
 * `npm run -s bench -- scan --rows N --format parquet|jsonl|csv [--labels] [--task multiclass [--classes K]] [--repeat K] [--json]`: generates N
 * records with DuckDB (COPY), then times scanWindow end to end (glob, read, classify, bin, aggregate → Uint32Array).
 * Targets (design §6): >= 2M records/s from Parquet, >= 0.5M records/s from JSONL.
 * `--labels`: the records carry an id and a separate label source (same format) holds labels for 70 % of them,
 * a tenth of those twice, plus labels for ids no record has; the scan joins them by id (data.labels).
 * `--wide`: the 20 features of `--segments` without its cells.
 * `--segments`: a realistic segmented spec (issue 12 §3): 20 features and 3 segment columns × 10 declared values
 * (33 cells: 30 + 3 `other`; the data has 12 values per column, so `other` is never empty), performance only,
 * each cell's score histogram at 100 bins.
 * `--task multiclass`: K classes (default 3) with a probability each (a `scores` object in JSONL and Parquet, one
 * column per class in CSV) and a class-name label; score.bins 1024 per class.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir, loadavg, cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindow } from '../agent/scan.js'
import { MonitorSpec } from '../shared/stats/spec.js'
import { buildTaskLayout } from '../shared/stats/tasks/index.js'
import { segmentsOf } from '../shared/stats/segments.js'

const T0 = Date.UTC(2025, 11, 1)

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rows: { type: 'string', default: '1000000' }, format: { type: 'string', default: 'parquet' }, repeat: { type: 'string', default: '3' }, json: { type: 'boolean', default: false }, labels: { type: 'boolean', default: false }, segments: { type: 'boolean', default: false }, wide: { type: 'boolean', default: false }, task: { type: 'string', default: 'binary' }, classes: { type: 'string', default: '3' } } })
  const rows = Number(values.rows); const repeat = Number(values.repeat)
  const format = values.format as 'parquet' | 'jsonl' | 'csv'
  const withLabels = values.labels === true
  const segmented = values.segments === true
  // --wide: the segmented spec's 20 features without its segments (what the cells cost on top)
  const wide = segmented || values.wide === true
  const classCount = values.task === 'multiclass' ? Number(values.classes) : 0
  if (!Number.isInteger(rows) || rows < 1 || !['parquet', 'jsonl', 'csv'].includes(format) || !(repeat >= 1) || !['binary', 'multiclass'].includes(values.task ?? '') ||
    (classCount !== 0 && !(Number.isInteger(classCount) && classCount >= 2 && classCount <= 32)) || (classCount !== 0 && (withLabels || wide))) {
    process.stderr.write('usage: npm run -s bench -- scan --rows N --format parquet|jsonl|csv [--labels] [--segments | --wide | --task multiclass [--classes 2..32]] [--repeat K] [--json]\n')
    process.exitCode = 2
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-bench-scan-'))
  try {
    const file = join(dir, `preds.${format}`)
    const genStart = performance.now()
    await generate(file, format, rows, withLabels, wide, classCount)
    const labelFile = join(dir, `labels.${format}`)
    if (withLabels) await generateLabels(labelFile, format, rows)
    const generateSeconds = (performance.now() - genStart) / 1000
    const features: Record<string, unknown> = { age: { type: 'numeric' }, income: { type: 'numeric', edges: [20000, 40000, 80000] }, region: { type: 'categorical', categories: ['north', 'south', 'east', 'west'] } }
    if (wide) for (const f of EXTRA_FEATURES) features[f] = { type: 'numeric', edges: [2, 4, 6, 8] }
    const classes = Array.from({ length: classCount }, (_, k) => `c${k}`)
    const spec = MonitorSpec.parse(classCount === 0
      ? {
          model: 'bench', score: { bins: 4096 }, threshold: 0.5, features,
          // each cell's score histogram at 100 bins (segments[].scoreBins): 30,225 entries, not 425,829 at 4,096
          ...(segmented ? { segments: SEGMENT_COLUMNS.map(column => ({ column, values: Array.from({ length: 10 }, (_, v) => `${column}-${v}`), scoreBins: 100 })) } : {})
        }
      : { model: 'bench', task: 'multiclass', classes, score: { bins: 1024 }, features, ...(format === 'csv' ? { scores: { columns: Object.fromEntries(classes.map(c => [c, `p_${c}`])) } } : {}) })
    const layout = buildTaskLayout(spec)
    const times: number[] = []
    let records = 0
    for (let i = 0; i < repeat; i++) {
      const t = performance.now()
      const v = await scanWindow({ spec, layout, source: { path: file, ...(withLabels ? { labels: { path: labelFile } } : {}) }, window: { from: T0, to: T0 + 86400_000 * 365 } })
      times.push((performance.now() - t) / 1000)
      records = v[layout.counters.offset]
    }
    if (records !== rows) throw new Error(`scan counted ${records} records, expected ${rows}`)
    const seconds = Math.min(...times)
    const result = {
      bench: 'scan', rows, format, task: spec.task ?? 'binary', classes: classCount === 0 ? null : classCount, labels: withLabels ? Math.floor(rows * 0.77) + 1000 : null, seconds: round(seconds), medianSeconds: round([...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]),
      recordsPerSec: Math.round(rows / seconds), target: format === 'parquet' ? 2_000_000 : format === 'jsonl' ? 500_000 : null,
      fileBytes: statSync(file).size, vectorLength: layout.length, features: Object.keys(spec.features).length, segmentCells: segmentsOf(layout)?.cells.length ?? 0, repeat, generateSeconds: round(generateSeconds),
      cores: cpus().length, loadAverage1m: round(loadavg()[0]) // the machine is shared: read figures against the load
    }
    if (values.json === true) process.stdout.write(JSON.stringify(result) + '\n')
    else {
      process.stdout.write(`scan ${format}${classCount > 0 ? ` multiclass (${classCount} classes)` : ''}${withLabels ? ` + labels joined by id (${(result.labels ?? 0).toLocaleString('en-US')} label records)` : ''}: ${rows.toLocaleString('en-US')} records in ${result.seconds} s (best of ${repeat}) = ${result.recordsPerSec.toLocaleString('en-US')} records/s` +
        (result.target !== null ? ` (target ${result.target.toLocaleString('en-US')})` : '') + `; file ${(result.fileBytes / 2 ** 20).toFixed(1)} MiB, vector ${layout.length.toLocaleString('en-US')} entries, ${result.features} features${result.segmentCells > 0 ? `, ${result.segmentCells} segment cells` : ''}\n`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000

/**
 * Label records for the first 70 % of the ids (a day after the prediction), a second, later one for a tenth of
 * those, and 1000 for ids no record has: floor(0.77 · rows) + 1000 records.
 */
async function generateLabels (file: string, format: 'parquet' | 'jsonl' | 'csv', rows: number): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  try {
    const first = Math.floor(rows * 0.7)
    const sql = `SELECT 'pred-' || i AS id, CAST(random() < 0.3 AS INTEGER) AS label, ${T0} + i * 10 + 86400000 AS ts FROM range(${first}) r(i)
      UNION ALL SELECT 'pred-' || i, CAST(random() < 0.3 AS INTEGER), ${T0} + i * 10 + 2 * 86400000 FROM range(${Math.floor(rows * 0.77) - first}) r(i)
      UNION ALL SELECT 'unknown-' || i, 1, ${T0} FROM range(1000) r(i)`
    await conn.run(`COPY (${sql}) TO '${file.replace(/'/g, "''")}' (FORMAT ${format === 'jsonl' ? 'json' : format === 'csv' ? 'csv, HEADER true' : 'parquet'})`)
  } finally {
    conn.closeSync(); db.closeSync()
  }
}

/** Writes `rows` synthetic prediction records (design §5 shape; flattened for CSV/Parquet) with DuckDB COPY. */
const EXTRA_FEATURES = Array.from({ length: 17 }, (_, i) => `f${i + 4}`)
const SEGMENT_COLUMNS = ['country', 'channel', 'product']

async function generate (file: string, format: 'parquet' | 'jsonl' | 'csv', rows: number, withIds: boolean, segmented: boolean, classCount = 0): Promise<void> {
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  try {
    const base = `SELECT ${withIds ? "'pred-' || i AS id, " : ''}${T0} + i * 10 AS ts, random() AS score, CAST(random() < 0.3 AS INTEGER) AS label,
      random() * 80 AS age, round(random() * 100000) AS income, ['north', 'south', 'east', 'west'][1 + CAST(i % 4 AS INTEGER)] AS region
      ${segmented ? `, ${EXTRA_FEATURES.map(f => `random() * 10 AS ${f}`).join(', ')}, ${SEGMENT_COLUMNS.map(c => `'${c}-' || CAST(floor(random() * 12) AS INTEGER) AS ${c}`).join(', ')}` : ''}
      FROM range(${rows}) r(i)`
    const path = file.replace(/'/g, "''")
    if (classCount > 0) {
      // K normalised random probabilities and a class-name label
      const ks = Array.from({ length: classCount }, (_, k) => k)
      const mc = `SELECT ts, ${ks.map(k => `r${k} / (${ks.map(j => `r${j}`).join(' + ')}) AS p_c${k}`).join(', ')}, 'c' || CAST(floor(random() * ${classCount}) AS INTEGER) AS label, age, income, region
        FROM (SELECT ${T0} + i * 10 AS ts, ${ks.map(k => `random() AS r${k}`).join(', ')}, random() * 80 AS age, round(random() * 100000) AS income, ['north', 'south', 'east', 'west'][1 + CAST(i % 4 AS INTEGER)] AS region FROM range(${rows}) r(i))`
      const scores = `{${ks.map(k => `'c${k}': p_c${k}`).join(', ')}} AS scores`
      if (format === 'csv') await conn.run(`COPY (${mc}) TO '${path}' (FORMAT csv, HEADER true)`)
      else if (format === 'jsonl') await conn.run(`COPY (SELECT ts, ${scores}, label, {'age': age, 'income': income, 'region': region} AS features FROM (${mc})) TO '${path}' (FORMAT json)`)
      else await conn.run(`COPY (SELECT ts, ${scores}, label, age, income, region FROM (${mc})) TO '${path}' (FORMAT parquet)`)
      return
    }
    if (format === 'jsonl') {
      const extra = segmented ? EXTRA_FEATURES.map(f => `, '${f}': ${f}`).join('') : ''
      await conn.run(`COPY (SELECT ${withIds ? 'id, ' : ''}ts, score, label, {'age': age, 'income': income, 'region': region${extra}} AS features${segmented ? `, ${SEGMENT_COLUMNS.join(', ')}` : ''} FROM (${base})) TO '${path}' (FORMAT json)`)
    } else {
      await conn.run(`COPY (${base}) TO '${path}' (FORMAT ${format === 'csv' ? 'csv, HEADER true' : 'parquet'})`)
    }
  } finally {
    conn.closeSync(); db.closeSync()
  }
}
