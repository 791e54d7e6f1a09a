/** The multiclass task (multiclass.ts) behind the Task interface. */
import type { Task, TaskLayout } from './task.js'
import { MAIN_METRICS } from './main-metric.js'
import {
  type MulticlassLayout, type MulticlassCounter, buildMulticlassLayout, multiclassLabelDependentEntries, multiclassFixedSums, multiclassCounterIndex,
  multiclassReportBody, multiclassPerformanceLines, multiclassWindowProblem, multiclassWindowWarnings, multiclassDpSensitivity, multiclassSignedAucs
} from './multiclass.js'

export const multiclassTask: Task<MulticlassLayout> = {
  name: 'multiclass',
  owns: (layout: TaskLayout): layout is MulticlassLayout => 'task' in layout && layout.task === 'multiclass',
  buildLayout: buildMulticlassLayout,
  labelDependentEntries: multiclassLabelDependentEntries,
  fixedSums: multiclassFixedSums,
  recordsInWindow: (layout, vector) => vector[multiclassCounterIndex(layout, 'recordsInWindow')],
  sitesWithRecords: (layout, vector) => vector[multiclassCounterIndex(layout, 'sitesWithRecords')],
  reportBody: multiclassReportBody,
  renderPerformance: multiclassPerformanceLines,
  // metric short names (README): the report's performance keys. log_loss, brier and ece share binary's gauges
  // (fedmon_log_loss, fedmon_brier, fedmon_ece: the same report paths), and fedmon_auc reads performance.auc,
  // which a multiclass report sets to its macro AUC.
  columnCounts: (layout, v) => {
    const c = (name: MulticlassCounter): number => v[multiclassCounterIndex(layout, name)]
    return {
      output: { role: 'scores', usable: c('scoresValid'), missing: c('scoresMissing'), bad: c('scoresNotNumeric') + c('scoresNotFinite') + c('scoresOutOfRange') },
      truth: { role: 'label', usable: c('labelClass'), missing: c('labelUnlabeled'), bad: c('labelNotAClass') }
    }
  },
  windowProblem: (layout, v, columns, maxBad) => multiclassWindowProblem(layout, v, { scores: columns.output, label: columns.truth }, maxBad),
  windowWarnings: (layout, v, columns) => multiclassWindowWarnings(layout, v, { scores: columns.output }),
  dpSensitivity: multiclassDpSensitivity,
  dpSignedFigures: multiclassSignedAucs,
  mainMetric: MAIN_METRICS.multiclass,
  gauges: [
    ['fedmon_macro_auc', 'Macro-averaged one-vs-rest ROC AUC of the latest report (multiclass, midpoint)', 'performance.macro_auc.value'],
    ['fedmon_macro_auc_lower', 'Certified lower bound of the macro one-vs-rest ROC AUC (multiclass)', 'performance.macro_auc.lower'],
    ['fedmon_macro_auc_upper', 'Certified upper bound of the macro one-vs-rest ROC AUC (multiclass)', 'performance.macro_auc.upper'],
    ['fedmon_weighted_auc', 'Prevalence-weighted one-vs-rest ROC AUC of the latest report (multiclass)', 'performance.weighted_auc.value'],
    ['fedmon_accuracy', 'Accuracy of the arg-max class (multiclass)', 'performance.accuracy'],
    ['fedmon_macro_f1', 'Macro-averaged F1 of the arg-max class (multiclass)', 'performance.macro_f1'],
    ['fedmon_weighted_f1', 'Support-weighted F1 of the arg-max class (multiclass)', 'performance.weighted_f1'],
    ['fedmon_macro_precision', 'Macro-averaged precision of the arg-max class (multiclass)', 'performance.macro_precision'],
    ['fedmon_macro_recall', 'Macro-averaged recall of the arg-max class (multiclass)', 'performance.macro_recall']
  ]
}
