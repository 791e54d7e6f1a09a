/**
 * A 3-class model in a real federation: a coordinator and 3 agents as child processes, a round over SecAgg on
 * loopback. The round's confusion matrix, accuracy and F1 equal scikit-learn on the pooled records exactly, its
 * one-vs-rest AUCs hold scikit-learn's inside their certified bounds, log loss and Brier are within the stated
 * fixed-point precision; the report equals `fedmon evaluate` on the pooled files, and /metrics exports the short names.
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
import { CLASSES, multiclassRecords, sklearnMulticlass, type MulticlassRecord } from '../fixtures/stats/multiclass.js'

const SITES = ['site-1', 'site-2', 'site-3']
const SPEC = { model: 'species', task: 'multiclass', classes: CLASSES, score: { bins: 512, sums: { precisionBits: 20 } }, features: { x: { type: 'numeric', edges: [2, 4, 6, 8] } } }
const records: Record<string, MulticlassRecord[]> = {}
let fed: Federation
let ok = false

before(async () => {
  for (const [i, name] of SITES.entries()) {
    records[name] = [...multiclassRecords(10 + i, 150 + 40 * i, T0, 7 * DAY), ...multiclassRecords(20 + i, 300 + 60 * i, T0 + 7 * DAY, 7 * DAY, { shift: i })]
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

test('a multiclass round over 3 real agents equals scikit-learn and `fedmon evaluate` on the pooled data', { skip: oracleMissing() ?? false }, async () => {
  const res = await fed.runRound(CURRENT_WINDOW)
  assert.equal(res.code, 0, `round failed: ${res.stderr}`)
  const round = JSON.parse(res.stdout) as Report
  assert.equal(round.agents.included.length, 3)
  assert.equal(round.agents.contributing, 3)
  assert.equal(round.spec.task, 'multiclass')

  const [from, to] = CURRENT_WINDOW.split('..').map(s => Date.parse(s))
  const pooled = SITES.flatMap(s => records[s]).filter(r => r.ts >= from && r.ts < to)
  const want = sklearnMulticlass(pooled)
  const p = round.performance as Record<string, any>
  assert.equal(p.counts.labeled, want.n)
  assert.deepEqual(p.confusion.matrix, want.confusion)
  assert.equal(p.accuracy, want.accuracy)
  for (const [key, v] of [['macro_f1', want.macroF1], ['weighted_f1', want.weightedF1], ['macro_precision', want.macroPrecision], ['macro_recall', want.macroRecall]] as const) {
    assert.ok(Math.abs(p[key] - v) <= 1e-12, `${key}: ${p[key]} vs scikit-learn ${v}`)
  }
  const inside = (b: Bounded, v: number, what: string): void => {
    assert.ok(b.lower !== null && b.upper !== null && b.lower <= v + 1e-12 && v <= b.upper + 1e-12, `${what}: scikit-learn ${v} outside [${b.lower}, ${b.upper}]`)
  }
  inside(p.macro_auc, want.macroAuc, 'macro AUC'); inside(p.weighted_auc, want.weightedAuc, 'weighted AUC')
  CLASSES.forEach((c, k) => { inside(p.per_class[c].auc, want.perClassAuc[k], `AUC of ${c}`) })
  assert.ok(Math.abs(p.log_loss - want.logLoss) <= 2 ** -21 + 1e-9, `log loss ${p.log_loss} vs ${want.logLoss}`)
  assert.ok(Math.abs(p.brier - want.brier) <= 2 ** -21 + 1e-9, `Brier ${p.brier} vs ${want.brier}`)

  // the federation's sum is one site's pipeline on the pooled files: the same figures exactly
  const dir = join(fed.root, 'pooled')
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), SITES.flatMap(s => records[s]))
  const local = await runCli(['evaluate', '--spec', fed.specFile, '--data', join(dir, '*.jsonl'), '--window', CURRENT_WINDOW, '--json'])
  assert.equal(local.code, 0, local.stderr)
  const evaluated = JSON.parse(local.stdout) as Report
  assert.deepEqual(round.performance, evaluated.performance)
  assert.deepEqual(round.samples, evaluated.samples)

  // /metrics: the short names, with the monitor label
  const metrics = await (await fetch(`${fed.api}/metrics`)).text()
  for (const name of ['fedmon_macro_auc', 'fedmon_weighted_auc', 'fedmon_accuracy', 'fedmon_macro_f1', 'fedmon_log_loss']) {
    const line = metrics.split('\n').find(l => l.startsWith(`${name}{`))
    assert.ok(line !== undefined && /monitor="/.test(line) && Number.isFinite(Number(line.split(' ')[1])), `${name}: ${line}`)
  }
  // the terminal report through the API
  const shown = await runCli(['report', 'latest', '--api', fed.api])
  assert.equal(shown.code, 0, shown.stderr)
  for (const label of ['macro AUC', 'confusion', 'multiclass', 'bird']) assert.ok(shown.stdout.includes(label), label)
  ok = true
})
