/**
 * The multiclass task (issue 12 §2) through `fedmon evaluate`'s pipeline (layout → DuckDB scan → report body):
 * one-vs-rest AUC (macro, weighted, per class) inside its certified bounds around scikit-learn's, the confusion
 * matrix, accuracy and F1 exactly, log loss and Brier within the stated fixed-point precision; the same vector
 * whichever form the probabilities take (JSONL object, CSV JSON text, CSV column per class, Parquet struct and
 * map); the label-dependent entries are what a refresh sums again; wrong columns fail loudly; spec mistakes name
 * the field.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindowDetailed, columnNamesFor } from '../../agent/scan.js'
import { checkWindowData } from '../../agent/data-check.js'
import { evaluateLocal } from '../../shared/stats/evaluate.js'
import { MonitorSpec, parseMonitorSpec, loadMonitorSpec } from '../../shared/stats/spec.js'
import { maxAgentsFor } from '../../shared/stats/layout.js'
import { buildTaskLayout, taskOfLayout, taskGauges } from '../../shared/stats/tasks/index.js'
import { type MulticlassLayout, multiclassCounterIndex } from '../../shared/stats/tasks/multiclass.js'
import { contributingSites } from '../../shared/stats/contributing.js'
import { mergeEntries, projectEntries } from '../../shared/stats/label-entries.js'
import { checkSpecPolicy } from '../../shared/secagg/policy.js'
import { renderReport } from '../../shared/stats/render.js'
import { METRIC_ALIASES, readMetric } from '../../coordinator/alerts.js'
import { createMetrics } from '../../coordinator/metrics.js'
import type { Bounded } from '../../shared/report.js'
import { oracleMissing } from '../fixtures/stats/oracle.js'
import { CLASSES, multiclassRecords, sklearnMulticlass, scoredLabelled, type MulticlassRecord } from '../fixtures/stats/multiclass.js'
import { repoRoot } from '../fixtures/repo.js'

const T0 = Date.UTC(2026, 0, 5)
const DAY = 86_400_000
const CURRENT = { from: T0 + 7 * DAY, to: T0 + 14 * DAY }
const REFERENCE = { from: T0, to: T0 + 7 * DAY }
const SPEC = {
  model: 'species',
  task: 'multiclass',
  classes: CLASSES,
  score: { bins: 1024, sums: { precisionBits: 20 } },
  features: { x: { type: 'numeric', edges: [2, 4, 6, 8] } }
}
let dir: string
const current = multiclassRecords(7, 3000, CURRENT.from, 7 * DAY, { shift: 2 })
const reference = multiclassRecords(5, 3000, REFERENCE.from, 7 * DAY)
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-multiclass-'))
  writeFileSync(join(dir, 'preds.jsonl'), [...reference, ...current].map(r => JSON.stringify(r)).join('\n') + '\n')
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(SPEC))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

const inside = (b: Bounded, want: number, what: string): void => {
  assert.ok(b.value !== null && b.lower !== null && b.upper !== null, `${what}: ${JSON.stringify(b)}`)
  assert.ok(b.lower <= want + 1e-12 && want <= b.upper + 1e-12, `${what}: scikit-learn ${want} outside [${b.lower}, ${b.upper}]`)
  assert.ok(Math.abs(b.value - want) <= b.upper - b.lower + 1e-12, `${what}: ${b.value} vs ${want}`)
}
const close = (got: unknown, want: number, slack: number, what: string): void => {
  assert.ok(typeof got === 'number' && Math.abs(got - want) <= slack, `${what}: ${String(got)} vs scikit-learn ${want} (±${slack})`)
}

test('multiclass metrics of `fedmon evaluate` equal scikit-learn on the pooled data within the stated precision', { skip: oracleMissing() ?? false }, async () => {
  const report = await evaluateLocal({ specFile: join(dir, 'spec.json'), source: { path: join(dir, '*.jsonl') }, window: CURRENT, referenceWindow: REFERENCE, scan: scanWindowDetailed })
  const want = sklearnMulticlass(current)
  const p = report.performance as Record<string, any>
  assert.equal(report.spec.task, 'multiclass')
  assert.equal(report.samples.positives, null)
  assert.equal(report.samples.labeled, current.filter(r => r.label !== null && CLASSES.includes(r.label)).length)
  assert.equal(p.counts.labeled, want.n)
  assert.deepEqual(p.confusion, { classes: CLASSES, matrix: want.confusion })
  assert.equal(p.accuracy, want.accuracy)
  close(p.macro_f1, want.macroF1, 1e-12, 'macro F1')
  close(p.weighted_f1, want.weightedF1, 1e-12, 'weighted F1')
  close(p.macro_precision, want.macroPrecision, 1e-12, 'macro precision')
  close(p.macro_recall, want.macroRecall, 1e-12, 'macro recall')
  inside(p.macro_auc, want.macroAuc, 'macro AUC')
  inside(p.weighted_auc, want.weightedAuc, 'weighted AUC')
  assert.deepEqual(p.auc, p.macro_auc)
  CLASSES.forEach((c, k) => {
    const f = p.per_class[c]
    inside(f.auc, want.perClassAuc[k], `AUC of ${c}`)
    assert.equal(f.support, want.perClass.support[k])
    close(f.precision, want.perClass.precision[k], 1e-12, `precision of ${c}`)
    close(f.recall, want.perClass.recall[k], 1e-12, `recall of ${c}`)
    close(f.f1, want.perClass.f1[k], 1e-12, `F1 of ${c}`)
  })
  // the fixed-point sums: each per-record term rounded to 2^-20, so each mean is within 2^-21
  assert.equal(p.sums.precisionBits, 20)
  close(p.log_loss, want.logLoss, 2 ** -21 + 1e-9, 'log loss')
  close(p.brier, want.brier, 2 ** -21 + 1e-9, 'Brier')
  close(p.ece, want.ece, 2 ** -19, 'ECE (top-label)')
  // drift: the predicted class as a categorical figure, each class's probability as a score; x shifted by 2
  const drift = report.drift as Record<string, any>
  assert.equal(drift.predicted.type, 'categorical')
  assert.equal(drift.predicted.status, 'drift')
  assert.deepEqual(Object.keys(drift.classScores), CLASSES)
  assert.ok(CLASSES.some(c => drift.classScores[c].status === 'drift'))
  assert.equal(drift.features.x.status, 'drift')
  // data quality: never silently zero
  const q = report.dataQuality as Record<string, any>
  assert.equal(q.scores.missing, current.filter(r => r.scores === null).length)
  assert.equal(q.scores.notNumeric, current.filter(r => r.scores !== null && typeof r.scores.cat !== 'number').length)
  assert.equal(q.label.notAClass, current.filter(r => r.label === 'fish').length)
  assert.equal(q.label.unlabeled, current.filter(r => r.label === null).length)
  // the terminal report: macro figures, per-class table, confusion matrix
  const text = renderReport(report, { color: false })
  for (const label of ['macro AUC', 'weighted AUC', 'accuracy', 'macro F1', 'log loss', 'confusion', 'bird', '(predicted class)', '(score dog)']) assert.ok(text.includes(label), label)
  // alerts and gauges read the short names
  for (const name of ['macro_auc', 'weighted_auc', 'accuracy', 'macro_f1', 'weighted_f1', 'macro_precision', 'macro_recall', 'log_loss', 'brier', 'ece']) {
    assert.equal(typeof readMetric(report, METRIC_ALIASES[name]), 'number', name)
  }
  assert.equal(readMetric(report, 'performance.per_class.dog.auc.value'), p.per_class.dog.auc.value)
  const gauges = new Set(taskGauges().map(([name]) => name))
  for (const name of ['fedmon_macro_auc', 'fedmon_weighted_auc', 'fedmon_accuracy', 'fedmon_macro_f1']) assert.ok(gauges.has(name), name)
  assert.ok([...gauges].every(name => !name.endsWith('_total')))
  // /metrics: the performance gauges, and drift series of the predicted class and of each class's probability
  const metrics = createMetrics({ defaultMetrics: false })
  metrics.observeReport(report)
  const exposition = (await metrics.render()).body
  assert.match(exposition, new RegExp(`^fedmon_macro_auc ${String(p.macro_auc.value).slice(0, 8)}`, 'm'))
  assert.match(exposition, /^fedmon_accuracy 0\.\d+/m)
  assert.match(exposition, /^fedmon_drift_status\{feature="__predicted_class__"\} 2$/m)
  assert.match(exposition, /^fedmon_drift_psi\{feature="__score_bird__"\} \d/m)
})

/** Writes the records in every form the probabilities may take; returns the file per form and its spec. */
async function writeForms (records: MulticlassRecord[]): Promise<Array<{ name: string, path: string, spec: unknown }>> {
  const jsonl = join(dir, 'forms.jsonl')
  writeFileSync(jsonl, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  const csvCell = (v: unknown): string => (v === null || v === undefined ? '' : `"${String(typeof v === 'object' ? JSON.stringify(v) : v).replace(/"/g, '""')}"`)
  const textCsv = join(dir, 'forms-text.csv')
  writeFileSync(textCsv, 'ts,scores,label,x\n' + records.map(r => [r.ts, r.scores, r.label, r.features.x].map(csvCell).join(',')).join('\n') + '\n')
  const columnsCsv = join(dir, 'forms-columns.csv')
  writeFileSync(columnsCsv, 'ts,p_cat,p_dog,p_bird,label,x\n' + records.map(r => [r.ts, r.scores?.cat, r.scores?.dog, r.scores?.bird, r.label, r.features.x].map(csvCell).join(',')).join('\n') + '\n')
  const struct = join(dir, 'forms-struct.parquet'); const map = join(dir, 'forms-map.parquet')
  const instance = await DuckDBInstance.create(':memory:'); const conn = await instance.connect()
  try {
    const src = `read_json('${jsonl}', format = 'newline_delimited', columns = {ts: 'BIGINT', scores: 'STRUCT(cat VARCHAR, dog DOUBLE, bird DOUBLE)', label: 'VARCHAR', features: 'STRUCT(x DOUBLE)'})`
    await conn.run(`COPY (SELECT ts, scores, label, features.x AS x FROM ${src}) TO '${struct}' (FORMAT parquet)`)
    await conn.run(`COPY (SELECT ts, CASE WHEN scores IS NOT NULL THEN MAP {'cat': scores.cat, 'dog': CAST(scores.dog AS VARCHAR), 'bird': CAST(scores.bird AS VARCHAR)} END AS scores, label, features.x AS x FROM ${src}) TO '${map}' (FORMAT parquet)`)
  } finally { conn.closeSync(); instance.closeSync() }
  const columnsSpec = { ...SPEC, scores: { columns: { cat: 'p_cat', dog: 'p_dog', bird: 'p_bird' } }, features: { x: { type: 'numeric', edges: [2, 4, 6, 8], column: 'x' } } }
  const csvSpec = { ...SPEC, features: { x: { type: 'numeric', edges: [2, 4, 6, 8], column: 'x' } } }
  return [
    { name: 'JSONL object', path: jsonl, spec: SPEC },
    { name: 'CSV JSON text', path: textCsv, spec: csvSpec },
    { name: 'CSV column per class', path: columnsCsv, spec: columnsSpec },
    { name: 'Parquet struct', path: struct, spec: csvSpec },
    { name: 'Parquet map', path: map, spec: csvSpec }
  ]
}

test('the probabilities read the same from a JSONL object, CSV JSON text, CSV columns, a Parquet struct and a Parquet map', async () => {
  const records = current.slice(0, 600)
  const forms = await writeForms(records)
  const vectors: Array<[string, Uint32Array]> = []
  for (const form of forms) {
    const spec = parseMonitorSpec(form.spec)
    const layout = buildTaskLayout(spec) as MulticlassLayout
    const { vector } = await scanWindowDetailed({ spec, layout, source: { path: form.path }, window: CURRENT })
    vectors.push([form.name, vector])
    assert.equal(vector[multiclassCounterIndex(layout, 'labeledScored')], scoredLabelled(records).length, form.name)
  }
  // the features' column mapping differs between the specs, not the layout: every vector is the same
  for (const [name, v] of vectors.slice(1)) assert.deepEqual(Array.from(v), Array.from(vectors[0][1]), `${name} vs ${vectors[0][0]}`)
})

test('labels change only the label-dependent entries (what a label refresh sums again)', async () => {
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec) as MulticlassLayout
  const sub = new Set(taskOfLayout(layout).labelDependentEntries(layout))
  const withLabels = join(dir, 'with.jsonl'); const without = join(dir, 'without.jsonl')
  writeFileSync(withLabels, current.map(r => JSON.stringify(r)).join('\n') + '\n')
  writeFileSync(without, current.map(r => JSON.stringify({ ...r, label: null })).join('\n') + '\n')
  const a = (await scanWindowDetailed({ spec, layout, source: { path: withLabels }, window: CURRENT })).vector
  const b = (await scanWindowDetailed({ spec, layout, source: { path: without }, window: CURRENT })).vector
  let differing = 0
  for (let i = 0; i < layout.length; i++) {
    if (a[i] !== b[i]) { differing++; assert.ok(sub.has(i), `entry ${i} changed with the labels but is not label-dependent`) }
  }
  assert.ok(differing > 100, String(differing))
  // a refresh's sub-vector merged into the unlabelled scan rebuilds the labelled scan exactly
  const entries = taskOfLayout(layout).labelDependentEntries(layout)
  assert.deepEqual(mergeEntries(b, entries, projectEntries(a, entries)), a)
  for (const c of ['recordsInWindow', 'scoresValid', 'scoresNotSummingToOne', 'sitesWithRecords'] as const) assert.ok(!sub.has(multiclassCounterIndex(layout, c)), c)
  for (let i = 0; i < layout.predicted.length; i++) assert.ok(!sub.has(layout.predicted.offset + i), 'the predicted class is label-independent')
  for (const c of ['labelClass', 'labeledScored'] as const) assert.ok(sub.has(multiclassCounterIndex(layout, c)), c)
  assert.equal(contributingSites(layout, a), 1)
  assert.equal(taskOfLayout(layout).recordsInWindow(layout, a), current.length)
})

