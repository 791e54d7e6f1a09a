/**
 * Contributing sites with real processes (issue 12 §3): 4 agents whose policy contributes empty windows
 * (`policy.minRecords: 0`; the default 10 would decline them), 3 of them without a record in the first window.
 * The sum would say "4 included" while it is one site's histogram: the coordinator fails the round with
 * ERR_TOO_FEW_CONTRIBUTORS and stores no report. In a window where every site has records the report says
 * contributing 4.
 */
import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Federation, sampleRecords, T0, DAY } from './helpers/federation.js'
import { runCli, killAllDaemons, httpJson } from './helpers/processes.js'
import type { Report } from '../../shared/report.js'

const FIRST = { from: T0, to: T0 + 7 * DAY }
const SECOND = { from: T0 + 7 * DAY, to: T0 + 14 * DAY }
const SITES = ['site-1', 'site-2', 'site-3', 'site-4']

let fed: Federation | null = null
after(async () => { if (fed !== null) await fed.stopAll(); killAllDaemons() })

test('3 of 4 sites without a record in the window: ERR_TOO_FEW_CONTRIBUTORS, no report; all 4 with records: contributing 4', async () => {
  // site-1 has records in both weeks, the others only in the second
  const sites = SITES.map((name, i) => ({ name, records: sampleRecords(10 + i, 60, { weeks: 2 }).filter(r => i === 0 || r.ts >= SECOND.from) }))
  fed = await Federation.create({ sites, agentPolicy: { minRecords: 0 }, privacy: { minAgents: 3 } })
  assert.equal(fed.recordsIn('site-2', FIRST), 0)
  assert.ok(fed.recordsIn('site-1', FIRST) > 0)
  await fed.startCoordinator()
  for (const s of SITES) fed.startAgent(s)
  await fed.waitForOnline(SITES)

  const failed = await fed.roundOutcome(await fed.startRound(FIRST))
  assert.equal(failed.status, 'failed')
  assert.equal(failed.failure?.code, 'ERR_TOO_FEW_CONTRIBUTORS')
  assert.equal(failed.reportId, null)
  const listed = await runCli(['round', 'list', '--failed', '--json', '--api', fed.api])
  const { rounds } = JSON.parse(listed.stdout) as { rounds: Array<{ status: string, counts: { included: number }, failure: { code: string, message: string } | null }> }
  const refused = rounds.find(r => r.failure?.code === 'ERR_TOO_FEW_CONTRIBUTORS')
  assert.ok(refused !== undefined, listed.stdout)
  assert.equal(refused.status, 'failed')
  assert.equal(refused.counts.included, 4, 'every site took part: the sum, not the roster, was short')
  assert.match(refused.failure?.message ?? '', /only 1 of the 4 included sites had records in the window/)
  const reports = await httpJson(`${fed.api}/v1/reports`)
  assert.equal(reports.status, 200)
  assert.equal(JSON.stringify(reports.body).includes('"report-'), false, `no report stored: ${JSON.stringify(reports.body).slice(0, 200)}`)
  const metrics = await fetch(`${fed.api}/metrics`).then(async r => await r.text())
  assert.match(metrics, /fedmon_round_failures_total\{[^}]*code="ERR_TOO_FEW_CONTRIBUTORS"[^}]*\} 1/)

  const done = await fed.roundOutcome(await fed.startRound(SECOND))
  const report: Report = await fed.assertExactReport(done, SECOND, SITES)
  assert.equal(report.agents.contributing, 4)
  const shown = await runCli(['report', report.id, '--api', fed.api], { env: { NO_COLOR: '1' } })
  assert.match(shown.stdout, /agents +4 included \(4 with records in the window\)/)
})
