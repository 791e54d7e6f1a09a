/**
 * The DuckDB scan on real files against an independent reference: truth computed by scikit-learn / scipy on the
 * raw records (via /usr/bin/python3), data-quality counts known from the generator, and the additivity that
 * secure aggregation relies on (sum of partition vectors = vector of the pooled data, across formats).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { scanWindow, scanWindowDetailed } from '../../agent/scan.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, fixedSumsOf } from '../../shared/stats/layout.js'
import { readFixedSumExact } from '../../shared/stats/fixed-point.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { renderReport } from '../../shared/stats/render.js'
import { sumVectors } from '../../shared/stats/evaluate.js'
import { FedmonError } from '../../shared/errors.js'
import { oracleMissing, python } from '../fixtures/stats/oracle.js'
import { mulberry32 } from '../../shared/prng.js'

const T0 = Date.UTC(2025, 11, 1)
const WEEK = 7 * 86400_000
const REF = { from: T0, to: T0 + WEEK }
const CUR = { from: T0 + WEEK, to: T0 + 2 * WEEK }

const rng = mulberry32
function gauss (r: () => number): number { return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()) }

interface Rec { ts: unknown, score?: unknown, label?: unknown, x?: unknown, income?: unknown, colour?: unknown }

/** Records with ties, unlabeled and bad values of every kind; the second week drifts. */
function generate (n: number, seed: number): Rec[] {
  const r = rng(seed)
  const out: Rec[] = []
  for (let i = 0; i < n; i++) {
    const week = i % 2
    const tsMs = T0 + week * WEEK + Math.floor(r() * WEEK)
    const x = gauss(r) + week * 0.7
    const y = r() < 1 / (1 + Math.exp(-x)) ? 1 : 0
    let score: unknown = 1 / (1 + Math.exp(-(x + gauss(r))))
    if (r() < 0.3) score = Math.round((score as number) * 100) / 100 // ties
    const rec: Rec = { ts: r() < 0.2 ? new Date(tsMs).toISOString() : tsMs, score, label: r() < 0.1 ? null : (r() < 0.2 ? (y === 1) : y), x, income: Math.round(r() * 100000), colour: ['red', 'green', 'blue'][Math.floor(r() * 3)] }
    const bad = r()
    if (bad < 0.01) rec.score = 'abc'
    else if (bad < 0.02) rec.score = 1.5
    else if (bad < 0.03) delete rec.score
    else if (bad < 0.04) rec.label = 'maybe'
    else if (bad < 0.05) rec.x = 'n/a'
    else if (bad < 0.06) delete rec.x
    else if (bad < 0.07) rec.colour = 'purple'
    else if (bad < 0.08) rec.ts = 'not a time'
    out.push(rec)
  }
  return out
}

const specValue = {
  model: 'e2e',
  score: { bins: 1000 },
  threshold: 0.4,
  features: { x: { type: 'numeric' }, income: { type: 'numeric', edges: [20000, 40000, 80000] }, colour: { type: 'categorical', categories: ['red', 'green', 'blue'] } }
}
const spec = MonitorSpec.parse(specValue)
const layout = buildLayout(spec)
let dir: string
let records: Rec[]

const jsonl = (rs: Rec[]): string => rs.map(({ x, income, colour, ...top }) => JSON.stringify({ ...top, features: { ...(x !== undefined ? { x } : {}), income, colour } })).join('\n') + '\n'
const csvCell = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? `"${v.replace(/"/g, '""')}"` : String(v))
const csv = (rs: Rec[]): string => 'ts,score,label,x,income,colour\n' + rs.map(r => [r.ts, r.score, r.label, r.x, r.income, r.colour].map(csvCell).join(',')).join('\n') + '\n'

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-scan-'))
  records = generate(6000, 7)
  writeFileSync(join(dir, 'all.jsonl'), jsonl(records))
})

