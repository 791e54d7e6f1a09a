/**
 * The monitor page and the overview (issue 13). Pure: history in (reports and rounds as the /v1 API serves
 * them), markup and chart specs out. Shapes take many monitors; until monitors exist there is one, named after
 * the spec's model.
 */
import type { Report, Bounded } from '../report.js'
import { DEFER_ROWS, type ChartSpec, type ChartSeries, type RenderedSection } from './charts.js'
import { esc, urlSegment } from './escape.js'
import { num, int, when } from './format.js'
import { chartFigure, statusBadge, reportHref } from './report-page.js'
import { mainMetricOfTask } from '../stats/tasks/main-metric.js'

/** How many agents a round had in each role: its counts, else the length of its id lists. */
function countOf (r: RoundView, role: 'invited' | 'included' | 'dropped'): number {
  return r.counts?.[role] ?? r[role]?.length ?? 0
}

/** A round as GET /v1/rounds serves it (the fields these pages read). */
export interface RoundView {
  /** null: a scheduled window no round ran for (refused for lack of agents, retrying, missed). */
  id: string | null
  kind: string
  window: { from: string, to: string }
  status: 'running' | 'done' | 'failed' | 'aborted' | 'retrying' | 'missed' | string
  reportId: string | null
  /** Agents per round (shared/round-list.ts); older servers send only the id lists. */
  counts?: { invited: number, included: number, dropped: number, declined: number }
  invited?: string[]
  included?: string[]
  dropped?: string[]
  failure: { code: string, message: string } | null
  declined?: Array<{ agent: string, code: string, reason: string }>
  startedAt: string
  finishedAt: string | null
}

export interface MonitorHistory {
  name: string
  /** Oldest first. */
  reports: Report[]
  /** Any order. */
  rounds: RoundView[]
  /** The current reference report's id (GET /v1/reference), if any. */
  referenceId: string | null
}

/** The heat map shows the newest this many current reports (the tables below hold every one). */
export const HEATMAP_MAX_COLUMNS = 120

export function monitorHref (name: string): string {
  return `/monitors/${urlSegment(name)}`
}

