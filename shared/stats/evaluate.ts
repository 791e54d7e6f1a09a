/**
 * `fedmon evaluate` as a function: one site's report with the federation's exact pipeline — layout → scan →
 * sum of one → computeReportBody. The scanner is passed in so shared/ stays free of I/O imports.
 */
import { randomUUID } from 'node:crypto'
import type { Report } from '../report.js'
import { loadMonitorSpec } from './spec.js'
import { buildTaskLayout, type TaskLayout } from './tasks/index.js'
import type { DataSource } from './data-source.js'
import type { MonitorSpec } from './spec.js'
import { computeReportBody } from './report-body.js'
import { contributingSites } from './contributing.js'

export type WindowMs = { from: number, to: number }
/** What a scan says about the label source joined by id (agent/scan.ts LabelFigures): local, never in a report. */
export interface JoinedLabels { files: string[], records: number, ids: number, duplicateIds: number, unknownIds: number, joined: number, predictionsWithoutId: number, cutoffApplied: boolean }

/** A scan of one window: the vector, and figures that stay with the site (agent/scan.ts scanWindowDetailed). */
export type Scanner = (opts: { spec: MonitorSpec, layout: TaskLayout, source: DataSource, window: WindowMs, signal?: AbortSignal, labelCutoff?: number }) =>
Promise<{ vector: Uint32Array, local: { recordsWithoutTimestamp: number, recordsInWindow: number, labels?: JoinedLabels } }>

/** Sums agents' vectors mod 2^32 (what secure aggregation yields); with one vector it is a copy. */
export function sumVectors (vectors: Uint32Array[], length: number): Uint32Array {
  const out = new Uint32Array(length)
  for (const v of vectors) for (let i = 0; i < length; i++) out[i] = (out[i] + v[i]) >>> 0
  return out
}

export const isoWindow = (w: WindowMs): { from: string, to: string } => ({ from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() })

/**
 * One site's report of `window`. With a label source (source.labels) the labels are joined by id exactly as in
 * a round; `onLabels` gets the current window's label figures (for the operator's eyes: they are not in the
 * report, as the federation's report has none either). `labelCutoff`: as a refresh round would cut the labels.
 */
export async function evaluateLocal (opts: { specFile: string, source: DataSource, window: WindowMs, referenceWindow: WindowMs | null, scan: Scanner, signal?: AbortSignal, labelCutoff?: number, onLabels?: (labels: JoinedLabels, recordsInWindow: number) => void }): Promise<Report> {
  const started = Date.now()
  const spec = loadMonitorSpec(opts.specFile)
  const layout = buildTaskLayout(spec)
  const scanned = await opts.scan({ spec, layout, source: opts.source, window: opts.window, signal: opts.signal, ...(opts.labelCutoff !== undefined ? { labelCutoff: opts.labelCutoff } : {}) })
  if (scanned.local.labels !== undefined) opts.onLabels?.(scanned.local.labels, scanned.local.recordsInWindow)
  const current = sumVectors([scanned.vector], layout.length)
  const reference = opts.referenceWindow !== null
    ? { vector: sumVectors([(await opts.scan({ spec, layout, source: opts.source, window: opts.referenceWindow, signal: opts.signal })).vector], layout.length), id: null, window: isoWindow(opts.referenceWindow) }
    : null
  // one site's own view: a segment cell's site count is 1 by construction (minCellSites is the federation's rule)
  const body = computeReportBody({ spec, layout, current, reference, cellSites: 'ignore' })
  // One site, local: its own count of undated records may be shown (it is the same for every window, which is
  // why the federation never sums it). Placed right after `records`, where the report's readers look.
  const { records, ...quality } = body.dataQuality
  body.dataQuality = { records, recordsWithoutTimestamp: scanned.local.recordsWithoutTimestamp, ...quality }
  const id = `local-${randomUUID()}`
  return {
    id,
    round: { id, kind: 'local', durationMs: Date.now() - started },
    window: isoWindow(opts.window),
    spec: { model: spec.model, hash: layout.specHash, vectorLength: layout.length, ...(spec.task !== undefined && spec.task !== 'binary' ? { task: spec.task } : {}) },
    // one site: 1 when it has records in the window, as its indicator says in a round
    agents: { invited: [], included: ['local'], dropped: [], contributing: contributingSites(layout, current) },
    ...body,
    alerts: [],
    privacy: { threshold: null, minAgents: null },
    createdAt: new Date().toISOString()
  }
}
