/**
 * `fedmon evaluate --labels GLOB` (and `--config` with data.labels) against scikit-learn: the labels live in a
 * separate CSV/Parquet source, several records per id (the latest ts wins), some for ids no prediction has; the
 * AUC of the report brackets roc_auc_score on the joined pooled data, and the confusion counts are exact.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { DuckDBInstance } from '@duckdb/node-api'
import { runCli } from './helpers/processes.js'
import { oracleMissing, python } from '../fixtures/stats/oracle.js'
import { mulberry32 } from '../../shared/prng.js'
import { sqlString } from '../../agent/scan-sql.js'

const T0 = Date.UTC(2025, 11, 1)
const DAY = 86_400_000
const WINDOW = `${new Date(T0 + 7 * DAY).toISOString()}..${new Date(T0 + 14 * DAY).toISOString()}`
const inWindow = (ts: number): boolean => ts >= T0 + 7 * DAY && ts < T0 + 14 * DAY

interface Pred { id: string | null, ts: number, score: number, label: number | null }
interface LabelRec { id: string, label: number, ts: number }

let dir: string
let preds: Pred[]
let labels: LabelRec[]
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-eval-labels-'))
  const r = mulberry32(41)
  preds = []
  labels = []
  for (let i = 0; i < 3000; i++) {
    const x = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
    const y = r() < 1 / (1 + Math.exp(-x)) ? 1 : 0
    const ts = T0 + Math.floor(r() * 14 * DAY)
    const id = r() < 0.05 ? null : `pred-${i}`
    // the log itself has a label for a few records only (the rest arrives later, in the label source)
    preds.push({ id, ts, score: 1 / (1 + Math.exp(-(x + r() - 0.5))), label: r() < 0.1 ? y : null })
    if (id !== null && r() < 0.8) {
      // a provisional label first, corrected later: the correction (latest ts) must win
      if (r() < 0.2) labels.push({ id, label: 1 - y, ts: ts + DAY })
      labels.push({ id, label: y, ts: ts + 3 * DAY })
    }
  }
  for (let k = 0; k < 50; k++) labels.push({ id: `other-${k}`, label: 1, ts: T0 }) // ids no prediction has
  mkdirSync(join(dir, 'logs')); mkdirSync(join(dir, 'labels'))
  writeFileSync(join(dir, 'logs', 'preds.jsonl'), preds.map(p => JSON.stringify(p)).join('\n') + '\n')
  writeFileSync(join(dir, 'labels', 'labels.csv'), 'prediction_id,outcome,ts\n' + labels.map(l => `${l.id},${l.label},${new Date(l.ts).toISOString()}`).join('\n') + '\n')
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  await conn.run(`COPY (SELECT * FROM read_csv(${sqlString(join(dir, 'labels', 'labels.csv'))}, header = true)) TO ${sqlString(join(dir, 'labels', 'labels.parquet'))} (FORMAT parquet)`)
  conn.closeSync(); db.closeSync()
  writeFileSync(join(dir, 'spec.yaml'), 'model: labels\nscore: {bins: 1000}\nthreshold: 0.5\n')
  writeFileSync(join(dir, 'agent.yaml'), toYaml({
    identity: 'x.key', coordinator: '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEfezYcu1DdRVJa6wWjFijY8iY7Pao4DvpQM1Rt4usHY9', state: 'state',
    data: { path: 'logs/*.jsonl', labels: { path: 'labels/*.parquet', columns: { id: 'prediction_id', label: 'outcome' } } }
  }))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** The joined pooled data, computed here: latest label per id, else the log's own label. */
function joined (): Array<{ s: number, y: number }> {
  const latest = new Map<string, LabelRec>()
  for (const l of labels) { const cur = latest.get(l.id); if (cur === undefined || l.ts > cur.ts) latest.set(l.id, l) }
  return preds.filter(p => inWindow(p.ts)).flatMap(p => {
    const y = p.id !== null ? latest.get(p.id)?.label ?? p.label : p.label
    return y === null ? [] : [{ s: p.score, y }]
  })
}

test('evaluate --labels (CSV) and --config with data.labels (Parquet) give scikit-learn\'s AUC on the joined data', async (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const data = joined()
  const truth = python(`
from sklearn.metrics import roc_auc_score, confusion_matrix
s = np.array(data['s']); y = np.array(data['y'])
tn, fp, fn, tp = confusion_matrix(y, (s >= 0.5).astype(int)).ravel()
print(json.dumps({'auc': roc_auc_score(y, s), 'tp': int(tp), 'fp': int(fp), 'tn': int(tn), 'fn': int(fn)}))
`, { s: data.map(d => d.s), y: data.map(d => d.y) })

  // --labels reads the default column names (id, label, ts); the Parquet file's renamed ones go through --config
  writeFileSync(join(dir, 'labels', 'default-names.jsonl'), labels.map(l => JSON.stringify({ id: l.id, label: l.label, ts: l.ts })).join('\n') + '\n')
  const viaFlag = await runCli(['evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, 'logs', '*.jsonl'), '--labels', join(dir, 'labels', '*.jsonl'), '--window', WINDOW, '--json'])
  assert.equal(viaFlag.code, 0, viaFlag.stderr)
  const viaConfig = await runCli(['evaluate', '--spec', join(dir, 'spec.yaml'), '--config', join(dir, 'agent.yaml'), '--window', WINDOW, '--json'])
  assert.equal(viaConfig.code, 0, viaConfig.stderr)
  for (const [what, res] of [['--labels', viaFlag], ['--config', viaConfig]] as const) {
    const perf = JSON.parse(res.stdout).performance
    assert.ok(perf.auc.lower <= truth.auc + 1e-12 && truth.auc <= perf.auc.upper + 1e-12, `${what}: AUC ${truth.auc} in [${perf.auc.lower}, ${perf.auc.upper}]`)
    assert.ok(perf.auc.upper - perf.auc.lower < 0.01, `${what}: the bound is tight`)
    assert.deepEqual(perf.confusion, { tp: truth.tp, fp: truth.fp, tn: truth.tn, fn: truth.fn }, what)
    // the label figures are for the operator: on stderr, never in the report
    assert.match(res.stderr, /labels: .*joined to \d+ of the window's \d+ predictions.*50 unknown ids/, what)
    assert.doesNotMatch(res.stdout, /unknownIds/)
  }
  // without the labels, the report has only the logs' few labels: the join is what makes the AUC
  const plain = await runCli(['evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, 'logs', '*.jsonl'), '--window', WINDOW, '--json'])
  assert.ok(JSON.parse(plain.stdout).performance.confusion.tp < truth.tp / 3)
})

test('evaluate --labels with --config is a usage error naming data.labels', async () => {
  const res = await runCli(['evaluate', '--spec', join(dir, 'spec.yaml'), '--config', join(dir, 'agent.yaml'), '--labels', 'x/*.csv', '--window', WINDOW])
  assert.notEqual(res.code, 0)
  assert.match(res.stderr, /--labels.*data\.labels/)
})
