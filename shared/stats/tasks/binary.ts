/**
 * The binary task: a probability `score` and a 0/1 `label` (design §4). Its code predates tasks and stays where
 * it was (layout.ts, label-entries.ts, report-body.ts, render.ts); this module puts it behind the Task interface.
 */
import type { Task, TaskColumnNames, TaskLayout } from './task.js'
import { MAIN_METRICS } from './main-metric.js'
import { buildLayout, counterIndex, fixedSumsOf, type CounterName, type Layout } from '../layout.js'
import { binaryLabelDependentEntries } from '../label-entries.js'
import { binaryReportBody } from '../report-body.js'
import { binaryPerformanceLines } from '../render.js'

export const binaryTask: Task<Layout> = {
  name: 'binary',
  owns: (layout: TaskLayout): layout is Layout => !('task' in layout),
  buildLayout,
  labelDependentEntries: binaryLabelDependentEntries,
  fixedSums: fixedSumsOf,
  recordsInWindow: (layout, vector) => vector[counterIndex(layout, 'recordsInWindow')],
  sitesWithRecords: (layout, vector) => vector[counterIndex(layout, 'sitesWithRecords')],
  reportBody: binaryReportBody,
  renderPerformance: binaryPerformanceLines,
  columnCounts: (layout, v) => {
    const c = (name: Parameters<typeof counterIndex>[1]): number => v[counterIndex(layout, name)]
    return {
      output: { role: 'score', usable: c('scoreValid'), missing: c('scoreMissing'), bad: c('scoreNotNumeric') + c('scoreNotFinite') + c('scoreOutOfRange') },
      truth: { role: 'label', usable: c('labelPositive') + c('labelNegative'), missing: c('labelUnlabeled'), bad: c('labelInvalid') }
    }
  },
  windowProblem: binaryWindowProblem,
  windowWarnings: () => [],
  mainMetric: MAIN_METRICS.binary,
  gauges: [] // the binary gauges are coordinator/metrics.ts's own list (they predate tasks)
}

const percent = (part: number, whole: number): string => `${Math.max(1, Math.round(100 * part / whole))} %`

function binaryWindowProblem (layout: Layout, vector: Uint32Array, columns: TaskColumnNames, maxBadFraction: number): string | null {
  const counter = (name: CounterName): number => vector[counterIndex(layout, name)]
  const records = counter('recordsInWindow')
  const tooMany = (bad: number): boolean => bad > maxBadFraction * records
  const scoreKinds: Array<[CounterName, string]> = [['scoreMissing', 'missing'], ['scoreNotNumeric', 'not a number'], ['scoreNotFinite', 'not finite'], ['scoreOutOfRange', 'outside [0, 1]']]
  const badScores = records - counter('scoreValid')
  if (tooMany(badScores)) {
    const kinds = scoreKinds.filter(([name]) => counter(name) > 0).map(([, what]) => what)
    return `column \`${columns.output}\`: ${percent(badScores, records)} of the window's records have no usable score (${kinds.join(', ')}), more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.score`
  }
  const badLabels = counter('labelInvalid')
  if (tooMany(badLabels)) {
    return `column \`${columns.truth}\`: ${percent(badLabels, records)} of the window's records have a label that is not 0, 1, true, false or empty, more than policy.maxBadRecordFraction ${maxBadFraction}: check data.columns.label and label.positive`
  }
  return null
}
