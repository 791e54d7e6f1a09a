// The newcomer path end to end, as child processes of the built CLI on loopback: keygen, configs, daemons,
// `round run --reference --wait`, `round run --wait`, `report --json`, `report history`, `status`,
// `reference show/set`, /metrics scraped and parsed, an alert POSTed to a local webhook receiver, and
// the one-line errors (wrong token, unknown report id, malformed config, missing data path).
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, writeJsonl, REFERENCE_WINDOW, CURRENT_WINDOW } from './helpers/federation.js'
import { runCli, killAllDaemons, stopDaemon, waitFor, type CliResult } from './helpers/processes.js'
import { ApiClient } from '../../shared/api-client.js'
import { parseExposition, sampleValue } from '../unit/product-fixtures.js'
import type { Report } from '../../shared/report.js'

const SITES = ['north', 'south', 'east', 'west', 'central']
/** The scheduled rounds of the last test run over 3-second windows: narrower than the agents' default minimum. */
const AGENT_POLICY = { minWindowMs: 3000 }
const TOKEN = 'newcomer-token-7d1c0e5b9a3f'

let fed: Federation
let tokenFile: string
let client: ApiClient
let receiver: Server
const webhookBodies: Array<{ type: string, report: { id: string }, alerts: Array<{ metric: string }> }> = []
let webhookHits = 0

before(async () => {
  // A webhook receiver that fails the first delivery, so the retry path is exercised for real.
  receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      webhookHits++
      if (webhookHits === 1) { res.writeHead(500).end(); return }
      webhookBodies.push(JSON.parse(body))
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`

  fed = await Federation.create({ sites: SITES.map((name, i) => ({ name, records: sampleRecords(500 + i, 200 + 40 * i) })), agentPolicy: AGENT_POLICY })
  tokenFile = join(fed.root, 'api.token')
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
  // The operator's additions to the coordinator config: a token, alert rules and a webhook.
  const config = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8')) as Record<string, any>
  config.api = { ...config.api, tokenFile: 'api.token' }
  config.alerts = [
    { metric: 'performance.auc.value', below: 0.99 },
    { metric: 'drift.*.psi', above: 0.1 }
  ]
  config.webhooks = [hook]
  writeFileSync(fed.coordinatorConfig, JSON.stringify(config, null, 1))

  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  client = new ApiClient({ baseUrl: fed.api, token: TOKEN })
  await waitFor('5 agents online', async () => (await client.agents()).filter(a => a.online).length === SITES.length, { timeoutMs: 30_000 })
})

after(async () => {
  await killAllDaemons()
  await new Promise<void>(resolve => receiver.close(() => resolve()))
})

const auth = (): string[] => ['--api', fed.api, '--token-file', tokenFile]

function assertOneLineError (r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `non-zero exit expected; stdout: ${r.stdout}`)
  const lines = r.stderr.trim().split('\n').filter(l => !l.startsWith('{')) // pino lines are JSON
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`)
  assert.match(lines[0], pattern)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
}

let reference: Report
let current: Report

test('round run --reference --wait, then round run --wait: two reports', async () => {
  const ref = await runCli(['round', 'run', '--window', REFERENCE_WINDOW, '--reference', '--wait', '--json', ...auth()])
  assert.equal(ref.code, 0, ref.stderr)
  reference = JSON.parse(ref.stdout) as Report
  assert.equal(reference.round.kind, 'reference')
  assert.equal(reference.agents.included.length, SITES.length)

  const cur = await runCli(['round', 'run', '--window', CURRENT_WINDOW, '--wait', '--json', ...auth()])
  assert.equal(cur.code, 0, cur.stderr)
  current = JSON.parse(cur.stdout) as Report
  assert.equal(current.round.kind, 'current')
  assert.equal(current.drift.reference?.id, reference.id)
  assert.ok(current.samples.count > 0)
  assert.ok(current.alerts.some(a => a.metric === 'performance.auc.value' && a.kind === 'below'), JSON.stringify(current.alerts))
  assert.ok(current.alerts.some(a => a.metric === 'drift.features.x.psi'), 'the shifted feature x drifts')
})

