/**
 * The dashboard's browser script (bundled with uPlot by build.mjs into /assets/dashboard.js; inlined into
 * `fedmon report --html` files). Served pages: reads the URL, fetches the /v1 API like any client, renders
 * with the pure page modules of shared/report-html and draws the charts. A standalone file: the content is
 * already there, the report JSON is embedded; only the charts are drawn.
 */
import uPlot from 'uplot'
import type { Report } from '../../../shared/report.js'
import type { ChartSpec, RenderedSection } from '../../../shared/report-html/charts.js'
import { renderReportSection } from '../../../shared/report-html/report-page.js'
import { renderMonitorSection, renderOverviewSection, monitorHref, type RoundView, type MonitorSummary } from '../../../shared/report-html/monitor-page.js'
import { DATA_ELEMENT_ID, type PageData } from '../../../shared/report-html/document.js'
import { esc } from '../../../shared/report-html/escape.js'

/** How many reports and rounds of history the monitor page asks for. */
const HISTORY = 1000

class HttpError extends Error {
  constructor (readonly status: number, message: string) { super(message); this.name = 'HttpError' }
}

async function api<T> (path: string): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } })
  if (res.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`)
    throw new HttpError(401, 'sign in needed')
  }
  const body = await res.json() as any
  if (!res.ok) throw new HttpError(res.status, body?.error?.message ?? `${res.status} from ${path}`)
  return body as T
}

async function apiOrNull<T> (path: string): Promise<T | null> {
  try { return await api<T>(path) } catch (err) { if (err instanceof HttpError && err.status === 404) return null; throw err }
}

interface Status { agents: { total: number, online: number }, lastRound: RoundView | null, nextScheduledRound: string | null }
interface MonitorView { name: string, model: string }

const monitorQuery = (name: string): string => `monitor=${encodeURIComponent(name)}`

async function overview (): Promise<RenderedSection> {
  const [status, { monitors: list }] = await Promise.all([api<Status>('/v1/status'), api<{ monitors: MonitorView[] }>('/v1/monitors')])
  // per monitor its newest reports (store order, newest first): the newest of any kind and the newest current one
  const monitors: MonitorSummary[] = await Promise.all(list.map(async (m) => {
    const { reports } = await api<{ reports: Report[] }>(`/v1/reports?last=20&view=summary&${monitorQuery(m.name)}`)
    const byTime = [...reports].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
    return { name: m.name, model: m.model, latest: byTime[0] ?? null, latestCurrent: byTime.find(r => r.round.kind === 'current') ?? null }
  }))
  return renderOverviewSection({ monitors, agents: status.agents, lastRound: status.lastRound, nextScheduledRound: status.nextScheduledRound })
}

async function monitor (name: string): Promise<RenderedSection> {
  const { monitors } = await api<{ monitors: MonitorView[] }>('/v1/monitors')
  if (!monitors.some(m => m.name === name)) throw new HttpError(404, `no monitor named "${name}"`)
  const [list, rounds, reference] = await Promise.all([
    api<{ reports: Report[] }>(`/v1/reports?last=${HISTORY}&view=summary&${monitorQuery(name)}`),
    api<{ rounds: RoundView[] }>(`/v1/rounds?last=${HISTORY}&${monitorQuery(name)}`),
    apiOrNull<{ reportId: string }>(`/v1/reference?${monitorQuery(name)}`)
  ])
  return renderMonitorSection({ name, reports: list.reports, rounds: rounds.rounds, referenceId: reference?.reportId ?? null })
}

async function reportPage (name: string, id: string): Promise<RenderedSection> {
  const report = await api<Report>(`/v1/reports/${encodeURIComponent(id)}`)
  return renderReportSection(report, { monitorHref: monitorHref(name) })
}

// ---- charts ----

const charts: Array<{ plot: uPlot, spec: ChartSpec }> = []

function cssVar (name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim()
}

function withAlpha (color: string, alpha: string): string {
  return /^#[0-9a-f]{6}$/i.test(color) ? color + alpha : color
}

/** The x range of the data; a single value gets `pad` either side. */
function dataRange (xs: number[], pad: number): [number, number] {
  let lo = Infinity; let hi = -Infinity
  for (const x of xs) { if (x < lo) lo = x; if (x > hi) hi = x }
  if (!Number.isFinite(lo)) return [0, 1]
  return lo === hi ? [lo - pad, hi + pad] : [lo, hi]
}

function chartOptions (spec: ChartSpec, width: number): uPlot.Options {
  const fg = cssVar('--fg'); const grid = cssVar('--c-grid')
  const color = (style: string): string => cssVar(`--c-${style}`)
  const ticks = spec.xTicks
  const n = spec.x.length
  const axisFont = '12px system-ui, sans-serif'
  const xAxis: uPlot.Axis = { label: spec.xLabel, stroke: fg, font: axisFont, labelFont: axisFont, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }
  if (ticks !== undefined) {
    // categorical x: one split per bin, labels thinned to what fits
    const longest = Math.min(14, Math.max(...ticks.map(t => t.length), 1))
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(width / (longest * 7 + 12)))))
    xAxis.splits = () => spec.x.filter((_, i) => i % every === 0)
    xAxis.values = (_u, splits) => splits.map(i => { const t = ticks[i] ?? ''; return t.length > 14 ? `${t.slice(0, 13)}…` : t })
    xAxis.grid = { show: false }
  }
  const yAxis: uPlot.Axis = { label: spec.yLabel, stroke: fg, font: axisFont, labelFont: axisFont, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56 }
  const xRange = spec.xRange ?? (ticks !== undefined ? [-0.5, n - 0.5] as [number, number] : undefined)
  const opts: uPlot.Options = {
    width,
    height: spec.small === true ? 200 : 270,
    scales: {
      x: {
        time: spec.time === true,
        // one point in time: a day either side, not uPlot's default span of years
        range: xRange !== undefined ? () => xRange : () => dataRange(spec.x, spec.time === true ? 86_400 : 1)
      },
      y: spec.yRange !== undefined ? { range: () => spec.yRange as [number, number] } : { range: (_u, min, max) => [Math.min(0, min), max > min ? max * 1.05 : min + 1] }
    },
    axes: [xAxis, yAxis],
    legend: { show: spec.series.length > 1 || spec.small !== true },
    cursor: { drag: { x: false, y: false } },
    series: [
      { label: spec.time === true ? 'time' : spec.xLabel, value: ticks !== undefined ? (_u, v) => (v === null ? '' : ticks[v] ?? '') : undefined },
      ...spec.series.map(s => {
        const c = color(s.style)
        const out: uPlot.Series = {
          label: s.label,
          stroke: c,
          width: s.style === 'guide' || s.style === 'bound' ? 1 : 2,
          spanGaps: false,
          points: { show: s.points === true, size: 5, fill: c }
        }
        if (s.style === 'guide' || (s.style === 'reference' && s.bars !== true)) out.dash = [6, 4]
        if (s.bars === true) {
          out.paths = uPlot.paths.bars?.({ size: [s.barSide !== 0 && s.barSide !== undefined ? 0.42 : 0.8, 80], align: s.barSide ?? 0 })
          out.fill = withAlpha(c, 'b0')
          out.points = { show: false }
        }
        return out
      })
    ]
  }
  if (spec.band !== undefined) opts.bands = [{ series: [spec.band.upper + 1, spec.band.lower + 1], fill: cssVar('--c-band') }]
  if (spec.time === true) opts.tzDate = ts => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC')
  return opts
}

function mountCharts (specs: ChartSpec[]): void {
  for (const { plot } of charts.splice(0)) plot.destroy()
  for (const spec of specs) {
    const el = document.getElementById(`chart-${spec.id}`)
    if (el === null) continue
    const width = Math.max(240, Math.floor(el.getBoundingClientRect().width) || 400)
    const plot = new uPlot(chartOptions(spec, width), [spec.x, ...spec.series.map(s => s.values)] as uPlot.AlignedData, el)
    charts.push({ plot, spec })
  }
  document.body.dataset.charts = String(charts.length)
}

function watchScheme (specs: ChartSpec[]): void {
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { mountCharts(specs) })
  let timer: number | undefined
  window.addEventListener('resize', () => {
    clearTimeout(timer)
    timer = window.setTimeout(() => { mountCharts(specs) }, 150)
  })
}

/** Long tables are inserted when their <details> is first opened (RenderedSection.deferred). */
function fillDeferredOnOpen (root: HTMLElement, deferred: Record<string, string>): void {
  for (const slot of Array.from(root.querySelectorAll<HTMLElement>('[data-deferred]'))) {
    const details = slot.closest('details')
    const html = deferred[slot.dataset.deferred ?? '']
    if (details === null || html === undefined) continue
    details.addEventListener('toggle', () => { if (details.open && slot.dataset.filled !== 'true') { slot.innerHTML = html; slot.dataset.filled = 'true' } })
  }
}

// ---- entry ----

function route (path: string): (() => Promise<RenderedSection>) | null {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  if (parts.length === 0) return overview
  if (parts[0] === 'monitors' && parts.length === 2) return async () => await monitor(parts[1])
  if (parts[0] === 'monitors' && parts.length === 4 && parts[2] === 'reports') return async () => await reportPage(parts[1], parts[3])
  return null
}

async function main (): Promise<void> {
  const started = performance.now()
  const app = document.getElementById('app')
  if (app === null) return
  const embedded = document.getElementById(DATA_ELEMENT_ID)
  let section: RenderedSection
  if (embedded !== null) {
    // a standalone report: the markup is already rendered; draw its charts from the embedded data
    const data = JSON.parse(embedded.textContent ?? '{}') as PageData
    section = renderReportSection(data.report)
  } else {
    const render = route(location.pathname)
    if (render === null) {
      app.innerHTML = `<p class="error">No page at ${esc(location.pathname)}.</p>`
      return
    }
    try {
      section = await render()
      document.body.dataset.fetchRenderMs = String(Math.round(performance.now() - started))
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) return
      app.innerHTML = `<p class="error">${esc((err as Error).message)}</p>`
      document.body.dataset.ready = 'error'
      return
    }
    app.innerHTML = section.html
    document.body.dataset.htmlMs = String(Math.round(performance.now() - started))
    const h1 = app.querySelector('h1')
    if (h1 !== null) document.title = `${h1.textContent ?? ''} — fedmon`
  }
  mountCharts(section.charts)
  watchScheme(section.charts)
  fillDeferredOnOpen(app, section.deferred ?? {})
  // for readers that wait for the page (tests, the benchmark): the time from script start to drawn charts
  document.body.dataset.renderMs = String(Math.round(performance.now() - started))
  document.body.dataset.ready = 'true'
}

void main()
