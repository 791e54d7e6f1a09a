/**
 * The report page (issue 13): the terminal report's content plus the pictures of what it was computed from —
 * reference vs current histograms per feature, ROC and precision-recall curves, the reliability diagram,
 * the score distribution, the confusion matrix, data quality, alerts. Pure: report JSON in, markup and chart
 * specs out; the same function runs in the coordinator's dashboard (in the browser) and in
 * `fedmon report --html` (in Node). Every chart has a table with the same numbers.
 */
import type { Report, FeatureDrift, Bounded, FeatureHistogram, ScoreHistogram, PublishedSegment } from '../report.js'
import { mainMetricOfTask } from '../stats/tasks/main-metric.js'
import type { ChartSpec, ChartSeries, RenderedSection } from './charts.js'
import { esc, urlSegment } from './escape.js'
import { num, int, pct, when } from './format.js'
import { rocCurve, prCurve } from './curves.js'

export interface ReportPageOptions {
  /** Link back to the monitor page (the dashboard); absent in a standalone file. */
  monitorHref?: string
}

const STATUS_TEXT: Record<FeatureDrift['status'], string> = { ok: 'ok', warn: 'warn', drift: 'drift', unknown: 'unknown' }

/** A status badge; the word is always written out, so colour is never the only signal. */
export function statusBadge (status: string): string {
  const known = status in STATUS_TEXT ? status : 'unknown'
  return `<span class="status status-${known}">${esc(status)}</span>`
}

/** A key figure: label, value, optional detail; `path` names the report field (data-metric, for readers and tests). */
function figure (label: string, value: string, path: string, detail = ''): string {
  return `<div class="figure"><div class="figure-label">${esc(label)}</div><div class="figure-value" data-metric="${esc(path)}">${esc(value)}</div>${detail !== '' ? `<div class="figure-detail">${detail}</div>` : ''}</div>`
}

function table (head: string[], rows: string[][], opts: { caption?: string, className?: string } = {}): string {
  const cls = opts.className !== undefined ? ` class="${opts.className}"` : ''
  return `<table${cls}>${opts.caption !== undefined ? `<caption>${esc(opts.caption)}</caption>` : ''}<thead><tr>${head.map(h => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map(r => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</tbody></table>`
}

/**
 * A chart placeholder with its accessible name and its data table (the text equivalent). `description` is
 * plain text (escaped here); the table cells are markup the caller escaped.
 */
export function chartFigure (spec: ChartSpec, description: string, tableHtml: string): string {
  return `<figure class="chart-figure${spec.small === true ? ' small' : ''}"><figcaption>${esc(spec.title)}</figcaption>` +
    `<div class="chart" id="chart-${esc(spec.id)}" data-chart="${esc(spec.id)}" role="img" aria-label="${esc(description)}"></div>` +
    `<details class="chart-table"><summary>Table: ${esc(spec.title)}</summary>${tableHtml}</details></figure>`
}

/** "[a, b)" for a numeric group; open ends as "< b" and "≥ a". */
export function binLabel (lower: number | null, upper: number | null): string {
  const f = (x: number): string => String(Number(x.toPrecision(4)))
  if (lower === null && upper === null) return 'all values'
  if (lower === null) return `< ${f(upper as number)}`
  if (upper === null) return `≥ ${f(lower)}`
  return `[${f(lower)}, ${f(upper)})`
}

/** The bins of a feature histogram, with labels, as drawn and tabulated (missing/other last). */
export function featureBins (h: FeatureHistogram): { labels: string[], current: number[], reference: number[] | null } {
  if (h.type === 'numeric') {
    return {
      labels: [...h.lower.map((lo, i) => binLabel(lo, h.upper[i])), '(missing)'],
      current: [...h.current, h.missing.current],
      reference: h.reference === null ? null : [...h.reference, h.missing.reference ?? 0]
    }
  }
  return {
    labels: [...h.categories, '(other)', '(missing)'],
    current: [...h.current, h.other.current, h.missing.current],
    reference: h.reference === null ? null : [...h.reference, h.other.reference ?? 0, h.missing.reference ?? 0]
  }
}

