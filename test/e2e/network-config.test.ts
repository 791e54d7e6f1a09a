import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Federation, sampleRecords, T0, DAY, CURRENT_WINDOW } from './helpers/federation.js'
import { killAllDaemons, httpJson, waitFor, runCli } from './helpers/processes.js'

// A coordinator configured with a reference window and an API token: the reference round runs by itself
// once enough agents are online, and every API route but /healthz wants the token.
const SITES = ['site-a', 'site-b', 'site-c']
const TOKEN = 'e2e-token-0123456789abcdef'
let fed: Federation
let passed = 0

before(async () => {
  fed = await Federation.create({
    sites: SITES.map((name, i) => ({ name, records: sampleRecords(500 + i, 120) })),
    apiToken: TOKEN,
    coordinatorExtra: { reference: { from: new Date(T0).toISOString(), to: T0 + 7 * DAY } },
    phaseTimeoutMs: 6000
  })
  await fed.startCoordinator()
  for (const s of SITES) fed.startAgent(s)
})

after(async () => {
  await killAllDaemons()
  if (passed === 2) rmSync(fed.root, { recursive: true, force: true })
  else process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

test('the configured reference window runs as a reference round once minAgents are online', async () => {
  const ref = await waitFor('the configured reference round', async () => {
    const r = await httpJson(`${fed.api}/v1/reference`, { token: TOKEN })
    return r.status === 200 ? r.body as { reportId: string } : null
  }, { timeoutMs: 60_000 })
  const report = await httpJson(`${fed.api}/v1/reports/${ref.reportId}`, { token: TOKEN })
  assert.equal(report.body.round.kind, 'reference')
  assert.equal(report.body.window.from, new Date(T0).toISOString())
  assert.equal(report.body.agents.included.length, SITES.length)
  // and a current round drifts against it
  const res = await fed.runRound(CURRENT_WINDOW)
  assert.equal(res.code, 0, res.stderr)
  assert.equal(JSON.parse(res.stdout).drift.reference.id, ref.reportId)
  passed++
})

test('the API wants the bearer token everywhere but /healthz', async () => {
  assert.equal((await httpJson(`${fed.api}/healthz`)).status, 200)
  for (const path of ['/v1/agents', '/v1/status', '/v1/reports/latest', '/metrics']) {
    assert.equal((await httpJson(`${fed.api}${path}`)).status, 401, path)
    assert.equal((await httpJson(`${fed.api}${path}`, { token: 'wrong-token-0123456789' })).status, 401, path)
    assert.equal((await httpJson(`${fed.api}${path}`, { token: TOKEN })).status, 200, path)
  }
  const noToken = await runCli(['round', 'run', '--window', CURRENT_WINDOW, '--api', fed.api])
  assert.equal(noToken.code, 1)
  assert.match(noToken.stderr, /^fedmon: unauthorized: wrong or missing token \(--token-file\)\n$/)
  passed++
})
