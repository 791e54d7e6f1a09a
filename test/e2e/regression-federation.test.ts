/**
 * A regression model in a real federation: a coordinator and 3 agents as child processes, a round over SecAgg
 * on loopback. The round's MAE, RMSE, R², bias and MAPE equal scikit-learn on the
 * pooled records within the precision the report states, equal `fedmon evaluate` on the pooled files exactly,
 * and /metrics exports them by their short names.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, writeJsonl, CURRENT_WINDOW, T0, DAY } from './helpers/federation.js'
import { runCli, killAllDaemons } from './helpers/processes.js'
import type { Report, Bounded } from '../../shared/report.js'
import { oracleMissing } from '../fixtures/stats/oracle.js'
import { regressionRecords, sklearnRegression, type RegressionRecord } from '../fixtures/stats/regression.js'

const SITES = ['site-1', 'site-2', 'site-3']
const SPEC = { model: 'price', task: 'regression', target: { clip: [-100, 400], precisionBits: 16 }, features: { x: { type: 'numeric', edges: [2, 4, 6, 8] } } }
const records: Record<string, RegressionRecord[]> = {}
let fed: Federation
let ok = false

before(async () => {
  for (const [i, name] of SITES.entries()) {
    records[name] = [...regressionRecords(10 + i, 150 + 40 * i, T0, 7 * DAY), ...regressionRecords(20 + i, 200 + 50 * i, T0 + 7 * DAY, 7 * DAY, { shift: 1 + i })]
  }
  fed = await Federation.create({ sites: SITES.map(name => ({ name, records: records[name] })), spec: SPEC, privacy: { minAgents: 3 } })
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  if (ok && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

test('a regression round over 3 real agents equals scikit-learn and `fedmon evaluate` on the pooled data', { skip: oracleMissing() ?? false }, async () => {
  const res = await fed.runRound(CURRENT_WINDOW)
  assert.equal(res.code, 0, `round failed: ${res.stderr}`)
  const round = JSON.parse(res.stdout) as Report
  assert.equal(round.agents.included.length, 3)
  assert.equal(round.spec.task, 'regression')

  const [from, to] = CURRENT_WINDOW.split('..').map(s => Date.parse(s))
  const pooled = SITES.flatMap(s => records[s]).filter(r => r.ts >= from && r.ts < to)
  const want = sklearnRegression(pooled)
  const p = round.performance as Record<string, any>
  const step = 500 / 2 ** 16
  assert.equal(round.samples.labeled, want.n)
  const within = (b: Bounded, v: number, slack: number, what: string): void => {
    assert.ok(b.value !== null && Math.abs(b.value - v) <= slack, `${what}: ${b.value} vs scikit-learn ${v}`)
    assert.ok((b.lower ?? -Infinity) <= v + 1e-12 && v <= (b.upper ?? Infinity) + 1e-12, `${what}: ${v} outside [${b.lower}, ${b.upper}]`)
  }
  within(p.mae, want.mae, step, 'MAE'); within(p.rmse, want.rmse, step, 'RMSE'); within(p.bias, want.bias, step, 'bias')
  within(p.r2, want.r2, 1e-3, 'R²'); within(p.mape, want.mape, 2 ** -17, 'MAPE')
  for (const [q, v] of Object.entries(want.absQuantiles)) within(p.abs_error_quantiles[q], v, 0.01 * Math.abs(v) + 1e-6, `|error| ${q}`)

  // the federation's sum is one site's pipeline on the pooled files: the same figures exactly
  const dir = join(fed.root, 'pooled')
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), SITES.flatMap(s => records[s]))
  const local = await runCli(['evaluate', '--spec', fed.specFile, '--data', join(dir, '*.jsonl'), '--window', CURRENT_WINDOW, '--json'])
  assert.equal(local.code, 0, local.stderr)
  const evaluated = JSON.parse(local.stdout) as Report
  for (const key of ['mae', 'rmse', 'r2', 'bias', 'mape', 'error_quantiles', 'abs_error_quantiles', 'counts']) assert.deepEqual(round.performance[key], evaluated.performance[key], key)
  assert.deepEqual(round.samples, evaluated.samples)

  // /metrics: the short names
  const metrics = await (await fetch(`${fed.api}/metrics`)).text()
  // every series carries the monitor label (a single-spec config's monitor is named after its model)
  for (const name of ['fedmon_mae', 'fedmon_rmse', 'fedmon_r2', 'fedmon_bias', 'fedmon_mape']) {
    const line = metrics.split('\n').find(l => l.startsWith(`${name}{`))
    assert.ok(line !== undefined && /monitor="/.test(line) && Number.isFinite(Number(line.split(' ')[1])), `${name}: ${line}`)
  }
  assert.match(metrics, new RegExp(`^fedmon_mae\\{monitor="[^"]+"\\} ${String(p.mae.value).slice(0, 6)}`, 'm'))
  // the terminal report through the API
  const shown = await runCli(['report', 'latest', '--api', fed.api])
  assert.equal(shown.code, 0, shown.stderr)
  for (const label of ['MAE', 'RMSE', 'R²', 'MAPE', 'regression']) assert.ok(shown.stdout.includes(label), label)
  ok = true
})