const share = (counts: number[]): number[] => {
  const t = counts.reduce((a, b) => a + b, 0)
  return counts.map(c => (t > 0 ? (100 * c) / t : 0))
}

function featureChart (index: number, name: string, h: FeatureHistogram, drift: FeatureDrift | undefined): { html: string, spec: ChartSpec } {
  const { labels, current, reference } = featureBins(h)
  const series: ChartSeries[] = []
  if (reference !== null) series.push({ label: 'reference', values: share(reference), style: 'reference', bars: true, barSide: -1 })
  series.push({ label: 'current', values: share(current), style: 'current', bars: true, barSide: reference !== null ? 1 : 0 })
  const spec: ChartSpec = {
    id: `feature-${index}`,
    title: `${name} (${h.type})`,
    x: labels.map((_, i) => i),
    xTicks: labels,
    xLabel: h.type === 'numeric' ? `${name}: value bin` : `${name}: category`,
    yLabel: 'share of records (%)',
    series
  }
  const rt = reference?.reduce((a, b) => a + b, 0) ?? 0
  const ct = current.reduce((a, b) => a + b, 0)
  const rows = labels.map((label, i) => [esc(label), ...(reference !== null ? [int(reference[i]), pct(reference[i], rt)] : []), int(current[i]), pct(current[i], ct)])
  const head = ['bin', ...(reference !== null ? ['reference count', 'reference share'] : []), 'current count', 'current share']
  const status = drift !== undefined ? `, drift status ${drift.status}, PSI ${num(drift.psi)}` : ''
  const description = `Histogram of ${name}: share of records per ${h.type === 'numeric' ? 'value bin' : 'category'}${reference !== null ? ', reference and current windows side by side' : ', current window'}${status}`
  return { html: chartFigure(spec, description, table(head, rows)), spec }
}