const epochS = (iso: string): number => Date.parse(iso) / 1000
/** The report's headline figure (its task's: AUC, MAE, macro AUC) as a bounded value; bounds null when it has none. */
const mainOf = (r: Report): Bounded => {
  const v = (r.performance as Record<string, unknown> | undefined)?.[mainMetricOfTask(r.spec.task).key]
  if (typeof v === 'number') return { value: v, lower: null, upper: null }
  return (v !== null && typeof v === 'object' ? v as Bounded : { value: null, lower: null, upper: null })
}
const metric = (r: Report, key: string): number | null => {
  const v = (r.performance as Record<string, unknown>)[key]
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

function simpleTable (head: string[], rows: string[][], caption?: string): string {
  return `<table>${caption !== undefined ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head.map(h => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map(r => `<tr>${r.map(c => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`
}

const SMALL_METRICS: Array<{ key: string, label: string, unit: string }> = [
  { key: 'pr_auc', label: 'PR-AUC (average precision)', unit: 'AP (0–1)' },
  { key: 'log_loss', label: 'log loss', unit: 'nats / record' },
  { key: 'brier', label: 'Brier score', unit: 'MSE (0–1)' },
  { key: 'ece', label: 'ECE (expected calibration error)', unit: 'ECE (0–1)' },
  { key: 'prevalence', label: 'prevalence', unit: 'fraction positive' }
]

export function renderMonitorSection (h: MonitorHistory): RenderedSection {
  const charts: ChartSpec[] = []
  const parts: string[] = []
  const deferred: Record<string, string> = {}
  /** A long table goes in `deferred`, a placeholder in the page (see RenderedSection). */
  const maybeDeferred = (id: string, rows: number, html: string): string => {
    if (rows <= DEFER_ROWS) return html
    deferred[id] = html
    return `<div data-deferred="${esc(id)}"><p class="note">${int(rows)} rows: shown when opened.</p></div>`
  }
  const reports = [...h.reports].sort((a, b) => Date.parse(a.window.to) - Date.parse(b.window.to) || Date.parse(a.createdAt) - Date.parse(b.createdAt))
  const current = reports.filter(r => r.round.kind !== 'reference')
  const refReport = reports.find(r => r.id === h.referenceId) ?? [...reports].reverse().find(r => r.round.kind === 'reference') ?? null
  parts.push(`<p class="crumbs"><a href="/">Overview</a> › monitor</p><h1>Monitor <span class="name">${esc(h.name)}</span></h1>`)
  parts.push(`<p>${int(reports.length)} reports (<span data-metric="reports.current">${int(current.length)}</span> current, ${int(reports.length - current.length)} reference)${refReport !== null ? `; reference <a href="${esc(reportHref(h.name, refReport.id))}"><code>${esc(refReport.id)}</code></a>, window ${esc(when(refReport.window.from))} – ${esc(when(refReport.window.to))}` : '; no reference yet'}.</p>`)
  if (reports.length === 0) {
    parts.push('<p>No report yet: run a reference round, then a current round (<code>fedmon round run --reference</code>).</p>')
  }

  // The headline figure over time (AUC for binary): its bound as a band, the reference's as a line
  if (current.length > 0) {
    const main = mainMetricOfTask(current[current.length - 1].spec.task)
    const label = main.label
    const id = main.key === 'auc' ? 'auc' : main.key
    const x = current.map(r => epochS(r.window.to))
    const refValue = refReport !== null ? mainOf(refReport).value : null
    const series: ChartSeries[] = [
      { label, values: current.map(r => mainOf(r).value), style: 'current', points: current.length < 60 },
      { label: 'upper bound', values: current.map(r => mainOf(r).upper), style: 'bound' },
      { label: 'lower bound', values: current.map(r => mainOf(r).lower), style: 'bound' }
    ]
    if (refValue !== null) series.push({ label: `reference ${label}`, values: current.map(() => refValue), style: 'reference' })
    const spec: ChartSpec = { id, title: `${label} over time`, x, time: true, xLabel: 'window end (UTC)', yLabel: main.key === 'auc' ? 'ROC AUC' : label, series, band: { upper: 1, lower: 2 } }
    charts.push(spec)
    const rows = [...current].reverse().map(r => [`<a href="${esc(reportHref(h.name, r.id))}">${esc(when(r.window.to))}</a>`, num(mainOf(r).value), num(mainOf(r).lower), num(mainOf(r).upper)])
    parts.push(`<section aria-labelledby="h-${esc(id)}"><h2 id="h-${esc(id)}">${esc(label)}</h2>` + chartFigure(spec, `${main.key === 'auc' ? 'ROC AUC' : label} of ${current.length} current reports over time, with the bound as a band${refValue !== null ? ` and the reference ${label} ${num(refValue)} as a line` : ''}; latest ${num(mainOf(current[current.length - 1]).value)}`,
      maybeDeferred(id, rows.length, simpleTable(['window end', label, 'lower bound', 'upper bound'], rows))) + '</section>')

    const smalls: string[] = []
    SMALL_METRICS.forEach((m, i) => {
      const values = current.map(r => metric(r, m.key))
      if (values.every(v => v === null)) return
      const s: ChartSpec = { id: `metric-${i}`, title: m.label, x, time: true, xLabel: 'window end (UTC)', yLabel: m.unit, series: [{ label: m.label, values, style: 'metric', points: current.length < 60 }], small: true }
      charts.push(s)
      smalls.push(chartFigure(s, `${m.label} of ${current.length} current reports over time; latest ${num(values[values.length - 1])}`,
        maybeDeferred(`metric-${i}`, current.length, simpleTable(['window end', m.label], [...current].reverse().map(r => [esc(when(r.window.to)), num(metric(r, m.key))])))))
    })
    const counts: ChartSpec = { id: 'samples', title: 'records', x, time: true, xLabel: 'window end (UTC)', yLabel: 'records (count)', series: [{ label: 'records', values: current.map(r => r.samples.count), style: 'metric', points: current.length < 60 }], small: true }
    charts.push(counts)
    smalls.push(chartFigure(counts, `Records per window of ${current.length} current reports`, maybeDeferred('samples', current.length, simpleTable(['window end', 'records', 'labeled'], [...current].reverse().map(r => [esc(when(r.window.to)), int(r.samples.count), int(r.samples.labeled)])))))
    parts.push(`<section aria-labelledby="h-metrics"><h2 id="h-metrics">Other metrics</h2><div class="small-multiples">${smalls.join('')}</div></section>`)
  }

  // feature × time heat map of PSI, coloured by drift status (a table: its own text equivalent)
  const withDrift = current.filter(r => Object.keys(r.drift?.features ?? {}).length > 0)
  if (withDrift.length > 0) {
    const cols = withDrift.slice(-HEATMAP_MAX_COLUMNS)
    const names = [...new Set(cols.flatMap(r => Object.keys(r.drift.features)))].sort()
    const head = `<tr><th scope="col">feature</th>${cols.map(r => `<th scope="col" class="heat-col"><a href="${esc(reportHref(h.name, r.id))}">${esc(when(r.window.to).slice(5, 10))}</a></th>`).join('')}</tr>`
    const rows = names.map(n => `<tr><th scope="row">${esc(n)}</th>${cols.map(r => {
      const f = r.drift.features[n]
      if (f === undefined) return '<td class="heat heat-none">—</td>'
      return `<td class="heat heat-${esc(f.status)}" title="${esc(`${n} ${when(r.window.to)}: PSI ${num(f.psi)}, ${f.status}`)}">${num(f.psi, 2)}<span class="visually-hidden"> ${esc(f.status)}</span></td>`
    }).join('')}</tr>`)
    const more = withDrift.length > cols.length ? ` (newest ${cols.length} of ${withDrift.length})` : ''
    parts.push(`<section aria-labelledby="h-heat"><h2 id="h-heat">Drift: PSI per feature over time</h2><p class="note">PSI by feature (rows) and window end (columns, UTC month-day)${esc(more)}; the cell colour is the drift status: ok, warn, drift.</p><div class="heat-wrap"><table class="heatmap"><caption>PSI</caption><thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>` +
      `<p class="legend">${statusBadge('ok')} ${statusBadge('warn')} ${statusBadge('drift')} ${statusBadge('unknown')}</p></section>`)
  }

  // rounds over time: included and dropped agents; failures with their reason
  const rounds = [...h.rounds].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt))
  if (rounds.length > 0) {
    const spec: ChartSpec = {
      id: 'rounds', title: 'Rounds: agents included and dropped', x: rounds.map(r => epochS(r.startedAt)), time: true, xLabel: 'round start (UTC)', yLabel: 'agents (count)',
      series: [
        { label: 'included', values: rounds.map(r => countOf(r, 'included')), style: 'included', points: true },
        { label: 'dropped', values: rounds.map(r => countOf(r, 'dropped')), style: 'dropped', points: true }
      ]
    }
    charts.push(spec)
    const failed = rounds.filter(r => r.status === 'failed' || r.status === 'aborted' || r.status === 'retrying' || r.status === 'missed')
    const rows = [...rounds].reverse().map(r => [esc(when(r.startedAt)), `<code>${esc(r.id ?? '(scheduled window)')}</code>`, esc(r.kind), `<span class="round round-${esc(r.status)}">${esc(r.status)}</span>`, int(countOf(r, 'included')), int(countOf(r, 'dropped')), int(countOf(r, 'invited')),
      r.failure !== null ? `${esc(r.failure.code)}: ${esc(r.failure.message)}` : (r.reportId !== null ? `<a href="${esc(reportHref(h.name, r.reportId))}">report</a>` : '')])
    parts.push('<section aria-labelledby="h-rounds"><h2 id="h-rounds">Rounds</h2>' +
      chartFigure(spec, `${rounds.length} rounds over time: agents included and dropped per round; ${failed.length} failed or aborted`, maybeDeferred('rounds', rows.length, simpleTable(['started', 'round', 'kind', 'status', 'included', 'dropped', 'invited', 'outcome'], rows))))
    if (failed.length > 0) {
      const frows = [...failed].reverse().map(r => [esc(when(r.startedAt)), `<code>${esc(r.id ?? '(scheduled window)')}</code>`, esc(r.status), esc(r.failure?.code ?? ''), esc(r.failure?.message ?? ''),
        esc((r.declined ?? []).map(d => `${d.agent.slice(-8)}: ${d.code} ${d.reason}`).join('; '))])
      parts.push(simpleTable(['started', 'round', 'status', 'code', 'reason', 'declined by agents'], frows, 'Failed and aborted rounds'))
    }
    parts.push('</section>')
  }

  if (reports.length > 0) {
    const rows = [...reports].reverse().slice(0, 50).map(r => [`<a href="${esc(reportHref(h.name, r.id))}"><code>${esc(r.id)}</code></a>`, esc(r.round.kind), `${esc(when(r.window.from))} – ${esc(when(r.window.to))}`, num(mainOf(r).value), int(r.samples.count), int(r.alerts.length)])
    parts.push('<section aria-labelledby="h-reports"><h2 id="h-reports">Reports</h2>' + simpleTable(['report', 'kind', 'window', mainMetricOfTask(reports[reports.length - 1].spec.task).label, 'records', 'alerts'], rows, reports.length > 50 ? `Newest 50 of ${reports.length}` : undefined) + '</section>')
  }
  return { html: parts.join('\n'), charts, deferred }
}

export interface MonitorSummary {
  name: string
  /** The monitor's model (its spec's), shown beside the name when it differs. */
  model?: string
  /** The newest report of any kind (its AUC), and the newest current one (drift, alerts). */
  latest: Report | null
  latestCurrent: Report | null
}

export interface OverviewData {
  monitors: MonitorSummary[]
  agents: { total: number, online: number }
  lastRound: RoundView | null
  nextScheduledRound: string | null
}

export function renderOverviewSection (o: OverviewData): RenderedSection {
  const parts: string[] = ['<h1>fedmon overview</h1>']
  parts.push('<dl class="meta">' +
    `<dt>agents online</dt><dd><span data-status="agents.online">${int(o.agents.online)}</span> of <span data-status="agents.total">${int(o.agents.total)}</span></dd>` +
    `<dt>last round</dt><dd>${o.lastRound === null ? 'none yet' : `<code>${esc(o.lastRound.id ?? '(scheduled window)')}</code> ${esc(o.lastRound.kind)}, <span class="round round-${esc(o.lastRound.status)}">${esc(o.lastRound.status)}</span>, ${esc(when(o.lastRound.finishedAt ?? o.lastRound.startedAt))}${o.lastRound.failure !== null ? ` — ${esc(o.lastRound.failure.code)}: ${esc(o.lastRound.failure.message)}` : ''}`}</dd>` +
    `<dt>next round</dt><dd>${o.nextScheduledRound === null ? 'not scheduled' : esc(when(o.nextScheduledRound))}</dd></dl>`)
  for (const m of o.monitors) {
    const main = mainMetricOfTask(m.latest?.spec.task)
    const auc = m.latest !== null ? mainOf(m.latest) : null
    const bound = auc?.lower !== null && auc?.lower !== undefined
    const drift = m.latestCurrent?.drift.features ?? {}
    const chips = Object.entries(drift).map(([n, f]) => `<li><span class="name">${esc(n)}</span> ${statusBadge(f.status)} <span class="note">PSI ${num(f.psi, 3)}</span></li>`)
    const alerts = m.latestCurrent?.alerts ?? []
    parts.push(`<section class="monitor-card" aria-label="${esc(`monitor ${m.name}`)}"><h2><a href="${esc(monitorHref(m.name))}">${esc(m.name)}</a>${m.model !== undefined && m.model !== m.name ? ` <span class="note">${esc(m.model)}</span>` : ''}</h2>` +
      (m.latest === null
        ? '<p>No report yet.</p>'
        : `<div class="figures"><div class="figure"><div class="figure-label">latest ${esc(main.key === 'auc' ? 'AUC (ROC)' : main.label)}</div><div class="figure-value" data-metric="performance.${esc(main.key)}.value">${num(auc?.value)}</div><div class="figure-detail">${bound ? `bound [<span data-metric="performance.${esc(main.key)}.lower">${num(auc?.lower)}</span>, <span data-metric="performance.${esc(main.key)}.upper">${num(auc?.upper)}</span>], ` : ''}${esc(m.latest.round.kind)} window to ${esc(when(m.latest.window.to))} — <a href="${esc(reportHref(m.name, m.latest.id))}">report</a></div></div>${estimatedFigure(m.latest)}</div>` +
          `<h3>Drift per feature</h3>${chips.length > 0 ? `<ul class="chips">${chips.join('')}</ul>` : '<p>No drift computed yet (needs a reference and a current round).</p>'}` +
          `<h3>Alerts firing</h3>${alerts.length > 0 ? `<ul class="alerts">${alerts.map(a => `<li class="alert">${esc(a.message)}</li>`).join('')}</ul>` : '<p class="no-alerts">none</p>'}`) +
      '</section>')
  }
  return { html: parts.join('\n'), charts: [] }
}

/**
 * The estimated AUC (CBPE, shared/stats/estimated.ts) beside the realised one, with the label coverage: shown
 * when some of the window's labels are still missing.
 */
function estimatedFigure (report: Report): string {
  const est = (report.performance as Record<string, unknown>).estimated as { auc: number | null, labels: { coverage: number | null } } | undefined
  if (est === undefined || est.labels.coverage === null || est.labels.coverage >= 1) return ''
  return `<div class="figure"><div class="figure-label">estimated AUC (CBPE, no labels needed)</div><div class="figure-value" data-metric="performance.estimated.auc">${num(est.auc)}</div>` +
    `<div class="figure-detail"><span>${num(est.labels.coverage * 100, 0)}</span> % of the window's records labelled so far</div></div>`
}
