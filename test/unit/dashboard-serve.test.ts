/**
 * The dashboard on the API port (coordinator/dashboard.ts): pages under a CSP without inline script, static
 * assets, the login form and its session cookie (reads only), and the API's own routes left as they were.
 * A real ApiServer on loopback, raw node:http requests.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { ApiServer, type ApiBackend } from '../../coordinator/api.js'
import { SESSION_COOKIE, sessionValue } from '../../coordinator/dashboard.js'

const TOKEN = 'dashboard-test-token-0123456789'

function backend (started: unknown[]): ApiBackend {
  return {
    peerId: '12D3KooWtest',
    uptimeS: () => 1,
    startRound: (req) => { started.push(req); return 'round-1' },
    getRound: () => null,
    listRounds: () => [],
    listReports: () => [],
    getReport: () => null,
    reportVersions: () => null,
    latestReport: () => null,
    agents: () => [],
    status: () => ({ status: 'ok', peerId: '12D3KooWtest', specHash: 'x', model: 'm', agents: { total: 0, online: 0 }, lastRound: null, nextScheduledRound: null, reference: null }),
    reference: () => null,
    setReference: () => { throw new Error('unused') },
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fedmon_up 1\n' })
  }
}

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, text: string }

async function raw (port: number, method: string, path: string, opts: { headers?: Record<string, string>, body?: string } = {}): Promise<Raw> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body))
  return await new Promise<Raw>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }) })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const open: ApiServer[] = []
let plain: number // no token: loopback, no login
let guarded: number // with a token
const started: unknown[] = []

before(async () => {
  const a = new ApiServer({ backend: backend(started), host: '127.0.0.1', port: 0 })
  const b = new ApiServer({ backend: backend(started), host: '127.0.0.1', port: 0, token: TOKEN })
  open.push(a, b)
  plain = (await a.start()).port
  guarded = (await b.start()).port
  // the assets exist only after `npm run build` (esbuild); say so rather than fail obscurely
  const js = await raw(plain, 'GET', '/assets/dashboard.js')
  assert.equal(js.status, 200, 'dist/coordinator/dashboard/assets missing: run "npm run build" (tsc, then the dashboard bundle)')
})

after(async () => { for (const s of open) await s.stop() })

test('pages: the shell under a CSP with no inline script or style; assets from the same origin', async () => {
  for (const path of ['/', '/monitors/m', '/monitors/m/reports/r-1', '/monitors/%3Cscript%3E/reports/x']) {
    const res = await raw(plain, 'GET', path)
    assert.equal(res.status, 200, path)
    assert.match(String(res.headers['content-type']), /^text\/html/)
    const csp = String(res.headers['content-security-policy'])
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /default-src 'none'/)
    assert.doesNotMatch(csp, /unsafe-inline/)
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
    // every script is external, every style a stylesheet link
    assert.deepEqual(res.text.match(/<script[^>]*>/g), ['<script src="/assets/dashboard.js" defer>'])
    assert.doesNotMatch(res.text, /<style|style="/)
    assert.doesNotMatch(res.text, /%3Cscript|<script>/i)
  }
  const css = await raw(plain, 'GET', '/assets/dashboard.css')
  assert.equal(css.status, 200)
  assert.match(String(css.headers['content-type']), /^text\/css/)
  assert.match(css.text, /prefers-color-scheme: dark/)
  assert.match(css.text, /\.uplot/)
  for (const path of ['/assets/nope.js', '/assets/../api.js', '/assets/%2e%2e/package.json']) assert.equal((await raw(plain, 'GET', path)).status, 404, path)
  // the API's routes are the API's: JSON, 404 for unknown paths, /healthz without auth
  const unknown = await raw(plain, 'GET', '/nope')
  assert.equal(unknown.status, 404)
  assert.match(unknown.text, /ERR_NOT_FOUND/)
  assert.equal((await raw(plain, 'GET', '/v1/status')).status, 200)
})

test('with a token: pages send the browser to a login form; the right token sets an HttpOnly SameSite=Strict cookie', async () => {
  const page = await raw(guarded, 'GET', '/monitors/m')
  assert.equal(page.status, 303)
  assert.equal(page.headers.location, '/login?next=%2Fmonitors%2Fm')
  assert.equal((await raw(guarded, 'GET', '/v1/status')).status, 401)
  const form = await raw(guarded, 'GET', '/login?next=%2Fmonitors%2Fm')
  assert.equal(form.status, 200)
  assert.match(form.text, /<form class="login" method="post" action="\/login">/)
  assert.match(String(form.headers['content-security-policy']), /form-action 'self'/)

  const post = async (body: string, headers: Record<string, string> = {}): Promise<Raw> => await raw(guarded, 'POST', '/login', { body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
  const wrong = await post('token=nope&next=%2F')
  assert.equal(wrong.status, 401)
  assert.equal(wrong.headers['set-cookie'], undefined)
  const crossSite = await post(`token=${TOKEN}`, { origin: 'https://evil.example' })
  assert.equal(crossSite.status, 403)
  assert.equal(crossSite.headers['set-cookie'], undefined)
  const ok = await post(`token=${TOKEN}&next=%2Fmonitors%2Fm`, { origin: `http://127.0.0.1:${guarded}` })
  assert.equal(ok.status, 303)
  assert.equal(ok.headers.location, '/monitors/m')
  const cookie = String(ok.headers['set-cookie'])
  assert.match(cookie, /HttpOnly/)
  assert.match(cookie, /SameSite=Strict/)
  assert.ok(!cookie.includes(TOKEN), 'the cookie is not the token')
  assert.equal(cookie.split(';')[0], `${SESSION_COOKIE}=${sessionValue(TOKEN)}`)
  // no open redirect after login
  for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
    assert.equal((await post(`token=${TOKEN}&next=${encodeURIComponent(next)}`)).headers.location, '/', next)
  }
})

test('the session cookie reads pages and the API, and never writes', async () => {
  const session = { cookie: `other=1; ${SESSION_COOKIE}=${sessionValue(TOKEN)}` }
  assert.equal((await raw(guarded, 'GET', '/')).status, 303)
  assert.equal((await raw(guarded, 'GET', '/', { headers: session })).status, 200)
  assert.equal((await raw(guarded, 'GET', '/v1/status', { headers: session })).status, 200)
  assert.equal((await raw(guarded, 'GET', '/v1/status', { headers: { cookie: `${SESSION_COOKIE}=${sessionValue('another-token')}` } })).status, 401)
  const write = await raw(guarded, 'POST', '/v1/rounds', { headers: { ...session, 'content-type': 'application/json' }, body: JSON.stringify({ window: { from: 0, to: 1000 } }) })
  assert.equal(write.status, 401, 'a cookie never authorizes a write')
  assert.equal(started.length, 0)
  // the bearer header still works for writes
  const bearer = await raw(guarded, 'POST', '/v1/rounds', { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ window: { from: 0, to: 1000 } }) })
  assert.equal(bearer.status, 202)
  const out = await raw(guarded, 'GET', '/logout', { headers: session })
  assert.equal(out.status, 303)
  assert.match(String(out.headers['set-cookie']), /Max-Age=0/)
})

test('GET /v1/reports?view=summary: the fields lists and charts read, without histograms and per-report detail', async () => {
  const { reportSummary } = await import('../../shared/report.js')
  const { syntheticReport } = await import('../fixtures/reports.js')
  const full = syntheticReport({ seed: 5, reference: { id: 'ref', seed: 6 } })
  const brief = reportSummary(full)
  assert.ok(JSON.stringify(brief).length * 3 < JSON.stringify(full).length, 'at most a third of the size')
  assert.equal((brief as { histograms?: unknown }).histograms, undefined)
  assert.equal((brief.performance as Record<string, unknown>).reliability, undefined)
  // Everything the monitor page and the overview read is still there, unchanged.
  assert.deepEqual(brief.performance.auc, full.performance.auc)
  assert.equal(brief.samples, full.samples)
  for (const [name, f] of Object.entries(full.drift.features)) {
    assert.equal(brief.drift.features[name].psi, f.psi)
    assert.equal(brief.drift.features[name].status, f.status)
  }
  assert.deepEqual(brief.alerts, full.alerts)
  // Served by the API on request; `full` stays the default.
  const server = new ApiServer({ backend: { ...backend([]), listReports: () => [full] }, host: '127.0.0.1', port: 0 })
  const { port } = await server.start()
  try {
    const summary = await (await fetch(`http://127.0.0.1:${port}/v1/reports?view=summary`)).json() as { reports: unknown[] }
    assert.deepEqual(summary.reports, [JSON.parse(JSON.stringify(brief))])
    const plain = await (await fetch(`http://127.0.0.1:${port}/v1/reports`)).json() as { reports: unknown[] }
    assert.deepEqual(plain.reports, [JSON.parse(JSON.stringify(full))])
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/reports?view=tiny`)).status, 400)
  } finally {
    await server.stop()
  }
})