function scoreCharts (report: Report, h: ScoreHistogram): { html: string, charts: ChartSpec[] } {
  const charts: ChartSpec[] = []
  const parts: string[] = []
  const p = report.performance as Record<string, unknown>
  const roc = rocCurve(h)
  if (roc !== null) {
    const auc = p.auc as Bounded
    const spec: ChartSpec = {
      id: 'roc', title: 'ROC curve', x: roc.fpr, xLabel: 'false positive rate (fraction of negatives)', yLabel: 'true positive rate (fraction of positives)',
      xRange: [0, 1], yRange: [0, 1],
      series: [{ label: 'ROC', values: roc.tpr, style: 'current' }, { label: 'chance', values: roc.fpr, style: 'guide' }]
    }
    charts.push(spec)
    const rows = roc.fpr.map((f, i) => [num(roc.thresholds[i], 3), num(f), num(roc.tpr[i])])
    parts.push(chartFigure(spec, `ROC curve, true positive rate against false positive rate at ${roc.fpr.length} score thresholds; AUC ${num(auc.value)} in [${num(auc.lower)}, ${num(auc.upper)}]`, table(['score threshold ≥', 'false positive rate', 'true positive rate'], rows)))
  }
  const pr = prCurve(h)
  if (pr !== null) {
    const prevalence = typeof p.prevalence === 'number' ? p.prevalence : null
    const series: ChartSeries[] = [{ label: 'precision', values: pr.precision, style: 'current' }]
    if (prevalence !== null) series.push({ label: 'prevalence (chance)', values: pr.recall.map(() => prevalence), style: 'guide' })
    const spec: ChartSpec = { id: 'pr', title: 'Precision-recall curve', x: pr.recall, xLabel: 'recall (fraction of positives)', yLabel: 'precision (fraction of predicted positives)', xRange: [0, 1], yRange: [0, 1], series }
    charts.push(spec)
    const rows = pr.recall.map((r, i) => [num(pr.thresholds[i], 3), num(r), num(pr.precision[i])])
    parts.push(chartFigure(spec, `Precision-recall curve at ${pr.recall.length} score thresholds; average precision ${num(p.pr_auc)}`, table(['score threshold ≥', 'recall', 'precision'], rows)))
  }
  const rel = (Array.isArray(p.reliability) ? p.reliability : []) as Array<{ lower: number, upper: number, count: number, positives: number, meanScore: number | null, fractionPositive: number | null }>
  const used = rel.filter(b => b.count > 0)
  if (used.length > 0) {
    const byMean = used.every(b => b.meanScore !== null)
    const xs = used.map(b => (byMean ? b.meanScore as number : (b.lower + b.upper) / 2))
    const spec: ChartSpec = {
      id: 'reliability', title: 'Reliability diagram (calibration)', x: xs,
      xLabel: byMean ? 'mean predicted score in bin (probability)' : 'score bin midpoint (probability; score sums off)',
      yLabel: 'observed fraction positive', xRange: [0, 1], yRange: [0, 1],
      series: [{ label: 'observed', values: used.map(b => b.fractionPositive), style: 'current', points: true }, { label: 'perfect calibration', values: xs, style: 'guide' }]
    }
    charts.push(spec)
    const rows = used.map(b => [`[${num(b.lower, 2)}, ${num(b.upper, 2)})`, int(b.count), int(b.positives), num(b.meanScore), num(b.fractionPositive)])
    parts.push(chartFigure(spec, `Reliability diagram over ${used.length} score bins with labeled records; ECE ${num(p.ece)}`, table(['score bin', 'labeled', 'positives', 'mean score', 'fraction positive'], rows)))
  }
  const binLabels = h.edges.slice(0, -1).map((e, i) => `[${num(e, 3)}, ${num(h.edges[i + 1], 3)})`)
  const centers = h.edges.slice(0, -1).map((e, i) => (e + h.edges[i + 1]) / 2)
  const series: ChartSeries[] = [
    { label: 'negative', values: h.negative, style: 'negative' },
    { label: 'positive', values: h.positive, style: 'positive' },
    { label: 'unlabeled', values: h.unlabeled, style: 'unlabeled' }
  ]
  const dist: ChartSpec = { id: 'score', title: 'Score distribution by label', x: centers, xRange: [0, 1], xLabel: 'score (predicted probability), bin centre', yLabel: 'records per bin (count)', series }
  charts.push(dist)
  const distRows = binLabels.map((label, i) => [label, int(h.negative[i]), int(h.positive[i]), int(h.unlabeled[i])])
  parts.push(chartFigure(dist, `Score distribution of the current window in ${binLabels.length} bins: negatives, positives and unlabeled records`, table(['score bin', 'negative', 'positive', 'unlabeled'], distRows)))
  return { html: parts.join('\n'), charts }
}

function confusionMatrix (p: Record<string, unknown>): string {
  const c = p.confusion as { tp: number, fp: number, fn: number, tn: number } | undefined
  if (c === undefined) return ''
  const t = typeof p.threshold === 'number' ? p.threshold : null
  const totalN = c.tp + c.fp + c.fn + c.tn
  const level = (n: number): number => (totalN > 0 ? Math.min(4, Math.floor((5 * n) / (totalN + 1))) : 0)
  const cell = (n: number, what: string, path: string): string => `<td class="cm cm-${level(n)}"><span class="cm-name">${what}</span> <span data-metric="${path}">${int(n)}</span> <span class="cm-share">${pct(n, totalN)}</span></td>`
  return `<table class="confusion"><caption>Confusion matrix${t !== null ? ` at score ≥ ${esc(t)}` : ''} (labeled records)</caption>` +
    '<thead><tr><td></td><th scope="col">predicted positive</th><th scope="col">predicted negative</th></tr></thead><tbody>' +
    `<tr><th scope="row">actual positive</th>${cell(c.tp, 'TP', 'performance.confusion.tp')}${cell(c.fn, 'FN', 'performance.confusion.fn')}</tr>` +
    `<tr><th scope="row">actual negative</th>${cell(c.fp, 'FP', 'performance.confusion.fp')}${cell(c.tn, 'TN', 'performance.confusion.tn')}</tr></tbody></table>`
}

