import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAlertEvaluator, AlertRuleSchema, WebhookNotifier, expandMetricPattern, readMetric, alertPayload } from '../../coordinator/alerts.js'
import { makeReport } from './product-fixtures.js'

const fixedNow = (): number => Date.UTC(2026, 0, 2, 1, 0)
const quiet = { info () {}, warn () {}, error () {} }

test('the rule schema takes exactly one condition and a dotted metric path', () => {
  assert.equal(AlertRuleSchema.safeParse({ metric: 'performance.auc.value', below: 0.7 }).success, true)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'drift.*.psi', above: 0.25 }).success, true)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', dropFromReference: 0.05, name: 'AUC drop' }).success, true)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc' }).success, false)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', below: 0.7, above: 0.9 }).success, false)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', below: 'low' }).success, false)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'a..b', below: 1 }).success, false)
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', bellow: 1 }).success, false)
  assert.throws(() => createAlertEvaluator([{ metric: 'auc' }]), /exactly one/)
})

test('metric paths: aliases, drift shortcuts, objects read through .value', () => {
  assert.deepEqual(expandMetricPattern('drift.*.psi'), [['drift', 'features', '*', 'psi'], ['drift', 'score', 'psi']])
  assert.deepEqual(expandMetricPattern('drift.age.psi'), [['drift', 'features', 'age', 'psi']])
  assert.deepEqual(expandMetricPattern('drift.features.*.js'), [['drift', 'features', '*', 'js']])
  const r = makeReport({ id: 'r', auc: 0.81 })
  assert.equal(readMetric(r, 'auc'), 0.81)
  assert.equal(readMetric(r, 'performance.auc'), 0.81)
  assert.equal(readMetric(r, 'drift.income.psi'), 0.3)
  assert.equal(readMetric(r, 'drift.income.ks'), 0.075)
  assert.equal(readMetric(r, 'samples'), 10_000)
  assert.equal(readMetric(r, 'performance.nope'), null)
})

test('below fires under the threshold only, and never on a missing value', () => {
  const ev = createAlertEvaluator([{ metric: 'performance.auc.value', below: 0.7 }], { now: fixedNow })
  assert.deepEqual(ev.evaluate(makeReport({ id: 'ok', auc: 0.75 }), null), [])
  assert.deepEqual(ev.evaluate(makeReport({ id: 'null', auc: null }), null), [])
  const [alert, ...rest] = ev.evaluate(makeReport({ id: 'bad', auc: 0.652 }), null)
  assert.equal(rest.length, 0)
  assert.deepEqual(alert, {
    rule: 'performance.auc.value below 0.7',
    metric: 'performance.auc.value',
    value: 0.652,
    threshold: 0.7,
    kind: 'below',
    message: 'performance.auc.value = 0.652 is below 0.7',
    firedAt: '2026-01-02T01:00:00.000Z'
  })
})

test('drift.*.psi above: one alert per drifting feature and for the score', () => {
  const ev = createAlertEvaluator([{ metric: 'drift.*.psi', above: 0.25 }], { now: fixedNow })
  const report = makeReport({ id: 'd', psi: { age: 0.05, income: 0.31, region: 0.4, tenure: null }, scorePsi: 0.5 })
  const alerts = ev.evaluate(report, null)
  assert.deepEqual(alerts.map(a => a.metric), ['drift.features.income.psi', 'drift.features.region.psi', 'drift.score.psi'])
  assert.ok(alerts.every(a => a.kind === 'above' && a.threshold === 0.25 && a.rule === 'drift.*.psi above 0.25'))
  assert.match(alerts[0].message, /drift\.features\.income\.psi = 0\.31 is above 0\.25/)
  // The explicit form matches features only.
  const features = createAlertEvaluator([{ metric: 'drift.features.*.psi', above: 0.25 }]).evaluate(report, null)
  assert.deepEqual(features.map(a => a.metric), ['drift.features.income.psi', 'drift.features.region.psi'])
})

test('dropFromReference compares with the same metric in the reference report', () => {
  const ev = createAlertEvaluator([{ metric: 'performance.auc.value', dropFromReference: 0.05, name: 'AUC degraded' } as never], { now: fixedNow })
  const reference = makeReport({ id: 'ref', kind: 'reference', auc: 0.82 })
  assert.deepEqual(ev.evaluate(makeReport({ id: 'c', auc: 0.79 }), reference), [], 'a 0.03 drop is within tolerance')
  assert.deepEqual(ev.evaluate(makeReport({ id: 'c', auc: 0.7 }), null), [], 'no reference, no comparison')
  const [alert] = ev.evaluate(makeReport({ id: 'c', auc: 0.74 }), reference)
  assert.equal(alert.kind, 'dropFromReference')
  assert.equal(alert.rule, 'AUC degraded')
  assert.equal(alert.threshold, 0.05)
  assert.equal(alert.value, 0.74)
  assert.match(alert.message, /dropped by 0\.08 from the reference \(0\.82 → 0\.74\), more than 0\.05/)
})

test('several rules evaluate independently', () => {
  const ev = createAlertEvaluator([
    { metric: 'auc', below: 0.9 },
    { metric: 'ece', above: 0.01 },
    { metric: 'samples.count', below: 100 }
  ])
  assert.deepEqual(ev.evaluate(makeReport({ id: 'x' }), null).map(a => a.metric), ['performance.auc.value', 'performance.ece'])
})

