/**
 * Prometheus metrics for the coordinator's /metrics endpoint, on a registry of its own (never prom-client's
 * global one, so several coordinators can live in one test process). Gauges carry the global metrics of
 * the latest report; counters and a histogram carry rounds. A metric the report does not have (e.g. AUC
 * without labels) is exported as NaN, which Grafana shows as a gap.
 * Drift gauges are labelled by feature; the model score's own drift uses feature="__score__".
 * Every series carries a `monitor` label (issue 12 §1: many monitors per deployment): `forMonitor(name)` gives
 * the view that writes that monitor's series. The roster's gauges (agents online/total) are the deployment's,
 * repeated under each monitor so a dashboard filtered by monitor still has them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Report } from '../shared/report.js'
import type { RoundOutcome } from './contracts.js'
import { readMetric } from './alerts.js'
import { taskGauges } from '../shared/stats/tasks/index.js'
import { cellLabel } from '../shared/stats/segments.js'

export const SCORE_FEATURE_LABEL = '__score__'
/** Multiclass drift series: the predicted class, and each class's probability (`__score_CLASS__`). */
export const PREDICTED_CLASS_FEATURE_LABEL = '__predicted_class__'
export const classScoreFeatureLabel = (name: string): string => `__score_${name}__`

/** Drift status as a number: 0 ok, 1 warn, 2 drift, -1 unknown (no reference). */
export const DRIFT_STATUS_CODE: Readonly<Record<string, number>> = { ok: 0, warn: 1, drift: 2, unknown: -1 }

const PERFORMANCE_GAUGES = [
  ['fedmon_auc', 'ROC AUC of the latest report (midpoint estimate)', 'performance.auc.value'],
  ['fedmon_auc_lower', 'Certified lower bound of the ROC AUC', 'performance.auc.lower'],
  ['fedmon_auc_upper', 'Certified upper bound of the ROC AUC', 'performance.auc.upper'],
  ['fedmon_pr_auc', 'PR AUC (average precision) of the latest report', 'performance.pr_auc'],
  ['fedmon_log_loss', 'Log loss of the latest report', 'performance.log_loss'],
  ['fedmon_brier', 'Brier score of the latest report', 'performance.brier'],
  ['fedmon_ece', 'Expected calibration error of the latest report', 'performance.ece'],
  ['fedmon_precision', 'Precision at the spec threshold', 'performance.precision'],
  ['fedmon_recall', 'Recall at the spec threshold', 'performance.recall'],
  ['fedmon_f1', 'F1 at the spec threshold', 'performance.f1'],
  ['fedmon_prevalence', 'Share of positives among labelled samples', 'performance.prevalence'],
  // Estimated before labels (CBPE, shared/stats/estimated.ts), and how complete the labels are.
  ['fedmon_estimated_auc', 'ROC AUC estimated from the score histogram (CBPE), without labels', 'performance.estimated.auc'],
  ['fedmon_estimated_precision', 'Precision at the threshold estimated without labels (CBPE)', 'performance.estimated.precision'],
  ['fedmon_estimated_recall', 'Recall at the threshold estimated without labels (CBPE)', 'performance.estimated.recall'],
  ['fedmon_estimated_f1', 'F1 at the threshold estimated without labels (CBPE)', 'performance.estimated.f1'],
  ['fedmon_estimated_accuracy', 'Accuracy at the threshold estimated without labels (CBPE)', 'performance.estimated.accuracy'],
  ['fedmon_label_coverage', 'Share of scored records of the latest report that have a label', 'performance.estimated.labels.coverage']
] as const

const DRIFT_GAUGES = [
  ['fedmon_drift_psi', 'Population stability index against the reference', 'psi'],
  ['fedmon_drift_js', 'Jensen-Shannon distance (base 2) against the reference', 'js'],
  ['fedmon_drift_ks', 'Kolmogorov-Smirnov statistic (binned estimate) against the reference', 'ks'],
  ['fedmon_drift_wasserstein', 'Wasserstein-1 distance normalised by the reference std', 'wasserstein'],
  ['fedmon_drift_hellinger', 'Hellinger distance against the reference', 'hellinger']
] as const