function driftSection (report: Report): string {
  const d = report.drift
  if (d.reference === null) return `<p>${esc(d.note ?? 'no reference: drift not computed')}</p>`
  const ref = d.reference.window !== null ? `${when(d.reference.window.from)} – ${when(d.reference.window.to)}` : '(window unknown)'
  const out = [`<p>Reference <code>${esc(d.reference.id ?? 'local')}</code>, window ${esc(ref)}.${d.note !== undefined ? ` ${esc(d.note)}` : ''}</p>`]
  const entries: Array<[string, FeatureDrift]> = Object.entries(d.features)
  if (d.score !== null) entries.push(['(score)', d.score])
  // other tasks' own distributions: regression's prediction and target, multiclass's predicted class and class scores
  const extra = d as unknown as { prediction?: FeatureDrift, target?: FeatureDrift, predicted?: FeatureDrift, classScores?: Record<string, FeatureDrift> }
  if (extra.prediction != null) entries.push(['(prediction)', extra.prediction])
  if (extra.target != null) entries.push(['(target)', extra.target])
  if (extra.predicted != null) entries.push(['(predicted class)', extra.predicted])
  for (const [c, f] of Object.entries(extra.classScores ?? {})) entries.push([`(score ${c})`, f])
  if (entries.length === 0) return out.join('')
  const rows = entries.map(([name, f]) => {
    const ks = f.ks !== undefined && f.ks.value !== null ? `${num(f.ks.value, 3)} [≤ ${num(f.ks.upper, 3)}]` : '—'
    return [esc(name), esc(f.type), num(f.psi), num(f.js), ks, num(f.wasserstein ?? null, 3), `${num(f.missingRate.reference, 3)} → ${num(f.missingRate.current, 3)}`, statusBadge(f.status)]
  })
  out.push(table(['feature', 'type', 'PSI', 'JS distance', 'KS [upper bound]', 'Wasserstein / ref. std', 'missing rate ref → cur', 'status'], rows, { className: 'drift-table', caption: 'Drift against the reference window' }))
  return out.join('')
}

function dataQualitySection (report: Report): string {
  const q = report.dataQuality as Record<string, any>
  const rows: string[][] = []
  const add = (label: string, value: unknown): void => { rows.push([esc(label), int(value)]) }
  if (q.records !== undefined) add('records in window', q.records)
  if (q.recordsWithoutTimestamp !== undefined) add('records without usable ts (this site only)', q.recordsWithoutTimestamp)
  if (q.score !== undefined) {
    add('score missing', q.score.missing); add('score not numeric', q.score.notNumeric)
    add('score not finite', q.score.notFinite); add('score outside [0, 1]', q.score.outOfRange)
  }
  if (q.label !== undefined) { add('label invalid', q.label.invalid); add('label not yet known', q.label.unlabeled) }
  for (const [name, f] of Object.entries((q.features ?? {}) as Record<string, Record<string, number>>)) {
    for (const [k, n] of Object.entries(f)) rows.push([`${esc(name)}: ${esc(k)}`, int(n)])
  }
  const note = typeof q.fixedPoint === 'string' ? `<p class="note">Sums: ${esc(q.fixedPoint)}</p>` : ''
  return table(['count', 'records'], rows, { className: 'quality-table', caption: 'Data quality (records, summed over the included agents)' }) + note
}

