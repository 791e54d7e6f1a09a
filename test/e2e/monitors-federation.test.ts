import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, writeJsonl, isoWindow, rng, T0, DAY, SAMPLE_SPEC, type SampleRecord } from './helpers/federation.js'
import { runCli, killAllDaemons, httpJson, waitFor } from './helpers/processes.js'
import { parseExposition } from '../unit/product-fixtures.js'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

/*
 * Issue 12 §1, many monitors in one federation: one coordinator and the same 5 agents serve two monitors with
 * different specs, schedules, windows and data (the second with its own column names). Two rounds, one per
 * monitor, overlap in time; each report counts exactly its monitor's records of its window and equals
 * `fedmon evaluate` on that monitor's pooled files. /metrics carries both monitors' series.
 */

const SITES = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5']
const CREDIT_SPEC = { ...SAMPLE_SPEC, model: 'credit-model' }
// Another model: fewer score bins, one feature read from a column of its own name.
const FRAUD_SPEC = {
  model: 'fraud-model',
  score: { column: 'score', bins: 50, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.3,
  features: { amount: { type: 'numeric', edges: [10, 50, 100, 500] } }
}
const FRAUD_COLUMNS = { ts: 't', score: 'p', label: 'y', features: { amount: 'amt' } }

interface FraudRecord { t: number, p: number, y: number | null, amt: number }
function fraudRecords (seed: number, rows: number): FraudRecord[] {
  const rand = rng(seed)
  return Array.from({ length: rows }, () => {
    const y = rand() < 0.2 ? 1 : 0
    const p = Math.min(1, Math.max(0, 0.25 * y + 0.6 * rand() + 0.1 * rand()))
    return { t: T0 + Math.floor(rand() * 14 * DAY), p, y: rand() < 0.05 ? null : y, amt: Math.round(rand() * 800) }
  })
}

const credit: Record<string, SampleRecord[]> = {}
const fraud: Record<string, FraudRecord[]> = {}
for (const [i, site] of SITES.entries()) {
  credit[site] = sampleRecords(700 + i, 120 + 15 * i)
  fraud[site] = fraudRecords(900 + i, 300 + 25 * i)
}

// Overlapping windows in time, of different monitors (different records): both are allowed.
const CREDIT_WINDOW = { from: T0 + 7 * DAY, to: T0 + 14 * DAY }
const FRAUD_WINDOW = { from: T0 + 7 * DAY, to: T0 + 9 * DAY }

let fed: Federation
let passed = 0
const TESTS = 1

before(async () => {
  fed = await Federation.create({
    sites: SITES.map(name => ({ name, records: credit[name] })),
    coordinatorExtra: {
      spec: undefined,
      monitors: [
        // Each schedule catches up its latest closed window once at start (no data there: it fails, and is not
        // retried); the next one closes days later, after this test.
        { name: 'credit', spec: 'spec.json', schedule: { every: '7d', maxCatchUp: 1, retry: false }, alerts: [{ metric: 'performance.auc.value', below: 0.01 }] },
        { name: 'fraud', spec: 'fraud-spec.json', schedule: { every: '14d', maxCatchUp: 1, retry: false } }
      ]
    },
    agentExtra: site => ({
      data: undefined,
      monitors: [
        { name: 'credit', data: { path: `data/${site}/*.jsonl` } },
        { name: 'fraud', data: { path: `fraud/${site}/*.jsonl`, columns: FRAUD_COLUMNS } }
      ]
    })
  })
  writeFileSync(join(fed.root, 'fraud-spec.json'), JSON.stringify(FRAUD_SPEC))
  writeFileSync(fed.specFile, JSON.stringify(CREDIT_SPEC))
  for (const site of SITES) {
    mkdirSync(join(fed.root, 'fraud', site), { recursive: true })
    writeJsonl(join(fed.root, 'fraud', site, 'events.jsonl'), fraud[site])
  }
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

const inWindow = (ts: number, w: { from: number, to: number }): boolean => ts >= w.from && ts < w.to

/** `fedmon evaluate` over all sites' files of one monitor, pooled in one file, read with that monitor's column mapping. */
async function evaluatePooled (name: string, spec: string, records: unknown[], window: { from: number, to: number }, columns?: unknown): Promise<Report> {
  const dir = join(fed.root, 'pooled', name)
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), records)
  const config = join(dir, 'agent.json')
  writeFileSync(config, JSON.stringify({ identity: 'x.key', coordinator: fed.coordinatorAddr, state: 'state', data: { path: 'all.jsonl', ...(columns !== undefined ? { columns } : {}) } }))
  const res = await runCli(['evaluate', '--spec', spec, '--config', config, '--window', isoWindow(window.from, window.to), '--json'])
  assert.equal(res.code, 0, `evaluate failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as Report
}

async function reportOf (outcome: RoundOutcome): Promise<Report> {
  assert.equal(outcome.status, 'done', `round ${outcome.id}: ${JSON.stringify(outcome.failure)} ${JSON.stringify(outcome.declined)}`)
  const { body } = await httpJson(`${fed.api}/v1/reports/${outcome.reportId as string}`)
  return body as Report
}

test('two monitors at the same 5 agents: overlapping rounds, each report exact, each monitor in the store, API, CLI and /metrics', async () => {
  const { body: listed } = await httpJson(`${fed.api}/v1/monitors`)
  const monitors = listed.monitors as Array<{ name: string, model: string, specHash: string, schedule: { every: string } | null, nextScheduledRound: string | null }>
  assert.deepEqual(monitors.map(m => [m.name, m.model, m.schedule?.every]), [['credit', 'credit-model', '7d'], ['fraud', 'fraud-model', '14d']])
  assert.notEqual(monitors[0].specHash, monitors[1].specHash)
  // Each monitor's scheduler ran its own catch-up window (its own window length) and let it go.
  const settled = await waitFor('both schedulers\' catch-up rounds to end', async () => {
    const { body } = await httpJson(`${fed.api}/v1/monitors`)
    const ms = body.monitors as Array<{ running: string | null, lastRound: { window: { from: string, to: string } } | null }>
    return ms.every(m => m.running === null && m.lastRound !== null) ? ms : null
  }, { timeoutMs: 30_000, intervalMs: 100 })
  const lengths = settled.map(m => Date.parse(m.lastRound!.window.to) - Date.parse(m.lastRound!.window.from))
  assert.deepEqual(lengths, [7 * DAY, 14 * DAY])

  // With several monitors a round must name one.
  const unnamed = await httpJson(`${fed.api}/v1/rounds`, { method: 'POST', body: { window: CREDIT_WINDOW } })
  assert.equal(unnamed.status, 422)
  assert.equal((unnamed.body.error as { code: string }).code, 'ERR_MONITOR_REQUIRED')

  // Both rounds started back to back: the second starts while the first runs.
  const creditRound = await fed.startRound(CREDIT_WINDOW, { monitor: 'credit' })
  const fraudRound = await fed.startRound(FRAUD_WINDOW, { monitor: 'fraud' })
  const [creditOutcome, fraudOutcome] = await Promise.all([fed.roundOutcome(creditRound), fed.roundOutcome(fraudRound)])
  assert.equal(creditOutcome.monitor, 'credit')
  assert.equal(fraudOutcome.monitor, 'fraud')
  assert.ok(Date.parse(fraudOutcome.startedAt) < Date.parse(creditOutcome.finishedAt as string) && Date.parse(creditOutcome.startedAt) < Date.parse(fraudOutcome.finishedAt as string),
    `the rounds overlap in time: credit ${creditOutcome.startedAt}..${creditOutcome.finishedAt}, fraud ${fraudOutcome.startedAt}..${fraudOutcome.finishedAt}`)

  const creditReport = await reportOf(creditOutcome)
  const fraudReport = await reportOf(fraudOutcome)
  assert.equal(creditReport.spec.model, 'credit-model')
  assert.equal(fraudReport.spec.model, 'fraud-model')
  assert.deepEqual(creditReport.agents.included.map(id => fed.siteOf(id)).sort(), SITES)
  assert.deepEqual(fraudReport.agents.included.map(id => fed.siteOf(id)).sort(), SITES)
  const creditCount = SITES.reduce((n, s) => n + credit[s].filter(r => inWindow(r.ts, CREDIT_WINDOW)).length, 0)
  const fraudCount = SITES.reduce((n, s) => n + fraud[s].filter(r => inWindow(r.t, FRAUD_WINDOW)).length, 0)
  assert.equal(creditReport.samples.count, creditCount, 'credit: exactly the records of its data in its window')
  assert.equal(fraudReport.samples.count, fraudCount, 'fraud: exactly the records of its data in its window')
  const wantCredit = await evaluatePooled('credit', fed.specFile, SITES.flatMap(s => credit[s]), CREDIT_WINDOW)
  const wantFraud = await evaluatePooled('fraud', join(fed.root, 'fraud-spec.json'), SITES.flatMap(s => fraud[s]), FRAUD_WINDOW, FRAUD_COLUMNS)
  assert.deepEqual(creditReport.samples, wantCredit.samples)
  assert.deepEqual(fraudReport.samples, wantFraud.samples)
  assert.deepEqual(creditReport.performance.auc, wantCredit.performance.auc)
  assert.deepEqual(fraudReport.performance.auc, wantFraud.performance.auc)
  assert.equal(creditReport.alerts.length, 0)

  // The store and the API keep them apart.
  const { body: fraudList } = await httpJson(`${fed.api}/v1/reports?monitor=fraud`)
  assert.deepEqual((fraudList.reports as Report[]).map(r => r.id), [fraudReport.id])
  const { body: all } = await httpJson(`${fed.api}/v1/reports`)
  assert.deepEqual((all.reports as Report[]).map(r => r.id).sort(), [creditReport.id, fraudReport.id].sort())
  assert.equal((await httpJson(`${fed.api}/v1/reports?monitor=nope`)).status, 404)

  // The CLI: report --monitor, history --monitor, status lists both monitors.
  const cli = await runCli(['report', '--monitor', 'fraud', '--json', '--api', fed.api])
  assert.equal(cli.code, 0, cli.stderr)
  assert.equal((JSON.parse(cli.stdout) as Report).id, fraudReport.id)
  const history = await runCli(['report', 'history', '--monitor', 'credit', '--metric', 'auc', '--json', '--api', fed.api])
  assert.equal(history.code, 0, history.stderr)
  assert.deepEqual((JSON.parse(history.stdout) as { points: Array<{ value: number }> }).points.map(p => p.value), [creditReport.performance.auc.value])
  const status = await runCli(['status', '--api', fed.api])
  assert.equal(status.code, 0, status.stderr)
  assert.match(status.stdout, /MONITOR\s+MODEL\s+SCHEDULE\s+LAST ROUND\s+NEXT ROUND/)
  assert.match(status.stdout, /credit\s+credit-model\s+every 7d\s+done/)
  assert.match(status.stdout, /fraud\s+fraud-model\s+every 14d\s+done/)

  // fedmon round run: --monitor names it; without it a deployment of several monitors asks for one.
  const nameless = await fed.runRound(isoWindow(T0 + 9 * DAY, T0 + 10 * DAY))
  assert.notEqual(nameless.code, 0)
  assert.match(nameless.stderr, /ERR_MONITOR_REQUIRED/)
  const NEXT = { from: T0 + 9 * DAY, to: T0 + 10 * DAY }
  const viaCli = await runCli(['round', 'run', '--window', isoWindow(NEXT.from, NEXT.to), '--monitor', 'fraud', '--wait', '--json', '--api', fed.api], { timeoutMs: 60_000 })
  assert.equal(viaCli.code, 0, viaCli.stderr)
  const next = JSON.parse(viaCli.stdout) as Report
  assert.equal(next.spec.model, 'fraud-model')
  assert.equal(next.samples.count, SITES.reduce((n, s) => n + fraud[s].filter(r => inWindow(r.t, NEXT)).length, 0))

  // /metrics: both monitors' series, each with its own figures.
  const metrics = await fetch(`${fed.api}/metrics`)
  const { samples } = parseExposition(await metrics.text())
  const value = (name: string, labels: Record<string, string>): number | undefined => samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  assert.equal(value('fedmon_report_samples', { monitor: 'credit', type: 'all' }), creditCount)
  assert.equal(value('fedmon_report_samples', { monitor: 'fraud', type: 'all' }), next.samples.count)
  assert.equal(value('fedmon_auc', { monitor: 'credit' }), creditReport.performance.auc.value)
  assert.equal(value('fedmon_auc', { monitor: 'fraud' }), next.performance.auc.value)
  assert.equal(value('fedmon_rounds_total', { monitor: 'fraud', status: 'done' }), 2)
  assert.equal(value('fedmon_rounds_total', { monitor: 'credit', status: 'failed' }), 1, 'the catch-up round with no data')
  assert.equal(value('fedmon_agents_online', { monitor: 'fraud' }), SITES.length)
  assert.ok(samples.filter(s => s.name.startsWith('fedmon_')).every(s => s.labels.monitor === 'credit' || s.labels.monitor === 'fraud'), 'every fedmon_* series carries its monitor')
  passed++
})