test('report --json and report (text) show the latest report', async () => {
  const json = await runCli(['report', '--json', ...auth()])
  assert.equal(json.code, 0, json.stderr)
  assert.deepEqual(JSON.parse(json.stdout), current)
  const byId = await runCli(['report', reference.id, ...auth()], { env: { NO_COLOR: '1' } })
  assert.equal(byId.code, 0, byId.stderr)
  assert.match(byId.stdout, new RegExp(reference.id))
  assert.match(byId.stdout, /e2e-model/)
})

test('report history lists both reports with a sparkline', async () => {
  const r = await runCli(['report', 'history', '--metric', 'auc', ...auth()], { env: { NO_COLOR: '1' } })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /performance\.auc\.value — 2 reports/)
  assert.match(r.stdout, /reference/)
  assert.match(r.stdout, /current/)
  assert.match(r.stdout, /[▁▂▃▄▅▆▇█]{2}/)
  const j = await runCli(['report', 'history', '--metric', 'drift.x.psi', '--json', ...auth()])
  const parsed = JSON.parse(j.stdout) as { points: Array<{ id: string, value: number | null }> }
  assert.deepEqual(parsed.points.map(x => x.id), [reference.id, current.id])
  assert.equal(parsed.points[1].value, current.drift.features.x.psi)
})

test('status shows the agents, the last round and the reference; reference show/set', async () => {
  const r = await runCli(['status', ...auth()], { env: { NO_COLOR: '1' } })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /agents\s+5\/5 online/)
  assert.equal((r.stdout.match(/ online /g) ?? []).length >= SITES.length, true, r.stdout)
  assert.match(r.stdout, new RegExp(`last round\\s+${current.round.id}`))
  assert.match(r.stdout, new RegExp(`reference\\s+${reference.id}`))
  assert.match(r.stdout, /next round\s+manual only/)

  const show = await runCli(['reference', 'show', '--json', ...auth()])
  assert.equal((JSON.parse(show.stdout) as { reportId: string }).reportId, reference.id)
  const set = await runCli(['reference', 'set', reference.id, ...auth()])
  assert.equal(set.code, 0, set.stderr)
  assert.match(set.stdout, new RegExp(`reference set to ${reference.id}`))
  assertOneLineError(await runCli(['reference', 'set', current.id + 'x', ...auth()]), /no report with id .* that can serve as the reference/)
})

test('/metrics carries the latest report, rounds and agents in Prometheus text', async () => {
  const { samples, types } = parseExposition(await client.metrics())
  assert.equal(sampleValue(samples, 'fedmon_auc'), current.performance.auc.value)
  assert.equal(sampleValue(samples, 'fedmon_auc_lower'), current.performance.auc.lower)
  assert.equal(sampleValue(samples, 'fedmon_drift_psi', { feature: 'x' }), current.drift.features.x.psi)
  assert.equal(sampleValue(samples, 'fedmon_agents_online'), SITES.length)
  assert.equal(sampleValue(samples, 'fedmon_agents_total'), SITES.length)
  assert.equal(sampleValue(samples, 'fedmon_rounds_total', { status: 'done' }), 2)
  assert.equal(sampleValue(samples, 'fedmon_round_duration_seconds_count', { kind: 'current', status: 'done' }), 1)
  assert.ok((sampleValue(samples, 'fedmon_alerts_fired_total', { rule: 'performance.auc.value below 0.99' }) ?? 0) >= 1)
  assert.equal(types.get('fedmon_round_duration_seconds'), 'histogram')
})

test('fired alerts reach the webhook (after a retry)', async () => {
  await waitFor('webhook delivery', () => webhookBodies.some(b => b.report.id === current.id), { timeoutMs: 20_000 })
  const body = webhookBodies.find(b => b.report.id === current.id)
  assert.equal(body?.type, 'fedmon.alerts')
  assert.deepEqual(body?.alerts.map(a => a.metric).sort(), current.alerts.map(a => a.metric).sort())
  assert.ok(webhookHits >= 2, 'the first (failed) delivery was retried')
})

