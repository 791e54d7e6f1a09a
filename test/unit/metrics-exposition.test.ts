import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics, SCORE_FEATURE_LABEL } from '../../coordinator/metrics.js'
import { makeReport, makeRound, parseExposition } from './product-fixtures.js'

function value (samples: ReturnType<typeof parseExposition>['samples'], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

test('report gauges, drift per feature, rounds, agents and alerts in the exposition', async () => {
  const metrics = createMetrics()
  metrics.setAgentsTotal(5)
  metrics.setAgentsOnline(4)
  const report = makeReport({ id: 'r1', auc: 0.812, psi: { age: 0.05, income: 0.3, tenure: null }, scorePsi: 0.02 })
  report.alerts = [{ rule: 'drift.*.psi above 0.25', metric: 'drift.features.income.psi', value: 0.3, threshold: 0.25, kind: 'above', message: 'm', firedAt: report.createdAt }]
  metrics.observeReport(report)
  const round = makeRound('round-r1', { status: 'done', startedAt: '2026-01-02T00:15:00.000Z', finishedAt: '2026-01-02T00:15:02.500Z', dropped: ['d'] })
  metrics.observeRound(round)
  metrics.observeRound(round) // the same round reported again is counted once
  metrics.observeRound(makeRound('round-x', { status: 'failed', failure: { code: 'ERR_TOO_FEW_AGENTS', message: 'x' }, startedAt: '2026-01-02T01:00:00.000Z', finishedAt: '2026-01-02T01:00:00.300Z' }))
  metrics.observeRound(makeRound('round-y', { status: 'running' }))

  const { contentType, body } = await metrics.render()
  assert.match(contentType, /^text\/plain/)
  const { samples, types } = parseExposition(body)
  assert.equal(value(samples, 'fedmon_auc'), 0.812)
  assert.ok(Math.abs((value(samples, 'fedmon_auc_lower') as number) - 0.811) < 1e-12)
  assert.ok(Math.abs((value(samples, 'fedmon_auc_upper') as number) - 0.813) < 1e-12)
  assert.equal(value(samples, 'fedmon_pr_auc'), 0.6)
  assert.equal(value(samples, 'fedmon_log_loss'), 0.45)
  assert.equal(value(samples, 'fedmon_brier'), 0.15)
  assert.equal(value(samples, 'fedmon_ece'), 0.02)
  assert.equal(value(samples, 'fedmon_drift_psi', { feature: 'income' }), 0.3)
  assert.equal(value(samples, 'fedmon_drift_js', { feature: 'income' }), 0.15)
  assert.equal(value(samples, 'fedmon_drift_ks', { feature: 'income' }), 0.075)
  assert.ok(Number.isNaN(value(samples, 'fedmon_drift_psi', { feature: 'tenure' }) as number))
  assert.equal(value(samples, 'fedmon_drift_psi', { feature: SCORE_FEATURE_LABEL }), 0.02)
  assert.equal(value(samples, 'fedmon_drift_status', { feature: 'income' }), 2)
  assert.equal(value(samples, 'fedmon_drift_status', { feature: 'age' }), 0)
  assert.equal(value(samples, 'fedmon_drift_status', { feature: 'tenure' }), -1)
  assert.equal(value(samples, 'fedmon_report_samples', { type: 'all' }), 10_000)
  assert.equal(value(samples, 'fedmon_samples_total'), 10_000)
  assert.equal(value(samples, 'fedmon_agents_online'), 4)
  assert.equal(value(samples, 'fedmon_agents_total'), 5)
  assert.equal(value(samples, 'fedmon_alerts_fired_total', { rule: 'drift.*.psi above 0.25' }), 1)
  assert.equal(value(samples, 'fedmon_rounds_total', { status: 'done' }), 1)
  assert.equal(value(samples, 'fedmon_rounds_total', { status: 'failed' }), 1)
  assert.equal(value(samples, 'fedmon_round_failures_total', { code: 'ERR_TOO_FEW_AGENTS' }), 1)
  assert.equal(value(samples, 'fedmon_round_dropouts_total'), 1)
  assert.equal(value(samples, 'fedmon_round_duration_seconds_count', { kind: 'current', status: 'done' }), 1)
  assert.equal(value(samples, 'fedmon_round_duration_seconds_sum', { kind: 'current', status: 'done' }), 2.5)
  assert.equal(value(samples, 'fedmon_round_duration_seconds_bucket', { status: 'done', le: '2.5' }), 1)
  assert.equal(value(samples, 'fedmon_round_duration_seconds_bucket', { status: 'done', le: '1' }), 0)
  assert.equal(types.get('fedmon_round_duration_seconds'), 'histogram')
  assert.equal(types.get('fedmon_rounds_total'), 'counter')
  assert.equal(types.get('fedmon_auc'), 'gauge')
  assert.ok(samples.some(s => s.name === 'process_cpu_user_seconds_total'), 'default process metrics are there')

  // A later report with fewer features drops the stale series.
  metrics.observeReport(makeReport({ id: 'r2', psi: { age: 0.01 } }))
  const again = parseExposition((await metrics.render()).body).samples
  assert.equal(value(again, 'fedmon_drift_psi', { feature: 'income' }), undefined)
  assert.equal(value(again, 'fedmon_samples_total'), 20_000)
})

test('two metric sets do not share a registry', async () => {
  const a = createMetrics({ defaultMetrics: false })
  const b = createMetrics({ defaultMetrics: false })
  a.setAgentsOnline(3)
  b.setAgentsOnline(7)
  assert.equal(value(parseExposition((await a.render()).body).samples, 'fedmon_agents_online'), 3)
  assert.equal(value(parseExposition((await b.render()).body).samples, 'fedmon_agents_online'), 7)
})
