/**
 * Labels joined by prediction id in a real federation: a coordinator and 3 agents as child processes; site-3
 * keeps no labels in its prediction logs but a separate label source (data.labels, CSV, with provisional labels
 * later corrected and labels for ids it never predicted). The round's report equals `fedmon evaluate` on the
 * pooled files with the same labels joined (--labels), and the label figures stay in site-3's own log.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, writeJsonl, CURRENT_WINDOW, DAY, type SampleRecord } from './helpers/federation.js'
import { runCli, killAllDaemons } from './helpers/processes.js'
import type { Report } from '../../shared/report.js'

const SITES = ['site-1', 'site-2', 'site-3']
const records: Record<string, unknown[]> = {}
let labelCsv = ''
let fed: Federation
let ok = false

before(async () => {
  for (const [i, name] of SITES.entries()) records[name] = sampleRecords(300 + i, 120 + 30 * i)
  // site-3: every record has an id and no label in the log; its labels arrive in a file of their own
  const own = records['site-3'] as SampleRecord[]
  const lines: string[] = []
  records['site-3'] = own.map((r, i) => {
    const id = `s3-${i}`
    if (r.label !== null && i % 7 !== 0) { // some labels have not arrived
      if (i % 3 === 0) lines.push(`${id},${1 - r.label},${new Date(r.ts + DAY).toISOString()}`) // provisional, corrected below
      lines.push(`${id},${r.label},${new Date(r.ts + 2 * DAY).toISOString()}`)
    }
    return { ...r, id, label: null }
  })
  for (let k = 0; k < 20; k++) lines.push(`ghost-${k},1,${new Date(own[0].ts).toISOString()}`) // ids site-3 never predicted
  labelCsv = 'id,label,ts\n' + lines.join('\n') + '\n'

  fed = await Federation.create({ sites: SITES.map(name => ({ name, records: records[name] })), privacy: { minAgents: 3 } })
  mkdirSync(join(fed.root, 'labels', 'site-3'), { recursive: true })
  writeFileSync(join(fed.root, 'labels', 'site-3', 'outcomes.csv'), labelCsv)
  const config = JSON.parse(readFileSync(fed.agentConfig('site-3'), 'utf8'))
  config.data.labels = { path: 'labels/site-3/*.csv' } // relative to the config file
  writeFileSync(fed.agentConfig('site-3'), JSON.stringify(config, null, 1))
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  if (ok && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

async function evaluatePooled (withLabels: boolean): Promise<Report> {
  const dir = join(fed.root, 'pooled')
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), SITES.flatMap(s => records[s]))
  const args = ['evaluate', '--spec', fed.specFile, '--data', join(dir, '*.jsonl'), '--window', CURRENT_WINDOW, '--json']
  if (withLabels) args.push('--labels', join(fed.root, 'labels', 'site-3', '*.csv'))
  const res = await runCli(args)
  assert.equal(res.code, 0, `evaluate failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as Report
}

test('a round with one site\'s labels in a separate source equals `fedmon evaluate --labels` on the pooled files', async () => {
  const res = await fed.runRound(CURRENT_WINDOW)
  assert.equal(res.code, 0, `round failed: ${res.stderr}`)
  const round = JSON.parse(res.stdout) as Report
  assert.deepEqual([...round.agents.included].sort(), SITES.map(s => fed.ids[s]).sort())
  const want = await evaluatePooled(true)
  assert.deepEqual(round.samples, want.samples)
  assert.deepEqual(round.performance.auc, want.performance.auc)
  assert.deepEqual(round.performance.confusion, want.performance.confusion)
  for (const key of ['log_loss', 'brier', 'ece', 'pr_auc']) {
    const a = round.performance[key] as number | null; const b = want.performance[key] as number | null
    assert.ok(typeof a === 'number' && typeof b === 'number' && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${key}: ${a} vs ${b}`)
  }
  // the join is what this shows: without the label source, site-3's records would all be unlabeled
  const without = await evaluatePooled(false)
  assert.notDeepEqual(without.performance.confusion, want.performance.confusion)
  // unknown ids and the other label figures are site-3's own: in its log, never in the report
  assert.doesNotMatch(res.stdout, /unknownIds|ghost/)
  const log = readFileSync(join(fed.root, 'site-3.log'), 'utf8')
  assert.match(log, /labels joined by prediction id/)
  assert.match(log, /"unknownIds":20/)
  ok = true
})
