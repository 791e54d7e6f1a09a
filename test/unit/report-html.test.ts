import { test } from 'node:test'
import assert from 'node:assert/strict'
import { syntheticReport, expectedMetricText, FIXTURE_SPEC } from '../fixtures/reports.js'
import { renderReportSection } from '../../shared/report-html/report-page.js'
import { renderMonitorSection, renderOverviewSection, HEATMAP_MAX_COLUMNS } from '../../shared/report-html/monitor-page.js'
import { standaloneReportHtml } from '../../shared/report-html/document.js'
import { esc, jsonForScript } from '../../shared/report-html/escape.js'
import { num, int, pathValue } from '../../shared/report-html/format.js'
import { rocCurve, prCurve } from '../../shared/report-html/curves.js'
import { rocAucBounds } from '../../shared/stats/performance.js'
import type { Report } from '../../shared/report.js'

const HOSTILE_CATEGORY = '<script>alert("cat")</script>'
const HOSTILE_MODEL = '"><img src=x onerror=alert(1)>'
const hostileSpec = { ...FIXTURE_SPEC, model: HOSTILE_MODEL, features: { ...FIXTURE_SPEC.features, region: { type: 'categorical', categories: ['north', HOSTILE_CATEGORY, '&amp;', "it's"] } } }

function report (over: Partial<Parameters<typeof syntheticReport>[0]> = {}): Report {
  return syntheticReport({ seed: 11, shift: 0.6, index: 2, reference: { id: 'ref-1', seed: 5 }, ...over })
}

/** Every data-metric element's text, as [path, text]. */
function shownMetrics (html: string): Array<[string, string]> {
  return [...html.matchAll(/data-metric="([^"]+)">([^<]*)</g)].map(m => [m[1], m[2]])
}

test('report histograms: the groups add up to the report\'s counts and a feature\'s bins to its records', () => {
  const r = report()
  const h = r.histograms
  assert.ok(h !== undefined)
  const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0)
  assert.equal(sum(h.score.negative) + sum(h.score.positive) + sum(h.score.unlabeled), r.samples.count)
  assert.equal(sum(h.score.positive), r.samples.positives)
  assert.equal(h.score.edges.length, h.score.negative.length + 1)
  assert.ok(h.score.negative.length <= 100)
  assert.deepEqual([h.score.edges[0], h.score.edges[h.score.edges.length - 1]], [0, 1])
  for (const [name, f] of Object.entries(h.features)) {
    const missing = f.missing.current
    const other = f.type === 'categorical' ? f.other.current : 0
    assert.equal(sum(f.current) + missing + other, r.samples.count, name)
    assert.ok(f.reference !== null)
  }
  // no reference: current histograms only
  const ref = report({ reference: null, kind: 'reference' })
  assert.equal(ref.histograms?.features.age.reference, null)
})

test('ROC and PR curves from the regrouped histogram: exact points, area = the coarse AUC, within the tie mass of the report\'s', () => {
  const r = report()
  const h = r.histograms!.score
  const roc = rocCurve(h)!
  let area = 0
  for (let i = 1; i < roc.fpr.length; i++) area += (roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1]) / 2
  const coarse = rocAucBounds(h.negative, h.positive)
  assert.ok(Math.abs(area - (coarse.value as number)) < 1e-12, `${area} vs ${coarse.value}`)
  const fine = r.performance.auc
  assert.ok((coarse.lower as number) <= (fine.lower as number) + 1e-12 && (fine.upper as number) <= (coarse.upper as number) + 1e-12, 'coarse bound contains the fine one')
  assert.deepEqual([roc.fpr[0], roc.tpr[0], roc.fpr.at(-1), roc.tpr.at(-1)], [0, 0, 1, 1])
  const pr = prCurve(h)!
  assert.equal(pr.recall.at(-1), 1)
  assert.ok(Math.abs((pr.precision.at(-1) as number) - (r.performance.prevalence as number)) < 1e-12, 'at the lowest threshold precision = prevalence')
})

