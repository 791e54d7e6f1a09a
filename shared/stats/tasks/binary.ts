/**
 * The binary task: a probability `score` and a 0/1 `label` (design §4). Its code predates tasks and stays where
 * it was (layout.ts, label-entries.ts, report-body.ts, render.ts); this module puts it behind the Task interface.
 */
import type { Task, TaskLayout } from './task.js'
import { buildLayout, counterIndex, fixedSumsOf, type Layout } from '../layout.js'
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
  mainMetric: { label: 'AUC', key: 'auc', higherIsBetter: true },
  gauges: [] // the binary gauges are coordinator/metrics.ts's own list (they predate tasks)
}
