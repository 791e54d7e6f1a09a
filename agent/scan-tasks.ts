/**
 * The scan's part of each task (shared/stats/tasks/): which two columns a record's prediction and truth are read
 * from, their per-record SQL, and the GROUP BY that fills the task's entries. The scan (agent/scan.ts) calls
 * these; features are read the same way for every task.
 */
import type { DuckDBConnection } from '@duckdb/node-api'
import type { MonitorSpec } from '../shared/stats/spec.js'
import type { Layout } from '../shared/stats/layout.js'
import { writeLimbs } from '../shared/stats/fixed-point.js'
import { regressionLayoutOf, regressionCounterIndex, REGRESSION_COUNTERS, type RegressionCounter } from '../shared/stats/tasks/regression.js'
import { type ColumnExpr, numericSql, numericBucketSql, sqlNumber, scoreClassSql, labelClassSql } from './scan-sql.js'
import { aggregateBinaryRecords } from './scan.js'

export type SetCount = (index: number, value: bigint, what: string) => void
export interface RecordTotals { withoutTimestamp: bigint, recordsInWindow: bigint }

export interface ScanTask {
  /** The columns (before the agent's mapping) holding the model's output and the truth. */
  columns: (spec: MonitorSpec) => { output: string, truth: string }
  /** Per-record `expr AS name` items of the reading SELECT (output column, truth column). */
  recordSql: (spec: MonitorSpec, output: ColumnExpr, truth: ColumnExpr) => string[]
  /** The window SELECT's task columns (`hasTs`: the usable-ts condition) and the raw ones it replaces. */
  windowColumns: (hasTs: string) => { select: string, excluded: string[] }
  /** Fills the task's counters and sums for the window's records; returns the record totals. */
  aggregateRecords: (conn: DuckDBConnection, spec: MonitorSpec, layout: Layout, vec: Uint32Array, setCount: SetCount) => Promise<RecordTotals>
}

const binaryScan: ScanTask = {
  columns: spec => ({ output: spec.score.column, truth: spec.label.column }),
  recordSql: (spec, output, truth) => {
    const score = scoreClassSql(output)
    return [`${score.cls} AS score_class`, `${score.value} AS s_raw`, `${labelClassSql(spec, truth)} AS label_class`]
  },
  windowColumns: hasTs => ({ select: `score_class, CASE WHEN score_class = 0 AND ${hasTs} THEN s_raw END AS s, label_class`, excluded: ['score_class', 's_raw', 'label_class'] }),
  aggregateRecords: async (conn, spec, layout, vec, setCount) => await aggregateBinaryRecords(conn, spec, layout, vec, setCount)
}

/** 0 valid (a finite number), 1 missing, 2 invalid (not a number, or not finite). */
function valueClassSql (c: ColumnExpr): { cls: string, value: string } {
  const n = numericSql(c)
  return { cls: `(CASE WHEN ${n.isMissing} THEN 1 WHEN ${n.isNotNumeric} OR NOT isfinite(${n.value}) THEN 2 ELSE 0 END)`, value: n.value }
}

const regressionScan: ScanTask = {
  columns: spec => ({ output: spec.prediction?.column ?? 'prediction', truth: spec.target?.column ?? 'target' }),
  recordSql: (_spec, output, truth) => {
    const p = valueClassSql(output); const y = valueClassSql(truth)
    return [`${p.cls} AS p_class`, `${p.value} AS p_raw`, `${y.cls} AS y_class`, `${y.value} AS y_raw`]
  },
  windowColumns: hasTs => ({
    select: `p_class, y_class, CASE WHEN p_class = 0 AND ${hasTs} THEN p_raw END AS p, CASE WHEN y_class = 0 AND ${hasTs} THEN y_raw END AS y`,
    excluded: ['p_class', 'p_raw', 'y_class', 'y_raw']
  }),
  aggregateRecords: async (conn, _spec, layout, vec, setCount) => await aggregateRegressionRecords(conn, layout, vec, setCount)
}