test('report page: every number shown is the report\'s, every chart has a placeholder and a table', () => {
  const r = report()
  const { html, charts } = renderReportSection(r)
  const shown = shownMetrics(html)
  assert.ok(shown.length >= 15, `only ${shown.length} figures`)
  for (const [path, text] of shown) {
    assert.equal(text, expectedMetricText(r, path, { num, int }), path)
    assert.ok(path.endsWith('.length') || typeof pathValue(r, path) === 'number', `${path} is a number in the report`)
  }
  assert.ok(charts.length >= 6) // ROC, PR, reliability, score, two features
  for (const c of charts) {
    assert.ok(html.includes(`id="chart-${c.id}"`), c.id)
    for (const s of c.series) assert.equal(s.values.length, c.x.length, `${c.id}/${s.label}`)
    assert.ok(c.xLabel !== '' && c.yLabel !== '', c.id)
  }
  assert.equal((html.match(/data-chart="/g) ?? []).length, charts.length)
  assert.equal((html.match(/<details class="chart-table">/g) ?? []).length, charts.length)
  assert.equal((html.match(/role="img" aria-label="[^"]+"/g) ?? []).length, charts.length)
  for (const name of ['age', 'region']) assert.ok(html.includes(`<th scope="row">${name}</th>`), `drift row ${name}`)
})

test('names from the spec are escaped everywhere: report, monitor and overview pages, standalone file', () => {
  const r = report({ spec: hostileSpec })
  const pages = [
    renderReportSection(r, { monitorHref: `/monitors/${encodeURIComponent(r.spec.model)}` }).html,
    renderMonitorSection({ name: HOSTILE_MODEL, reports: [r], rounds: [], referenceId: null }).html,
    renderOverviewSection({ monitors: [{ name: HOSTILE_MODEL, latest: r, latestCurrent: r }], agents: { total: 3, online: 2 }, lastRound: null, nextScheduledRound: null }).html
  ]
  for (const html of pages) {
    assert.doesNotMatch(html, /<script/i)
    assert.doesNotMatch(html, /<img/i)
    assert.ok(html.includes(esc(HOSTILE_MODEL)))
  }
  assert.ok(pages[0].includes(esc(HOSTILE_CATEGORY)), 'the category is shown, as text')
  const file = standaloneReportHtml(r, { css: 'body{}', js: 'console.log("</script>")' })
  // exactly the two script elements the file is made of: the data block and the inlined bundle
  assert.equal((file.match(/<script/gi) ?? []).length, 2)
  assert.equal((file.match(/<\/script/gi) ?? []).length, 2)
  assert.doesNotMatch(file, /<img/i)
  const data = /<script type="application\/json" id="fedmon-data">([^<]*)<\/script>/.exec(file)
  assert.ok(data !== null)
  assert.equal(JSON.parse(data[1]).report.histograms.features.region.categories[1], HOSTILE_CATEGORY, 'the data round-trips')
  assert.equal(jsonForScript('</script><!--\u2028'), '"\\u003c/script\\u003e\\u003c!--\\u2028"')
})

test('monitor page: AUC band, small multiples, a PSI heat map row per feature, rounds with failures and their reason', () => {
  const ref = report({ reference: null, kind: 'reference', index: 0 })
  const reports = [ref, ...Array.from({ length: 130 }, (_, i) => report({ seed: 100 + i, index: i + 1, shift: i / 100, n: 300, reference: { id: ref.id, seed: 5 } }))]
  const rounds = [
    { id: 'round-ok', kind: 'current', window: reports[1].window, status: 'done', reportId: reports[1].id, invited: ['a', 'b', 'c'], included: ['a', 'b'], dropped: ['c'], failure: null, startedAt: '2025-01-02T00:00:00Z', finishedAt: '2025-01-02T00:00:01Z' },
    { id: 'round-bad', kind: 'current', window: reports[2].window, status: 'failed', reportId: null, invited: ['a', 'b', 'c'], included: [], dropped: ['a', 'b', 'c'], failure: { code: 'ERR_TOO_FEW', message: 'only 1 agent <b>left</b>' }, startedAt: '2025-01-03T00:00:00Z', finishedAt: '2025-01-03T00:00:05Z' }
  ]
  const { html, charts } = renderMonitorSection({ name: 'fixture-model', reports, rounds, referenceId: ref.id })
  const auc = charts.find(c => c.id === 'auc')
  assert.ok(auc !== undefined && auc.band !== undefined && auc.x.length === 130)
  assert.deepEqual(auc.series.map(s => s.label), ['AUC', 'upper bound', 'lower bound', 'reference AUC'])
  assert.equal(auc.series[3].values[0], ref.performance.auc.value)
  assert.ok(charts.filter(c => c.small === true).length >= 5)
  const rows = [...html.matchAll(/<tr><th scope="row">(age|region)<\/th>(.*?)<\/tr>/g)]
  assert.equal(rows.length, 2)
  for (const row of rows) assert.equal((row[2].match(/<td class="heat heat-/g) ?? []).length, HEATMAP_MAX_COLUMNS)
  assert.ok(html.includes('ERR_TOO_FEW: only 1 agent &lt;b&gt;left&lt;/b&gt;'))
  assert.ok(charts.some(c => c.id === 'rounds'))
})

test('the overview shows the estimated AUC (CBPE) and the label coverage while labels are missing, and not once all are in', async () => {
  const { syntheticReport } = await import('../fixtures/reports.js')
  const r = syntheticReport({ seed: 21, reference: { id: 'ref', seed: 22 } })
  const est = (r.performance as Record<string, any>).estimated
  assert.ok(est !== undefined && typeof est.auc === 'number', 'reports carry performance.estimated')
  const withCoverage = (coverage: number): string => {
    const copy = structuredClone(r)
    ;(copy.performance as Record<string, any>).estimated.labels.coverage = coverage
    return renderOverviewSection({ monitors: [{ name: 'm', latest: copy, latestCurrent: copy }], agents: { total: 1, online: 1 }, lastRound: null, nextScheduledRound: null }).html
  }
  const partial = withCoverage(0.4)
  assert.match(partial, /estimated AUC \(CBPE, no labels needed\)/)
  assert.ok(partial.includes(`data-metric="performance.estimated.auc">${est.auc.toFixed(4)}<`), partial)
  assert.match(partial, />40<\/span> % of the window's records labelled so far/)
  assert.doesNotMatch(withCoverage(1), /estimated AUC/)
})

test('overview and monitor page lead with the task\'s headline figure: MAE for a regression monitor, with its model beside the name', () => {
  const base = report()
  const r = { ...base, spec: { ...base.spec, model: 'card-balance-v1', task: 'regression' }, performance: { mae: { value: 971.1, lower: 970.8, upper: 971.4 } } } as unknown as Report
  const overview = renderOverviewSection({ monitors: [{ name: 'balance', model: 'card-balance-v1', latest: r, latestCurrent: r }], agents: { total: 1, online: 1 }, lastRound: null, nextScheduledRound: null }).html
  assert.match(overview, /latest MAE<\/div><div class="figure-value" data-metric="performance\.mae\.value">971\.1000/)
  assert.match(overview, /balance<\/a> <span class="note">card-balance-v1<\/span>/)
  assert.doesNotMatch(overview, /AUC/)
  const page = renderMonitorSection({ name: 'balance', reports: [r], rounds: [], referenceId: null })
  assert.equal(page.charts[0].title, 'MAE over time')
  assert.deepEqual(page.charts[0].series[0].values, [971.1])
})

test('the report page of another task: its figures by short name, per-class rows, a C × C matrix, its drift, and the segment cells', () => {
  const base = report()
  const regression = { ...base, spec: { ...base.spec, task: 'regression' }, performance: { mae: { value: 971.1, lower: 970.8, upper: 971.4 }, r2: { value: 0.27, lower: 0.26, upper: 0.28 }, abs_error_quantiles: { p90: { value: 2100, lower: 2079, upper: 2121 } } }, drift: { ...base.drift, prediction: { ...Object.values(base.drift.features)[0], psi: 0.123 } } } as unknown as Report
  const r = renderReportSection(regression).html
  assert.match(r, /<th scope="row">mae<\/th><td><span data-metric="performance\.mae\.value">971\.1000<\/span><\/td><td>\[970\.8000, 971\.4000\]<\/td>/)
  assert.match(r, /abs_error_quantiles\.p90/)
  assert.match(r, /\(prediction\)/)
  assert.doesNotMatch(r, /AUC \(ROC\)/)
  const multiclass = { ...base, spec: { ...base.spec, task: 'multiclass' }, performance: { macro_auc: { value: 0.8, lower: 0.79, upper: 0.81 }, accuracy: 0.7, per_class: { cat: { auc: { value: 0.9, lower: 0.89, upper: 0.91 }, precision: 0.8, recall: 0.7, f1: 0.75, support: 120 } }, confusion: { classes: ['cat', 'dog'], matrix: [[90, 30], [10, 70]] } },
    segments: [{ cell: { region: 'north' }, suppressed: false, sites: 3, samples: { count: 500, labeled: 480, positives: null, unlabeled: 20 }, performance: { macro_auc: { value: 0.7, lower: 0.69, upper: 0.71 } } }, { cell: { region: 'tiny' }, suppressed: true, reason: 'fewer than 20 records (privacy.minCellRecords)' }] } as unknown as Report
  const m = renderReportSection(multiclass).html
  assert.match(m, /Per class \(one-vs-rest\)/)
  assert.match(m, /<th scope="row">cat<\/th><td>0\.9000<\/td>/)
  assert.match(m, /Confusion matrix \(rows: true class, columns: predicted\)/)
  assert.match(m, /<th scope="row">region=north<\/th><td>3<\/td><td>500<\/td><td>480<\/td><td>0\.7000<\/td>/)
  assert.match(m, /<li>region=tiny: fewer than 20 records \(privacy\.minCellRecords\)<\/li>/)
})
