import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { ApiServer, ApiError, type ApiBackend } from '../../coordinator/api.js'
import { ApiClient, ApiRequestError } from '../../coordinator/api-client.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

const TOKEN = 'a-test-token-of-some-length'
const started: Array<{ window: { from: number, to: number }, reference: boolean }> = []
const outcome: RoundOutcome = {
  id: 'round-1', kind: 'current', window: { from: '2025-12-01T00:00:00.000Z', to: '2025-12-08T00:00:00.000Z' }, status: 'done', reportId: 'report-1',
  invited: [], included: [], dropped: [], failure: null, startedAt: '2025-12-08T00:00:00.000Z', finishedAt: null, timings: {}, scheduledWindowKey: null
}
const backend: ApiBackend = {
  peerId: '12D3KooWtest',
  uptimeS: () => 3,
  startRound: (req) => {
    if (started.length >= 2) throw new ApiError(409, 'ERR_BUSY', 'round round-1 is still running')
    started.push(req)
    return `round-${started.length}`
  },
  getRound: id => id === 'round-1' ? outcome : null,
  listRounds: () => [outcome],
  listReports: () => [],
  getReport: () => null,
  latestReport: () => null,
  agents: () => [{ peerId: 'p', online: true, lastSeen: null, lastIncludedRound: null }],
  status: () => ({ status: 'ok', peerId: '12D3KooWtest', specHash: 'x', model: 'm', agents: { total: 1, online: 1 }, lastRound: null, nextScheduledRound: null, reference: null }),
  reference: () => null,
  setReference: (id) => { throw new ApiError(404, 'ERR_NOT_FOUND', `no reference-capable report ${id}`) },
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fedmon_up 1\n' })
}
const server = new ApiServer({ backend, host: '127.0.0.1', port: 0, token: TOKEN })
let url = ''
before(async () => { url = `http://127.0.0.1:${(await server.start()).port}` })
after(async () => { await server.stop() })

test('healthz needs no token; everything else needs the bearer token', async () => {
  const health = await fetch(`${url}/healthz`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { status: 'ok', peerId: '12D3KooWtest', uptimeS: 3 })
  const denied = await fetch(`${url}/v1/agents`)
  assert.equal(denied.status, 401)
  assert.equal((await denied.json() as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
  const wrong = await fetch(`${url}/v1/agents`, { headers: { authorization: 'Bearer nope' } })
  assert.equal(wrong.status, 401)
  const client = new ApiClient({ url, token: TOKEN })
  assert.equal((await client.get<{ agents: unknown[] }>('/v1/agents')).agents.length, 1)
})

test('POST /v1/rounds accepts ISO or epoch windows, validates the body, maps refusals to 409', async () => {
  const client = new ApiClient({ url, token: TOKEN })
  assert.deepEqual(await client.post('/v1/rounds', { window: { from: '2025-12-01T00:00:00Z', to: 1765152000000 }, reference: true }), { roundId: 'round-1' })
  assert.deepEqual(started[0], { window: { from: Date.UTC(2025, 11, 1), to: 1765152000000 }, reference: true })
  await assert.rejects(client.post('/v1/rounds', { window: { from: 5, to: 1 } }), (err: unknown) => err instanceof ApiRequestError && err.status === 400 && /before/.test(err.message))
  await assert.rejects(client.post('/v1/rounds', { window: { from: 'yesterday', to: 1 } }), (err: unknown) => err instanceof ApiRequestError && err.status === 400)
  await client.post('/v1/rounds', { window: { from: 0, to: 1 } })
  await assert.rejects(client.post('/v1/rounds', { window: { from: 0, to: 1 } }), (err: unknown) => err instanceof ApiRequestError && err.status === 409 && err.code === 'ERR_BUSY')
  const bad = await fetch(`${url}/v1/rounds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{not json' })
  assert.equal(bad.status, 400)
})

test('rounds, reports, reference, status and metrics routes; unknown ids are 404', async () => {
  const client = new ApiClient({ url, token: TOKEN })
  assert.equal((await client.get<RoundOutcome>('/v1/rounds/round-1')).reportId, 'report-1')
  await assert.rejects(client.get('/v1/rounds/nope'), (err: unknown) => err instanceof ApiRequestError && err.status === 404)
  await assert.rejects(client.get('/v1/reports/latest'), (err: unknown) => err instanceof ApiRequestError && err.status === 404)
  await assert.rejects(client.get('/v1/reports?kind=weird'), (err: unknown) => err instanceof ApiRequestError && err.status === 400)
  assert.deepEqual(await client.get('/v1/reports?last=5&kind=reference'), { reports: [] })
  await assert.rejects(client.get('/v1/reference'), (err: unknown) => err instanceof ApiRequestError && err.status === 404)
  await assert.rejects(client.put('/v1/reference', { id: 'r' }), (err: unknown) => err instanceof ApiRequestError && err.status === 404)
  assert.equal((await client.get<{ status: string }>('/v1/status')).status, 'ok')
  const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(await metrics.text(), 'fedmon_up 1\n')
  await assert.rejects(new ApiClient({ url: 'http://127.0.0.1:1' }).get('/healthz'), /cannot reach/)
})
