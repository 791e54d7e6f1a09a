/**
 * The report of a DP round: figures from the noisy sums, with error bars from the noise's known law.
 *
 * The summed vector is read as signed and clamped at zero (decode.ts), and the report body is computed from it
 * as from any sum — except AUC, which is bilinear in the two score histograms and so is computed from the
 * signed counts: unbiased, where clamping the many near-empty tail bins at zero would bias it by several
 * noise standard deviations. The error bars are a parametric bootstrap: the noise in the sum is Sk(μ·survivors) per count
 * entry, a law everyone knows, so redrawing it `DRAWS` times around the published counts and recomputing the
 * body shows how far each figure moves with the noise alone. That is post-processing of published figures: no
 * privacy cost. AUC's certified binning interval is widened by the 95 % noise half-width on each side, and the
 * report says it is now a confidence interval. What the bars do not cover: a cell whose true count is near
 * zero reads high after clamping (by up to ~0.4 σ), so a distance over a histogram with empty reference cells
 * (PSI's floor) is biased — choose buckets that hold records on both sides.
 */
import type { FeatureDrift, PublishedSegment, Report } from '../report.js'
import { cellKey, cellLabel, segmentsOf } from '../stats/segments.js'
import type { Layout } from '../stats/layout.js'
import type { MonitorSpec } from '../stats/spec.js'
import { computeReportBody, type ReferenceInput, type ReportBody } from '../stats/report-body.js'
import { contributingSites } from '../stats/contributing.js'
import { mulberry32 } from '../prng.js'
import { clampedCounts, signedCounts } from './decode.js'
import { rocAucBounds } from '../stats/performance.js'
import { DP_SUMS_SHARE, noiseMuPerEntry, noiseStd, planDp } from './plan.js'
import { addSkellamNoiseEach } from './skellam.js'

/** Redraws of the noise for the error bars. */
export const DRAWS = 100
/** The two-sided 95 % normal quantile. */
const Z95 = 1.959964

export interface DpReportInfo {
  mechanism: 'skellam'
  epsilon: number
  delta: number
  /** ε spent by this round at δ (≤ the spec's, planned for `minSurvivors`). */
  epsilonSpent: number
  minSurvivors: number
  survivors: number
  /** Skellam parameter each agent added to each count entry. */
  muPerAgent: number
  /** Standard deviation of the noise in every summed count entry of this report. */
  noiseStd: number
  /** ± this many records around any count of this report holds its true value with 95 % probability. */
  countError95: number
  /** The raw sums' noise (log loss, Brier, score and moment sums), when the spec has sums: per agent and in the sum. */
  sums?: { muPerAgent: number, noiseStd: number, share: number }
  confidence: 0.95
  note: string
}

/**
 * `contributing`: the summed per-site indicator (sites with records in the window), a noisy count like the
 * others — clamped at zero, ± `dp.countError95`.
 */
export interface NoisyReport { body: ReportBody, dp: DpReportInfo, contributing: number }

/**
 * `current` is the unmasked noisy sum of `survivors` agents (each planned for `minSurvivors`); `reference` the
 * stored reference sum, noisy with `referenceSurvivors` agents (null: it was exact).
 */
export function noisyReportBody (opts: {
  spec: MonitorSpec
  layout: Layout
  current: Uint32Array
  reference: (ReferenceInput & { survivors: number | null }) | null
  survivors: number
  minSurvivors: number
}): NoisyReport {
  const { spec, layout } = opts
  const target = spec.privacy?.dp
  if (target === undefined) throw new Error('noisyReportBody needs a spec with privacy.dp')
  const plan = planDp(layout, target, opts.minSurvivors)
  const current = clampedCounts(opts.current)
  const reference = opts.reference === null ? null : { ...opts.reference, vector: opts.reference.survivors !== null ? clampedCounts(opts.reference.vector) : opts.reference.vector }
  const std = noiseStd(plan, opts.survivors)
  // segment cells are suppressed on their noisy counts only beyond the noise (segmentReports' countSlack)
  const countSlack = Z95 * std
  const body = computeReportBody({ spec, layout, current, reference, countSlack })
  setSignedAucs(layout, body, signedCounts(opts.current))

  // The noise in the sum, entry by entry (counts and raw sums have their own parameters), for `agents` agents.
  const perAgent = noiseMuPerEntry(layout, plan)
  const inSum = (agents: number): Float64Array => perAgent.map(mu => mu * agents)
  const currentMu = inSum(opts.survivors)
  const referenceMu = opts.reference?.survivors != null ? inSum(opts.reference.survivors) : null
  const rnd = mulberry32(0x5eed) // error bars need not be secret: a fixed seed makes a report reproducible
  const uniform = (): number => rnd()
  const draws: ReportBody[] = []
  for (let i = 0; i < DRAWS; i++) {
    const redrawn = addSkellamNoiseEach(Uint32Array.from(opts.current), currentMu, uniform)
    const r = reference === null ? null : { ...reference, vector: referenceMu !== null ? clampedCounts(addSkellamNoiseEach(Uint32Array.from(reference.vector), referenceMu, uniform)) : reference.vector }
    const draw = computeReportBody({ spec, layout, current: clampedCounts(redrawn), reference: r, countSlack })
    setSignedAucs(layout, draw, signedCounts(redrawn))
    draws.push(draw)
  }
  attachErrors(body, draws)
  return {
    body,
    contributing: contributingSites(layout, current),
    dp: {
      mechanism: 'skellam',
      epsilon: target.epsilon,
      delta: target.delta,
      epsilonSpent: plan.epsilon,
      minSurvivors: opts.minSurvivors,
      survivors: opts.survivors,
      muPerAgent: plan.muPerAgent,
      noiseStd: std,
      countError95: Z95 * std,
      ...(plan.sums !== null ? { sums: { muPerAgent: plan.sums.muPerAgent, noiseStd: Math.sqrt(2 * plan.sums.muPerAgent * opts.survivors), share: DP_SUMS_SHARE } } : {}),
      confidence: 0.95,
      note: `(ε = ${target.epsilon}, δ = ${target.delta})-DP per record for this round: each of the ${opts.survivors} agents added Skellam noise (σ = ${std.toFixed(1)} per count in the sum); intervals are 95 % confidence intervals over that noise`
    }
  }
}