function tsOf (r: Rec): number | null {
  if (typeof r.ts === 'number') return r.ts
  const t = Date.parse(String(r.ts))
  return Number.isNaN(t) ? null : t
}
const inWindow = (w: { from: number, to: number }) => (r: Rec): boolean => { const t = tsOf(r); return t !== null && t >= w.from && t < w.to }
const validScore = (r: Rec): r is Rec & { score: number } => typeof r.score === 'number' && r.score >= 0 && r.score <= 1
const labelOf = (r: Rec): 0 | 1 | null => (r.label === 1 || r.label === true ? 1 : r.label === 0 || r.label === false ? 0 : null)

test('scan of JSONL: counts and data quality match the generator exactly', async () => {
  const { vector: v, local } = await scanWindowDetailed({ spec, layout, source: { path: join(dir, 'all.jsonl') }, window: CUR })
  const cur = records.filter(inWindow(CUR))
  const c = (name: Parameters<typeof counterIndex>[1]): number => v[counterIndex(layout, name)]
  assert.equal(c('recordsInWindow'), cur.length)
  // undated records: a local figure of the scan, not in the vector (layout v2)
  assert.equal(local.recordsWithoutTimestamp, records.filter(r => tsOf(r) === null).length)
  assert.equal(c('scoreValid'), cur.filter(validScore).length)
  assert.equal(c('scoreNotNumeric'), cur.filter(r => r.score === 'abc').length)
  assert.equal(c('scoreOutOfRange'), cur.filter(r => r.score === 1.5).length)
  assert.equal(c('scoreMissing'), cur.filter(r => r.score === undefined).length)
  assert.equal(c('labelInvalid'), cur.filter(r => r.label === 'maybe').length)
  assert.equal(c('labelUnlabeled'), cur.filter(r => r.label === null).length)
  assert.equal(c('labelPositive'), cur.filter(r => labelOf(r) === 1).length)
  const body = computeReportBody({ spec, layout, current: v, reference: null })
  const q = body.dataQuality as any
  assert.equal(q.features.x.invalid, cur.filter(r => r.x === 'n/a').length)
  assert.equal(q.features.x.missing, cur.filter(r => r.x === undefined).length)
  assert.equal(q.features.colour.unseenCategory, cur.filter(r => r.colour === 'purple').length)
  assert.ok(local.recordsWithoutTimestamp > 0 && c('scoreNotNumeric') > 0 && c('labelInvalid') > 0, 'the fixture has bad records of each kind')
  assert.ok(!('recordsWithoutTimestamp' in q), 'the summed report body has no undated count')
  assert.equal(body.drift.reference, null)
  assert.deepEqual(body.drift.features, {})
  assert.equal(body.drift.score, null)
  assert.match(body.drift.note ?? '', /no reference/)
})

