/**
 * Segments (issue 12 §3), report: per-cell binary AUC against scikit-learn on the pooled records of each cell,
 * inside the certified bound, through `fedmon evaluate` (real DuckDB scan) and through a real SecAgg round over
 * three sites' real scans (the in-process round simulator); cells below privacy.minCellRecords or
 * privacy.minCellSites are reported as suppressed, with no figure at all.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindowDetailed } from '../../agent/scan.js'
import { evaluateLocal } from '../../shared/stats/evaluate.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildTaskLayout } from '../../shared/stats/tasks/index.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { simulateRound } from '../../shared/secagg/simulate.js'
import type { SegmentReport } from '../../shared/stats/segments.js'
import { oracleMissing } from '../fixtures/stats/oracle.js'
import { SEGMENTED_SPEC, WINDOW, siteRecords, sklearnCellAuc, inCell, type SegmentRecord as Rec } from '../fixtures/segments.js'

let dir: string
const sites = [0, 1, 2].map(s => siteRecords(s, 700))
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-segreport-'))
  sites.forEach((records, s) => writeFileSync(join(dir, `site${s}.jsonl`), records.map(r => JSON.stringify(r)).join('\n') + '\n'))
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(SEGMENTED_SPEC))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

function checkCells (segments: SegmentReport[] | undefined, records: Rec[], expectSuppressed: Record<string, RegExp>): void {
  assert.ok(segments !== undefined)
  const published = segments.filter(s => !s.suppressed)
  const keys = published.map(s => Object.entries(s.cell)[0] as ['region' | 'channel', string])
  const want = sklearnCellAuc(records, keys.map(([column, value]) => ({ column, value })))
  published.forEach((s, i) => {
    if (s.suppressed) return
    const auc = s.performance.auc
    assert.ok(auc.lower !== null && auc.upper !== null && auc.lower - 1e-12 <= want[i] && want[i] <= auc.upper + 1e-12, `${JSON.stringify(s.cell)}: scikit-learn ${want[i]} outside [${auc.lower}, ${auc.upper}]`)
    assert.ok(auc.upper - auc.lower < 0.02, 'a tight bound')
    assert.equal(s.samples.count, records.filter(r => inCell(r, keys[i][0], keys[i][1])).length)
    assert.equal('drift' in s, keys[i][0] === 'channel', 'drift only for the drift: true column')
  })
  for (const [label, reason] of Object.entries(expectSuppressed)) {
    const [column, value] = label.split('=')
    const s: SegmentReport | undefined = segments.find(x => x.cell[column] === value)
    assert.ok(s !== undefined && s.suppressed, `${label} suppressed`)
    assert.deepEqual(Object.keys(s).sort(), ['cell', 'reason', 'suppressed'], 'no figure of a suppressed cell')
    assert.match(s.reason, reason)
  }
  // south is scored worse: its AUC is below north's
  const auc = (v: string): number => (segments.find(x => x.cell.region === v) as { performance: { auc: { value: number } } }).performance.auc.value
  assert.ok(auc('south') < auc('north') - 0.05)
}

test('fedmon evaluate: per-cell AUC within its certified bound around scikit-learn on the cell\'s records', { skip: oracleMissing() ?? false }, async () => {
  const report = await evaluateLocal({ specFile: join(dir, 'spec.json'), source: { path: join(dir, 'site0.jsonl') }, window: WINDOW, referenceWindow: null, scan: scanWindowDetailed })
  assert.equal(report.segments?.length, 5 + 3)
  // one site's own view: the sites threshold does not apply, the records threshold does
  checkCells(report.segments, sites[0], { 'region=tiny': /fewer than 30 records \(privacy\.minCellRecords\)/ })
  assert.ok(report.segments.some(s => s.cell.region === 'lonely' && !s.suppressed))
})

test('a SecAgg round over three sites\' scans: per-cell AUC as scikit-learn on the pooled cell; a cell of one site, and a small cell, are suppressed', { skip: oracleMissing() ?? false }, async () => {
  const spec = MonitorSpec.parse(SEGMENTED_SPEC)
  const layout = buildTaskLayout(spec)
  const vectors = await Promise.all(sites.map(async (_, s) => (await scanWindowDetailed({ spec, layout, source: { path: join(dir, `site${s}.jsonl`) }, window: WINDOW })).vector))
  const round = await simulateRound({ agents: 3, dim: layout.length, maxEntry: layout.maxEntry, minAgents: 3, threshold: 2, inputs: i => vectors[i], seed: 7 })
  assert.equal(round.status, 'done')
  assert.ok(round.correct && round.result !== null)
  const body = computeReportBody({ spec, layout, current: round.result.sum, reference: null })
  checkCells(body.segments, sites.flat(), {
    'region=tiny': /fewer than 30 records/,
    'region=lonely': /fewer than 2 contributing sites \(privacy\.minCellSites\)/
  })
  const north = body.segments!.find(s => s.cell.region === 'north')
  assert.ok(north !== undefined && !north.suppressed && north.sites === 3)
})

test('a cell\'s view of a report carries the cell\'s own label coverage, not the report\'s', async () => {
  const { cellReport } = await import('../../shared/stats/segments.js')
  const report = { samples: { count: 1000, labeled: 900, positives: 300, unlabeled: 100 }, labels: { coverage: 0.9, labeled: 900, unlabeled: 100, maturedAt: '2026-01-01T00:00:00.000Z' }, alerts: [], performance: {}, drift: {}, dataQuality: {} } as unknown as import('../../shared/report.js').Report
  const cell = { cell: { region: 'north' }, suppressed: false as const, sites: 3, samples: { count: 200, labeled: 50, positives: 10, unlabeled: 150 }, performance: { auc: { value: 0.7, lower: 0.69, upper: 0.71 } } }
  const view = cellReport(report, cell)
  assert.deepEqual(view.labels, { coverage: 0.25, labeled: 50, unlabeled: 150, maturedAt: '2026-01-01T00:00:00.000Z' })
  assert.equal(view.samples.count, 200)
})