/** The overall AUC and each published segment cell's, from the signed counts (see the header). */
function setSignedAucs (layout: Layout, body: ReportBody, v: Int32Array): void {
  body.performance.auc = signedAuc(layout, v)
  const cells = segmentsOf(layout)?.cells ?? []
  for (const published of body.segments ?? []) {
    if (published.suppressed) continue
    const cell = cells.find(c => cellLabel(cellKey(c)) === cellLabel(published.cell))
    if (cell !== undefined) published.performance.auc = signedAuc(cell.layout as Layout, v.subarray(cell.offset, cell.offset + cell.layout.length))
  }
}

/** AUC with its binning bounds from signed score histograms (negative cells allowed: the formula is bilinear). */
function signedAuc (layout: Layout, v: Int32Array): Report['performance']['auc'] {
  const B = layout.score.bins
  const o = layout.score.offset
  const a = rocAucBounds(v.subarray(o, o + B), v.subarray(o + B, o + 2 * B))
  if (a.value === null || a.lower === null || a.upper === null) return a
  // A negative cell can make the tie term negative: keep the interval ordered and inside [0, 1].
  const clip = (x: number): number => Math.min(1, Math.max(0, x))
  return { value: clip(a.value), lower: clip(Math.min(a.lower, a.upper)), upper: clip(Math.max(a.lower, a.upper)) }
}

/** 95 % half-width of a figure across the redraws (null when the figure is missing in the body). */
function halfWidth (values: Array<number | null | undefined>): number | null {
  const xs = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
  if (xs.length < 2) return null
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)
  return Z95 * Math.sqrt(variance)
}

const PERFORMANCE_FIGURES = ['pr_auc', 'precision', 'recall', 'f1', 'accuracy', 'specificity', 'prevalence', 'predictedPositiveRate', 'log_loss', 'brier', 'ece'] as const

function attachErrors (body: ReportBody, draws: ReportBody[]): void {
  attachPerformanceErrors(body.performance, draws.map(d => d.performance))
  // each published cell: its figures across the draws in which it was published too
  for (const published of body.segments ?? []) {
    if (published.suppressed) continue
    const label = cellLabel(published.cell)
    const same = draws.map(d => d.segments?.find(c => !c.suppressed && cellLabel(c.cell) === label)).filter((c): c is PublishedSegment => c !== undefined && !c.suppressed)
    attachPerformanceErrors(published.performance, same.map(c => c.performance))
  }
  const drifts: Array<[FeatureDrift, Array<FeatureDrift | null | undefined>]> = Object.entries(body.drift.features).map(([name, f]) => [f, draws.map(d => d.drift.features[name])])
  if (body.drift.score !== null) drifts.push([body.drift.score, draws.map(d => d.drift.score)])
  for (const [f, others] of drifts) {
    f.noise95 = { psi: halfWidth(others.map(o => o?.psi)), js: halfWidth(others.map(o => o?.js)), meanShift: halfWidth(others.map(o => o?.meanShift)), stdRatio: halfWidth(others.map(o => o?.stdRatio)) }
  }
}

/** AUC's interval widened by its 95 % noise half-width; every other figure's half-width in `noise95`. */
function attachPerformanceErrors (performance: Report['performance'], draws: Array<Report['performance']>): void {
  const perf = performance as Report['performance'] & Record<string, unknown>
  const aucHw = halfWidth(draws.map(d => d.auc?.value))
  const auc = perf.auc
  if (aucHw !== null && auc.value !== null) {
    perf.auc = {
      ...auc,
      lower: Math.max(0, (auc.lower ?? auc.value) - aucHw),
      upper: Math.min(1, (auc.upper ?? auc.value) + aucHw),
      confidence: 0.95,
      noise: aucHw
    } as typeof auc
    perf.aucBoundWidth = (perf.auc.upper as number) - (perf.auc.lower as number)
  }
  const errors: Record<string, number | null> = {}
  for (const name of PERFORMANCE_FIGURES) errors[name] = halfWidth(draws.map(d => (d as Record<string, unknown>)[name] as number | null))
  perf.noise95 = errors
}
