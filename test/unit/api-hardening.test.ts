/**
 * Security review finding (Low): the HTTP API without a token ignored Content-Type and Host, so a web page the
 * operator visits could start rounds with a "simple" cross-site POST (burning the sites' windows) and read
 * reports via DNS rebinding. These are the attacks, played against a real server on loopback with raw
 * node:http requests (a browser sets Host itself; node:http lets the test forge it).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiServer, ApiError as ServerApiError, ApiListenError, hostAllowList, hostAllowed, isJsonContentType, type ApiBackend } from '../../coordinator/api.js'
import { ApiClient, ApiError } from '../../shared/api-client.js'
import { loadCoordinatorConfig, isLoopbackHost, parseHostHeader } from '../../shared/config/coordinator.js'
import type { Logger } from '../../shared/log.js'
import { ConfigError } from '../../shared/errors.js'

const TOKEN = 'hardening-test-token-0123456789'
const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'

/** A backend that records every state change the API asked for. */
function spyBackend (): { backend: ApiBackend, started: unknown[], referenced: string[] } {
  const started: unknown[] = []
  const referenced: string[] = []
  const backend: ApiBackend = {
    peerId: '12D3KooWtest',
    uptimeS: () => 1,
    startRound: (req) => { started.push(req); return `round-${started.length}` },
    getRound: () => null,
    listRounds: () => [],
    listReports: () => [],
    getReport: () => null,
    reportVersions: () => null,
    latestReport: () => null,
    agents: () => [],
    status: () => ({ status: 'ok', peerId: '12D3KooWtest', specHash: 'x', model: 'm', agents: { total: 0, online: 0 }, lastRound: null, nextScheduledRound: null, reference: null }),
    reference: () => null,
    setReference: (id) => {
      referenced.push(id)
      if (id !== 'r-1') throw new ServerApiError(404, 'ERR_NOT_FOUND', `no reference-capable report ${id}`)
      return { reportId: id, setAt: '2025-12-08T00:00:00.000Z' }
    },
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fedmon_up 1\n' })
  }
  return { backend, started, referenced }
}

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: any }

