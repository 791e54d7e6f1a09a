import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { ApiServer, ApiError as ServerApiError, type ApiBackend } from '../../coordinator/api.js'
import { ApiClient, ApiError } from '../../shared/api-client.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'
import { roundEntry, type RoundListEntry } from '../../shared/round-list.js'

const TOKEN = 'a-test-token-of-some-length'
const started: Array<{ window: { from: number, to: number }, reference: boolean }> = []
const listed: Array<{ limit: number, failed: boolean, monitor?: string }> = []
const missed: RoundListEntry = {
  id: null, monitor: 'm', kind: 'current', window: { from: '2025-12-02T00:00:00.000Z', to: '2025-12-03T00:00:00.000Z' }, status: 'missed',
  failure: { code: 'ERR_WINDOW_MISSED', message: 'closed while the coordinator was down' }, reportId: null, scheduledWindowKey: '1764633600000-1764720000000',
  counts: { invited: 0, included: 0, dropped: 0, declined: 0 }, startedAt: '2025-12-09T00:00:00.000Z', finishedAt: '2025-12-09T00:00:00.000Z', attempts: 0, nextAttemptAt: null
}
const outcome: RoundOutcome = {
  id: 'round-1', kind: 'current', window: { from: '2025-12-01T00:00:00.000Z', to: '2025-12-08T00:00:00.000Z' }, status: 'done', reportId: 'report-1',
  invited: [], included: [], dropped: [], failure: null, startedAt: '2025-12-08T00:00:00.000Z', finishedAt: null, timings: {}, scheduledWindowKey: null
}
const backend: ApiBackend = {
  peerId: '12D3KooWtest',
  uptimeS: () => 3,
  startRound: (req) => {
    if (req.window.from === 7) throw new ServerApiError(422, 'ERR_WINDOW_TOO_LONG', 'window 1970-01-01T00:00:00.007Z..2025-12-08T00:00:00.000Z is 20429d long, longer than round.maxWindowMs (31d)')
    if (started.length >= 2) throw new ServerApiError(409, 'ERR_BUSY', 'round round-1 is still running')
    started.push(req)
    return `round-${started.length}`
  },
  getRound: id => id === 'round-1' ? outcome : null,
  listRounds: (opts) => { listed.push(opts); return opts.failed ? [missed] : [roundEntry(outcome, 'm'), missed] },
  listReports: () => [],
  getReport: () => null,
  reportVersions: () => null,
  latestReport: () => null,
  agents: () => [{ peerId: 'p', online: true, lastSeen: null, lastIncludedRound: null }],
  status: () => ({ status: 'ok', peerId: '12D3KooWtest', specHash: 'x', model: 'm', agents: { total: 1, online: 1 }, lastRound: null, nextScheduledRound: null, reference: null }),
  reference: () => null,
  setReference: (id) => { throw new ServerApiError(404, 'ERR_NOT_FOUND', `no reference-capable report ${id}`) },
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fedmon_up 1\n' })
}
const server = new ApiServer({ backend, host: '127.0.0.1', port: 0, token: TOKEN })
let url = ''
before(async () => { url = `http://127.0.0.1:${(await server.start()).port}` })
after(async () => { await server.stop() })

async function post (path: string, body: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body })
  return { status: res.status, body: await res.json() }
}