test('global metrics match scikit-learn / scipy on the raw records (AUC and KS within their bounds)', async (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const [cv, rv] = await Promise.all([CUR, REF].map(async window => await scanWindow({ spec, layout, source: { path: join(dir, 'all.jsonl') }, window })))
  const body = computeReportBody({ spec, layout, current: cv, reference: { vector: rv, id: 'ref', window: null } })
  const perf = body.performance as any
  const cur = records.filter(inWindow(CUR)); const ref = records.filter(inWindow(REF))
  const scored = cur.filter(validScore).filter(r => labelOf(r) !== null)
  const finiteX = (rs: Rec[]): number[] => rs.map(r => r.x).filter((x): x is number => typeof x === 'number')
  const truth = python(`
from sklearn.metrics import roc_auc_score, average_precision_score, log_loss, brier_score_loss, precision_score, recall_score, f1_score, accuracy_score
from scipy.stats import ks_2samp
s = np.array(data['s']); y = np.array(data['y']); pred = (s >= data['thr']).astype(int)
bins = np.minimum(np.floor(s * 10).astype(int), 9)
ece = sum((bins == b).sum() / len(s) * abs(y[bins == b].mean() - s[bins == b].mean()) for b in range(10) if (bins == b).any())
print(json.dumps({'auc': roc_auc_score(y, s), 'ap': average_precision_score(y, s), 'll': log_loss(y, s), 'brier': brier_score_loss(y, s),
  'precision': precision_score(y, pred), 'recall': recall_score(y, pred), 'f1': f1_score(y, pred), 'accuracy': accuracy_score(y, pred),
  'ece': float(ece), 'ks_x': ks_2samp(data['xr'], data['xc']).statistic, 'ks_s': ks_2samp(data['sr'], data['sc']).statistic}))
`, { s: scored.map(r => r.score), y: scored.map(r => labelOf(r)), thr: spec.threshold, xr: finiteX(ref), xc: finiteX(cur), sr: ref.filter(validScore).map(r => r.score), sc: cur.filter(validScore).map(r => r.score) })

  assert.ok(perf.auc.lower <= truth.auc + 1e-12 && truth.auc <= perf.auc.upper + 1e-12, `AUC ${truth.auc} in [${perf.auc.lower}, ${perf.auc.upper}]`)
  assert.ok(perf.auc.upper - perf.auc.lower < 0.01)
  assert.ok(Math.abs(perf.log_loss - truth.ll) < 1e-6, `log loss ${perf.log_loss} vs ${truth.ll}`)
  assert.ok(Math.abs(perf.brier - truth.brier) < 1e-6, `brier ${perf.brier} vs ${truth.brier}`)
  assert.ok(Math.abs(perf.ece - truth.ece) < 1e-6, `ece ${perf.ece} vs ${truth.ece}`)
  for (const k of ['precision', 'recall', 'f1', 'accuracy']) assert.ok(Math.abs(perf[k] - truth[k]) < 1e-12, `${k} ${perf[k]} vs ${truth[k]}`)
  assert.ok(Math.abs(perf.pr_auc - truth.ap) < 0.01, `AP ${perf.pr_auc} vs ${truth.ap} (bins merge nearby scores)`)
  const x = body.drift.features.x
  assert.ok(x.ks !== undefined && x.ks.value !== null && x.ks.upper !== null)
  assert.ok(x.ks.value <= truth.ks_x + 1e-12 && truth.ks_x <= x.ks.upper + 1e-12, `KS ${truth.ks_x} in [${x.ks.value}, ${x.ks.upper}]`)
  const sd = body.drift.score
  assert.ok(sd?.ks?.value != null && sd.ks.upper != null && sd.ks.value <= truth.ks_s + 1e-12 && truth.ks_s <= sd.ks.upper + 1e-12)
  assert.equal(x.status, 'drift', 'x shifts by 0.7 std')
  assert.equal(body.drift.features.colour.status, 'ok')
  assert.ok(typeof (x as any).meanShift === 'number' && Math.abs((x as any).meanShift - 0.7) < 0.15)
})