function alertsSection (report: Report): string {
  if (report.alerts.length === 0) return '<p class="no-alerts">No alert fired.</p>'
  return `<ul class="alerts">${report.alerts.map(a => `<li class="alert"><strong>${esc(a.rule)}</strong>: ${esc(a.message)} <span class="note">(${esc(a.metric)} = ${num(a.value)}, ${esc(a.kind)} ${num(a.threshold)}, ${esc(when(a.firedAt))})</span></li>`).join('')}</ul>`
}

/** " (M with records in the window)": the included sites whose records the figures hold; noisy under DP. */
function contributingText (report: Report): string {
  const c = report.agents.contributing
  if (c === undefined) return '' // a report made before layout v3
  const dp = report.privacy.dp as { countError95?: number } | undefined
  const pm = typeof dp?.countError95 === 'number' ? ` ±${Math.ceil(dp.countError95)}` : ''
  return ` (<span data-metric="agents.contributing">${int(c)}</span>${esc(pm)} with records in the window)`
}

/** A figure as a table cell: a number, or a bounded figure's value with its interval. */
function figureCells (v: unknown): [string, string] {
  if (typeof v === 'number') return [num(v), '']
  const b = v as Partial<Bounded> | null
  if (b !== null && typeof b === 'object' && 'value' in b) return [num(b.value), b.lower !== undefined && b.lower !== null ? `[${num(b.lower)}, ${num(b.upper)}]` : '']
  return ['', '']
}

/** The performance of a non-binary task: every figure by its short name (nested ones dotted), per-class rows, the C × C matrix. */
function taskPerformance (report: Report): string {
  const p = report.performance as Record<string, unknown>
  const rows: string[][] = []
  for (const [key, v] of Object.entries(p)) {
    if (key === 'per_class' || key === 'confusion' || key === 'precision' || key === 'noise95') continue
    if (typeof v === 'number' || (v !== null && typeof v === 'object' && 'value' in (v as object))) {
      const [value, bound] = figureCells(v)
      rows.push([esc(key), `<span data-metric="performance.${esc(key)}${typeof v === 'number' ? '' : '.value'}">${value}</span>`, bound])
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [sub, w] of Object.entries(v as Record<string, unknown>)) {
        const [value, bound] = figureCells(w)
        if (value !== '') rows.push([esc(`${key}.${sub}`), value, bound])
      }
    }
  }
  const out = [table(['metric', 'value', 'bound'], rows, { caption: 'Figures by their short name (report JSON performance.NAME)' })]
  const perClass = p.per_class as Record<string, Record<string, unknown>> | undefined
  if (perClass !== undefined) {
    const names = Object.keys(perClass)
    out.push(table(['class', 'AUC', 'bound', 'precision', 'recall', 'F1', 'support'], names.map(c => {
      const [auc, bound] = figureCells(perClass[c].auc)
      return [esc(c), auc, bound, num(perClass[c].precision), num(perClass[c].recall), num(perClass[c].f1), int(perClass[c].support)]
    }), { caption: 'Per class (one-vs-rest)' }))
  }
  const confusion = p.confusion as { classes?: string[], matrix?: number[][] } | undefined
  if (confusion?.classes !== undefined && confusion.matrix !== undefined) {
    out.push(table(['true \\ predicted', ...confusion.classes.map(esc)], confusion.matrix.map((row, i) => [esc(confusion.classes![i]), ...row.map(n => int(n))]), { caption: 'Confusion matrix (rows: true class, columns: predicted)' }))
  }
  const note = (p.precision as { note?: string } | undefined)?.note
  if (typeof note === 'string') out.push(`<p class="note">Precision: ${esc(note)}</p>`)
  return out.join('')
}

