/**
 * Tasks behind one interface (design §8, issue 12 §2): what a model predicts decides its layout entries, which
 * of them depend on labels, its metrics from the summed vector and its terminal rendering. Layout, report,
 * render and the label-refresh split call the task; each task is one module (binary.ts, regression.ts). The
 * scan's SQL for a task lives beside the scan (agent/scan-tasks.ts), since shared/ never imports DuckDB.
 */
import type { MonitorSpec, TaskName } from '../spec.js'
import type { Layout } from '../layout.js'
import type { FixedSum } from '../fixed-point.js'
import type { Report } from '../../report.js'
import type { ReportBody, ReferenceInput } from '../report-body.js'
import { binaryTask } from './binary.js'
import { regressionTask, type RegressionLayout } from './regression.js'

/** A task's own part of the layout (Layout.task). Binary's entries are the legacy sections of Layout. */
export type TaskLayout = { kind: 'binary' } | RegressionLayout

/** Helpers a task's renderer gets from the one terminal renderer (shared/stats/render.ts). */
export interface RenderKit {
  paint: (s: string, ...codes: Array<'red' | 'yellow' | 'green' | 'dim' | 'bold'>) => string
  num: (x: unknown, digits?: number) => string
  int: (x: unknown) => string
  table: (rows: string[][]) => string[]
}

export interface Task {
  readonly name: TaskName
  /** The layout of a spec of this task (binary: shared/stats/layout.ts buildLayout itself). */
  buildLayout: (spec: MonitorSpec) => Layout
  /** Indexes (ascending) of the entries a label (target) can change: what a label-refresh round sums again. */
  labelDependentEntries: (layout: Layout) => Uint32Array
  /** The report body (samples, performance, drift, data quality) from a summed vector. */
  reportBody: (opts: { spec: MonitorSpec, layout: Layout, current: Uint32Array, reference: ReferenceInput | null }) => ReportBody
  /** The Performance section of the terminal report, as lines (without the heading). */
  renderPerformance: (report: Report, kit: RenderKit) => string[]
  /** The fixed-point limb groups of the task's own entries (binary's are Layout.sums). */
  fixedSums: (layout: TaskLayout) => FixedSum[]
}

/** The task module of a task name (a spec's `task`, absent = binary). */
export function taskNamed (name: TaskName | undefined): Task {
  switch (name ?? 'binary') {
    case 'binary': return binaryTask
    case 'regression': return regressionTask
    default: throw new RangeError(`task ${String(name)} is not supported yet`)
  }
}

/** The task a layout was built for. */
export function taskOf (layout: Pick<Layout, 'task'>): Task {
  return taskNamed(layout.task.kind)
}

/** The task a report was made for: `performance.task`, absent in binary reports (which keep their JSON). */
export function taskOfReport (report: Pick<Report, 'performance'>): Task {
  const name = (report.performance as { task?: unknown }).task
  return taskNamed(name === 'regression' ? 'regression' : 'binary')
}

/** The layout of a spec whose task is not binary (buildLayout's dispatch point). */
export function buildTaskLayout (spec: MonitorSpec): Layout {
  return taskNamed(spec.task).buildLayout(spec)
}

export function taskFixedSumsOf (t: TaskLayout): FixedSum[] {
  return taskNamed(t.kind).fixedSums(t)
}