test('sums at the spec\'s precision and clip match scikit-learn / numpy within the bounds the report states', async (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const B = 10 // score and loss sums at 2^-10: every per-record term is off by at most 2^-11, so is every mean of terms
  const CLIP: [number, number] = [-1, 2]
  const coarse = MonitorSpec.parse({
    ...specValue,
    score: { bins: 1000, sums: { precisionBits: B } },
    features: { ...specValue.features, x: { type: 'numeric', moments: { clip: CLIP, precisionBits: 8 } }, income: { ...specValue.features.income, moments: false } }
  })
  const cl = buildLayout(coarse)
  const [cv, rv] = await Promise.all([CUR, REF].map(async window => await scanWindow({ spec: coarse, layout: cl, source: { path: join(dir, 'all.jsonl') }, window })))
  const body = computeReportBody({ spec: coarse, layout: cl, current: cv, reference: { vector: rv, id: 'ref', window: null } })
  const perf = body.performance as any
  const cur = records.filter(inWindow(CUR)); const ref = records.filter(inWindow(REF))
  const scored = cur.filter(validScore).filter(r => labelOf(r) !== null)
  const finiteX = (rs: Rec[]): number[] => rs.map(r => r.x).filter((x): x is number => typeof x === 'number')
  const truth = python(`
from sklearn.metrics import log_loss, brier_score_loss
s = np.array(data['s']); y = np.array(data['y'])
bins = np.minimum(np.floor(s * 10).astype(int), 9)
ece = sum((bins == b).sum() / len(s) * abs(y[bins == b].mean() - s[bins == b].mean()) for b in range(10) if (bins == b).any())
xr = np.clip(np.array(data['xr']), *data['clip']); xc = np.clip(np.array(data['xc']), *data['clip'])
print(json.dumps({'ll': log_loss(y, s), 'brier': brier_score_loss(y, s), 'ece': float(ece), 'meanScore': float(np.mean(data['sc'])),
  'mr': float(xr.mean()), 'mc': float(xc.mean()), 'sr': float(xr.std()), 'sc': float(xc.std())}))
`, { s: scored.map(r => r.score), y: scored.map(r => labelOf(r)), xr: finiteX(ref), xc: finiteX(cur), sc: cur.filter(validScore).map(r => r.score), clip: CLIP })
  const termBound = 2 ** -(B + 1)
  assert.ok(Math.abs(perf.log_loss - truth.ll) <= termBound, `log loss ${perf.log_loss} vs ${truth.ll}`)
  assert.ok(Math.abs(perf.brier - truth.brier) <= termBound, `brier ${perf.brier} vs ${truth.brier}`)
  assert.ok(Math.abs(perf.ece - truth.ece) <= termBound, `ece ${perf.ece} vs ${truth.ece}`)
  assert.ok(Math.abs(perf.meanScore - truth.meanScore) <= termBound, `mean score ${perf.meanScore} vs ${truth.meanScore}`)
  assert.deepEqual(perf.sums, { state: 'fixed', precisionBits: B, step: 2 ** -B, note: perf.sums.note })
  // x: mean and std of the values clipped into [-1, 2], each within ±step/2 (step = 3/2^8)
  const x = body.drift.features.x as any
  const half = (CLIP[1] - CLIP[0]) / 2 ** 8 / 2
  assert.deepEqual(x.moments, { state: 'clipped', precisionBits: 8, step: 2 * half, clip: CLIP, note: x.moments.note })
  for (const [got, want] of [[x.mean.reference, truth.mr], [x.mean.current, truth.mc], [x.std.reference, truth.sr], [x.std.current, truth.sc]]) {
    assert.ok(Math.abs(got - want) <= half, `clipped moment ${got} vs ${want} (bound ${half})`)
  }
  assert.ok(Math.abs(x.meanShift - (truth.mc - truth.mr) / truth.sr) < 0.01, `mean shift ${x.meanShift}`)
  // income: moments off — said so, mean/std null (never 0), drift still computed (Wasserstein scaled by the histogram)
  const income = body.drift.features.income as any
  assert.equal(income.moments.state, 'off')
  assert.equal(income.meanShift, null); assert.equal(income.stdRatio, null); assert.deepEqual(income.mean, { reference: null, current: null })
  assert.match(income.wassersteinScale, /histogram/)
  assert.ok(typeof income.wasserstein === 'number' && typeof income.psi === 'number')
  assert.equal((body.dataQuality as any).sums.moments.income.state, 'off')

  // score.sums: false — no loss figure is computed; the report says which and why, the renderer says "off"
  const off = MonitorSpec.parse({ ...specValue, score: { bins: 1000, sums: false } })
  const ol = buildLayout(off)
  assert.ok(layout.sums.kind === 'fixed' && ol.sums.kind === 'off')
  const lossLimbs = [layout.sums.logLoss, layout.sums.brier, layout.sums.scoreSum, layout.sums.scoreSumSquares, ...layout.sums.calibration].reduce((a, fs) => a + fs.limbs, 0)
  assert.equal(ol.length, layout.length - lossLimbs, 'no entry for any score or loss sum')
  const [ocv, orv] = await Promise.all([CUR, REF].map(async window => await scanWindow({ spec: off, layout: ol, source: { path: join(dir, 'all.jsonl') }, window })))
  const counts = ol.score.offset + 3 * ol.score.bins // counters and score histogram: the same offsets in both layouts
  assert.deepEqual(Array.from(ocv.subarray(0, counts)), Array.from(cv.subarray(0, counts)))
  const ob = computeReportBody({ spec: off, layout: ol, current: ocv, reference: { vector: orv, id: 'ref', window: null } })
  const op = ob.performance as any
  for (const k of ['log_loss', 'brier', 'ece', 'meanScore']) assert.equal(op[k], null, k)
  assert.ok(op.reliability.every((b: any) => b.meanScore === null) && op.reliability.some((b: any) => b.count > 0))
  assert.equal(op.sums.state, 'off')
  assert.ok(op.sums.unavailable.includes('log_loss') && op.sums.unavailable.includes('drift.score.meanShift'))
  assert.equal(ob.drift.score?.meanShift, null)
  assert.equal((ob.drift.score as any).moments.state, 'off')
  assert.ok(typeof ob.drift.score?.wasserstein === 'number')
  assert.equal(op.auc.value, perf.auc.value, 'counts are the same whatever the sums')
  const report = {
    id: 'local', round: { id: 'local', kind: 'local' as const }, window: { from: '', to: '' }, spec: { model: 'e2e', hash: ol.specHash, vectorLength: ol.length },
    agents: { invited: [], included: [], dropped: [] }, ...ob, alerts: [], privacy: { threshold: null, minAgents: null }, createdAt: ''
  }
  const text = renderReport(report, { color: false })
  for (const label of ['log loss', 'Brier', 'ECE']) assert.match(text, new RegExp(`${label}\\s+n/a \\(score.sums off\\)`), label)
  assert.match(text, /sums: score and loss sums are off in the spec/)
})