/** One request over node:http; `host: null` sends no Host header at all. */
async function raw (port: number, method: string, path: string, opts: { host?: string | null, contentType?: string, body?: string, headers?: Record<string, string> } = {}): Promise<Raw> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.host !== undefined && opts.host !== null) headers.host = opts.host
  if (opts.contentType !== undefined) headers['content-type'] = opts.contentType
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body))
  return await new Promise<Raw>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: opts.host === undefined }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try { body = JSON.parse(text) } catch { /* keep the text */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const ROUND_BODY = JSON.stringify({ window: { from: '2025-12-01T00:00:00Z', to: '2025-12-08T00:00:00Z' } })

// The configuration the finding is about: loopback, no token.
const open = spyBackend()
const openServer = new ApiServer({ backend: open.backend, host: '127.0.0.1', port: 0 })
let openPort = 0
before(async () => { openPort = (await openServer.start()).port })
after(async () => { await openServer.stop() })

test('(a) a cross-site "simple" POST /v1/rounds (text/plain, form-urlencoded, multipart, no type) is refused with 415 and starts no round', async () => {
  const simple = [
    'text/plain', // <form enctype="text/plain"> or fetch(url, {method: 'POST', body: string}) with mode no-cors
    'text/plain;charset=UTF-8',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=----x'
  ]
  for (const contentType of simple) {
    const res = await raw(openPort, 'POST', '/v1/rounds', { contentType, body: ROUND_BODY })
    assert.equal(res.status, 415, `${contentType}: ${JSON.stringify(res.body)}`)
    assert.equal(res.body.error.code, 'ERR_UNSUPPORTED_MEDIA_TYPE')
    assert.match(res.body.error.message, /application\/json/)
  }
  // navigator.sendBeacon with a typeless Blob, or curl -d without -H: no Content-Type at all.
  const untyped = await raw(openPort, 'POST', '/v1/rounds', { body: ROUND_BODY })
  assert.equal(untyped.status, 415)
  // Look-alikes are not JSON either.
  for (const contentType of ['application/jsonp', 'text/json', 'application/json-seq', 'text/plain; x=application/json', 'application/json; charset=utf-16']) {
    assert.equal((await raw(openPort, 'POST', '/v1/rounds', { contentType, body: ROUND_BODY })).status, 415, contentType)
  }
  assert.equal(open.started.length, 0, 'no round may have started')
})

test('(a) PUT /v1/reference with a simple content type is refused too; the backend is never asked', async () => {
  const res = await raw(openPort, 'PUT', '/v1/reference', { contentType: 'text/plain', body: JSON.stringify({ id: 'r-1' }) })
  assert.equal(res.status, 415)
  assert.deepEqual(open.referenced, [])
})

test('(a) application/json (any case, charset parameter allowed) still starts the round', async () => {
  const before = open.started.length
  for (const contentType of ['application/json', 'Application/JSON; charset=utf-8', 'application/json;charset="UTF-8"']) {
    const res = await raw(openPort, 'POST', '/v1/rounds', { contentType, body: ROUND_BODY })
    assert.equal(res.status, 202, `${contentType}: ${JSON.stringify(res.body)}`)
  }
  assert.equal(open.started.length, before + 3)
})

test('(a) no permissive CORS: a preflight gets no Access-Control-Allow-* header and no 2xx', async () => {
  const pre = await raw(openPort, 'OPTIONS', '/v1/rounds', {
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
  })
  assert.ok(pre.status >= 400, `preflight answered ${pre.status}`)
  const get = await raw(openPort, 'GET', '/v1/reports', { headers: { origin: 'https://evil.example' } })
  assert.equal(get.status, 200)
  for (const res of [pre, get]) {
    for (const name of Object.keys(res.headers)) assert.ok(!name.startsWith('access-control-'), `unexpected ${name}`)
  }
})

test('(b) DNS rebinding: GET /v1/reports with Host evil.example is refused (421, naming the Host); the real hosts work', async () => {
  const evil = await raw(openPort, 'GET', '/v1/reports', { host: 'evil.example:7600' })
  assert.equal(evil.status, 421, JSON.stringify(evil.body))
  assert.equal(evil.body.error.code, 'ERR_HOST_NOT_ALLOWED')
  assert.match(evil.body.error.message, /evil\.example:7600/)
  // The rebinding page would use the server's own port: still refused.
  assert.equal((await raw(openPort, 'GET', '/v1/reports', { host: `evil.example:${openPort}` })).status, 421)
  assert.equal((await raw(openPort, 'GET', '/v1/reports/latest', { host: `evil.example:${openPort}` })).status, 421)
  assert.equal((await raw(openPort, 'GET', '/healthz', { host: `evil.example:${openPort}` })).status, 421)
  assert.equal((await raw(openPort, 'GET', '/metrics', { host: `evil.example:${openPort}` })).status, 421)
  // A loopback name on another port is another origin (another local app's page): refused.
  assert.equal((await raw(openPort, 'GET', '/v1/reports', { host: `localhost:${openPort + 1}` })).status, 421)
  for (const host of [`127.0.0.1:${openPort}`, `localhost:${openPort}`, `LocalHost:${openPort}`, `[::1]:${openPort}`]) {
    const ok = await raw(openPort, 'GET', '/v1/reports', { host })
    assert.equal(ok.status, 200, `${host}: ${JSON.stringify(ok.body)}`)
    assert.deepEqual(ok.body, { reports: [] })
  }
})

test('(b) after rebinding the page is same-origin and may send application/json: the Host check still stops the write', async () => {
  const before = open.started.length
  const res = await raw(openPort, 'POST', '/v1/rounds', { host: `evil.example:${openPort}`, contentType: 'application/json', body: ROUND_BODY })
  assert.equal(res.status, 421)
  assert.equal(open.started.length, before)
})

test('(b) a missing or malformed Host header is refused', async () => {
  const none = await raw(openPort, 'GET', '/v1/reports', { host: null })
  assert.equal(none.status, 421, JSON.stringify(none.body))
  assert.match(none.body.error.message, /no Host/)
  for (const host of [`user@127.0.0.1:${openPort}`, `127.0.0.1:${openPort}/x`, `127.0.0.1:${openPort}, evil.example`, '127.0.0.1:99999']) {
    assert.equal((await raw(openPort, 'GET', '/v1/reports', { host })).status, 421, host)
  }
})

test('the CLI client works against the hardened API (application/json on writes, Host from the URL)', async () => {
  const client = new ApiClient({ baseUrl: `http://127.0.0.1:${openPort}` })
  const before = open.started.length
  assert.equal(await client.startRound({ window: { from: 0, to: 1000 } }), `round-${before + 1}`)
  assert.deepEqual(await client.setReference('r-1'), { reportId: 'r-1', setAt: '2025-12-08T00:00:00.000Z' })
  assert.deepEqual(await client.listReports(), [])
  assert.equal((await client.health()).status, 'ok')
})

/** A coordinator config file around an `api` section. */
function writeConfig (dir: string, name: string, api: unknown): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({ identity: 'c.key', agents: [PEER], spec: 'spec.yaml', store: 'c.db', api }))
  return file
}