test('healthz needs no token; everything else needs the bearer token', async () => {
  const health = await fetch(`${url}/healthz`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { status: 'ok', peerId: '12D3KooWtest', uptimeS: 3 })
  const denied = await fetch(`${url}/v1/agents`)
  assert.equal(denied.status, 401)
  assert.equal((await denied.json() as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
  const wrong = await fetch(`${url}/v1/agents`, { headers: { authorization: 'Bearer nope' } })
  assert.equal(wrong.status, 401)
  await assert.rejects(new ApiClient({ baseUrl: url, token: 'nope' }).agents(), (err: unknown) => err instanceof ApiError && err.status === 401 && /unauthorized/.test(err.message))
  const client = new ApiClient({ baseUrl: url, token: TOKEN })
  assert.equal((await client.agents()).length, 1)
})

test('POST /v1/rounds accepts ISO or epoch windows, validates the body, maps refusals to 409', async () => {
  const client = new ApiClient({ baseUrl: url, token: TOKEN })
  assert.equal(await client.startRound({ window: { from: '2025-12-01T00:00:00Z', to: 1765152000000 }, reference: true }), 'round-1')
  assert.deepEqual(started[0], { window: { from: Date.UTC(2025, 11, 1), to: 1765152000000 }, reference: true })
  const backwards = await post('/v1/rounds', JSON.stringify({ window: { from: 5, to: 1 } }))
  assert.equal(backwards.status, 400)
  assert.match(backwards.body.error.message, /before/)
  assert.equal((await post('/v1/rounds', JSON.stringify({ window: { from: 'yesterday', to: 1 } }))).status, 400)
  assert.equal((await post('/v1/rounds', '{not json')).status, 400)
  await client.startRound({ window: { from: 0, to: 1 } })
  // The refusal reaches the CLI as one line with the coordinator's reason.
  await assert.rejects(client.startRound({ window: { from: 0, to: 1 } }), (err: unknown) => err instanceof ApiError && err.status === 409 && err.apiCode === 'ERR_BUSY' && err.message === 'coordinator: round round-1 is still running (ERR_BUSY)')
})

test('rounds, reports, reference, status and metrics routes; unknown ids are 404', async () => {
  const client = new ApiClient({ baseUrl: url, token: TOKEN })
  assert.equal((await client.getRound('round-1')).reportId, 'report-1')
  const seen: string[] = []
  assert.equal((await client.waitForRound('round-1', { onProgress: r => { seen.push(r.status) } })).status, 'done')
  assert.deepEqual(seen, ['done'])
  await assert.rejects(client.getRound('nope'), (err: unknown) => err instanceof ApiError && err.status === 404 && err.message === 'no round with id nope')
  await assert.rejects(client.getReport('latest'), (err: unknown) => err instanceof ApiError && err.status === 404)
  await assert.rejects(client.getReport('r-x'), (err: unknown) => err instanceof ApiError && err.message === 'no report with id r-x')
  const weird = await fetch(`${url}/v1/reports?kind=weird`, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(weird.status, 400)
  assert.deepEqual(await client.listReports({ last: 5, kind: 'reference' }), [])
  assert.equal(await client.getReference(), null)
  await assert.rejects(client.setReference('r'), (err: unknown) => err instanceof ApiError && err.status === 404)
  assert.equal((await client.status()).status, 'ok')
  assert.equal(await client.metrics(), 'fedmon_up 1\n')
  await assert.rejects(new ApiClient({ baseUrl: 'http://127.0.0.1:1' }).health(), /cannot reach/)
})

test('GET /v1/rounds: limit, failed and monitor reach the backend; round-less scheduled windows come back with id null', async () => {
  const client = new ApiClient({ baseUrl: url, token: TOKEN })
  listed.length = 0
  const all = await client.listRounds()
  assert.deepEqual(all.map(r => [r.id, r.status, r.counts.invited]), [['round-1', 'done', 0], [null, 'missed', 0]])
  const failed = await client.listRounds({ failed: true, last: 5, monitor: 'm' })
  assert.deepEqual(failed.map(r => r.failure?.code), ['ERR_WINDOW_MISSED'])
  assert.deepEqual(listed, [{ limit: 20, failed: false }, { limit: 5, failed: true, monitor: 'm' }])
  for (const bad of ['failed=yes', 'limit=0', 'limit=x']) {
    const res = await fetch(`${url}/v1/rounds?${bad}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    assert.equal(res.status, 400, bad)
  }
})

test('a window refused by the guard rails: 422 with the reason, one line for the CLI', async () => {
  const client = new ApiClient({ baseUrl: url, token: TOKEN })
  await assert.rejects(client.startRound({ window: { from: 7, to: '2025-12-08T00:00:00Z' } }),
    (err: unknown) => err instanceof ApiError && err.status === 422 && err.apiCode === 'ERR_WINDOW_TOO_LONG' && /^coordinator: window .* longer than round\.maxWindowMs/.test(err.message))
})
