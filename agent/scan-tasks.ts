/**
 * The scan's part of each task (shared/stats/tasks/task.ts): which columns a task reads, how it classes each
 * record in SQL and what it sums into its own entries. agent/scan.ts does the rest for every task (reading the
 * files, the window, the features). The binary task's part is agent/scan.ts's own code, which predates tasks:
 * taskScanOf gives null for it.
 */
import type { DuckDBConnection } from '@duckdb/node-api'
import type { MonitorSpec } from '../shared/stats/spec.js'
import type { NumericFeatureLayout } from '../shared/stats/layout.js'
import type { TaskLayout } from '../shared/stats/tasks/index.js'
import { writeLimbs } from '../shared/stats/fixed-point.js'
import { type RegressionLayout, type RegressionCounter, REGRESSION_COUNTERS, regressionParts, regressionCounterIndex } from '../shared/stats/tasks/regression.js'
import { type MulticlassLayout, type MulticlassCounter, MULTICLASS_COUNTERS, SUM_TOLERANCE, multiclassCounterIndex, classRowOffset } from '../shared/stats/tasks/multiclass.js'
import { LOG_LOSS_EPS, type Layout } from '../shared/stats/layout.js'
import { type ColumnExpr, numericSql, numericBucketSql, sqlNumber, sqlString, textSql, scoreBinSql } from './scan-sql.js'

/** The two columns every task reads besides ts and features: the model's output and the truth. */
export interface TaskColumns { output: string, truth: string }

export interface TaskScan<L extends TaskLayout = TaskLayout> {
  /** Default column names of the two roles (the site maps them with data.columns.score and data.columns.label). */
  columns: (spec: MonitorSpec) => TaskColumns
  /**
   * The output's columns when it is more than one (multiclass: one path per class, as the site names them),
   * given the output column as mapped (data.columns.score, else columns().output); absent: the output column.
   */
  outputPaths?: (spec: MonitorSpec, output: string) => string[][]
  /**
   * SELECT items of the reading step, per record of the source: every name they define is in `recordColumns`.
   * `outputs`: the outputPaths' columns, resolved (when the task has outputPaths).
   */
  recordSql: (spec: MonitorSpec, layout: L, output: ColumnExpr, truth: ColumnExpr, outputs?: ColumnExpr[]) => string[]
  readonly recordColumns: readonly string[]
  /** Materialise `w` as a table even from Parquet (its queries would otherwise each reread and reclassify every record). */
  readonly readOnce?: boolean
  /** SELECT items of `w` replacing recordColumns; `hasTs` is the usable-ts condition (values NULL without one). */
  windowSql: (hasTs: string) => string[]
  /** The task's own values binned as numeric features (drift), each reading the column of its role. */
  numericValues: (layout: L) => Array<{ layout: NumericFeatureLayout, role: keyof TaskColumns }>
  /**
   * Fills the task's counters and sums from `w` (the features are the scan's). `setCount` checks the record cap.
   * Returns the records in the window and those without a usable ts (in no window: only counted, for the site).
   */
  aggregate: (conn: DuckDBConnection, layout: L, vector: Uint32Array, setCount: (index: number, value: bigint, what: string) => void) => Promise<{ recordsInWindow: bigint, withoutTimestamp: bigint }>
}

/** The scan part of a layout's task; null for binary (agent/scan.ts's own code). */
export function taskScanOf (layout: TaskLayout): TaskScan<any> | null {
  return 'task' in layout ? (layout.task === 'multiclass' ? multiclassScan : regressionScan) : null
}

/** The scan part of a spec's task; null for binary. */
export function taskScanOfSpec (spec: MonitorSpec): TaskScan<any> | null {
  return spec.task === 'regression' ? regressionScan : spec.task === 'multiclass' ? multiclassScan : null
}

/** The default role columns of a spec's task (binary: score and label). */
export function taskColumnsOf (spec: MonitorSpec): TaskColumns {
  return taskScanOfSpec(spec)?.columns(spec) ?? { output: spec.score.column, truth: spec.label.column }
}

/** Value class of a numeric column: 0 valid, 1 missing, 2 not numeric, 3 not finite. */
function valueClassSql (c: ColumnExpr): { cls: string, value: string } {
  const n = numericSql(c)
  return { cls: `(CASE WHEN ${n.isMissing} THEN 1 WHEN ${n.isNotNumeric} THEN 2 WHEN NOT isfinite(${n.value}) THEN 3 ELSE 0 END)`, value: n.value }
}