test('sum of the vectors of partitions (JSONL, CSV, Parquet) equals the vector of the pooled data', async () => {
  const parts = [records.filter((_, i) => i % 3 === 0), records.filter((_, i) => i % 3 === 1), records.filter((_, i) => i % 3 === 2)]
  writeFileSync(join(dir, 'p0.jsonl'), jsonl(parts[0]))
  writeFileSync(join(dir, 'p1.csv'), csv(parts[1]))
  writeFileSync(join(dir, 'p2.csv'), csv(parts[2]))
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  await conn.run(`COPY (SELECT * FROM read_csv('${join(dir, 'p2.csv')}', all_varchar = true)) TO '${join(dir, 'p2.parquet')}' (FORMAT parquet)`)
  conn.closeSync(); db.closeSync()
  for (const window of [CUR, REF]) {
    const pooled = await scanWindow({ spec, layout, source: { path: join(dir, 'all.jsonl') }, window })
    const vs = await Promise.all(['p0.jsonl', 'p1.csv', 'p2.parquet'].map(async f => await scanWindow({ spec, layout, source: { path: join(dir, f) }, window })))
    const summed = sumVectors(vs, layout.length)
    // counts add entry by entry; limb groups add as the integers they stand for (summed limbs carry past 16 bits)
    const limbEntries = new Set<number>()
    let nonZero = 0
    for (const fs of fixedSumsOf(layout)) {
      for (let i = 0; i < fs.limbs; i++) limbEntries.add(fs.offset + i)
      assert.equal(readFixedSumExact(summed, fs), readFixedSumExact(pooled, fs), `fixed sum at ${fs.offset}`)
      if (readFixedSumExact(pooled, fs) > 0n) nonZero++
    }
    assert.ok(nonZero >= 10, 'the fixed sums are exercised')
    // the site indicator is per site, not per record: each partition with records counts once
    const site = counterIndex(layout, 'sitesWithRecords')
    assert.equal(summed[site], vs.filter(v => v[counterIndex(layout, 'recordsInWindow')] > 0).length)
    assert.equal(pooled[site], 1)
    const diff = summed.findIndex((x, i) => !limbEntries.has(i) && i !== site && x !== pooled[i])
    assert.equal(diff, -1, `entry ${diff} differs`)
    assert.ok(pooled[counterIndex(layout, 'recordsInWindow')] > 0)
  }
})

