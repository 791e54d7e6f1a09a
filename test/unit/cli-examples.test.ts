// The example configs in examples/ validate against the real schemas, and the Grafana dashboard only
// queries metrics the coordinator actually exports.
import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { loadAgentConfig } from '../../shared/config/agent.js'
import { loadMonitorSpec } from '../../shared/stats/spec.js'
import { createMetrics } from '../../coordinator/metrics.js'
import { DEMO_SPEC } from '../../bin/demo/data.js'
import { makeReport, makeRound, parseExposition } from './product-fixtures.js'
import { repoRoot } from '../fixtures/repo.js'

const examples = join(repoRoot(), 'examples')

test('example coordinator, agent and spec configs validate', () => {
  const c = loadCoordinatorConfig(join(examples, 'coordinator.yaml'))
  assert.equal(c.agents.length, 3)
  // Shipped switched off (shown commented): a copied example neither schedules rounds nor posts to example.com.
  assert.equal(c.schedule, undefined)
  assert.deepEqual(c.webhooks, [])
  assert.ok(c.listen.every(a => a.startsWith('/ip4/127.0.0.1/')), c.listen.join())
  assert.equal(c.alerts.length, 4)
  const a = loadAgentConfig(join(examples, 'agent.yaml'))
  assert.equal(a.data.format, 'jsonl')
  const spec = loadMonitorSpec(join(examples, 'spec.yaml'))
  assert.deepEqual(Object.keys(spec.features), ['age', 'income', 'region', 'tenure'])
  // The docker image's spec is the demo's spec.
  assert.deepEqual(loadMonitorSpec(join(examples, 'docker', 'spec.yaml')), loadMonitorSpec(join(examples, 'spec.yaml')))
  assert.equal(spec.model, DEMO_SPEC.model)
})

test('the Grafana dashboard queries only metrics the coordinator exports', async () => {
  const dashboard = JSON.parse(readFileSync(join(examples, 'grafana', 'fedmon-dashboard.json'), 'utf8')) as { panels: Array<{ title: string, targets: Array<{ expr: string }> }> }
  const metrics = createMetrics({ defaultMetrics: false })
  const report = makeReport({ id: 'r', alerts: [{ rule: 'auc below 0.9', metric: 'performance.auc.value', value: 0.8, threshold: 0.9, kind: 'below', message: 'm', firedAt: '2026-01-02T00:15:00.000Z' }] })
  // one published segment cell, so the segment panels' series exist too
  report.segments = [{ cell: { region: 'north' }, suppressed: false, sites: 3, samples: { count: 100, labeled: 90, positives: 30, unlabeled: 10 }, performance: { auc: { value: 0.8, lower: 0.79, upper: 0.81 } } }]
  metrics.observeReport(report)
  metrics.observeRound(makeRound('round-r', { status: 'done', finishedAt: '2026-01-02T00:15:01.000Z' }))
  metrics.observeRound(makeRound('round-f', { status: 'failed', failure: { code: 'ERR_X', message: 'x' }, finishedAt: '2026-01-02T00:15:01.000Z' }))
  metrics.setAgentsOnline(1)
  metrics.setAgentsTotal(1)
  const exported = new Set(parseExposition((await metrics.render()).body).samples.map(s => s.name))
  const used = new Set<string>()
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      for (const m of target.expr.matchAll(/\bfedmon_[a-z_]+/g)) used.add(m[0])
    }
  }
  assert.ok(used.size >= 18, `dashboard uses ${used.size} metrics`)
  for (const name of used) assert.ok(exported.has(name), `${name} is used by the dashboard but not exported`)
})
