/**
 * `fedmon evaluate` as a function: one site's report with the federation's exact pipeline — layout → scan →
 * sum of one → computeReportBody. The scanner is passed in so shared/ stays free of I/O imports.
 */
import { randomUUID } from 'node:crypto'
import type { Report } from '../report.js'
import { loadMonitorSpec } from './spec.js'
import { buildLayout, type Layout } from './layout.js'
import type { DataSource } from './data-source.js'
import type { MonitorSpec } from './spec.js'
import { computeReportBody } from './report-body.js'

export type WindowMs = { from: number, to: number }
export type Scanner = (opts: { spec: MonitorSpec, layout: Layout, source: DataSource, window: WindowMs, signal?: AbortSignal }) => Promise<Uint32Array>

/** Sums agents' vectors mod 2^32 (what secure aggregation yields); with one vector it is a copy. */
export function sumVectors (vectors: Uint32Array[], length: number): Uint32Array {
  const out = new Uint32Array(length)
  for (const v of vectors) for (let i = 0; i < length; i++) out[i] = (out[i] + v[i]) >>> 0
  return out
}

export const isoWindow = (w: WindowMs): { from: string, to: string } => ({ from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() })

export async function evaluateLocal (opts: { specFile: string, source: DataSource, window: WindowMs, referenceWindow: WindowMs | null, scan: Scanner, signal?: AbortSignal }): Promise<Report> {
  const started = Date.now()
  const spec = loadMonitorSpec(opts.specFile)
  const layout = buildLayout(spec)
  const scanOne = async (window: WindowMs): Promise<Uint32Array> =>
    sumVectors([await opts.scan({ spec, layout, source: opts.source, window, signal: opts.signal })], layout.length)
  const current = await scanOne(opts.window)
  const reference = opts.referenceWindow !== null
    ? { vector: await scanOne(opts.referenceWindow), id: null, window: isoWindow(opts.referenceWindow) }
    : null
  const body = computeReportBody({ spec, layout, current, reference })
  const id = `local-${randomUUID()}`
  return {
    id,
    round: { id, kind: 'local', durationMs: Date.now() - started },
    window: isoWindow(opts.window),
    spec: { model: spec.model, hash: layout.specHash, vectorLength: layout.length },
    agents: { invited: [], included: ['local'], dropped: [] },
    ...body,
    alerts: [],
    privacy: { threshold: null, minAgents: null },
    createdAt: new Date().toISOString()
  }
}
