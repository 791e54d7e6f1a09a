/**
 * The pages' stylesheet: light and dark (prefers-color-scheme), no external font or image. The dashboard
 * serves it as /assets/dashboard.css (with uPlot's own CSS); a standalone report inlines it. Chart colours are
 * CSS variables the browser script reads, so charts follow the colour scheme too.
 */
export const PAGE_CSS = `
:root { color-scheme: light dark;
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --border: #d0d7de; --panel: #f6f8fa; --link: #0550ae;
  --c-current: #0969da; --c-reference: #8250df; --c-bound: #54aeff; --c-band: rgba(84, 174, 255, 0.25); --c-guide: #8c959f;
  --c-negative: #1a7f37; --c-positive: #cf222e; --c-unlabeled: #9a6700; --c-metric: #0969da; --c-included: #1a7f37; --c-dropped: #cf222e; --c-grid: rgba(0, 0, 0, 0.08);
  --ok-bg: #dafbe1; --ok-fg: #116329; --warn-bg: #fff8c5; --warn-fg: #7d4e00; --drift-bg: #ffebe9; --drift-fg: #a40e26; --unknown-bg: #eaeef2; --unknown-fg: #57606a; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d; --panel: #151b23; --link: #4493f8;
  --c-current: #4493f8; --c-reference: #ab7df8; --c-bound: #79c0ff; --c-band: rgba(121, 192, 255, 0.22); --c-guide: #9198a1;
  --c-negative: #3fb950; --c-positive: #ff7b72; --c-unlabeled: #d29922; --c-metric: #4493f8; --c-included: #3fb950; --c-dropped: #ff7b72; --c-grid: rgba(255, 255, 255, 0.10);
  --ok-bg: #12361f; --ok-fg: #7ee787; --warn-bg: #3b2e04; --warn-fg: #e3b341; --drift-bg: #4a1114; --drift-fg: #ffa198; --unknown-bg: #262c36; --unknown-fg: #9198a1; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
header.top { display: flex; gap: 1.5em; align-items: baseline; padding: 0.6em 1.2em; border-bottom: 1px solid var(--border); background: var(--panel); }
header.top .brand { font-weight: 700; }
main { padding: 1em 1.2em 3em; max-width: 1400px; }
a { color: var(--link); }
h1 { font-size: 1.5em; margin: 0.3em 0 0.5em; } h2 { font-size: 1.2em; margin: 1.4em 0 0.5em; border-bottom: 1px solid var(--border); padding-bottom: 0.2em; } h3 { font-size: 1.02em; margin: 1em 0 0.4em; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.crumbs { margin: 0; color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; margin: 0.5em 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 0.6em 0; }
.figure { border: 1px solid var(--border); border-radius: 6px; padding: 0.5em 0.9em; background: var(--panel); min-width: 11em; }
.figure-label { color: var(--muted); font-size: 0.85em; } .figure-value { font-size: 1.6em; font-variant-numeric: tabular-nums; } .figure-detail { font-size: 0.85em; color: var(--muted); }
table { border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: 0.9em; padding-bottom: 0.2em; }
th, td { border: 1px solid var(--border); padding: 0.2em 0.55em; text-align: right; }
th[scope="row"], td:first-child { text-align: left; } thead th { background: var(--panel); }
.side-by-side { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
table.confusion td { min-width: 9em; text-align: center; }
.cm-name { font-weight: 600; } .cm-share { color: var(--muted); font-size: 0.85em; }
.cm-0 { background: var(--bg); } .cm-1 { background: rgba(84, 174, 255, 0.12); } .cm-2 { background: rgba(84, 174, 255, 0.24); } .cm-3 { background: rgba(84, 174, 255, 0.36); } .cm-4 { background: rgba(84, 174, 255, 0.5); }
.chart-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1em; }
.small-multiples { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 0.8em; }
figure.chart-figure { margin: 0; border: 1px solid var(--border); border-radius: 6px; padding: 0.5em; min-width: 0; }
figure.chart-figure figcaption { font-weight: 600; margin-bottom: 0.3em; overflow-wrap: anywhere; }
.chart { width: 100%; min-height: 40px; }
details.chart-table summary { cursor: pointer; color: var(--muted); font-size: 0.85em; }
details.chart-table { max-height: 24em; overflow: auto; }
.status { display: inline-block; padding: 0 0.5em; border-radius: 1em; font-size: 0.85em; font-weight: 600; }
.status-ok, .heat-ok { background: var(--ok-bg); color: var(--ok-fg); } .status-warn, .heat-warn { background: var(--warn-bg); color: var(--warn-fg); }
.status-drift, .heat-drift { background: var(--drift-bg); color: var(--drift-fg); } .status-unknown, .heat-unknown, .heat-none { background: var(--unknown-bg); color: var(--unknown-fg); }
.heat-wrap { overflow-x: auto; } table.heatmap td { font-size: 0.75em; padding: 0.1em 0.25em; min-width: 2.8em; text-align: center; } table.heatmap th.heat-col { font-size: 0.7em; font-weight: 400; padding: 0.1em; }
.round-failed, .round-aborted { color: var(--drift-fg); font-weight: 600; } .round-done { color: var(--ok-fg); }
ul.alerts { padding-left: 1.2em; } li.alert { color: var(--drift-fg); } .no-alerts { color: var(--ok-fg); }
ul.chips { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; }
.note { color: var(--muted); font-size: 0.88em; }
.monitor-card { border: 1px solid var(--border); border-radius: 8px; padding: 0.2em 1em 0.8em; margin: 1em 0; }
.monitor-card h2 { border: none; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.error { color: var(--drift-fg); background: var(--drift-bg); padding: 0.6em 1em; border-radius: 6px; }
form.login { display: flex; flex-direction: column; gap: 0.6em; max-width: 26em; }
form.login input { font: inherit; padding: 0.4em; background: var(--bg); color: var(--fg); border: 1px solid var(--border); border-radius: 4px; }
form.login button { font: inherit; padding: 0.4em 1em; width: max-content; }
.u-legend { font-size: 0.8em; } .u-legend th { font-weight: 400; }
.u-legend th, .u-legend td { border: none; }
`