async function receiver (statuses: number[]): Promise<{ url: string, bodies: unknown[], hits: () => number, close: () => Promise<void> }> {
  const bodies: unknown[] = []
  let hits = 0
  const server = createServer((req: IncomingMessage, res) => {
    let text = ''
    req.on('data', (d: Buffer) => { text += d.toString() })
    req.on('end', () => {
      const status = statuses[hits] ?? 200
      hits++
      if (status === 200) bodies.push(JSON.parse(text))
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hook`, bodies, hits: () => hits, close: async () => await new Promise<void>(resolve => server.close(() => resolve())) }
}

test('webhook: delivered in the background, retried after a 500, payload carries the alerts', async (t) => {
  const rx = await receiver([500, 503])
  t.after(rx.close)
  const notifier = new WebhookNotifier({ urls: [rx.url], logger: quiet, baseDelayMs: 20, maxAttempts: 4 })
  const report = makeReport({ id: 'rep-1', auc: 0.6 })
  const alerts = createAlertEvaluator([{ metric: 'auc', below: 0.7 }]).evaluate(report, null)
  notifier.notify(report, alerts)
  assert.equal(rx.hits(), 0, 'notify returns before anything is sent')
  assert.equal(notifier.inFlight, 1)
  await notifier.drain()
  assert.equal(rx.hits(), 3)
  assert.equal(rx.bodies.length, 1)
  assert.deepEqual(rx.bodies[0], JSON.parse(JSON.stringify(alertPayload(report, alerts))))
  const body = rx.bodies[0] as { type: string, text: string, report: { id: string }, alerts: Array<{ metric: string }> }
  assert.equal(body.type, 'fedmon.alerts')
  assert.equal(body.report.id, 'rep-1')
  assert.equal(body.alerts[0].metric, 'performance.auc.value')
  assert.match(body.text, /1 alert on credit-risk/)
  await notifier.stop()
})

test('webhook: gives up after maxAttempts, does not retry a 4xx, nothing sent without alerts', async (t) => {
  const down = await receiver([500, 500, 500, 500])
  const reject = await receiver([400])
  t.after(down.close)
  t.after(reject.close)
  const errors: string[] = []
  const logger = { info () {}, warn () {}, error (_o: unknown, msg: string) { errors.push(msg) } }
  const notifier = new WebhookNotifier({ urls: [down.url, reject.url], logger: logger as never, baseDelayMs: 5, maxAttempts: 3 })
  const report = makeReport({ id: 'r' })
  notifier.notify(report, [])
  assert.equal(notifier.inFlight, 0)
  notifier.notify(report, createAlertEvaluator([{ metric: 'auc', below: 0.99 }]).evaluate(report, null))
  await notifier.drain()
  assert.equal(down.hits(), 3)
  assert.equal(reject.hits(), 1)
  assert.equal(errors.length, 2)
  await notifier.stop()
  assert.throws(() => new WebhookNotifier({ urls: ['ftp://x'], logger: quiet }), /invalid webhook URL/)
})

test('webhook: stop() aborts pending retries promptly', async (t) => {
  const down = await receiver([500, 500, 500, 500, 500])
  t.after(down.close)
  const notifier = new WebhookNotifier({ urls: [down.url], logger: quiet, baseDelayMs: 60_000, maxAttempts: 5 })
  const report = makeReport({ id: 'r' })
  notifier.notify(report, createAlertEvaluator([{ metric: 'auc', below: 0.99 }]).evaluate(report, null))
  while (down.hits() === 0) await new Promise(resolve => setTimeout(resolve, 5))
  await notifier.stop() // with a 60 s backoff pending, this only returns because stop() aborts the wait
  assert.equal(notifier.inFlight, 0)
})

test('minSamples: a realised performance metric over too few labels pages nobody (default 100 labels); drift and estimates count all records', () => {
  const few = makeReport({ id: 'few', auc: 0.6 })
  few.samples.labeled = 37
  const many = makeReport({ id: 'many', auc: 0.6 })
  many.samples.labeled = 5000
  const ev = createAlertEvaluator([{ metric: 'auc', below: 0.7 }], { now: fixedNow })
  assert.deepEqual(ev.evaluate(few, null), [], 'AUC over 37 labels: no alert by default')
  assert.equal(ev.evaluate(many, null).length, 1)
  // Explicit: lower (0 switches it off) or higher.
  assert.equal(createAlertEvaluator([{ metric: 'auc', below: 0.7, minSamples: 0 }]).evaluate(few, null).length, 1)
  assert.deepEqual(createAlertEvaluator([{ metric: 'auc', below: 0.7, minSamples: 10_000 }]).evaluate(many, null), [])
  // Drift rests on all records, not labels: it fires on a report with few labels.
  assert.ok(createAlertEvaluator([{ metric: 'drift.income.psi', above: 0.25 }]).evaluate(few, null).length > 0)
  // The estimate (CBPE) needs no labels at all.
  ;(few.performance as Record<string, unknown>).estimated = { auc: 0.55, labels: { coverage: 0.01 } }
  const est = createAlertEvaluator([{ metric: 'estimated_auc', below: 0.7 }]).evaluate(few, null)
  assert.equal(est.length, 1)
  assert.equal(est[0].metric, 'performance.estimated.auc')
  assert.equal(AlertRuleSchema.safeParse({ metric: 'auc', below: 0.7, minSamples: -1 }).success, false)
})
