/**
 * One interface per task (design §8 "Tasks behind one interface"): what a task knows, so that layout, scan,
 * report and render call the interface instead of branching on the task. One module per task implements it
 * (binary.ts, regression.ts); index.ts picks the module for a spec, a layout or a report. The scan's DuckDB
 * part of a task lives in the agent (agent/scan-tasks.ts), since shared/ does no I/O.
 */
import type { MonitorSpec, TaskName } from '../spec.js'
import type { Layout } from '../layout.js'
import type { FixedSum } from '../fixed-point.js'
import type { Report } from '../../report.js'
import type { ReportBody, ReferenceInput } from '../report-body.js'
import type { RegressionLayout } from './regression.js'
import type { MainMetric } from './main-metric.js'
import type { MulticlassLayout } from './multiclass.js'

/** Every task's layout: the binary layout (the type predating tasks, without a `task` field) or another task's. */
export type TaskLayout = Layout | RegressionLayout | MulticlassLayout

/** The tools a task's terminal rendering gets from the one renderer (shared/stats/render.ts). */
export interface RenderTools {
  paint: (s: string, ...codes: Array<'red' | 'yellow' | 'green' | 'dim' | 'bold'>) => string
  num: (x: unknown, digits?: number) => string
  int: (x: unknown) => string
  table: (rows: string[][]) => string[]
}

/** Count entries of one kind and how many of them one record can touch, each by exactly 1 (privacy.dp). */
export interface CountGroup {
  /** What the group is, for reports and errors. */
  name: string
  /** Entries one record can touch in this group, each by exactly 1. */
  touched: number
}

/** Raw sum entries of which one record moves at most one, by at most `maxTerm` (privacy.dp). */
export interface SumGroup { name: string, maxTerm: number, entries: number[] }

/** How one record can move a task's own entries (shared/dp/sensitivity.ts adds segment cells and totals). */
export interface TaskSensitivity {
  countGroups: CountGroup[]
  /**
   * The raw one-entry sums of a privacy.dp layout in groups that one record moves at most one entry of, by at most
   * maxTerm (`entries`: the group's offsets in the layout); [] without. Each group is noised as its own release.
   */
  sums: SumGroup[]
}

/** The columns of the task's two roles as the site names them (binary: score and label). */
export interface TaskColumnNames { output: string, truth: string }

/** One column's records in the window: usable, missing and bad (`fedmon check`). */
export interface RoleCounts { role: string, usable: number, missing: number, bad: number }

export interface Task<L extends TaskLayout = TaskLayout> {
  readonly name: TaskName
  /** Whether `layout` is this task's. */
  owns: (layout: TaskLayout) => layout is L
  /** The vector layout: a pure function of the validated spec (the spec hash binds it). */
  buildLayout: (spec: MonitorSpec) => L
  /**
   * The entries whose value can change when a record's label (binary) or target (regression) arrives: what a
   * label-refresh round sums again. Ascending indexes.
   */
  labelDependentEntries: (layout: L) => Uint32Array
  /** The fixed-point limb groups (every other entry is a count). */
  fixedSums: (layout: L) => FixedSum[]
  /** Records of the window the vector counts (policy.minRecords, contributing-site checks). */
  recordsInWindow: (layout: L, vector: Uint32Array) => number
  /** The summed per-site indicator `sitesWithRecords` (shared/stats/contributing.ts). */
  sitesWithRecords: (layout: L, vector: Uint32Array) => number
  /** samples, performance, drift, data quality (and histograms) from a summed vector. */
  reportBody: (opts: { spec: MonitorSpec, layout: L, current: Uint32Array, reference: ReferenceInput | null }) => ReportBody
  /** The terminal report's Performance section (lines, indented by the renderer's convention). */
  renderPerformance: (report: Report, tools: RenderTools) => string[]
  /** Prometheus gauges of the report's performance: [metric name, help, path in the report], by short name. */
  readonly gauges: ReadonlyArray<readonly [string, string, string]>
  /**
   * What `fedmon check` shows for the task's two columns over the window: records whose output (binary: score) and
   * truth (binary: label) are usable, missing and bad, each under the role name a user reads.
   */
  columnCounts: (layout: L, vector: Uint32Array) => { output: RoleCounts, truth: RoleCounts }
  /**
   * Why a site declines a window of its data (too many unusable outputs or truths, naming the column as the site
   * maps it), or null. Called only for a window with records.
   */
  windowProblem: (layout: L, vector: Uint32Array, columns: TaskColumnNames, maxBadFraction: number) => string | null
  /** Warnings about a window that is still contributed (e.g. multiclass probabilities not summing to 1). */
  windowWarnings: (layout: L, vector: Uint32Array, columns: TaskColumnNames) => string[]
  /**
   * privacy.dp: what one record can change in the vector, read off the layout (the scan's rules: each record in
   * one class of each counter family, one bucket of each histogram). test/property/dp-sensitivity.test.ts checks
   * it on the real scan.
   */
  dpSensitivity: (layout: L) => TaskSensitivity
  /**
   * privacy.dp: sets the figures that are better read from the signed noisy sum than from the sum clamped at zero
   * (AUC is bilinear in two histograms, so clamping their many near-empty cells would bias it; shared/dp/report.ts).
   */
  dpSignedFigures?: (layout: L, performance: Report['performance'], signed: Int32Array) => void
  /** The figure a segment table is sorted by (worst first): its label, its key under `performance`, and its sense. */
  readonly mainMetric: MainMetric
}
