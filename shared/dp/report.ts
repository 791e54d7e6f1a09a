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
import type { Bounded, FeatureDrift, PublishedSegment, Report } from '../report.js'
import { cellKey, cellLabel, segmentsOf } from '../stats/segments.js'
import { taskOfLayout, type TaskLayout } from '../stats/tasks/index.js'
import type { MonitorSpec } from '../stats/spec.js'
import { computeReportBody, type ReferenceInput, type ReportBody } from '../stats/report-body.js'
import { contributingSites } from '../stats/contributing.js'
import { mulberry32 } from '../prng.js'
import { clampedCounts, signedCounts } from './decode.js'
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
  /**
   * The raw sums' noise (log loss, Brier, score, error and moment sums), when the spec has sums: the largest
   * group's per agent and in the sum, and each group's (in the sum, in units of its scaled terms).
   */
  sums?: { muPerAgent: number, noiseStd: number, share: number, groups: Array<{ name: string, maxTerm: number, noiseStd: number }> }
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
  layout: TaskLayout
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
      ...(plan.sums !== null
        ? {
            sums: {
              muPerAgent: plan.sums.muPerAgent,
              noiseStd: Math.sqrt(2 * plan.sums.muPerAgent * opts.survivors),
              share: DP_SUMS_SHARE,
              groups: plan.sums.groups.map(g => ({ name: g.name, maxTerm: g.maxTerm, noiseStd: Math.sqrt(2 * g.muPerAgent * opts.survivors) }))
            }
          }
        : {}),
      confidence: 0.95,
      note: `(ε = ${target.epsilon}, δ = ${target.delta})-DP per record for this round: each of the ${opts.survivors} agents added Skellam noise (σ = ${std.toFixed(1)} per count in the sum); intervals are 95 % confidence intervals over that noise`
    }
  }
}

/** The task's signed figures (Task.dpSignedFigures; binary: AUC) overall and in each published segment cell. */
function setSignedAucs (layout: TaskLayout, body: ReportBody, v: Int32Array): void {
  const task = taskOfLayout(layout)
  if (task.dpSignedFigures === undefined) return
  task.dpSignedFigures(layout, body.performance, v)
  const cells = segmentsOf(layout)?.cells ?? []
  for (const published of body.segments ?? []) {
    if (published.suppressed) continue
    const cell = cells.find(c => cellLabel(cellKey(c)) === cellLabel(published.cell))
    if (cell !== undefined) task.dpSignedFigures(cell.layout, published.performance, v.subarray(cell.offset, cell.offset + cell.layout.length))
  }
}

/** 95 % half-width of a figure across the redraws (null when the figure is missing in the body). */
function halfWidth (values: Array<number | null | undefined>): number | null {
  const xs = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
  if (xs.length < 2) return null
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)
  return Z95 * Math.sqrt(variance)
}

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

/** Report bookkeeping under `performance`, not figures (each task's counts, matrices, notes and precision info). */
const NOT_FIGURES = new Set(['noise95', 'confusion', 'reliability', 'counts', 'sums', 'fixedPoint', 'aucNote', 'aucBoundWidth'])

const isBounded = (x: unknown): x is Bounded => typeof x === 'object' && x !== null && 'value' in x && 'lower' in x && 'upper' in x

/**
 * Every figure of a task's performance section, by path (`mae`, `per_class.cat.auc`, `error_quantiles.p50`): a
 * number, or a bounded figure {value, lower, upper}. One walk for every task, so no task lists its names here.
 */
function figurePaths (performance: Record<string, unknown>, prefix = ''): Array<{ path: string, bounded: boolean }> {
  const out: Array<{ path: string, bounded: boolean }> = []
  for (const [key, x] of Object.entries(performance)) {
    if (prefix === '' && NOT_FIGURES.has(key)) continue
    const path = prefix === '' ? key : `${prefix}.${key}`
    if (typeof x === 'number') out.push({ path, bounded: false })
    else if (isBounded(x)) out.push({ path, bounded: true })
    else if (typeof x === 'object' && x !== null && !Array.isArray(x)) out.push(...figurePaths(x as Record<string, unknown>, path))
  }
  return out
}

function valueAt (performance: unknown, path: string): number | null {
  let x: unknown = performance
  for (const key of path.split('.')) x = typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[key] : undefined
  const v = isBounded(x) ? x.value : x
  return typeof v === 'number' ? v : null
}

/**
 * Each bounded figure's interval widened by its 95 % noise half-width on each side (then a confidence interval,
 * `confidence: 0.95`, with the half-width as `noise`); every figure's half-width in `noise95` by its path.
 * An AUC (or R²) stays at most 1; a figure whose exact lower bound was non-negative (MAE, RMSE, MAPE, an AUC)
 * stays non-negative.
 */
function attachPerformanceErrors (performance: Report['performance'], draws: Array<Report['performance']>): void {
  const perf = performance as Report['performance'] & Record<string, unknown>
  const errors: Record<string, number | null> = {}
  for (const { path, bounded } of figurePaths(perf)) {
    const hw = halfWidth(draws.map(d => valueAt(d, path)))
    errors[path] = hw
    if (!bounded || hw === null) continue
    const keys = path.split('.')
    const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, perf)
    const last = keys[keys.length - 1]
    const b = parent[last] as Bounded
    if (b.value === null) continue
    const atMostOne = last.endsWith('auc') || last === 'r2'
    const lower = (b.lower ?? b.value) - hw
    const upper = b.upper === null ? null : b.upper + hw
    parent[last] = {
      ...b,
      lower: (b.lower ?? b.value) >= 0 ? Math.max(0, lower) : lower,
      upper: upper === null ? null : atMostOne ? Math.min(1, upper) : upper,
      confidence: 0.95,
      noise: hw
    }
  }
  // a multiclass report's `auc` is its macro AUC: the same figure, the same interval
  if (isBounded(perf.macro_auc) && isBounded(perf.auc) && perf.auc.value === perf.macro_auc.value) perf.auc = perf.macro_auc as typeof perf.auc
  const auc = perf.auc
  if (isBounded(auc) && auc.lower !== null && auc.upper !== null) perf.aucBoundWidth = auc.upper - auc.lower
  perf.noise95 = errors
}
