/**
 * Whole HTML documents: the dashboard's shell (no inline script or style: served under a CSP that forbids
 * them) and the standalone report (everything inline: CSS, script, data; no network when opened).
 */
import type { Report } from '../report.js'
import { esc, jsonForScript, inlineSafe } from './escape.js'
import { renderReportSection } from './report-page.js'

/** The script's entry data in a standalone file: what to render and the data to render it from. */
export type PageData = { page: 'report', report: Report }

export const DATA_ELEMENT_ID = 'fedmon-data'

/** The start of every page, up to the stylesheet: charset, viewport, both colour schemes, the title, no favicon fetch. */
function documentHead (title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">`
}

/** The dashboard's page shell: the browser script reads the URL and fetches /v1 JSON to fill <main>. */
export function dashboardShell (opts: { title: string }): string {
  return `${documentHead(opts.title)}
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/dashboard.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/">fedmon</a><nav><a href="/">Overview</a></nav></header>
<main id="app" aria-live="polite"><p>Loading…</p></main>
</body>
</html>
`
}

/**
 * One self-contained report page: the content is rendered here (readable without script), the data is embedded
 * as JSON, and the inlined script draws the charts from it. `assets`: the dashboard's CSS and script bundle.
 */
export function standaloneReportHtml (report: Report, assets: { css: string, js: string }): string {
  const section = renderReportSection(report)
  const data: PageData = { page: 'report', report }
  return `${documentHead(`fedmon report ${report.id} — ${report.spec.model}`)}
<meta name="generator" content="fedmon report --html">
<style>${inlineSafe(assets.css, 'style')}</style>
</head>
<body>
<header class="top"><span class="brand">fedmon</span><span class="note">standalone report, exported ${esc(new Date().toISOString())}</span></header>
<main id="app">
${section.html}
</main>
<script type="application/json" id="${DATA_ELEMENT_ID}">${jsonForScript(data)}</script>
<script>${inlineSafe(assets.js, 'script')}</script>
</body>
</html>
`
}
