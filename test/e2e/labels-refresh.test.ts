/**
 * Late labels end to end (issue 11 §2), a coordinator and 3 agents as child processes. Every prediction has an
 * id and no label in the logs; labels arrive in each site's own label file. The first round sees 40 % of them
 * (estimated metrics beside the realised ones); the label files grow; a label-refresh round at a declared age
 * re-reads only the label-dependent entries, over exactly the first round's sites, and its version of the
 * report equals `fedmon evaluate --labels` on the pooled files. With one site offline the refresh is refused
 * with ERR_REFRESH_SET_MISMATCH and nothing runs; once the site is back it succeeds.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, writeJsonl, CURRENT_WINDOW, SAMPLE_SPEC, T0, DAY, type SampleRecord } from './helpers/federation.js'
import { runCli, killAllDaemons, stopDaemon, httpJson, waitFor } from './helpers/processes.js'
import { startHookReceiver, type HookReceiver } from './helpers/webhooks.js'
import type { Report } from '../../shared/report.js'

const SITES = ['site-1', 'site-2', 'site-3']
const WINDOW_END = T0 + 14 * DAY
const SPEC = { ...SAMPLE_SPEC, labels: { refreshAfter: ['7d', '30d'] } }
const records: Record<string, SampleRecord[]> = {}
const early: Record<string, string[]> = {}
const late: Record<string, string[]> = {}
let fed: Federation
let ok = false
let hooks: HookReceiver

before(async () => {
  for (const [i, name] of SITES.entries()) {
    const own = sampleRecords(500 + i, 150 + 40 * i)
    early[name] = []
    late[name] = []
    records[name] = own.map((r, j) => {
      const id = `${name}-${j}`
      if (r.label !== null) {
        // 40 % arrive two days after the window closes, the rest twenty days after
        const line = `${id},${r.label},${new Date(WINDOW_END + (j % 5 < 2 ? 2 : 20) * DAY).toISOString()}`
        ;(j % 5 < 2 ? early : late)[name].push(line)
      }
      return { ...r, id, label: null } as SampleRecord
    })
  }
  hooks = await startHookReceiver()
  fed = await Federation.create({
    sites: SITES.map(name => ({ name, records: records[name] })),
    spec: SPEC,
    privacy: { minAgents: 3 },
    // fires while most labels are missing; re-evaluated on every refresh, resolved once they are in
    coordinatorExtra: { alerts: [{ metric: 'label_coverage', below: 0.6 }], webhooks: [hooks.url] }
  })
  for (const site of SITES) {
    mkdirSync(join(fed.root, 'labels', site), { recursive: true })
    writeFileSync(join(fed.root, 'labels', site, 'outcomes.csv'), 'id,label,ts\n' + early[site].join('\n') + '\n')
    const config = JSON.parse(readFileSync(fed.agentConfig(site), 'utf8'))
    config.data.labels = { path: `labels/${site}/*.csv` }
    writeFileSync(fed.agentConfig(site), JSON.stringify(config, null, 1))
  }
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  await hooks?.close()
  if (ok && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

async function refresh (age: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runCli(['round', 'run', '--window', CURRENT_WINDOW, '--refresh', age, '--wait', '--json', '--api', fed.api], { timeoutMs: 120_000 })
}

async function evaluatePooled (): Promise<Report> {
  const dir = join(fed.root, 'pooled')
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), SITES.flatMap(s => records[s]))
  const res = await runCli(['evaluate', '--spec', fed.specFile, '--data', join(dir, '*.jsonl'), '--window', CURRENT_WINDOW, '--labels', join(fed.root, 'labels', '*', '*.csv'), '--json'])
  assert.equal(res.code, 0, `evaluate failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as Report
}

test('first round with labels missing, then label refreshes: offline site refused, versions converge on the pooled evaluate', async () => {
  // 1. the first round: 40 % of the labels are in, the rest estimated
  const first = await fed.runRound(CURRENT_WINDOW)
  assert.equal(first.code, 0, first.stderr)
  const v1 = JSON.parse(first.stdout) as Report
  assert.equal(v1.version?.number, 1)
  assert.ok(v1.labels !== undefined && v1.labels.coverage !== null && v1.labels.coverage > 0.3 && v1.labels.coverage < 0.5, JSON.stringify(v1.labels))
  assert.equal((v1.performance.estimated as { method: string }).method, 'cbpe')
  assert.deepEqual(v1.alerts.map(a => a.metric), ['performance.estimated.labels.coverage'])

  // 2. the label files grow (the late 60 %, recorded 20 days after the window)
  for (const site of SITES) appendFileSync(join(fed.root, 'labels', site, 'outcomes.csv'), late[site].join('\n') + '\n')

  // 3. one site offline: the refresh is refused with the mismatch code, no round runs, nothing is revealed
  await stopDaemon(fed.daemons['site-3'])
  await fed.waitForOnlineExactly(['site-1', 'site-2'])
  const offline = await refresh('7d')
  assert.notEqual(offline.code, 0)
  assert.match(offline.stderr, /ERR_REFRESH_SET_MISMATCH/)
  assert.match(offline.stderr, /1 of the 3 sites included in the window's first round is offline/)
  // an undeclared age is refused by the coordinator before any agent is asked
  const undeclared = await refresh('14d')
  assert.notEqual(undeclared.code, 0)
  assert.match(undeclared.stderr, /ERR_REFRESH_AGE/)

  // 4. the site is back: the 7 d refresh runs (only labels recorded by window end + 7 d count: still the early 40 %)
  fed.startAgent('site-3')
  await fed.waitForOnline(SITES)
  const at7 = await refresh('7d')
  assert.equal(at7.code, 0, at7.stderr)
  const v2 = JSON.parse(at7.stdout) as Report
  assert.equal(v2.version?.number, 2)
  assert.equal(v2.version?.first, v1.id)
  assert.equal(v2.version?.refresh?.age, '7d')
  assert.equal(v2.labels?.labeled, v1.labels?.labeled)
  assert.equal(v2.labels?.maturedAt, new Date(WINDOW_END + 7 * DAY).toISOString())
  assert.deepEqual(v2.drift, v1.drift, 'label-independent figures are the first round\'s')

  // 5. the 30 d refresh counts every label: the realised metrics equal evaluate on the pooled files
  const at30 = await refresh('30d')
  assert.equal(at30.code, 0, at30.stderr)
  const v3 = JSON.parse(at30.stdout) as Report
  assert.equal(v3.version?.number, 3)
  const want = await evaluatePooled()
  assert.deepEqual(v3.samples, want.samples)
  assert.deepEqual(v3.performance.auc, want.performance.auc)
  assert.deepEqual(v3.performance.confusion, want.performance.confusion)
  assert.equal(v3.labels?.coverage, (want.performance.estimated as { labels: { coverage: number } }).labels.coverage)
  assert.ok(v3.labels!.coverage! > 0.85)
  assert.deepEqual(v3.agents.included, v1.agents.included)
  // alerts follow the latest version: the coverage alert fired on v1 (and v2), and v3 resolves it
  assert.deepEqual(v2.alerts.map(a => a.metric), ['performance.estimated.labels.coverage'])
  assert.deepEqual(v3.alerts, [])
  await waitFor('the resolved webhook', async () => hooks.bodies.some((b: { type: string }) => b.type === 'fedmon.alerts.resolved') ? true : null, { timeoutMs: 15_000 })
  assert.equal(hooks.bodies.filter((b: { type: string }) => b.type === 'fedmon.alerts.resolved').length, 1)

  // 6. versions: listed oldest first; the latest stands in for the window
  const versions = await runCli(['report', v1.id, '--versions', '--api', fed.api])
  assert.equal(versions.code, 0, versions.stderr)
  assert.match(versions.stdout, /3 versions/)
  assert.match(versions.stdout, /refresh 30d/)
  const latest = await httpJson(`${fed.api}/v1/reports/latest`)
  assert.equal((latest.body as Report).id, v3.id)
  const list = await httpJson(`${fed.api}/v1/reports`)
  assert.deepEqual((list.body.reports as Report[]).map(r => r.id), [v3.id])
  // the same age twice is refused
  const again = await refresh('30d')
  assert.notEqual(again.code, 0)
  assert.match(again.stderr, /ERR_REFRESH_DONE/)
  ok = true
})