test('bad inputs: no matching file, unreadable file, record cap — clear errors, no crash', async () => {
  await assert.rejects(scanWindow({ spec, layout, source: { path: join(dir, 'nothing-*.jsonl') }, window: CUR }), (e: unknown) => e instanceof FedmonError && /no data file matches .*nothing-\*\.jsonl/.test(e.message))
  writeFileSync(join(dir, 'broken.parquet'), 'this is not parquet')
  await assert.rejects(scanWindow({ spec, layout, source: { path: join(dir, 'broken.parquet') }, window: CUR }), (e: unknown) => e instanceof FedmonError && e.code === 'ERR_SCAN_READ' && e.message.includes('broken.parquet'))
  const small = MonitorSpec.parse({ ...specValue, limits: { maxRecordsPerAgent: 100 } })
  await assert.rejects(scanWindow({ spec: small, layout: buildLayout(small), source: { path: join(dir, 'all.jsonl') }, window: CUR }), (e: unknown) => e instanceof FedmonError && e.code === 'ERR_SCAN_RECORD_CAP' && /maxRecordsPerAgent = 100/.test(e.message))
  const ac = new AbortController(); ac.abort()
  await assert.rejects(scanWindow({ spec, layout, source: { path: join(dir, 'all.jsonl') }, window: CUR, signal: ac.signal }))
})

test('JSONL whose late records contradict the inferred types: re-read as text, bad values counted', async () => {
  const lines: string[] = []
  for (let i = 0; i < 25000; i++) lines.push(JSON.stringify({ ts: CUR.from + i, score: (i % 100) / 100, label: i % 2, features: { x: i % 7, income: 1000, colour: 'red' } }))
  lines.push(JSON.stringify({ ts: CUR.from + 1, score: 'abc', label: 'maybe', features: { x: 'n/a', income: 1000, colour: 7 } }))
  lines.push(JSON.stringify({ ts: new Date(CUR.from + 2).toISOString(), score: 0.5, label: true, features: { x: { nested: 1 }, income: '2000', colour: 'blue' } }))
  writeFileSync(join(dir, 'late.jsonl'), lines.join('\n') + '\n')
  const v = await scanWindow({ spec, layout, source: { path: join(dir, 'late.jsonl') }, window: CUR })
  const c = (name: Parameters<typeof counterIndex>[1]): number => v[counterIndex(layout, name)]
  assert.equal(c('recordsInWindow'), 25002)
  assert.equal(c('scoreNotNumeric'), 1)
  assert.equal(c('labelInvalid'), 1)
  assert.equal(c('labelPositive'), 12501)
  const q = computeReportBody({ spec, layout, current: v, reference: null }).dataQuality as any
  assert.equal(q.features.x.invalid, 2)
  assert.equal(q.features.colour.unseenCategory, 1)
  // a feature whose key first appears after the inference sample is still read, not reported missing
  const lateSpec = MonitorSpec.parse({ model: 'late', features: { late: { type: 'categorical', categories: ['new key after the sample'] } } })
  const lateLayout = buildLayout(lateSpec)
  const clean = lines.slice(0, 25000)
  clean.push(JSON.stringify({ ts: CUR.from + 3, score: 0.5, label: 0, features: { x: 1, income: 3000, colour: 'blue', late: 'new key after the sample' } }))
  writeFileSync(join(dir, 'late-key.jsonl'), clean.join('\n') + '\n')
  const lv = await scanWindow({ spec: lateSpec, layout: lateLayout, source: { path: join(dir, 'late-key.jsonl') }, window: CUR })
  const late = lateLayout.features[0]
  assert.equal(lv[late.offset], 1)
  assert.equal(lv[late.offset + late.length - 1], 25000) // missing
})