test('wrong token and unknown report id: one clear line, non-zero exit', async () => {
  const wrong = join(fed.root, 'wrong.token')
  writeFileSync(wrong, 'not-the-token-at-all-123\n')
  assertOneLineError(await runCli(['report', '--api', fed.api, '--token-file', wrong]), /^fedmon: unauthorized: wrong or missing token \(--token-file\)$/)
  assertOneLineError(await runCli(['status', '--api', fed.api]), /unauthorized/)
  assertOneLineError(await runCli(['report', 'no-such-report', ...auth()]), /^fedmon: no report with id no-such-report$/)
})

test('a malformed config (bad YAML, a bad field): one clear line naming the file and the field', async () => {
  const badYaml = join(fed.root, 'broken.yaml')
  writeFileSync(badYaml, 'identity: [unclosed\n')
  assertOneLineError(await runCli(['coordinator', '--config', badYaml], { timeoutMs: 20_000 }), /broken\.yaml.*not valid YAML/)

  const badField = join(fed.root, 'bad-field.json')
  const config = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8')) as Record<string, any>
  writeFileSync(badField, JSON.stringify({ ...config, privacy: { minAgents: 'three' } }))
  assertOneLineError(await runCli(['coordinator', '--config', badField], { timeoutMs: 20_000 }), /bad-field\.json: privacy\.minAgents: /)

})

test('a missing data path: one clear line naming it, from evaluate and from the agent at start', async () => {
  const missing = join(fed.root, 'does', 'not', 'exist', '*.jsonl')
  assertOneLineError(await runCli(['evaluate', '--spec', fed.specFile, '--data', missing, '--window', CURRENT_WINDOW], { timeoutMs: 20_000 }), /no data file matches .*does\/not\/exist/)

  const noData = join(fed.root, 'no-data.json')
  const agent = JSON.parse(readFileSync(fed.agentConfig(SITES[0]), 'utf8')) as Record<string, any>
  writeFileSync(noData, JSON.stringify({ ...agent, identity: 'no-data.key', data: { path: 'does/not/exist/*.jsonl' }, state: 'state/no-data' }))
  assertOneLineError(await runCli(['agent', '--config', noData], { timeoutMs: 20_000 }), /does\/not\/exist/)
})

test('restart with a schedule: reports intact, scheduled rounds over aligned windows, each window once', async () => {
  await stopDaemon(fed.daemons.coordinator)
  // Every site logs a record every 250 ms from now on for three minutes: each 3-second window holds 12 of
  // its records, more than the default policy.minRecords (the agents accept 3-second windows: AGENT_POLICY).
  const start = Date.now()
  for (const [i, site] of SITES.entries()) {
    const live = sampleRecords(900 + i, 720, { weeks: 1 }).map((r, k) => ({ ...r, ts: start + k * 250 }))
    writeJsonl(join(fed.root, 'data', site, 'live.jsonl'), live)
  }
  const config = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8')) as Record<string, any>
  config.schedule = { every: '3s', delay: '0s', maxCatchUp: 1 }
  writeFileSync(fed.coordinatorConfig, JSON.stringify(config, null, 1))
  await fed.startCoordinator()
  assert.deepEqual(await client.getReport(current.id), current, 'reports survive the restart')

  const scheduled = await waitFor('scheduled rounds, one of them done', async () => {
    const rounds = (await client.listRounds({ last: 100 })).filter(r => r.scheduledWindowKey !== null && r.status !== 'running')
    return rounds.length >= 2 && rounds.some(r => r.status === 'done') ? rounds : null
  }, { timeoutMs: 60_000, intervalMs: 500 })
  const keys = scheduled.map(r => r.scheduledWindowKey as string)
  assert.equal(new Set(keys).size, keys.length, `no window ran twice: ${keys.join(', ')}`)
  for (const r of scheduled) {
    const [from, to] = (r.scheduledWindowKey as string).split('-').map(Number)
    assert.equal(to - from, 3000)
    assert.equal(from % 3000, 0, 'windows are aligned to `every`')
    assert.equal(Date.parse(r.window.from), from)
    assert.equal(Date.parse(r.window.to), to)
    assert.ok(r.status === 'done' || r.failure !== null, 'a failed scheduled round records its reason')
  }
  const status = await client.status()
  assert.ok(status.nextScheduledRound !== null && status.nextScheduledRound !== undefined, 'status names the next scheduled round')
})
