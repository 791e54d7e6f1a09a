/** The regression task (regression.ts) behind the Task interface. */
import type { Task, TaskLayout } from './task.js'
import { MAIN_METRICS } from './main-metric.js'
import {
  type RegressionLayout, type RegressionCounter, buildRegressionLayout, regressionLabelDependentEntries, regressionFixedSums, regressionCounterIndex,
  regressionReportBody, regressionPerformanceRows, regressionWindowProblem, regressionDpSensitivity
} from './regression.js'

export const regressionTask: Task<RegressionLayout> = {
  name: 'regression',
  owns: (layout: TaskLayout): layout is RegressionLayout => 'task' in layout && layout.task === 'regression',
  buildLayout: buildRegressionLayout,
  labelDependentEntries: regressionLabelDependentEntries,
  fixedSums: regressionFixedSums,
  recordsInWindow: (layout, vector) => vector[regressionCounterIndex(layout, 'recordsInWindow')],
  sitesWithRecords: (layout, vector) => vector[regressionCounterIndex(layout, 'sitesWithRecords')],
  reportBody: regressionReportBody,
  renderPerformance: (report, { table, paint }) => {
    const p = report.performance as { precision?: { note?: string } }
    return [
      ...table([['metric', 'value', 'bound'], ...regressionPerformanceRows(report, (x, d) => numText(x, d))]).map(l => '  ' + l),
      ...(p.precision?.note !== undefined ? [paint(`  precision: ${p.precision.note}`, 'dim')] : [])
    ]
  },
  // metric short names (README): the same names as the report's performance keys
  columnCounts: (layout, v) => {
    const c = (name: RegressionCounter): number => v[regressionCounterIndex(layout, name)]
    return {
      output: { role: 'prediction', usable: c('predictionValid'), missing: c('predictionMissing'), bad: c('predictionNotNumeric') + c('predictionNotFinite') },
      truth: { role: 'target', usable: c('targetValid'), missing: c('targetMissing'), bad: c('targetNotNumeric') + c('targetNotFinite') }
    }
  },
  windowProblem: (layout, v, columns, maxBad) => regressionWindowProblem(layout, v, { prediction: columns.output, target: columns.truth }, maxBad),
  windowWarnings: () => [],
  dpSensitivity: regressionDpSensitivity,
  mainMetric: MAIN_METRICS.regression,
  gauges: [
    ['fedmon_mae', 'Mean absolute error of the latest report (regression)', 'performance.mae.value'],
    ['fedmon_rmse', 'Root mean squared error of the latest report (regression)', 'performance.rmse.value'],
    ['fedmon_r2', 'Coefficient of determination R² of the latest report (regression)', 'performance.r2.value'],
    ['fedmon_bias', 'Mean error (prediction − target) of the latest report (regression)', 'performance.bias.value'],
    ['fedmon_mape', 'Mean absolute percentage error over non-zero targets (regression)', 'performance.mape.value'],
    ['fedmon_abs_error_p90', '90th percentile of |prediction − target| (regression, DDSketch)', 'performance.abs_error_quantiles.p90.value']
  ]
}

function numText (x: unknown, digits = 4): string {
  if (typeof x !== 'number' || Number.isNaN(x)) return '—'
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞'
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1)
  if (Math.abs(x) >= 1e6) return x.toExponential(4)
  return x.toFixed(digits)
}