test('a wrong scores column or wrong class names fail loudly; probabilities not summing to 1 are counted and said', async () => {
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec) as MulticlassLayout
  const file = join(dir, 'mistakes.jsonl')
  const check = async (records: unknown[], source: { path: string, columns?: Record<string, string> } = { path: file }): Promise<ReturnType<typeof checkWindowData>> => {
    writeFileSync(file, records.map(r => JSON.stringify(r)).join('\n') + '\n')
    const { vector, local } = await scanWindowDetailed({ spec, layout, source, window: CURRENT })
    return checkWindowData({ layout, vector, recordsWithoutTimestamp: local.recordsWithoutTimestamp, columns: columnNamesFor(spec, source), maxBadFraction: 0.2 } as Parameters<typeof checkWindowData>[0])
  }
  const base = current.slice(0, 200).filter(r => r.scores !== null && typeof r.scores.cat === 'number')
  // the probabilities under another name: every record's are missing
  const renamed = await check(base.map(r => ({ ts: r.ts, probs: r.scores, label: r.label })))
  assert.match(renamed.problem ?? '', /column `scores`: 100 % .* no usable probability .*missing/)
  // mapped by the site: fine again
  assert.equal((await check(base.map(r => ({ ts: r.ts, probs: r.scores, label: r.label })), { path: file, columns: { score: 'probs' } })).problem, null)
  // labels that are none of the classes (e.g. indexes instead of names)
  const indexes = await check(base.map(r => ({ ...r, label: r.label === null ? null : String(CLASSES.indexOf(r.label)) })))
  assert.match(indexes.problem ?? '', /column `label`: \d+ % .* none of the spec's 3 classes/)
  // logits instead of probabilities: outside [0, 1]
  const logits = await check(base.map(r => ({ ...r, scores: { cat: 2.5, dog: -1, bird: 0.3 } })))
  assert.match(logits.problem ?? '', /outside \[0, 1\]/)
  // probabilities that do not sum to 1: a warning, counted in the report
  const unnormalised = await check(base.map(r => ({ ...r, scores: { cat: 0.5, dog: 0.5, bird: 0.5 } })))
  assert.equal(unnormalised.problem, null)
  assert.ok(unnormalised.warnings.some(w => /do not sum to 1/.test(w)), unnormalised.warnings.join('; '))
  const { vector } = await scanWindowDetailed({ spec, layout, source: { path: file }, window: CURRENT })
  const body = taskOfLayout(layout).reportBody({ spec, layout, current: vector, reference: null })
  assert.equal((body.dataQuality as any).scores.notSummingToOne, base.length)
  assert.match(String((body.dataQuality as any).note), /do not sum to 1/)
  // an arg-max tie goes to the first class of `classes`
  assert.equal((body.performance as any).confusion.matrix.reduce((a: number, row: number[]) => a + row[0], 0), (body.performance as any).counts.labeled)
})

