/**
 * Segments with real processes (issue 12 §3): a coordinator and 3 agents over libp2p, a segmented spec. The
 * per-cell AUC of the published cells is scikit-learn's on the pooled cell's records, inside its certified
 * bound; a cell present at one site only (`region=lonely`) and a cell with too few records (`region=tiny`) are
 * suppressed — in the report, in the API, in /metrics — with no figure anywhere. The CLI shows one cell with
 * --segment and its history.
 */
import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Federation } from './helpers/federation.js'
import { runCli, killAllDaemons, httpJson } from './helpers/processes.js'
import type { Report } from '../../shared/report.js'
import { SEGMENTED_SPEC, WINDOW, siteRecords, sklearnCellAuc } from '../fixtures/segments.js'
import { oracleMissing } from '../fixtures/stats/oracle.js'

const SITES = ['site-1', 'site-2', 'site-3']

let fed: Federation | null = null
after(async () => { if (fed !== null) await fed.stopAll(); killAllDaemons() })

test('segmented round over 3 agents: published cells match scikit-learn, a one-site cell and a small cell are suppressed everywhere', { skip: oracleMissing() ?? false }, async () => {
  const records = SITES.map((_, i) => siteRecords(i, 700))
  fed = await Federation.create({ sites: SITES.map((name, i) => ({ name, records: records[i] })), spec: SEGMENTED_SPEC, privacy: { minAgents: 3 } })
  await fed.startCoordinator()
  for (const s of SITES) fed.startAgent(s)
  await fed.waitForOnline(SITES)

  const done = await fed.roundOutcome(await fed.startRound(WINDOW))
  assert.equal(done.status, 'done', JSON.stringify(done.failure))
  const got = await httpJson(`${fed.api}/v1/reports/${done.reportId}`)
  assert.equal(got.status, 200)
  const report = got.body as Report
  assert.equal(report.agents.contributing, 3)
  const segments = report.segments ?? []
  assert.equal(segments.length, 5 + 3)
  for (const [label, reason] of [['lonely', /minCellSites/], ['tiny', /minCellRecords/]] as const) {
    const s = segments.find(x => x.cell.region === label)
    assert.ok(s !== undefined && s.suppressed, `${label} suppressed`)
    assert.deepEqual(Object.keys(s).sort(), ['cell', 'reason', 'suppressed'], 'the API carries no figure of a suppressed cell')
    assert.match(s.reason, reason)
  }
  const published = segments.filter(s => !s.suppressed)
  const want = sklearnCellAuc(records.flat(), published.map(s => { const [column, value] = Object.entries(s.cell)[0]; return { column: column as 'region' | 'channel', value } }))
  published.forEach((s, i) => {
    if (s.suppressed) return
    const auc = s.performance.auc
    assert.ok(auc.lower !== null && auc.upper !== null && auc.lower - 1e-12 <= want[i] && want[i] <= auc.upper + 1e-12, `${JSON.stringify(s.cell)}: scikit-learn ${want[i]} outside [${auc.lower}, ${auc.upper}]`)
  })

  const metrics = await fetch(`${fed.api}/metrics`).then(async r => await r.text())
  assert.match(metrics, /fedmon_segment_auc\{[^}]*segment="region=north"[^}]*\} 0\.\d+/)
  assert.match(metrics, /fedmon_segment_auc\{[^}]*monitor="[^"]+"[^}]*segment="channel=web"/)
  assert.doesNotMatch(metrics, /region=lonely|region=tiny/, 'no series for a suppressed cell')

  const shown = await runCli(['report', report.id, '--api', fed.api], { env: { NO_COLOR: '1' } })
  assert.match(shown.stdout, /Segments \(6 published, 2 suppressed; worst AUC first\)/)
  assert.match(shown.stdout, /suppressed: region=lonely \(fewer than 2 contributing sites/)
  const lines = shown.stdout.split('\n')
  const firstRow = lines[lines.findIndex(l => l.includes('segment') && l.includes('sites')) + 1]
  assert.match(firstRow, /region=south/, 'the worst AUC first')
  const north = await runCli(['report', report.id, '--segment', 'region=north', '--api', fed.api], { env: { NO_COLOR: '1' } })
  assert.match(north.stdout, /segment region=north \(3 sites with records in it\)/)
  assert.match(north.stdout, /AUC \(ROC\)/)
  const lonely = await runCli(['report', report.id, '--segment', 'region=lonely', '--json', '--api', fed.api])
  assert.deepEqual(Object.keys(JSON.parse(lonely.stdout)).sort(), ['cell', 'reason', 'suppressed'])
  const history = await runCli(['report', 'history', '--metric', 'auc', '--segment', 'region=north', '--json', '--api', fed.api])
  const h = JSON.parse(history.stdout) as { segment: string, points: Array<{ id: string, value: number | null }> }
  assert.equal(h.segment, 'region=north')
  const northCell = segments.find(s => s.cell.region === 'north')
  assert.equal(h.points.find(p => p.id === report.id)?.value, northCell !== undefined && !northCell.suppressed ? northCell.performance.auc.value : NaN)
})
