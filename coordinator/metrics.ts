/**
 * Prometheus metrics for the coordinator's /metrics endpoint, on a registry of its own (never prom-client's
 * global one, so several coordinators can live in one test process). Gauges carry the global metrics of
 * the latest report; counters and a histogram carry rounds. A metric the report does not have (e.g. AUC
 * without labels) is exported as NaN, which Grafana shows as a gap.
 * Drift gauges are labelled by feature; the model score's own drift uses feature="__score__".
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Report } from '../shared/report.js'
import type { RoundOutcome } from './contracts.js'
import { readMetric } from './alerts.js'
import { taskGauges } from '../shared/stats/tasks/index.js'

export const SCORE_FEATURE_LABEL = '__score__'

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

  const performance = [...PERFORMANCE_GAUGES, ...taskGauges()].map(([name, help, path]) => ({ gauge: new Gauge({ name, help, registers }), path }))
  const drift = DRIFT_GAUGES.map(([name, help, key]) => ({ gauge: new Gauge({ name, help, labelNames: ['feature'] as const, registers }), key }))
  const driftStatus = new Gauge({ name: 'fedmon_drift_status', help: 'Drift status per feature: 0 ok, 1 warn, 2 drift, -1 unknown (no reference)', labelNames: ['feature'] as const, registers })
  const reportSamples = new Gauge({ name: 'fedmon_report_samples', help: 'Samples in the latest report by type (all, labeled, positives, unlabeled)', labelNames: ['type'] as const, registers })
  const samplesTotal = new Counter({ name: 'fedmon_samples_total', help: 'Samples aggregated over all reports since the coordinator started', registers })
  const reportsTotal = new Counter({ name: 'fedmon_reports_total', help: 'Reports produced, by round kind', labelNames: ['kind'] as const, registers })
  const reportTimestamp = new Gauge({ name: 'fedmon_report_timestamp_seconds', help: 'Creation time of the latest report (Unix seconds)', registers })
  const reportWindowEnd = new Gauge({ name: 'fedmon_report_window_end_seconds', help: 'End of the latest report\'s window (Unix seconds)', registers })
  const reportAgents = new Gauge({ name: 'fedmon_report_agents', help: 'Agents in the latest report by role (invited, included, dropped; contributing: included sites that had records in the window)', labelNames: ['role'] as const, registers })
  const alertsFired = new Counter({ name: 'fedmon_alerts_fired_total', help: 'Alerts fired, by rule', labelNames: ['rule'] as const, registers })
  const alertsActive = new Gauge({ name: 'fedmon_alerts_active', help: 'Alerts in the latest report', registers })

  const roundDuration = new Histogram({
    name: 'fedmon_round_duration_seconds',
    help: 'Wall-clock duration of finished rounds',
    labelNames: ['kind', 'status'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
    registers
  })
  const roundsTotal = new Counter({ name: 'fedmon_rounds_total', help: 'Rounds finished, by status (done, failed, aborted)', labelNames: ['status'] as const, registers })
  const roundFailures = new Counter({ name: 'fedmon_round_failures_total', help: 'Rounds that failed or were aborted, and scheduled rounds that could not start, by reason code', labelNames: ['code'] as const, registers })
  const dropouts = new Counter({ name: 'fedmon_round_dropouts_total', help: 'Agents that dropped out of a round after being invited', registers })
  const lastRound = new Gauge({ name: 'fedmon_last_round_timestamp_seconds', help: 'Finish time of the latest round (Unix seconds)', registers })
  const agentsOnline = new Gauge({ name: 'fedmon_agents_online', help: 'Roster agents currently connected', registers })
  const agentsTotal = new Gauge({ name: 'fedmon_agents_total', help: 'Agents on the roster', registers })

  // A round may be reported more than once (running → done); count each id once.
  const observedRounds = new Set<string>()

  return {
    registry,
    observeReport (report) {
      for (const { gauge, path } of performance) gauge.set(readMetric(report, path) ?? Number.NaN)
      for (const { gauge } of drift) gauge.reset()
      driftStatus.reset()
      const entries: Array<[string, Report['drift']['features'][string]]> = Object.entries(report.drift?.features ?? {})
      if (report.drift?.score != null) entries.push([SCORE_FEATURE_LABEL, report.drift.score])
      for (const [feature, d] of entries) {
        for (const { gauge, key } of drift) {
          if (key in d) gauge.set({ feature }, leaf(d[key]))
        }
        driftStatus.set({ feature }, DRIFT_STATUS_CODE[d.status] ?? -1)
      }
      const s = report.samples
      reportSamples.set({ type: 'all' }, s.count)
      reportSamples.set({ type: 'labeled' }, s.labeled)
      if (s.positives !== null) reportSamples.set({ type: 'positives' }, s.positives) // binary only
      else reportSamples.remove({ type: 'positives' })
      reportSamples.set({ type: 'unlabeled' }, s.unlabeled)
      samplesTotal.inc(s.count)
      reportsTotal.inc({ kind: report.round.kind })
      reportTimestamp.set(Date.parse(report.createdAt) / 1000)
      reportWindowEnd.set(Date.parse(report.window.to) / 1000)
      reportAgents.set({ role: 'invited' }, report.agents.invited.length)
      reportAgents.set({ role: 'included' }, report.agents.included.length)
      reportAgents.set({ role: 'dropped' }, report.agents.dropped.length)
      // included sites that had records in the window (reports before layout v3 have no such count)
      if (report.agents.contributing !== undefined) reportAgents.set({ role: 'contributing' }, report.agents.contributing)
      else reportAgents.remove({ role: 'contributing' })
      for (const alert of report.alerts) alertsFired.inc({ rule: alert.rule })
      alertsActive.set(report.alerts.length)
    },
    observeRound (outcome) {
      if (outcome.status === 'running' || observedRounds.has(outcome.id)) return
      observedRounds.add(outcome.id)
      if (observedRounds.size > 10_000) observedRounds.delete(observedRounds.values().next().value as string)
      roundsTotal.inc({ status: outcome.status })
      if (outcome.failure !== null) roundFailures.inc({ code: outcome.failure.code })
      dropouts.inc(outcome.dropped.length)
      const start = Date.parse(outcome.startedAt)
      const end = outcome.finishedAt !== null ? Date.parse(outcome.finishedAt) : Number.NaN
      if (Number.isFinite(start) && Number.isFinite(end) && end >= start) {
        roundDuration.observe({ kind: outcome.kind, status: outcome.status }, (end - start) / 1000)
        lastRound.set(end / 1000)
      }
    },
    countFailure (code) { roundFailures.inc({ code }) },
    setAgentsOnline (n) { agentsOnline.set(n) },
    setAgentsTotal (n) { agentsTotal.set(n) },
    async render () {
      return { contentType: registry.contentType, body: await registry.metrics() }
    }
  }
}