/** The segment cells, worst headline figure first, suppressed cells last with their reason only. */
function segmentsTable (report: Report): string {
  const cells = report.segments
  if (cells === undefined || cells.length === 0) return ''
  const main = mainMetricOfTask(report.spec.task)
  const value = (c: PublishedSegment): number | null => {
    const v = c.performance[main.key]
    const x = typeof v === 'number' ? v : (v as Partial<Bounded> | undefined)?.value
    return typeof x === 'number' && Number.isFinite(x) ? x : null
  }
  const published = cells.filter((c): c is PublishedSegment => !c.suppressed)
  const badness = (c: PublishedSegment): number => { const v = value(c); return v === null ? -Infinity : main.higherIsBetter ? -v : v }
  published.sort((a, b) => badness(b) - badness(a))
  const label = (cell: Record<string, string>): string => Object.entries(cell).map(([k, v]) => `${k}=${v}`).join(', ')
  const rows = published.map(c => { const [v, bound] = figureCells(c.performance[main.key]); return [esc(label(c.cell)), int(c.sites), int(c.samples.count), int(c.samples.labeled), v, bound] })
  const suppressed = cells.filter(c => c.suppressed).map(c => `<li>${esc(label(c.cell))}: ${esc((c as { reason: string }).reason)}</li>`)
  return table(['segment', 'sites', 'records', 'labeled', main.label, 'bound'], rows, { caption: `Published cells, worst ${main.label} first` }) +
    (suppressed.length > 0 ? `<p>Suppressed (no figure is published for these cells):</p><ul class="suppressed">${suppressed.join('')}</ul>` : '')
}