test('a site policy checks the multiclass columns, bins and sums', () => {
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec)
  const announce = { vectorLength: layout.length }
  assert.doesNotThrow(() => checkSpecPolicy({ allowedColumns: ['scores', 'label', 'x'] } as any, { spec, layout } as any, announce))
  assert.throws(() => checkSpecPolicy({ allowedColumns: ['label', 'x'] } as any, { spec, layout } as any, announce), /scores/)
  assert.throws(() => checkSpecPolicy({ maxScoreBins: 256 } as any, { spec, layout } as any, announce), /1024 bins/)
  assert.throws(() => checkSpecPolicy({ maxSumPrecisionBits: 12 } as any, { spec, layout } as any, announce), /precisionBits: 12/)
  // the features' moment sums follow binary's rules: legacy (unclipped) moments are refused under maxSumPrecisionBits
  const clipped = parseMonitorSpec({ ...SPEC, score: { bins: 1024, sums: { precisionBits: 8 } } })
  assert.throws(() => checkSpecPolicy({ maxSumPrecisionBits: 8 } as any, { spec: clipped, layout: buildTaskLayout(clipped) } as any, { vectorLength: buildTaskLayout(clipped).length }), /feature x: moments are unclipped/)
  assert.throws(() => checkSpecPolicy({ allowSums: false } as any, { spec, layout } as any, announce), /allowSums: false/)
})