test('(c) api.listen on a non-loopback address without api.tokenFile is a ConfigError naming the file and api.tokenFile', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-api-hardening-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const listen of ['0.0.0.0:7600', '[::]:7600', '10.1.2.3:7600', 'coordinator.example:7600', '[fe80::1]:7600']) {
    const file = writeConfig(dir, 'open.json', { listen })
    assert.throws(() => loadCoordinatorConfig(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.file, file)
      assert.equal(err.field, 'api.tokenFile')
      assert.match(err.message, /token/)
      assert.match(err.message, new RegExp(listen.replace(/[[\].]/g, '\\$&')))
      return true
    }, listen)
  }
  // With a token it loads.
  const withToken = loadCoordinatorConfig(writeConfig(dir, 'token.json', { listen: '0.0.0.0:7600', tokenFile: 'api.token' }))
  assert.equal(withToken.api.listen, '0.0.0.0:7600')
  assert.equal(withToken.api.tokenFile, join(dir, 'api.token'))
  // Loopback needs no token.
  for (const listen of ['127.0.0.1:7600', '127.3.2.1:7600', 'localhost:7600', '[::1]:7600']) {
    assert.equal(loadCoordinatorConfig(writeConfig(dir, 'loop.json', { listen })).api.listen, listen)
  }
  assert.equal(loadCoordinatorConfig(writeConfig(dir, 'default.json', undefined)).api.listen, '127.0.0.1:7600')
})

test('(c) api.allowedHosts entries must look like a Host header: a ConfigError names the entry', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-api-hardening-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const ok = loadCoordinatorConfig(writeConfig(dir, 'ok.json', { listen: '127.0.0.1:7600', allowedHosts: ['fedmon.example.com', 'fedmon.example.com:8443', '[::1]:7600'] }))
  assert.deepEqual(ok.api.allowedHosts, ['fedmon.example.com', 'fedmon.example.com:8443', '[::1]:7600'])
  for (const bad of ['https://fedmon.example.com', '*', '*.example.com', 'fedmon.example.com/v1', 'a b', '', 'host:99999', 'user@host']) {
    const file = writeConfig(dir, 'bad.json', { listen: '127.0.0.1:7600', allowedHosts: ['fedmon.example.com', bad] })
    assert.throws(() => loadCoordinatorConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'api.allowedHosts[1]' && /host:port/.test(err.message), bad)
  }
})

