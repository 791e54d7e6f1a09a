/** The text of `fedmon report ID --versions`: one line per version of a window's report. Pure. */
import type { Report } from '../../shared/report.js'
import { shortTime, table } from './format.js'

const pct = (x: number | null | undefined): string => typeof x === 'number' ? `${(x * 100).toFixed(0)} %` : '—'
const num = (x: unknown): string => typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '—'

export function renderVersions (versions: readonly Report[]): string {
  if (versions.length === 0) return 'no versions'
  const w = versions[0].window
  const rows = versions.map(r => {
    const estimated = (r.performance.estimated as { auc?: unknown } | undefined)?.auc
    return [
      String(r.version?.number ?? 1),
      r.id,
      r.version?.refresh != null ? `refresh ${r.version.refresh.age}` : 'first round',
      r.labels !== undefined ? shortTime(r.labels.maturedAt) : '—',
      r.labels !== undefined ? `${r.labels.labeled} (${pct(r.labels.coverage)})` : String(r.samples.labeled),
      num(r.performance.auc?.value),
      num(typeof estimated === 'object' && estimated !== null ? (estimated as { value?: unknown }).value : estimated),
      shortTime(r.createdAt)
    ]
  })
  const latest = versions[versions.length - 1]
  return `window ${shortTime(w.from)} → ${shortTime(w.to)}: ${versions.length} version${versions.length === 1 ? '' : 's'}, the latest (${latest.id}) is what \`report latest\`, /metrics and alerts use\n` +
    table(['V', 'REPORT', 'MADE BY', 'LABELS UP TO', 'LABELLED', 'AUC', 'AUC EST.', 'CREATED'], rows, { align: ['right', 'left', 'left', 'left', 'right', 'right', 'right', 'left'] })
}
