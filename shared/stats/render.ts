/**
 * The one terminal renderer for reports (`fedmon evaluate`, `fedmon report`): aligned plain text, with ANSI
 * colour for statuses only when asked.
 */
import type { Report, FeatureDrift, Bounded } from '../report.js'
import { taskOfReport } from './tasks/index.js'
import type { RenderTools } from './tasks/task.js'
import { cellLabel, segmentsWorstFirst, largestDrift } from './segments.js'
import { mainMetricOfTask } from './tasks/main-metric.js'

const ANSI = { red: '\x1b[31m', yellow: '\x1b[33m', green: '\x1b[32m', dim: '\x1b[2m', bold: '\x1b[1m', reset: '\x1b[0m' }

function num (x: unknown, digits = 4): string {
  if (typeof x !== 'number' || Number.isNaN(x)) return '—'
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞'
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1)
  return x.toFixed(digits)
}

function int (x: unknown): string {
  return typeof x === 'number' ? x.toLocaleString('en-US') : '—'
}

/** Pads cells to column widths; the first column left-aligned, the rest right-aligned. */
function table (rows: string[][], visibleLength: (s: string) => number): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, visibleLength(c)) })
  return rows.map(r => r.map((c, i) => {
    const pad = ' '.repeat(widths[i] - visibleLength(c))
    return i === 0 ? c + pad : pad + c
  }).join('  ').trimEnd())
}

