/**
 * The binary task (a score in [0, 1] and a positive/negative label): today's code behind the Task interface,
 * wrapped rather than moved — layout.ts buildLayout, label-entries.ts, report-body.ts, render.ts — so every
 * binary spec keeps its layout, its spec hash and its report byte for byte.
 */
import type { Task } from './task.js'
import { buildLayout } from '../layout.js'
import { binaryLabelDependentEntries } from '../label-entries.js'
import { binaryReportBody } from '../report-body.js'
import { renderBinaryPerformance } from '../render.js'

export const binaryTask: Task = {
  name: 'binary',
  buildLayout: spec => buildLayout(spec),
  labelDependentEntries: layout => binaryLabelDependentEntries(layout),
  reportBody: opts => binaryReportBody(opts),
  renderPerformance: (report, kit) => renderBinaryPerformance(report, kit),
  fixedSums: () => [] // binary's sums are Layout.sums, listed by fixedSumsOf itself
}
