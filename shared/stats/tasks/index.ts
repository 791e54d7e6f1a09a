/**
 * Picks the task module of a spec, a layout or a report. Functions (not a table built at load time), so the
 * modules' import cycle through report-body.ts and render.ts is safe.
 */
import type { MonitorSpec, TaskName } from '../spec.js'
import type { Report } from '../../report.js'
import type { Task, TaskLayout } from './task.js'
import { binaryTask } from './binary.js'
import { regressionTask } from './regression-task.js'
import { withSegments } from '../segments.js'
import { multiclassTask } from './multiclass-task.js'

export type { Task, TaskLayout } from './task.js'

export function taskNamed (name: TaskName): Task<any> {
  switch (name) {
    case 'binary': return binaryTask
    case 'regression': return regressionTask
    case 'multiclass': return multiclassTask
  }
}

export function taskOfSpec (spec: MonitorSpec): Task<any> {
  return taskNamed(spec.task ?? 'binary')
}

export function taskOfLayout (layout: TaskLayout): Task<any> {
  return 'task' in layout ? taskNamed(layout.task) : binaryTask
}

/** A report says its task in `spec.task` when it is not binary (binary reports are as before tasks). */
export function taskOfReport (report: Pick<Report, 'spec'>): Task<any> {
  return taskNamed(report.spec.task ?? 'binary')
}

/** Every task's own Prometheus gauges (coordinator/metrics.ts adds them to the binary ones). */
export function taskGauges (): ReadonlyArray<readonly [string, string, string]> {
  return [binaryTask, regressionTask, multiclassTask].flatMap(t => t.gauges)
}

/**
 * The layout of any spec: every caller that may meet a non-binary (or segmented) spec builds its layout here.
 * With `segments`, the task's layout is followed by its per-cell layouts (shared/stats/segments.ts).
 */
export function buildTaskLayout (spec: MonitorSpec): TaskLayout {
  const task = taskOfSpec(spec)
  return withSegments(spec, task.buildLayout(spec), cellSpec => task.buildLayout(cellSpec))
}