test('column mapping, Parquet TIMESTAMP ts, logit bins; malformed JSONL lines are counted', async () => {
  writeFileSync(join(dir, 'mapped.csv'), 'when,p,y,feat_x,colour\n2025-12-09T10:00:00Z,0.9,yes,1.5,red\n2025-12-09T11:00:00Z,0.2,no,-3,blue\n2025-12-09T12:00:00Z,0.7,,2,green\n')
  const mappedSpec = MonitorSpec.parse({ ...specValue, score: { bins: 64, scale: 'logit' }, label: { positive: 'yes', negative: ['no'] } })
  const mappedLayout = buildLayout(mappedSpec)
  const source = { path: join(dir, 'mapped.csv'), columns: { ts: 'when', score: 'p', label: 'y', features: { x: 'feat_x' } } }
  const v = await scanWindow({ spec: mappedSpec, layout: mappedLayout, source, window: CUR })
  const c = (name: Parameters<typeof counterIndex>[1]): number => v[counterIndex(mappedLayout, name)]
  assert.deepEqual([c('recordsInWindow'), c('labelPositive'), c('labelNegative'), c('labelUnlabeled'), c('tp'), c('tn')], [3, 1, 1, 1, 1, 1])
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  await conn.run(`COPY (SELECT CAST(w AS TIMESTAMP) AS "when", CAST(p AS DOUBLE) AS p, y, CAST(feat_x AS DOUBLE) AS feat_x, colour FROM read_csv('${join(dir, 'mapped.csv')}', all_varchar = true)) TO '${join(dir, 'mapped.parquet')}' (FORMAT parquet)`.replace('CAST(w AS', 'CAST("when" AS'))
  conn.closeSync(); db.closeSync()
  const pv = await scanWindow({ spec: mappedSpec, layout: mappedLayout, source: { ...source, path: join(dir, 'mapped.parquet') }, window: CUR })
  assert.deepEqual(Array.from(pv), Array.from(v))
  // a torn line (a log being written) or a line that is not JSON: counted, never fatal
  writeFileSync(join(dir, 'torn.jsonl'), `{"ts": ${CUR.from}, "score": 0.5, "label": 1}\nnot json\n\n{"ts": ${CUR.from + 1}, "score": 0.25, "label": 0}\n{"ts": 2, "sco`)
  const torn = await scanWindowDetailed({ spec, layout, source: { path: join(dir, 'torn.jsonl') }, window: CUR })
  const tv = torn.vector
  assert.deepEqual([tv[counterIndex(layout, 'recordsInWindow')], torn.local.recordsWithoutTimestamp, tv[counterIndex(layout, 'scoreValid')]], [2, 2, 2])
})

test('feature moments are exact fixed-point sums, also for values whose squares need 128 bits', async () => {
  const xs = [2 ** 30, -(3 * 2 ** 25), 1e10, 5, 0.25]
  writeFileSync(join(dir, 'big-x.jsonl'), [...xs, 1e13].map((x, i) => JSON.stringify({ ts: CUR.from + i, score: 0.5, label: 1, features: { x } })).join('\n') + '\n')
  const v = await scanWindow({ spec, layout, source: { path: join(dir, 'big-x.jsonl') }, window: CUR })
  const f = layout.features.find(g => g.name === 'x')
  assert.ok(f !== undefined && f.type === 'numeric' && f.moments.kind === 'exact')
  const m = f.moments
  const clamped = [...xs, 1e12] // 1e13 is clamped to the range maximum for the moments
  const scale = 2n ** 16n
  const big = (x: number): bigint => BigInt(Math.round(x * 4)) // every value here is a multiple of 1/4
  const pos = clamped.filter(x => x > 0).reduce((a, x) => a + big(x) * scale / 4n, 0n)
  const neg = clamped.filter(x => x < 0).reduce((a, x) => a - big(x) * scale / 4n, 0n)
  const sq = xs.reduce((a, x) => a + big(x) * big(x) * scale / 16n, 0n) + 10n ** 24n * scale
  assert.equal(readFixedSumExact(v, m.sumPositive), pos)
  assert.equal(readFixedSumExact(v, m.sumNegative), neg)
  const err = readFixedSumExact(v, m.sumSquares) - sq
  assert.ok(err < 2n ** 46n && -err < 2n ** 46n, `square sum off by ${err}`) // 1e24 is not exact in a double (ulp 2^27, times 2^16); the rest is
  const q = computeReportBody({ spec, layout, current: v, reference: null }).dataQuality as any
  assert.equal(q.features.x.outOfRange, 1)
})

after(() => { rmSync(dir, { recursive: true, force: true }) })