export interface Metrics {
  readonly registry: Registry
  /** The monitor this view labels its series with ('' for the root view of a single-monitor test). */
  readonly monitor: string
  /** The view writing `name`'s series (same registry). */
  forMonitor (name: string): Metrics
  observeReport (report: Report): void
  observeRound (outcome: RoundOutcome): void
  /** A failure that left no stored round (a scheduled window refused before any agent was asked). */
  countFailure (code: string): void
  setAgentsOnline (n: number): void
  setAgentsTotal (n: number): void
  /** The exposition text and its content type, for the HTTP handler. */
  render (): Promise<{ contentType: string, body: string }>
}

function leaf (value: unknown): number {
  if (typeof value === 'number') return value
  if (value !== null && typeof value === 'object' && typeof (value as { value?: unknown }).value === 'number') return (value as { value: number }).value
  return Number.NaN
}

export function createMetrics (opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const M = 'monitor' as const

  const performance = [...PERFORMANCE_GAUGES, ...taskGauges()].map(([name, help, path]) => ({ gauge: new Gauge({ name, help, labelNames: [M] as const, registers }), path }))
  const drift = DRIFT_GAUGES.map(([name, help, key]) => ({ gauge: new Gauge({ name, help, labelNames: [M, 'feature'] as const, registers }), key }))
  const driftStatus = new Gauge({ name: 'fedmon_drift_status', help: 'Drift status per feature: 0 ok, 1 warn, 2 drift, -1 unknown (no reference)', labelNames: [M, 'feature'] as const, registers })
  const reportSamples = new Gauge({ name: 'fedmon_report_samples', help: 'Samples in the latest report by type (all, labeled, positives, unlabeled)', labelNames: [M, 'type'] as const, registers })
  const samplesTotal = new Counter({ name: 'fedmon_samples_total', help: 'Samples aggregated over all reports since the coordinator started', labelNames: [M] as const, registers })
  const reportsTotal = new Counter({ name: 'fedmon_reports_total', help: 'Reports produced, by round kind', labelNames: [M, 'kind'] as const, registers })
  const reportTimestamp = new Gauge({ name: 'fedmon_report_timestamp_seconds', help: 'Creation time of the latest report (Unix seconds)', labelNames: [M] as const, registers })
  const reportWindowEnd = new Gauge({ name: 'fedmon_report_window_end_seconds', help: 'End of the latest report\'s window (Unix seconds)', labelNames: [M] as const, registers })
  const reportAgents = new Gauge({ name: 'fedmon_report_agents', help: 'Agents in the latest report by role (invited, included, dropped; contributing: included sites that had records in the window)', labelNames: [M, 'role'] as const, registers })
  const alertsFired = new Counter({ name: 'fedmon_alerts_fired_total', help: 'Alerts fired, by rule', labelNames: [M, 'rule'] as const, registers })
  // Segments (spec.segments): per published cell, the same performance and drift figures under a `segment`
  // label (`region=north`), as families of their own (fedmon_segment_*) so that the overall series keep their
  // label sets. A suppressed cell has no series at all.
  const SEG = 'segment' as const
  const segmentPerformance = [...PERFORMANCE_GAUGES, ...taskGauges()].map(([name, help, path]) => ({
    gauge: new Gauge({ name: name.replace(/^fedmon_/, 'fedmon_segment_'), help: `${help}, per segment cell`, labelNames: [M, SEG] as const, registers }), path
  }))
  const segmentSamples = new Gauge({ name: 'fedmon_segment_samples', help: 'Samples of a published segment cell of the latest report by type (all, labeled)', labelNames: [M, SEG, 'type'] as const, registers })
  const segmentSites = new Gauge({ name: 'fedmon_segment_sites', help: 'Sites with records in a published segment cell of the latest report', labelNames: [M, SEG] as const, registers })
  const segmentDrift = DRIFT_GAUGES.map(([name, help, key]) => ({ gauge: new Gauge({ name: name.replace(/^fedmon_/, 'fedmon_segment_'), help: `${help}, per segment cell (drift: true columns)`, labelNames: [M, SEG, 'feature'] as const, registers }), key }))
  /** Segment series set per monitor, removed when its next report replaces them. */
  const segmentSeries = new Map<string, Array<() => void>>()
  const alertsActive = new Gauge({ name: 'fedmon_alerts_active', help: 'Alerts in the latest report', labelNames: [M] as const, registers })

  const roundDuration = new Histogram({
    name: 'fedmon_round_duration_seconds',
    help: 'Wall-clock duration of finished rounds',
    labelNames: [M, 'kind', 'status'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
    registers
  })
  const roundsTotal = new Counter({ name: 'fedmon_rounds_total', help: 'Rounds finished, by status (done, failed, aborted)', labelNames: [M, 'status'] as const, registers })
  const roundFailures = new Counter({ name: 'fedmon_round_failures_total', help: 'Rounds that failed or were aborted, and scheduled rounds that could not start, by reason code', labelNames: [M, 'code'] as const, registers })
  const dropouts = new Counter({ name: 'fedmon_round_dropouts_total', help: 'Agents that dropped out of a round after being invited', labelNames: [M] as const, registers })
  const lastRound = new Gauge({ name: 'fedmon_last_round_timestamp_seconds', help: 'Finish time of the latest round (Unix seconds)', labelNames: [M] as const, registers })
  const agentsOnline = new Gauge({ name: 'fedmon_agents_online', help: 'Roster agents currently connected', labelNames: [M] as const, registers })
  const agentsTotal = new Gauge({ name: 'fedmon_agents_total', help: 'Agents on the roster', labelNames: [M] as const, registers })

  // A round may be reported more than once (running → done); count each id once.
  const observedRounds = new Set<string>()
  // The roster's figures, repeated under every monitor that has a view.
  const agents = { online: null as number | null, total: null as number | null }
  const monitors = new Set<string>()
  /** Drift series set per monitor (feature labels), removed when its next report replaces them. */
  const driftFeatures = new Map<string, Set<string>>()
  const views = new Map<string, Metrics>()

  const labelOf = (monitor: string): { monitor?: string } => monitor === '' ? {} : { monitor }
  const know = (monitor: string): void => {
    if (monitors.has(monitor)) return
    monitors.add(monitor)
    if (agents.online !== null) agentsOnline.set(labelOf(monitor), agents.online)
    if (agents.total !== null) agentsTotal.set(labelOf(monitor), agents.total)
  }

  const view = (monitor: string, announce: boolean): Metrics => {
    // The root view (tests of one RoundService) writes its series without the label; the daemon writes through
    // forMonitor only, so every series it exports names its monitor.
    const L = <T extends Record<string, string>>(extra: T): T & { monitor?: string } => ({ ...labelOf(monitor), ...extra })
    const m = L({})
    if (announce) know(monitor)
    return {
      registry,
      monitor,
      forMonitor: (name) => {
        let v = views.get(name)
        if (v === undefined) { v = view(name, true); views.set(name, v) }
        return v
      },
      observeReport (report) {
        know(monitor)
        for (const { gauge, path } of performance) gauge.set(m, readMetric(report, path) ?? Number.NaN)
        for (const feature of driftFeatures.get(monitor) ?? []) {
          for (const { gauge } of drift) gauge.remove(L({ feature }))
          driftStatus.remove(L({ feature }))
        }
        const entries: Array<[string, Report['drift']['features'][string]]> = Object.entries(report.drift?.features ?? {})
        if (report.drift?.score != null) entries.push([SCORE_FEATURE_LABEL, report.drift.score])
        // multiclass: the predicted class's distribution and each class's probability
        if (report.drift?.predicted != null) entries.push([PREDICTED_CLASS_FEATURE_LABEL, report.drift.predicted as Report['drift']['features'][string]])
        for (const [name, d] of Object.entries((report.drift?.classScores ?? {}) as Report['drift']['features'])) entries.push([classScoreFeatureLabel(name), d])
        driftFeatures.set(monitor, new Set(entries.map(([feature]) => feature)))
        for (const [feature, d] of entries) {
          for (const { gauge, key } of drift) {
            if (key in d) gauge.set(L({ feature }), leaf(d[key]))
          }
          driftStatus.set(L({ feature }), DRIFT_STATUS_CODE[d.status] ?? -1)
        }
        const s = report.samples
        reportSamples.set(L({ type: 'all' }), s.count)
        reportSamples.set(L({ type: 'labeled' }), s.labeled)
        if (s.positives !== null) reportSamples.set(L({ type: 'positives' }), s.positives) // binary only
        else reportSamples.remove(L({ type: 'positives' }))
        reportSamples.set(L({ type: 'unlabeled' }), s.unlabeled)
        samplesTotal.inc(m, s.count)
        reportsTotal.inc(L({ kind: report.round.kind }))
        reportTimestamp.set(m, Date.parse(report.createdAt) / 1000)
        reportWindowEnd.set(m, Date.parse(report.window.to) / 1000)
        reportAgents.set(L({ role: 'invited' }), report.agents.invited.length)
        reportAgents.set(L({ role: 'included' }), report.agents.included.length)
        reportAgents.set(L({ role: 'dropped' }), report.agents.dropped.length)
        // included sites that had records in the window (reports before layout v3 have no such count)
        if (report.agents.contributing !== undefined) reportAgents.set(L({ role: 'contributing' }), report.agents.contributing)
        else reportAgents.remove(L({ role: 'contributing' }))
        for (const remove of segmentSeries.get(monitor) ?? []) remove()
        const removals: Array<() => void> = []
        for (const s of report.segments ?? []) {
          if (s.suppressed) continue // never a series for a suppressed cell
          const segment = cellLabel(s.cell)
          const cellView = { performance: s.performance, samples: s.samples, drift: s.drift }
          for (const { gauge, path } of segmentPerformance) {
            const value = readMetric(cellView, path)
            if (value === null) continue
            gauge.set(L({ segment }), value)
            removals.push(() => gauge.remove(L({ segment })))
          }
          for (const type of ['all', 'labeled'] as const) {
            segmentSamples.set(L({ segment, type }), type === 'all' ? s.samples.count : s.samples.labeled)
            removals.push(() => segmentSamples.remove(L({ segment, type })))
          }
          segmentSites.set(L({ segment }), s.sites)
          removals.push(() => segmentSites.remove(L({ segment })))
          const cellDrift: Array<[string, Report['drift']['features'][string]]> = Object.entries(s.drift?.features ?? {})
          if (s.drift?.score != null) cellDrift.push([SCORE_FEATURE_LABEL, s.drift.score])
          for (const [feature, d] of cellDrift) {
            for (const { gauge, key } of segmentDrift) {
              if (!(key in d)) continue
              gauge.set(L({ segment, feature }), leaf(d[key]))
              removals.push(() => gauge.remove(L({ segment, feature })))
            }
          }
        }
        segmentSeries.set(monitor, removals)
        for (const alert of report.alerts) alertsFired.inc(L({ rule: alert.rule }))
        alertsActive.set(m, report.alerts.length)
      },
      observeRound (outcome) {
        if (outcome.status === 'running' || observedRounds.has(outcome.id)) return
        know(monitor)
        observedRounds.add(outcome.id)
        if (observedRounds.size > 10_000) observedRounds.delete(observedRounds.values().next().value as string)
        roundsTotal.inc(L({ status: outcome.status }))
        if (outcome.failure !== null) roundFailures.inc(L({ code: outcome.failure.code }))
        dropouts.inc(m, outcome.dropped.length)
        const start = Date.parse(outcome.startedAt)
        const end = outcome.finishedAt !== null ? Date.parse(outcome.finishedAt) : Number.NaN
        if (Number.isFinite(start) && Number.isFinite(end) && end >= start) {
          roundDuration.observe(L({ kind: outcome.kind, status: outcome.status }), (end - start) / 1000)
          lastRound.set(m, end / 1000)
        }
      },
      countFailure (code) { know(monitor); roundFailures.inc(L({ code })) },
      setAgentsOnline (n) {
        agents.online = n
        if (monitors.size === 0) know(monitor)
        for (const name of monitors) agentsOnline.set(labelOf(name), n)
      },
      setAgentsTotal (n) {
        agents.total = n
        if (monitors.size === 0) know(monitor)
        for (const name of monitors) agentsTotal.set(labelOf(name), n)
      },
      async render () {
        return { contentType: registry.contentType, body: await registry.metrics() }
      }
    }
  }
  return view('', false)
}
