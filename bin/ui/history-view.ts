/** The text and JSON of `fedmon report history`. Pure, so tests can check it without a coordinator. */
import type { Report } from '../../shared/report.js'
import { expandMetricPattern, readMetric, METRIC_ALIASES } from '../../coordinator/alerts.js'
import { asciiChart, formatNumber, paint, shortTime, sparkline, table } from './format.js'

const CHART_MAX_POINTS = 50
const SPARKLINE_MAX_POINTS = 100

export interface HistoryPoint { id: string, kind: string, window: Report['window'], createdAt: string, samples: number, alerts: number, value: number | null }

/** The canonical dotted path a user's metric name stands for (aliases and drift shortcuts resolved). */
export function canonicalMetric (metric: string): string {
  return expandMetricPattern(metric)[0].join('.')
}

/** The time a window bound stands for (an unparsable one sorts last). */
const instant = (iso: string | undefined): number => {
  const t = iso !== undefined ? Date.parse(iso) : Number.NaN
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t
}

/**
 * One point per report, in window order (from, then to; reports of one window by creation): the API lists
 * reports newest created first, and a backfill or a re-run of an old window is created after newer ones.
 */
export function historyPoints (reports: Report[], metric: string): HistoryPoint[] {
  const sorted = [...reports].sort((a, b) =>
    instant(a.window?.from) - instant(b.window?.from) || instant(a.window?.to) - instant(b.window?.to) || instant(a.createdAt) - instant(b.createdAt))
  return sorted.map(r => ({
    id: r.id,
    kind: r.round?.kind ?? '?',
    window: r.window,
    createdAt: r.createdAt,
    samples: r.samples?.count ?? 0,
    alerts: Array.isArray(r.alerts) ? r.alerts.length : 0,
    value: readMetric(r, metric)
  }))
}

export function renderHistory (points: HistoryPoint[], metric: string, opts: { color: boolean }): string {
  const p = paint(opts.color)
  const path = canonicalMetric(metric)
  if (points.length === 0) return 'no reports yet (run a round: fedmon round run --window FROM..TO --wait)'
  const values = points.map(x => x.value)
  const lines: string[] = []
  lines.push(p.bold(`${path} — ${points.length} report${points.length === 1 ? '' : 's'}, oldest first`))
  lines.push('')
  const rows = points.map(x => [
    shortTime(x.window.to),
    x.kind,
    x.id,
    formatNumber(x.samples),
    formatNumber(x.value),
    x.alerts > 0 ? p.red(String(x.alerts)) : '0'
  ])
  lines.push(table(['WINDOW END', 'KIND', 'REPORT', 'SAMPLES', metric.toUpperCase(), 'ALERTS'], rows, { indent: '  ', align: ['left', 'left', 'left', 'right', 'right', 'right'], paint: p }))
  const finite = values.filter((v): v is number => v !== null)
  lines.push('')
  if (finite.length === 0) {
    lines.push(`  ${p.yellow(`no report has a value for ${path}`)}`)
    return lines.join('\n')
  }
  const first = finite[0]
  const last = finite[finite.length - 1]
  const delta = last - first
  const deltaText = finite.length > 1 ? `  (${delta >= 0 ? '+' : '−'}${formatNumber(Math.abs(delta))} since the first)` : ''
  lines.push(`  ${p.cyan(sparkline(values.slice(-SPARKLINE_MAX_POINTS)))}   min ${formatNumber(Math.min(...finite))}  max ${formatNumber(Math.max(...finite))}  last ${formatNumber(last)}${deltaText}`)
  if (finite.length > 1) {
    // Two columns per point: keep the chart within a terminal's width.
    const shown = values.slice(-CHART_MAX_POINTS)
    lines.push('')
    if (shown.length < values.length) lines.push(p.dim(`  chart: the last ${shown.length} reports`))
    lines.push(asciiChart(shown, { height: 8 }).split('\n').map(l => `  ${l}`).join('\n'))
  }
  return lines.join('\n')
}

export const HISTORY_METRIC_HINT = `try one of: ${Object.keys(METRIC_ALIASES).slice(0, 8).join(', ')}, drift.<feature>.psi, or a dotted path into the report JSON`