export function renderReport (report: Report, opts: { color: boolean }): string {
  const paint = (s: string, ...codes: Array<keyof typeof ANSI>): string => (opts.color ? codes.map(c => ANSI[c]).join('') + s + ANSI.reset : s)
  // eslint-disable-next-line no-control-regex
  const visible = (s: string): number => s.replace(/\x1b\[[0-9;]*m/g, '').length
  const statusText = (s: FeatureDrift['status']): string => paint(s, s === 'drift' ? 'red' : s === 'warn' ? 'yellow' : s === 'ok' ? 'green' : 'dim')
  const out: string[] = []
  // Under differential privacy (shared/dp/report.ts) every count carries noise: show its ± so nobody reads
  // noise as signal, and say the AUC interval is now a confidence interval.
  const dp = report.privacy.dp as { countError95?: number, epsilon?: number, delta?: number, noiseStd?: number } | undefined
  const pm = dp?.countError95 !== undefined ? ` ±${Math.ceil(dp.countError95)}` : ''

  out.push(paint(`fedmon report ${report.id}`, 'bold'))
  out.push(`  model      ${report.spec.model}${report.spec.task !== undefined ? ` (${report.spec.task})` : ''}  (spec ${report.spec.hash.slice(0, 12)}, ${int(report.spec.vectorLength)} entries)`)
  out.push(`  round      ${report.round.id} (${report.round.kind})`)
  out.push(`  window     ${report.window.from} .. ${report.window.to}`)
  // how many of the included sites had records in the window (absent in reports made before layout v3)
  const contributing = report.agents.contributing !== undefined ? ` (${report.agents.contributing}${pm} with records in the window)` : ''
  out.push(`  agents     ${report.agents.included.length} included${contributing}, ${report.agents.dropped.length} dropped, ${report.agents.invited.length} invited`)
  out.push(`  samples    ${int(report.samples.count)}${pm} records, ${int(report.samples.labeled)}${pm} labeled, ${report.samples.positives !== null ? `${int(report.samples.positives)}${pm} positive, ` : ''}${int(report.samples.unlabeled)}${pm} unlabeled`)
  // Late labels: which version this is, and how complete the labels behind the realised metrics are.
  const v = report.version
  if (v !== undefined && (v.number > 1 || report.labels !== undefined)) {
    const made = v.refresh !== null ? `label refresh at ${v.refresh.age} (labels recorded up to ${v.refresh.cutoff})` : 'first round'
    out.push(`  version    ${v.number}: ${made}${v.number > 1 ? `; first version ${v.first}` : ''}`)
  }
  if (report.labels !== undefined && report.labels.coverage !== null) {
    out.push(`  labels     ${(report.labels.coverage * 100).toFixed(0)} % of scored records labelled (${int(report.labels.labeled)} of ${int(report.labels.labeled + report.labels.unlabeled)}) as of ${report.labels.maturedAt}`)
  }
  out.push(`  created    ${report.createdAt}`)
  out.push('')

  out.push(paint('Performance', 'bold'))
  out.push(...taskOfReport(report).renderPerformance(report, { paint, num, int, table: rows => table(rows, visible) }))
  out.push('')

  if (report.segments !== undefined) {
    out.push(...segmentLines(report, { paint, num, int, table: rows => table(rows, visible) }))
    out.push('')
  }

  out.push(paint('Drift', 'bold'))
  const d = report.drift
  if (d.reference === null) {
    out.push(`  ${d.note ?? 'no reference: drift not computed'}`)
  } else {
    const ref = d.reference.window !== null ? `${d.reference.window.from} .. ${d.reference.window.to}` : '(window unknown)'
    out.push(`  reference  ${d.reference.id ?? 'local'}  ${ref}`)
    if (d.note !== undefined) out.push(`  note       ${d.note}`)
    const rows: string[][] = [['feature', 'type', 'PSI', 'JS', 'KS [upper]', 'Wass/std', 'missing ref→cur', 'status']]
    const entries: Array<[string, FeatureDrift]> = Object.entries(d.features)
    if (d.score !== null) entries.push(['(score)', d.score])
    // a task's own modelled values (regression: prediction and target), drifting like features
    for (const key of ['prediction', 'target']) if (d[key] != null) entries.push([`(${key})`, d[key] as FeatureDrift])
    // multiclass: the predicted class's distribution and each class's probability
    if (d.predicted != null) entries.push(['(predicted class)', d.predicted as FeatureDrift])
    for (const [name, f] of Object.entries((d.classScores ?? {}) as Record<string, FeatureDrift>)) entries.push([`(score ${name})`, f])
    for (const [name, f] of entries) {
      const ks = f.ks !== undefined && f.ks.value !== null ? `${num(f.ks.value, 3)} [${num(f.ks.upper, 3)}]` : '—'
      const miss = `${num(f.missingRate.reference, 3)}→${num(f.missingRate.current, 3)}`
      const fn = f.noise95 as { psi?: number | null, js?: number | null } | undefined
      const psiText = num(f.psi) + (fn?.psi != null ? ` ±${num(fn.psi, 3)}` : '')
      const jsText = num(f.js) + (fn?.js != null ? ` ±${num(fn.js, 3)}` : '')
      rows.push([name, f.type, psiText, jsText, ks, num(f.wasserstein ?? null, 3), miss, statusText(f.status)])
    }
    out.push(...table(rows, visible).map(l => '  ' + l))
  }
  out.push('')

  out.push(paint('Data quality', 'bold'))
  const q = report.dataQuality as Record<string, any>
  const line = (label: string, value: unknown): void => { out.push(`  ${label.padEnd(28)} ${int(value)}${pm}`) }
  if (q.records !== undefined) line('records in window', q.records)
  // only in `fedmon evaluate` reports (the site's own figure, never summed); includes JSONL lines that are not JSON
  if (q.recordsWithoutTimestamp !== undefined) line('records without usable ts', q.recordsWithoutTimestamp)
  if (q.score !== undefined) {
    line('score missing', q.score.missing); line('score not numeric', q.score.notNumeric)
    line('score not finite', q.score.notFinite); line('score outside [0, 1]', q.score.outOfRange)
  }
  if (q.scores !== undefined) { // multiclass: the per-class probabilities
    line('probabilities missing', q.scores.missing); line('probabilities not numeric', q.scores.notNumeric)
    line('probabilities not finite', q.scores.notFinite); line('probabilities outside [0, 1]', q.scores.outOfRange)
    line('probabilities sum ≠ 1', q.scores.notSummingToOne)
  }
  if (q.label?.invalid !== undefined) line('label invalid', q.label.invalid)
  if (q.label?.notAClass !== undefined) line('label not a class', q.label.notAClass)
  for (const key of ['prediction', 'target']) {
    const v = q[key] as Record<string, number> | undefined
    if (v !== undefined) for (const [kind, n] of Object.entries(v)) line(`${key} ${kind === 'notNumeric' ? 'not numeric' : kind === 'notFinite' ? 'not finite' : kind}`, n)
  }
  for (const [name, f] of Object.entries((q.features ?? {}) as Record<string, Record<string, number>>)) {
    const parts = Object.entries(f).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${int(n)}`)
    if (parts.length > 0) out.push(`  feature ${name}: ${parts.join(', ')}${pm !== '' ? ` (each${pm})` : ''}`)
  }
  out.push('')

  out.push(paint('Alerts', 'bold'))
  if (report.alerts.length === 0) out.push('  none')
  for (const a of report.alerts) out.push(`  ${paint('!', 'red')} ${a.message}`)
  out.push('')
  const pr = report.privacy
  const dpText = dp !== undefined ? `, differential privacy (ε = ${dp.epsilon}, δ = ${dp.delta} per round; noise σ ${num(dp.noiseStd, 1)} per count, ±${Math.ceil(dp.countError95 ?? 0)} at 95 %)` : ''
  out.push(paint(`privacy: threshold ${pr.threshold ?? '—'}, min agents ${pr.minAgents ?? '—'}${dpText}`, 'dim'))
  return out.join('\n') + '\n'
}

/**
 * The Segments section: one row per cell, worst first by the task's main metric (then the largest drift);
 * suppressed cells last, with their reason and no figure. `fedmon report --segment col=value` shows one cell whole.
 */
function segmentLines (report: Report, tools: RenderTools): string[] {
  const { paint, num, int } = tools
  const main = mainMetricOfTask(report.spec.task)
  const rows: string[][] = [['segment', 'sites', 'records', 'labeled', main.label, 'bound', 'max PSI']]
  const suppressed: string[] = []
  // under privacy.dp every count is noisy: say how much (sites and records ± the 95 % error), and the bound is a 95 % interval
  const dp = report.privacy.dp as { countError95?: number } | undefined
  const pm = dp?.countError95 !== undefined ? ` ±${Math.ceil(dp.countError95)}` : ''
  if (pm !== '') rows[0][5] = '95 % CI'
  for (const s of segmentsWorstFirst(report)) {
    if (s.suppressed) { suppressed.push(`${cellLabel(s.cell)} (${s.reason})`); continue }
    const m = s.performance[main.key] as { value?: number | null, lower?: number | null, upper?: number | null } | number | undefined
    const value = typeof m === 'number' ? m : m?.value ?? null
    const bound = typeof m === 'object' && m !== null && m.lower != null ? `[${num(m.lower)}, ${num(m.upper)}]` : ''
    rows.push([cellLabel(s.cell), int(s.sites) + pm, int(s.samples.count) + pm, int(s.samples.labeled) + pm, num(value), bound, num(largestDrift(s.drift), 3)])
  }
  const published = rows.length - 1
  const out = [paint(`Segments (${published} published${suppressed.length > 0 ? `, ${suppressed.length} suppressed` : ''}; worst ${main.label} first)`, 'bold')]
  if (published > 0) out.push(...tools.table(rows).map(l => '  ' + l))
  for (const line of suppressed) out.push(paint(`  suppressed: ${line}`, 'dim'))
  return out
}

/** The binary task's Performance section (shared/stats/tasks/binary.ts): AUC with its bound, the threshold metrics, CBPE. */
export function binaryPerformanceLines (report: Report, tools: RenderTools): string[] {
  const { paint, num, int } = tools
  const out: string[] = []
  const p = report.performance as Record<string, unknown>
  const auc = p.auc as Bounded
  const dp = report.privacy.dp as { countError95?: number } | undefined
  const pm = dp?.countError95 !== undefined ? ` ±${Math.ceil(dp.countError95)}` : ''
  const noise95 = (p.noise95 ?? {}) as Record<string, number | null>
  const withNoise = (key: string): string => num(p[key]) + (noise95[key] != null ? ` ±${num(noise95[key], 3)}` : '')
  const perf: string[][] = [['metric', 'value', 'bound']]
  perf.push(['AUC (ROC)', num(auc.value), auc.lower !== null ? `[${num(auc.lower)}, ${num(auc.upper)}]${auc.confidence !== undefined ? ` (${Math.round(auc.confidence * 100)} % CI)` : ''}` : ''])
  // a figure the spec's sums do not allow is said to be off, never shown as a number (nor as a bare dash)
  const sumsOff = (p.sums as { state?: string } | undefined)?.state === 'off'
  for (const [label, key] of [['PR-AUC (avg precision)', 'pr_auc'], ['log loss', 'log_loss'], ['Brier', 'brier'], ['ECE', 'ece'],
    ['prevalence', 'prevalence']] as const) {
    perf.push([label, sumsOff && key !== 'pr_auc' && key !== 'prevalence' ? 'n/a (score.sums off)' : withNoise(key), ''])
  }
  const thr = typeof p.threshold === 'number' ? ` @ ${p.threshold}` : ''
  for (const [label, key] of [['precision', 'precision'], ['recall', 'recall'], ['F1', 'f1'], ['accuracy', 'accuracy']] as const) perf.push([label + thr, withNoise(key), ''])
  // Estimated before labels (CBPE): beside the realised figures, never in their place.
  const est = p.estimated as { auc: number | null, precision: number | null, recall: number | null, f1: number | null, accuracy: number | null, calibration: { note: string }, labels: { coverage: number | null } } | undefined
  if (est !== undefined) {
    const coverage = est.labels.coverage !== null ? `${(est.labels.coverage * 100).toFixed(0)} % labelled` : 'no scored records'
    perf.push(['AUC estimated (CBPE)', num(est.auc), coverage])
    for (const [label, key] of [['precision', 'precision'], ['recall', 'recall'], ['F1', 'f1'], ['accuracy', 'accuracy']] as const) perf.push([`${label}${thr} estimated`, num(est[key]), ''])
  }
  const c = p.confusion as { tp: number, fp: number, fn: number, tn: number } | undefined
  if (c !== undefined) perf.push([`confusion${thr}`, `TP ${int(c.tp)}  FP ${int(c.fp)}  FN ${int(c.fn)}  TN ${int(c.tn)}${pm !== '' ? ` (each${pm})` : ''}`, ''])
  out.push(...tools.table(perf).map(l => '  ' + l))
  if (est !== undefined) out.push(paint(`  estimated: from the score histogram alone, assuming calibrated scores (${est.calibration.note}); valid under covariate shift, not concept drift`, 'dim'))
  if (typeof p.fixedPoint === 'string') out.push(paint(`  sums: ${p.fixedPoint}`, 'dim'))
  return out
}