test('spec mistakes are ConfigErrors naming the field', () => {
  const bad: Array<[unknown, string]> = [
    [{ model: 'm', task: 'multiclass' }, 'classes'],
    [{ model: 'm', classes: ['a', 'b'] }, 'classes'],
    [{ model: 'm', task: 'multiclass', classes: ['a'] }, 'classes'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'a'] }, 'classes'],
    [{ model: 'm', task: 'multiclass', classes: ['a', ' b'] }, 'classes[1]'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], scores: { columns: { a: 'pa' } } }, 'scores.columns'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], scores: { columns: { a: 'pa', b: 'pb', c: 'pc' } } }, 'scores.columns'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], score: { column: 'p' } }, 'score.column'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], threshold: 0.3 }, 'threshold'],
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], label: { positive: 'a' } }, 'label'],
    // under privacy.dp the loss sums must be coarse (test/unit/dp-tasks.test.ts): the legacy 24-bit ones are refused
    [{ model: 'm', task: 'multiclass', classes: ['a', 'b'], privacy: { dp: { epsilon: 1, delta: 1e-6 } } }, 'score.sums'],
    [{ model: 'm', task: 'multiclass', classes: Array.from({ length: 33 }, (_, i) => `c${i}`) }, 'classes']
  ]
  for (const [input, field] of bad) {
    assert.throws(() => parseMonitorSpec(input, 'spec.yaml'), (err: any) => err.name === 'ConfigError' && err.field === field && err.message.startsWith(`spec.yaml: ${field}:`), `${JSON.stringify(input)} → ${field}`)
  }
  // numbers are class names too (their text)
  assert.deepEqual(parseMonitorSpec({ model: 'm', task: 'multiclass', classes: [0, 1, 2] }).classes, ['0', '1', '2'])
})