async function aggregateRegressionRecords (conn: DuckDBConnection, layout: Layout, vec: Uint32Array, setCount: SetCount): Promise<RecordTotals> {
  const r = regressionLayoutOf(layout)
  const lo = sqlNumber(r.lo); const hi = sqlNumber(r.hi); const width = sqlNumber(r.hi - r.lo); const levels = sqlNumber(2 ** r.precisionBits)
  const clip = (x: string): string => `least(greatest(${x}, ${lo}), ${hi})`
  // the level u ∈ [0, 2^b]: divide by the width, then scale by a power of two (as clipped moments do)
  const level = (x: string): string => `CAST(round((${clip(x)} - ${lo}) / ${width} * ${levels}) AS BIGINT)`
  const inner = `SELECT has_ts, p_class, y_class, p, y, ${level('p')} AS up, ${level('y')} AS uy FROM w`
  const pair = 'p IS NOT NULL AND y IS NOT NULL'
  const ape = `CASE WHEN ${pair} AND ${clip('y')} <> 0 THEN CAST(round(least(abs(${clip('p')} - ${clip('y')}) / abs(${clip('y')}), ${sqlNumber(r.mapeCap)}) * ${levels}) AS BIGINT) END`
  const rows = (await conn.runAndReadAll(`SELECT has_ts, p_class, y_class, count(*),
      count(*) FILTER (WHERE p < ${lo} OR p > ${hi}), count(*) FILTER (WHERE y < ${lo} OR y > ${hi}),
      sum(CASE WHEN ${pair} THEN greatest(up - uy, 0) END), sum(CASE WHEN ${pair} THEN greatest(uy - up, 0) END),
      sum(CASE WHEN ${pair} THEN (up - uy) * (up - uy) END), sum(CASE WHEN ${pair} THEN uy END), sum(CASE WHEN ${pair} THEN uy * uy END),
      sum(${ape}), count(*) FILTER (WHERE ${pair} AND ${clip('y')} <> 0)
    FROM (${inner}) GROUP BY ALL`)).getRows()
  const big = (x: unknown): bigint => (x === null || x === undefined ? 0n : BigInt(x as bigint | number))
  const counts = new Map<RegressionCounter, bigint>(REGRESSION_COUNTERS.map(n => [n, 0n]))
  const add = (name: RegressionCounter, n: bigint): void => { counts.set(name, (counts.get(name) ?? 0n) + n) }
  const sums = { errorPositive: 0n, errorNegative: 0n, errorSquares: 0n, target: 0n, targetSquares: 0n, ape: 0n }
  const classNames = ['Valid', 'Missing', 'Invalid'] as const
  let withoutTimestamp = 0n
  for (const [hasTs, pClass, yClass, n, pClipped, yClipped, ePos, eNeg, e2, uy, uy2, apes, nonZero] of rows) {
    const count = big(n)
    if (hasTs !== true) { withoutTimestamp += count; continue }
    add('recordsInWindow', count)
    add(`prediction${classNames[Number(pClass)]}`, count)
    add(`target${classNames[Number(yClass)]}`, count)
    add('predictionClipped', big(pClipped)); add('targetClipped', big(yClipped))
    if (Number(pClass) === 0 && Number(yClass) === 0) add('pairs', count)
    add('pairsNonZeroTarget', big(nonZero))
    sums.errorPositive += big(ePos); sums.errorNegative += big(eNeg); sums.errorSquares += big(e2)
    sums.target += big(uy); sums.targetSquares += big(uy2); sums.ape += big(apes)
  }
  for (const name of REGRESSION_COUNTERS) setCount(regressionCounterIndex(r, name), counts.get(name) ?? 0n, name)
  for (const [name, fs] of Object.entries(r.sums)) writeLimbs(vec, fs, sums[name as keyof typeof sums])
  // the histograms: valid predictions, valid targets (clipped values), and the pairs' rounded errors
  const step = sqlNumber(r.step)
  const histograms = [
    { f: r.prediction, value: clip('p'), where: 'p IS NOT NULL', missing: counts.get('predictionMissing'), invalid: counts.get('predictionInvalid') },
    { f: r.target, value: clip('y'), where: 'y IS NOT NULL', missing: counts.get('targetMissing'), invalid: counts.get('targetInvalid') },
    { f: r.error, value: `CAST(up - uy AS DOUBLE) * ${step}`, where: pair, missing: 0n, invalid: 0n }
  ]
  for (const h of histograms) {
    const res = await conn.runAndReadAll(`SELECT ${numericBucketSql(h.f, 'v')} AS b, count(*) FROM (SELECT ${h.value} AS v FROM (${inner}) WHERE has_ts AND ${h.where}) GROUP BY ALL`)
    for (const [b, n] of res.getRows()) setCount(h.f.offset + Number(b), big(n), h.f.name)
    setCount(h.f.offset + h.f.missingIndex, h.missing ?? 0n, h.f.name)
    setCount(h.f.offset + h.f.invalidIndex, h.invalid ?? 0n, h.f.name)
  }
  return { withoutTimestamp, recordsInWindow: counts.get('recordsInWindow') ?? 0n }
}

/** The scan part of the layout's task. */
export function scanTaskOf (layout: Pick<Layout, 'task'>): ScanTask {
  return layout.task.kind === 'regression' ? regressionScan : binaryScan
}

/** The scan part of a spec's task (before a layout exists: column names). */
export function scanTaskOfSpec (spec: MonitorSpec): ScanTask {
  return spec.task === 'regression' ? regressionScan : binaryScan
}