/** The integer level of a finite value in the sums (twin of clippedLevelOf): BIGINT in [0, 2^bits]. */
function levelSql (layout: RegressionLayout, v: string): string {
  const { lo, hi, precisionBits } = layout.sums
  return `CAST(round((least(greatest(${v}, ${sqlNumber(lo)}), ${sqlNumber(hi)}) - ${sqlNumber(lo)}) / ${sqlNumber(hi - lo)} * ${sqlNumber(2 ** precisionBits)}) AS BIGINT)`
}

const regressionScan: TaskScan<RegressionLayout> = {
  columns: spec => {
    const { prediction, target } = regressionParts(spec)
    return { output: prediction.column, truth: target.column }
  },
  recordSql: (_spec, _layout, output, truth) => {
    const p = valueClassSql(output); const y = valueClassSql(truth)
    return [`${p.cls} AS p_class`, `${p.value} AS p_raw`, `${y.cls} AS y_class`, `${y.value} AS y_raw`]
  },
  recordColumns: ['p_class', 'p_raw', 'y_class', 'y_raw'],
  windowSql: hasTs => ['p_class', 'y_class', `CASE WHEN p_class = 0 AND ${hasTs} THEN p_raw END AS p`, `CASE WHEN y_class = 0 AND ${hasTs} THEN y_raw END AS y`],
  numericValues: layout => [{ layout: layout.prediction, role: 'output' }, { layout: layout.target, role: 'truth' }],
  aggregate: async (conn, layout, vec, setCount) => {
    const s = layout.sums
    const { lo, hi } = s
    const cap = sqlNumber(s.mapeCap)
    // p and y are NULL unless valid and in the window: every pair term below is NULL outside the pairs
    const ratio = '(abs(p - y) / abs(y))'
    const rows = (await conn.runAndReadAll(`SELECT has_ts, p_class, y_class, count(*),
        count(*) FILTER (p < ${sqlNumber(lo)} OR p > ${sqlNumber(hi)}), count(*) FILTER (y < ${sqlNumber(lo)} OR y > ${sqlNumber(hi)}),
        count(*) FILTER (y <> 0), count(*) FILTER (y <> 0 AND ${ratio} > ${cap}),
        sum(uy), sum(uy * uy), sum(greatest(up - uy, 0)), sum(greatest(uy - up, 0)), sum((up - uy) * (up - uy)),
        sum(CASE WHEN y <> 0 THEN CAST(round(least(${ratio}, ${cap}) * ${sqlNumber(2 ** s.precisionBits)}) AS BIGINT) END)
      FROM (SELECT has_ts, p_class, y_class, p, y, ${levelSql(layout, 'p')} AS up, ${levelSql(layout, 'y')} AS uy
        FROM w) GROUP BY ALL`)).getRows()
    const counts = new Map<RegressionCounter, bigint>(REGRESSION_COUNTERS.map(n => [n, 0n]))
    const add = (name: RegressionCounter, n: bigint): void => { counts.set(name, (counts.get(name) ?? 0n) + n) }
    const big = (x: unknown): bigint => (x === null || x === undefined ? 0n : BigInt(x as bigint | number))
    const predictionClass: RegressionCounter[] = ['predictionValid', 'predictionMissing', 'predictionNotNumeric', 'predictionNotFinite']
    const targetClass: RegressionCounter[] = ['targetValid', 'targetMissing', 'targetNotNumeric', 'targetNotFinite']
    const sums = { uy: 0n, uy2: 0n, dPos: 0n, dNeg: 0n, d2: 0n, mape: 0n }
    let withoutTimestamp = 0n
    for (const [hasTs, pClass, yClass, n, pClip, yClip, nonZero, capped, uy, uy2, dPos, dNeg, d2, mape] of rows) {
      const count = big(n)
      if (hasTs !== true) { withoutTimestamp += count; continue } // in no window: never in the vector
      add('recordsInWindow', count)
      add(predictionClass[Number(pClass)], count)
      add(targetClass[Number(yClass)], count)
      if (Number(pClass) !== 0 || Number(yClass) !== 0) continue
      add('pairs', count); add('predictionClipped', big(pClip)); add('targetClipped', big(yClip)); add('targetNonZero', big(nonZero)); add('mapeCapped', big(capped))
      sums.uy += big(uy); sums.uy2 += big(uy2); sums.dPos += big(dPos); sums.dNeg += big(dNeg); sums.d2 += big(d2); sums.mape += big(mape)
    }
    counts.set('sitesWithRecords', (counts.get('recordsInWindow') ?? 0n) > 0n ? 1n : 0n)
    for (const name of REGRESSION_COUNTERS) setCount(regressionCounterIndex(layout, name), counts.get(name) ?? 0n, name)
    writeLimbs(vec, s.targetSum, sums.uy)
    writeLimbs(vec, s.targetSumSquares, sums.uy2)
    writeLimbs(vec, s.errorPositive, sums.dPos)
    writeLimbs(vec, s.errorNegative, sums.dNeg)
    writeLimbs(vec, s.errorSquares, sums.d2)
    writeLimbs(vec, s.mape, sums.mape)
    // the signed error's sketch over the pairs (raw values: quantiles of the true error, within α)
    const e = layout.errors
    const sketchBuckets = (await conn.runAndReadAll(`SELECT ${numericBucketSql({ edges: null, sketch: e.sketch }, '(p - y)')} AS eb, count(*)
      FROM w WHERE p IS NOT NULL AND y IS NOT NULL GROUP BY ALL`)).getRows()
    for (const [b, n] of sketchBuckets) setCount(e.offset + Number(b), big(n), 'error sketch')
    return { recordsInWindow: counts.get('recordsInWindow') ?? 0n, withoutTimestamp }
  }
}

