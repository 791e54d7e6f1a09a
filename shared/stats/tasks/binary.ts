/**
 * The binary task: a probability `score` and a 0/1 `label` (design §4). Its code predates tasks and stays where
 * it was (layout.ts, label-entries.ts, report-body.ts, render.ts); this module puts it behind the Task interface.
 */
import type { SumGroup, Task, TaskColumnNames, TaskLayout } from './task.js'
import type { FixedSum } from '../fixed-point.js'
import { MAIN_METRICS } from './main-metric.js'
import { buildLayout, counterIndex, featureSensitivity, fixedSumsOf, type CounterName, type Layout } from '../layout.js'
import { signedRocAucBounds } from '../performance.js'
import type { Report } from '../../report.js'
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
  dpSensitivity: binaryDpSensitivity,
  dpSignedFigures: (layout, performance, signed) => { performance.auc = signedAuc(layout, signed) },
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

/**
 * privacy.dp (shared/dp/sensitivity.ts): every record is in the window count, in exactly one label class and
 * exactly one score class (and flips the site's indicator when it is the window's only one); a labeled record
 * with a valid score is in exactly one of tp/fp/fn/tn, an unlabeled one predicted positive in
 * predictedPositiveUnlabeled (never both); a valid score lands in one histogram cell and, when labeled, in its
 * calibration bin's labeled count and maybe its positive count; every feature puts the record in one bucket.
 * Raw sums: a record adds to the log-loss and Brier sums (labelled), Σs and Σs² (valid score), one calibration
 * bin's Σs (labelled), and each clipped numeric feature's Σu and Σu² (a valid value).
 */
function binaryDpSensitivity (layout: Layout): ReturnType<NonNullable<typeof binaryTask.dpSensitivity>> {
  const features = featureSensitivity(layout.features)
  const sums: SumGroup[] = []
  const s = layout.sums
  if (s.kind === 'fixed' && s.logLoss.raw === true) {
    const one = (name: string, fs: FixedSum): SumGroup => ({ name, maxTerm: fs.maxTerm, entries: [fs.offset] })
    sums.push(one('log loss', s.logLoss), one('Brier', s.brier), one('score sum', s.scoreSum), one('score sum of squares', s.scoreSumSquares))
    if (s.calibration.length > 0) sums.push({ name: 'calibration score sums (one bin)', maxTerm: Math.max(...s.calibration.map(c => c.maxTerm)), entries: s.calibration.map(c => c.offset) })
  }
  return {
    countGroups: [
      { name: 'counters', touched: 5 },
      { name: 'score histogram', touched: 1 },
      ...(layout.calibration.bins > 0 ? [{ name: 'calibration counts', touched: 2 }] : []),
      ...features.countGroups
    ],
    sums: [...sums, ...features.sums]
  }
}

/** AUC with its binning bounds from the signed score histograms (shared/dp/report.ts). */
function signedAuc (layout: Layout, v: Int32Array): Report['performance']['auc'] {
  const B = layout.score.bins
  const o = layout.score.offset
  return signedRocAucBounds(v.subarray(o, o + B), v.subarray(o + B, o + 2 * B))
}