/** The report page's content (inside <main>) and the charts it places. */
export function renderReportSection (report: Report, opts: ReportPageOptions = {}): RenderedSection {
  const p = report.performance as Record<string, unknown>
  const auc = report.performance.auc
  const sumsOff = (p.sums as { state?: string } | undefined)?.state === 'off'
  const offOr = (key: string): string => (sumsOff ? 'n/a (score.sums off)' : num(p[key]))
  const thr = typeof p.threshold === 'number' ? ` @ ${p.threshold}` : ''
  const charts: ChartSpec[] = []
  const parts: string[] = []
  const back = opts.monitorHref !== undefined ? `<p class="crumbs"><a href="/">Overview</a> › <a href="${esc(opts.monitorHref)}">${esc(report.spec.model)}</a> › report</p>` : ''
  parts.push(`${back}<h1>Report <code>${esc(report.id)}</code></h1>`)
  parts.push('<dl class="meta">' + [
    ['model', esc(report.spec.model)],
    ['round', `<code>${esc(report.round.id)}</code> (${esc(report.round.kind)})`],
    ['window', `${esc(when(report.window.from))} – ${esc(when(report.window.to))}`],
    ['agents', `<span data-metric="agents.included.length">${report.agents.included.length}</span> included${contributingText(report)}, <span data-metric="agents.dropped.length">${report.agents.dropped.length}</span> dropped, ${report.agents.invited.length} invited`],
    ['samples', `<span data-metric="samples.count">${int(report.samples.count)}</span> records, <span data-metric="samples.labeled">${int(report.samples.labeled)}</span> labeled, <span data-metric="samples.positives">${int(report.samples.positives)}</span> positive, ${int(report.samples.unlabeled)} unlabeled`],
    ['spec', `<code>${esc(report.spec.hash.slice(0, 12))}</code>, ${int(report.spec.vectorLength)} entries`],
    ['created', esc(when(report.createdAt))]
  ].map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('') + '</dl>')

  parts.push('<section aria-labelledby="h-alerts"><h2 id="h-alerts">Alerts</h2>' + alertsSection(report) + '</section>')

  const h = report.histograms
  if ((report.spec.task ?? 'binary') === 'binary') {
    parts.push('<section aria-labelledby="h-perf"><h2 id="h-perf">Performance</h2><div class="figures">' + [
      figure('AUC (ROC)', num(auc.value), 'performance.auc.value', `${auc.confidence !== undefined ? `${Math.round(auc.confidence * 100)} % confidence interval (noise and binning)` : 'certified bound'} [<span data-metric="performance.auc.lower">${num(auc.lower)}</span>, <span data-metric="performance.auc.upper">${num(auc.upper)}</span>]`),
      figure('PR-AUC (average precision)', num(p.pr_auc), 'performance.pr_auc'),
      figure('log loss', offOr('log_loss'), 'performance.log_loss'),
      figure('Brier score', offOr('brier'), 'performance.brier'),
      figure('ECE', offOr('ece'), 'performance.ece'),
      figure('prevalence', num(p.prevalence), 'performance.prevalence')
    ].join('') + '</div>')
    const atThreshold = [['precision', 'precision'], ['recall', 'recall'], ['F1', 'f1'], ['accuracy', 'accuracy'], ['specificity', 'specificity']]
      .map(([label, key]) => [esc(label + thr), `<span data-metric="performance.${key}">${num(p[key])}</span>`])
    parts.push('<div class="side-by-side">' + table(['metric', 'value'], atThreshold, { caption: 'At the decision threshold' }) + confusionMatrix(p) + '</div>')
    if (h !== undefined) {
      const sc = scoreCharts(report, h.score)
      charts.push(...sc.charts)
      parts.push(`<div class="chart-grid">${sc.html}</div>`)
    } else {
      parts.push('<p class="note">This report was made before reports carried their histograms: no curves.</p>')
    }
    if (typeof p.fixedPoint === 'string') parts.push(`<p class="note">Sums: ${esc(p.fixedPoint)}</p>`)
    parts.push('</section>')
  } else {
    // another task (regression, multiclass): its figures by short name, and a multiclass confusion matrix
    parts.push('<section aria-labelledby="h-perf"><h2 id="h-perf">Performance</h2>' + taskPerformance(report) + '</section>')
  }
  const segments = segmentsTable(report)
  if (segments !== '') parts.push('<section aria-labelledby="h-segments"><h2 id="h-segments">Segments</h2>' + segments + '</section>')

  parts.push('<section aria-labelledby="h-drift"><h2 id="h-drift">Drift</h2>' + driftSection(report))
  if (h !== undefined) {
    const figs: string[] = []
    Object.entries(h.features).forEach(([name, fh], i) => {
      const fc = featureChart(i, name, fh, report.drift.features[name])
      figs.push(fc.html)
      charts.push(fc.spec)
    })
    parts.push(`<h3>Reference and current distributions</h3><div class="chart-grid">${figs.join('\n')}</div>`)
  }
  parts.push('</section>')

  parts.push('<section aria-labelledby="h-quality"><h2 id="h-quality">Data quality</h2>' + dataQualitySection(report) + '</section>')
  const pr = report.privacy
  parts.push(`<p class="note privacy">Privacy: threshold ${esc(pr.threshold ?? '—')}, min agents ${esc(pr.minAgents ?? '—')}${pr.graph !== undefined ? `, graph ${esc(pr.graph)}${pr.k !== undefined ? ` (k = ${esc(pr.k)})` : ''}` : ''}${dpNote(pr.dp)}. Every figure and histogram here is a sum over the included agents; nothing per site.</p>`)
  return { html: parts.join('\n'), charts }
}

/** Link to a report page in the dashboard. */
export function reportHref (model: string, id: string): string {
  return `/monitors/${urlSegment(model)}/reports/${urlSegment(id)}`
}

/** The privacy line's DP part: ε, δ and the noise in every count (shared/dp/report.ts), when the round had DP. */
function dpNote (dp: unknown): string {
  if (dp === undefined || dp === null) return ''
  const d = dp as { epsilon?: number, delta?: number, noiseStd?: number, countError95?: number }
  return `, differential privacy (ε = ${esc(d.epsilon ?? '?')}, δ = ${esc(d.delta ?? '?')} per round; every count carries noise of σ ${esc(typeof d.noiseStd === 'number' ? d.noiseStd.toFixed(1) : '?')}, ±${esc(typeof d.countError95 === 'number' ? Math.ceil(d.countError95) : '?')} at 95 %)`
}