// ---------------------------------------------------------------------------------------------------------
// multiclass (shared/stats/tasks/multiclass.ts)

/**
 * A record's label class: the index of its class in `classes` (trimmed text; a class name that is a number also
 * matches the same number written otherwise, 2 and 2.0), K when empty or absent, K + 1 when it is none of them.
 */
function multiclassLabelSql (classes: string[], c: ColumnExpr): string {
  const K = classes.length
  if (c.kind === 'absent') return String(K)
  const t = `nullif(${textSql(c)}, '')`
  const numeric = classes.flatMap((name, i) => (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(name) ? [`WHEN TRY_CAST(${t} AS DOUBLE) = ${sqlNumber(Number(name))} THEN ${i}`] : []))
  const other = numeric.length > 0 ? `(CASE ${numeric.join(' ')} ELSE ${K + 1} END)` : String(K + 1)
  return `(CASE WHEN ${t} IS NULL THEN ${K} ELSE coalesce(nullif(list_position([${classes.map(sqlString).join(', ')}], ${t}), 0) - 1, ${other}) END)`
}

const multiclassScan: TaskScan<MulticlassLayout> = {
  columns: spec => ({ output: spec.scores?.column ?? 'scores', truth: spec.label.column }),
  // one column per class (scores.columns), or the class's key inside the object column
  outputPaths: (spec, output) => {
    const perClass = spec.scores?.columns
    return (spec.classes ?? []).map(name => (perClass !== undefined ? [perClass[name]] : [output, name]))
  },
  recordSql: (_spec, layout, _output, truth, outputs) => {
    if (outputs === undefined || outputs.length !== layout.classes.length) throw new Error('multiclass scan: one probability column per class expected')
    const values = outputs.map(o => numericSql(o))
    const any = (f: (n: ReturnType<typeof numericSql>) => string): string => values.map(n => `(${f(n)})`).join(' OR ')
    // the worst of the K values, in binary's order: missing, not numeric, not finite, outside [0, 1]
    const cls = `(CASE WHEN ${any(n => n.isMissing)} THEN 1 WHEN ${any(n => n.isNotNumeric)} THEN 2 WHEN ${any(n => `NOT isfinite(${n.value})`)} THEN 3 WHEN ${any(n => `${n.value} < 0 OR ${n.value} > 1`)} THEN 4 ELSE 0 END)`
    return [`${cls} AS mc_sc`, `[${values.map(n => n.value).join(', ')}] AS mc_p_raw`, `${multiclassLabelSql(layout.classes, truth)} AS mc_y`]
  },
  recordColumns: ['mc_sc', 'mc_p_raw', 'mc_y'],
  readOnce: true, // the K probabilities' classification and list are computed once, not in each of the aggregate queries
  windowSql: hasTs => ['mc_sc', 'mc_y', `CASE WHEN mc_sc = 0 AND ${hasTs} THEN mc_p_raw END AS p`],
  numericValues: () => [],
  aggregate: async (conn, layout, vec, setCount) => {
    const K = layout.classes.length
    const cal = layout.calibration
    const sums = layout.sums
    const big = (x: unknown): bigint => (x === null || x === undefined ? 0n : BigInt(x as bigint | number))
    // p is NULL unless the record is in the window with valid probabilities; y < K: labelled with a class
    let sumColumns = 'NULL, NULL, NULL'
    if (sums.kind === 'fixed') {
      const scale = sqlNumber(2 ** sums.precisionBits)
      const eps = sqlNumber(LOG_LOSS_EPS)
      const pTrue = `list_extract(p, mc_y + 1)`
      sumColumns = `sum(CASE WHEN mc_y < ${K} THEN CAST(round(-ln(least(greatest(${pTrue}, ${eps}), 1 - ${eps})) * ${scale}) AS BIGINT) END),
        sum(CASE WHEN mc_y < ${K} THEN CAST(round(greatest(list_sum(list_transform(p, x -> x * x)) - 2 * ${pTrue} + 1, 0) * ${scale}) AS BIGINT) END),
        sum(CASE WHEN mc_y < ${K} THEN CAST(round(conf * ${scale}) AS BIGINT) END)`
    }
    const rows = (await conn.runAndReadAll(`SELECT has_ts, mc_sc, mc_y, pred, least(CAST(floor(conf * ${cal.bins}) AS INTEGER), ${cal.bins - 1}) AS cb,
        abs(list_sum(p) - 1) > ${sqlNumber(SUM_TOLERANCE)} AS off, count(*), ${sumColumns}
      FROM (SELECT has_ts, mc_sc, mc_y, p, list_max(p) AS conf, list_position(p, list_max(p)) - 1 AS pred FROM w)
      GROUP BY ALL`)).getRows()
    const counts = new Map<MulticlassCounter, bigint>(MULTICLASS_COUNTERS.map(n => [n, 0n]))
    const add = (name: MulticlassCounter, n: bigint): void => { counts.set(name, (counts.get(name) ?? 0n) + n) }
    const scoreClass: MulticlassCounter[] = ['scoresValid', 'scoresMissing', 'scoresNotNumeric', 'scoresNotFinite', 'scoresOutOfRange']
    const predicted = new Array<bigint>(K + 2).fill(0n)
    const confusion = new Array<bigint>(K * K).fill(0n)
    const calCounts = new Array<bigint>(2 * cal.bins).fill(0n)
    const confidence = new Array<bigint>(cal.bins).fill(0n)
    let logLoss = 0n; let brier = 0n
    let withoutTimestamp = 0n
    for (const [hasTs, sc, yRaw, pred, cb, off, n, ll, br, conf] of rows) {
      const count = big(n)
      if (hasTs !== true) { withoutTimestamp += count; continue } // in no window: never in the vector
      const y = Number(yRaw)
      add('recordsInWindow', count)
      add(scoreClass[Number(sc)], count)
      add(y < K ? 'labelClass' : y === K ? 'labelUnlabeled' : 'labelNotAClass', count)
      if (Number(sc) !== 0) { predicted[K + 1] += count; continue }
      if (off === true) add('scoresNotSummingToOne', count)
      predicted[Number(pred)] += count
      if (y >= K) continue
      add('labeledScored', count)
      confusion[y * K + Number(pred)] += count
      calCounts[2 * Number(cb)] += count
      if (y === Number(pred)) calCounts[2 * Number(cb) + 1] += count
      logLoss += big(ll); brier += big(br); confidence[Number(cb)] += big(conf)
    }
    counts.set('sitesWithRecords', (counts.get('recordsInWindow') ?? 0n) > 0n ? 1n : 0n)
    for (const name of MULTICLASS_COUNTERS) setCount(multiclassCounterIndex(layout, name), counts.get(name) ?? 0n, name)
    predicted.forEach((n, i) => { setCount(layout.predicted.offset + i, n, 'predicted class') })
    confusion.forEach((n, i) => { setCount(layout.confusion.offset + i, n, 'confusion matrix') })
    calCounts.forEach((n, i) => { setCount(cal.countsOffset + i, n, 'calibration bin') })
    if (sums.kind === 'fixed') {
      writeLimbs(vec, sums.logLoss, logLoss)
      writeLimbs(vec, sums.brier, brier)
      confidence.forEach((n, b) => { writeLimbs(vec, sums.confidence[b], n) })
    }
    // every class's probability histogram by label row, in one scan of w (one grouping set per class)
    const bins = layout.classes.map((_, c) => `${scoreBinSql({ score: layout.score } as Layout, `list_extract(p, ${c + 1})`)} AS b${c}`)
    const sets = layout.classes.map((_, c) => `(mc_y, b${c})`).join(', ')
    const hist = (await conn.runAndReadAll(`SELECT mc_y, ${layout.classes.map((_, c) => `b${c}`).join(', ')}, count(*)
      FROM (SELECT mc_y, ${bins.join(', ')} FROM w WHERE p IS NOT NULL) GROUP BY GROUPING SETS (${sets})`)).getRows()
    const histogram = new Array<bigint>(3 * K * layout.score.bins).fill(0n)
    for (const row of hist) {
      const y = Number(row[0])
      const c = row.slice(1, K + 1).findIndex(b => b !== null)
      const r = y === c ? 1 : y < K ? 0 : 2
      histogram[classRowOffset(layout, c, r) - layout.score.offset + Number(row[c + 1])] += big(row[K + 1])
    }
    histogram.forEach((n, i) => { if (n > 0n) setCount(layout.score.offset + i, n, 'class probability bin') })
    return { recordsInWindow: counts.get('recordsInWindow') ?? 0n, withoutTimestamp }
  }
}
