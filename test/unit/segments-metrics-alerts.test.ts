/**
 * Segments (issue 12 §3) in /metrics and alerts: one fedmon_segment_* series per published cell, labelled
 * `segment="region=north"` (and the monitor); never a series for a suppressed cell; the overall series keep
 * their label sets. Alert rules with `segment: {region: north}` or `segments: "*"` fire per published cell.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMetrics } from '../../coordinator/metrics.js'
import { createAlertEvaluator, AlertRuleSchema } from '../../coordinator/alerts.js'
import type { Report } from '../../shared/report.js'
import { makeReport, parseExposition } from './product-fixtures.js'

function segmented (id: string, aucs: Record<string, number>): Report {
  const r = makeReport({ id })
  const cell = (region: string, auc: number): NonNullable<Report['segments']>[number] => ({
    cell: { region },
    suppressed: false,
    sites: 3,
    samples: { count: 500, labeled: 450, positives: 100, unlabeled: 50 },
    performance: { auc: { value: auc, lower: auc - 0.01, upper: auc + 0.01 }, precision: 0.5 }
  })
  r.segments = [
    ...Object.entries(aucs).map(([region, auc]) => cell(region, auc)),
    { cell: { region: 'lonely' }, suppressed: true, reason: 'fewer than 2 contributing sites (privacy.minCellSites)' }
  ]
  return r
}

test('/metrics: a fedmon_segment_* series per published cell, none for a suppressed one; replaced by the next report', async () => {
  const metrics = createMetrics({ defaultMetrics: false })
  const credit = metrics.forMonitor('credit')
  credit.observeReport(segmented('r1', { north: 0.81, south: 0.62 }))
  credit.observeReport(segmented('r2', { north: 0.8, other: 0.7 }))
  const { samples } = parseExposition((await metrics.render()).body)
  const value = (name: string, labels: Record<string, string>): number | undefined => samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  assert.equal(value('fedmon_segment_auc', { monitor: 'credit', segment: 'region=north' }), 0.8)
  assert.equal(value('fedmon_segment_auc_lower', { monitor: 'credit', segment: 'region=other' }), 0.69)
  assert.equal(value('fedmon_segment_sites', { monitor: 'credit', segment: 'region=north' }), 3)
  assert.equal(value('fedmon_segment_samples', { monitor: 'credit', segment: 'region=north', type: 'labeled' }), 450)
  assert.equal(value('fedmon_segment_auc', { segment: 'region=south' }), undefined, 'the next report replaced south\'s series')
  assert.ok(!samples.some(s => s.labels.segment === 'region=lonely'), 'no series at all for a suppressed cell')
  assert.ok(!samples.some(s => s.name === 'fedmon_auc' && s.labels.segment !== undefined), 'the overall series keep their labels')
  assert.equal(value('fedmon_auc', { monitor: 'credit' }), 0.8)
})

test('alert rules on one segment or on every segment fire per published cell', () => {
  const report = segmented('r1', { north: 0.81, south: 0.62, other: 0.6 })
  const one = createAlertEvaluator([{ metric: 'auc', below: 0.7, segment: { region: 'south' } }]).evaluate(report, null)
  assert.equal(one.length, 1)
  assert.deepEqual(one[0].segment, { region: 'south' })
  assert.match(one[0].message, /^segment region=south: performance\.auc\.value = 0\.62 is below 0\.7/)
  const all = createAlertEvaluator([{ metric: 'auc', below: 0.7, segments: '*' }]).evaluate(report, null)
  assert.deepEqual(all.map(a => a.segment?.region).sort(), ['other', 'south'])
  // the overall AUC (0.8) fires nothing for a segment rule; a plain rule reads only the overall figures
  assert.equal(createAlertEvaluator([{ metric: 'auc', below: 0.79 }]).evaluate(report, null).length, 0)
  assert.equal(createAlertEvaluator([{ metric: 'auc', below: 0.99, segment: { region: 'lonely' } }]).evaluate(report, null).length, 0, 'a suppressed cell never fires')
  // a drop from the reference's same cell
  const drop = createAlertEvaluator([{ metric: 'auc', dropFromReference: 0.1, segments: '*' }]).evaluate(report, segmented('ref', { north: 0.8, south: 0.8 }))
  assert.deepEqual(drop.map(a => a.segment), [{ region: 'south' }])
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', below: 1, segments: 'all' }).success, false)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', below: 1, segment: { region: 'a', channel: 'b' } }).success, false)
})
