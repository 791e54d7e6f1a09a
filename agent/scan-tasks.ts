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
import { type ColumnExpr, numericSql, numericBucketSql, sqlNumber } from './scan-sql.js'

/** The two columns every task reads besides ts and features: the model's output and the truth. */
export interface TaskColumns { output: string, truth: string }

export interface TaskScan<L extends TaskLayout = TaskLayout> {
  /** Default column names of the two roles (the site maps them with data.columns.score and data.columns.label). */
  columns: (spec: MonitorSpec) => TaskColumns
  /** SELECT items of the reading step, per record of the source: every name they define is in `recordColumns`. */
  recordSql: (spec: MonitorSpec, layout: L, output: ColumnExpr, truth: ColumnExpr) => string[]
  readonly recordColumns: readonly string[]
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
  return 'task' in layout ? regressionScan : null
}

/** The default role columns of a spec's task (binary: score and label). */
export function taskColumnsOf (spec: MonitorSpec): TaskColumns {
  if (spec.task === 'regression') return regressionScan.columns(spec)
  return { output: spec.score.column, truth: spec.label.column }
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