test('the layout is sized so that no sum can wrap, and binary specs keep their layout', () => {
  const spec = parseMonitorSpec(SPEC)
  const layout = buildTaskLayout(spec) as MulticlassLayout
  // 12 counters, 3 classes × 3 rows × 1024 bins, K + 2 predicted, K² confusion, 2 × 10 calibration counts, x's
  // 7 buckets, and the limbs of every sum (log loss, Brier, 10 confidence sums: 3 limbs each; x's moments)
  const limbs = taskOfLayout(layout).fixedSums(layout).reduce((a, s) => a + s.limbs, 0)
  assert.equal(layout.length, 12 + 9216 + 5 + 9 + 20 + 7 + limbs)
  assert.equal(limbs - 36, 18)
  // 2^22 records × 36.05 × 2^20 needs 48 bits: 3 limbs; every entry of one agent ≤ 2^22, so ≥ 1023 agents
  assert.equal(layout.sums.kind === 'fixed' ? layout.sums.logLoss.limbs : 0, 3)
  assert.equal(maxAgentsFor(layout), Math.floor((2 ** 32 - 1) / 2 ** 22))
  const binary = MonitorSpec.parse({ model: 'm' })
  assert.equal(taskOfLayout(buildTaskLayout(binary)).name, 'binary')
})

test('examples/spec-multiclass.yaml validates', () => {
  const spec = loadMonitorSpec(join(repoRoot(), 'examples', 'spec-multiclass.yaml'))
  assert.equal(spec.task, 'multiclass')
  assert.ok((spec.classes ?? []).length >= 3)
})

