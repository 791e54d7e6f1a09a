import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics } from '../../coordinator/metrics.js'
import { makeReport, makeRound, parseExposition } from './product-fixtures.js'

// Issue 12 §1: every fedmon_* series carries a `monitor` label; one monitor's report never touches another's series.
test('each monitor\'s series under its own label; a new report replaces only its monitor\'s drift series', async () => {
  const metrics = createMetrics({ defaultMetrics: false })
  const credit = metrics.forMonitor('credit')
  const fraud = metrics.forMonitor('fraud')
  metrics.setAgentsTotal(5)
  metrics.setAgentsOnline(4)
  credit.observeReport(makeReport({ id: 'c1', auc: 0.8, psi: { age: 0.05, income: 0.3 } }))
  fraud.observeReport(makeReport({ id: 'f1', auc: 0.6, psi: { amount: 0.2 } }))
  credit.observeReport(makeReport({ id: 'c2', auc: 0.7, psi: { age: 0.1 } }))
  fraud.observeRound(makeRound('round-f1', { status: 'done', startedAt: '2026-01-02T00:00:00.000Z', finishedAt: '2026-01-02T00:00:01.000Z' }))
  const { samples } = parseExposition((await metrics.render()).body)
  const value = (name: string, labels: Record<string, string>): number | undefined => samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  assert.equal(value('fedmon_auc', { monitor: 'credit' }), 0.7)
  assert.equal(value('fedmon_auc', { monitor: 'fraud' }), 0.6)
  assert.equal(value('fedmon_drift_psi', { monitor: 'credit', feature: 'income' }), undefined, 'credit\'s next report has no income')
  assert.equal(value('fedmon_drift_psi', { monitor: 'fraud', feature: 'amount' }), 0.2, 'fraud\'s series stay')
  assert.equal(value('fedmon_rounds_total', { monitor: 'fraud', status: 'done' }), 1)
  assert.equal(value('fedmon_rounds_total', { monitor: 'credit', status: 'done' }), undefined)
  for (const monitor of ['credit', 'fraud']) {
    assert.equal(value('fedmon_agents_online', { monitor }), 4, 'the roster\'s figures under every monitor')
    assert.equal(value('fedmon_agents_total', { monitor }), 5)
  }
  assert.ok(samples.filter(s => s.name.startsWith('fedmon_')).every(s => s.labels.monitor === 'credit' || s.labels.monitor === 'fraud'))
})
