// GET /v1/openapi.json (issue 14): an OpenAPI 3.1 document generated from the API's zod schemas. Every route
// the server answers is in the document and every documented route is answered — the served routes are found
// by asking the real server about every path its source names, not listed by hand — and the documented
// response schemas accept what the server really sends.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ApiServer, type ApiBackend } from '../../coordinator/api.js'
import { API_OPERATIONS, openApiDocument } from '../../coordinator/openapi.js'
import { isDashboardPath } from '../../coordinator/dashboard.js'
import { makeReport, makeRound } from './product-fixtures.js'
import { repoRoot } from '../fixtures/repo.js'

const TOKEN = 'a-test-token-of-some-length'
const report = makeReport({ id: 'report-1' })
const round = makeRound('round-1', { status: 'done', reportId: 'report-1', declined: [{ agent: 'c', code: 'ERR_DATA', reason: 'column score: not numeric', signature: 'ab' }] })
const backend: ApiBackend = {
  peerId: '12D3KooWtest',
  uptimeS: () => 3,
  startRound: () => 'round-2',
  getRound: id => id === round.id ? round : null,
  listRounds: () => [{ ...round, monitor: 'm', counts: { invited: 3, included: 3, dropped: 0, declined: 1 } }],
  listReports: () => [report],
  getReport: id => id === report.id ? report : null,
  reportVersions: id => id === report.id ? [report] : null,
  latestReport: () => report,
  agents: () => [{ peerId: 'p', online: true, lastSeen: '2026-01-02T00:00:00.000Z', lastIncludedRound: 'round-1' }],
  status: () => ({ status: 'ok', peerId: '12D3KooWtest', specHash: 'x', model: 'm', agents: { total: 1, online: 1 }, lastRound: round, nextScheduledRound: null, reference: { reportId: 'report-1', setAt: '2026-01-02T00:00:00.000Z' } }),
  reference: () => ({ reportId: 'report-1', setAt: '2026-01-02T00:00:00.000Z' }),
  setReference: id => ({ reportId: id, setAt: '2026-01-02T00:00:00.000Z' }),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fedmon_up 1\n' })
}
const open = new ApiServer({ backend, host: '127.0.0.1', port: 0 })
const guarded = new ApiServer({ backend, host: '127.0.0.1', port: 0, token: TOKEN })
let url = ''
let guardedUrl = ''
before(async () => {
  url = `http://127.0.0.1:${(await open.start()).port}`
  guardedUrl = `http://127.0.0.1:${(await guarded.start()).port}`
})
after(async () => { await open.stop(); await guarded.stop() })


const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']

async function call (method: string, path: string, base = url): Promise<{ status: number, body: any, type: string }> {
  const write = method !== 'GET'
  const res = await fetch(`${base}${path}`, { method, headers: write ? { 'content-type': 'application/json' } : {}, body: write ? '{}' : undefined })
  const type = res.headers.get('content-type') ?? ''
  const text = await res.text()
  return { status: res.status, type, body: type.startsWith('application/json') ? JSON.parse(text) : text }
}

/** A documented path with every {param} given a value, as a client would call it. */
const concrete = (path: string): string => path.replace(/\{[^}]+\}/g, 'x')

test('GET /v1/openapi.json serves an OpenAPI 3.1 document, behind the same bearer token as the other /v1 routes', async () => {
  const res = await call('GET', '/v1/openapi.json')
  assert.equal(res.status, 200)
  assert.match(res.type, /^application\/json/)
  assert.equal(res.body.openapi, '3.1.0')
  assert.deepEqual(res.body, JSON.parse(JSON.stringify(openApiDocument())))
  assert.ok(res.body.components.securitySchemes.bearer !== undefined)
  assert.equal((await fetch(`${guardedUrl}/v1/openapi.json`)).status, 401)
  const authorized = await fetch(`${guardedUrl}/v1/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(authorized.status, 200)
  // /healthz is the one route without the token; the document says so.
  assert.deepEqual(res.body.paths['/healthz'].get.security, [])
})

test('every route the server answers is documented, and every documented route is answered', async () => {
  const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> }
  const documented = new Set<string>()
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${concrete(path)}`)
  }
  // The paths the server's source names: literal paths and /v1 resources, with and without an id.
  const source = readFileSync(join(repoRoot(), 'coordinator', 'api.ts'), 'utf8')
  const literals = [...source.matchAll(/path === '(\/[^']*)'/g)].map(m => m[1])
  const resources = [...source.matchAll(/resource === '([^']+)'/g)].map(m => m[1])
  assert.ok(literals.includes('/healthz') && resources.includes('rounds'), 'the route conditions were found in coordinator/api.ts')
  const candidates = new Set([...literals, ...resources.flatMap(r => [`/v1/${r}`, `/v1/${r}/x`, `/v1/${r}/x/y`]), '/v1', '/', ...[...documented].map(d => d.split(' ')[1])])
  const served = new Set<string>()
  for (const path of candidates) {
    // The dashboard's HTML pages (coordinator/dashboard.ts) share the port but are not the JSON API.
    if (isDashboardPath(path)) continue
    for (const method of METHODS) {
      const res = await call(method, path)
      const noRoute = res.status === 404 && /^no route /.test(res.body?.error?.message ?? '')
      if (!noRoute) served.add(`${method} ${path}`)
    }
  }
  assert.deepEqual([...served].sort(), [...documented].sort())
})

test('the documented response schemas accept what the server sends', async () => {
  for (const op of API_OPERATIONS) {
    if (op.method !== 'get') continue
    const path = op.path.replace('{id}', op.path.startsWith('/v1/rounds') ? round.id : report.id)
    const res = await call('GET', path)
    const documented = op.responses[res.status]
    assert.ok(documented !== undefined, `${op.method} ${op.path}: status ${res.status} is documented`)
    if (documented.schema !== undefined) {
      const parsed = documented.schema.safeParse(res.body)
      assert.ok(parsed.success, `${op.method} ${op.path}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues[0])}`)
    } else {
      assert.ok(!res.type.startsWith('application/json'), `${op.method} ${op.path} sends ${res.type}`)
    }
  }
})

test('the README\'s API section lists every route, and points at /v1/openapi.json', () => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### 9. The HTTP API'), readme.indexOf('### The store'))
  assert.ok(section.length > 0, 'README has the HTTP API section')
  assert.match(section, /GET \/v1\/openapi\.json/)
  for (const op of API_OPERATIONS) assert.ok(section.includes(`${op.method.toUpperCase()} ${op.path}`), `README lists ${op.method.toUpperCase()} ${op.path}`)
})