test('(d) an api.allowedHosts entry admits that Host (a name without port on any port); others are still refused', async (t) => {
  const spy = spyBackend()
  const server = new ApiServer({ backend: spy.backend, host: '127.0.0.1', port: 0, allowedHosts: ['Fedmon.Internal', 'dash.example:8443', '[fd00::7]:7600'] })
  const { port } = await server.start()
  t.after(async () => { await server.stop() })
  for (const host of ['fedmon.internal', 'fedmon.internal:443', 'FEDMON.INTERNAL:7600', 'dash.example:8443', '[fd00:0::7]:7600', `127.0.0.1:${port}`]) {
    assert.equal((await raw(port, 'GET', '/v1/reports', { host })).status, 200, host)
  }
  for (const host of ['dash.example', 'dash.example:8444', 'evil.example', 'fedmon.internal.evil.example', '[fd00::7]:7601']) {
    assert.equal((await raw(port, 'GET', '/v1/reports', { host })).status, 421, host)
  }
  // A proxy under an allowed name still has to send JSON to write.
  assert.equal((await raw(port, 'POST', '/v1/rounds', { host: 'fedmon.internal', contentType: 'text/plain', body: ROUND_BODY })).status, 415)
  assert.equal((await raw(port, 'POST', '/v1/rounds', { host: 'fedmon.internal', contentType: 'application/json', body: ROUND_BODY })).status, 202)
  assert.equal(spy.started.length, 1)
})

test('with a token and no allowedHosts any Host is served (the page cannot attach the token); allowedHosts turns the check back on', async (t) => {
  const spy = spyBackend()
  const tokenOnly = new ApiServer({ backend: spy.backend, host: '127.0.0.1', port: 0, token: TOKEN })
  const checked = new ApiServer({ backend: spy.backend, host: '127.0.0.1', port: 0, token: TOKEN, allowedHosts: ['fedmon.internal'] })
  const a = (await tokenOnly.start()).port
  const b = (await checked.start()).port
  t.after(async () => { await tokenOnly.stop(); await checked.stop() })
  const auth = { authorization: `Bearer ${TOKEN}` }
  assert.equal((await raw(a, 'GET', '/v1/reports', { host: 'evil.example' })).status, 401, 'no token, no data')
  assert.equal((await raw(a, 'GET', '/v1/reports', { host: 'coordinator.lan:7600', headers: auth })).status, 200)
  // The token does not lift the Content-Type rule.
  assert.equal((await raw(a, 'POST', '/v1/rounds', { contentType: 'text/plain', body: ROUND_BODY, headers: auth })).status, 415)
  assert.equal((await raw(b, 'GET', '/v1/reports', { host: 'evil.example', headers: auth })).status, 421)
  assert.equal((await raw(b, 'GET', '/v1/reports', { host: 'fedmon.internal', headers: auth })).status, 200)
  assert.equal((await raw(b, 'GET', '/v1/reports', { host: `127.0.0.1:${b}`, headers: auth })).status, 200)
  assert.equal(spy.started.length, 0)
  // The CLI's client reaches both (it names 127.0.0.1:PORT in Host) and still needs its token.
  assert.deepEqual(await new ApiClient({ baseUrl: `http://127.0.0.1:${b}`, token: TOKEN }).listReports(), [])
  assert.equal(await new ApiClient({ baseUrl: `http://127.0.0.1:${a}`, token: TOKEN }).startRound({ window: { from: 0, to: 1 } }), 'round-1')
  await assert.rejects(new ApiClient({ baseUrl: `http://127.0.0.1:${b}` }).listReports(), (err: unknown) => err instanceof ApiError && err.status === 401)
})

test('an ApiServer without a token refuses a non-loopback listen address before binding', () => {
  const { backend } = spyBackend()
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'coordinator.example']) {
    assert.throws(() => new ApiServer({ backend, host, port: 0 }), (err: unknown) => err instanceof ApiListenError && err.name === 'ApiListenError' && err.code === 'ERR_API_INSECURE_LISTEN' && err.message.includes(host), host)
  }
  for (const host of ['127.0.0.1', '127.9.9.9', '::1', 'localhost']) assert.doesNotThrow(() => new ApiServer({ backend, host, port: 0 }), host)
  assert.doesNotThrow(() => new ApiServer({ backend, host: '0.0.0.0', port: 0, token: TOKEN }))
  assert.throws(() => new ApiServer({ backend, host: '127.0.0.1', port: 0, allowedHosts: ['http://x'] }), ApiListenError)
})

test('the allow list: loopback and wildcard listeners answer the loopback names on their port; a LAN address only itself', () => {
  const wild = hostAllowList({ host: '0.0.0.0', port: 7600 }, ['fedmon.internal'])
  for (const h of ['localhost:7600', '127.0.0.1:7600', '[::1]:7600', 'fedmon.internal', 'fedmon.internal:8080']) assert.ok(hostAllowed(wild, h), h)
  for (const h of ['0.0.0.0:7600', 'localhost:7601', 'evil.example:7600', undefined]) assert.ok(!hostAllowed(wild, h), String(h))
  const v6 = hostAllowList({ host: '::', port: 7600 })
  assert.ok(hostAllowed(v6, '[::1]:7600'))
  assert.ok(!hostAllowed(v6, '[::]:7600'))
  const lan = hostAllowList({ host: '10.1.2.3', port: 7600 })
  assert.ok(hostAllowed(lan, '10.1.2.3:7600'))
  assert.ok(!hostAllowed(lan, 'localhost:7600'))
  const http80 = hostAllowList({ host: '127.0.0.1', port: 80 })
  assert.ok(hostAllowed(http80, 'localhost'), 'no port in Host means 80')
  const loop6 = hostAllowList({ host: '0:0:0:0:0:0:0:1', port: 7600 })
  assert.ok(hostAllowed(loop6, '[::1]:7600'))
})

test('helpers: loopback hosts, Host header parsing, JSON content types', () => {
  for (const h of ['127.0.0.1', '127.255.0.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST']) assert.ok(isLoopbackHost(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:127.0.0.1', 'localhost.evil.example', 'example.com', '']) assert.ok(!isLoopbackHost(h), h)
  assert.deepEqual(parseHostHeader('Example.COM:8080'), { host: 'example.com', port: 8080 })
  assert.deepEqual(parseHostHeader('[0::1]'), { host: '[::1]', port: null })
  for (const v of ['', ':80', 'a b', 'a@b', 'a/b', '[zz::1]:1', 'a:', 'a:1:2', 'a,b']) assert.equal(parseHostHeader(v), null, v)
  for (const v of ['application/json', 'APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json;charset=UTF8', 'application/json;']) assert.ok(isJsonContentType(v), v)
  for (const v of [undefined, '', 'text/plain', 'application/json; charset=latin1', 'application/json; boundary=x', 'application/jsonx']) assert.ok(!isJsonContentType(v), String(v))
})

test('refusals are logged at warn, rate-limited, naming what was seen', async (t) => {
  const warnings: Array<{ fields: Record<string, unknown>, msg: string }> = []
  const logger = { warn: (fields: Record<string, unknown>, msg: string) => { warnings.push({ fields, msg }) }, error: () => {} } as unknown as Logger
  const server = new ApiServer({ backend: spyBackend().backend, host: '127.0.0.1', port: 0, logger })
  const { port } = await server.start()
  t.after(async () => { await server.stop() })
  for (let i = 0; i < 5; i++) assert.equal((await raw(port, 'GET', '/v1/reports', { host: `evil${i}.example` })).status, 421)
  for (let i = 0; i < 3; i++) assert.equal((await raw(port, 'POST', '/v1/rounds', { contentType: 'text/plain', body: ROUND_BODY })).status, 415)
  assert.equal(warnings.length, 2, JSON.stringify(warnings))
  assert.equal(warnings[0].fields.host, 'evil0.example')
  assert.match(warnings[0].msg, /Host/)
  assert.equal(warnings[1].fields.contentType, 'text/plain')
})
