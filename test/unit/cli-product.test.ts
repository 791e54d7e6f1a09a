// The product's CLI commands (report, report history, status, reference) against a stub coordinator API,
// and the one-line error contract: clear message, non-zero exit code, never a stack trace.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeReport, makeRound } from './product-fixtures.js'
import { ApiClient, ApiError } from '../../shared/api-client.js'
import { sparkline, asciiChart, relativeTime, table, useColor } from '../../bin/ui/format.js'
import { historyPoints, renderHistory } from '../../bin/ui/history-view.js'

const CLI = fileURLToPath(new URL('../../bin/fedmon.js', import.meta.url))
const TOKEN = 'test-token-0123456789abcdef'

const reports = [
  makeReport({ id: 'ref-0001', kind: 'reference', auc: 0.82, to: '2026-01-07T00:00:00.000Z' }),
  makeReport({ id: 'cur-0002', auc: 0.8, to: '2026-01-08T00:00:00.000Z' }),
  makeReport({ id: 'cur-0003', auc: 0.74, to: '2026-01-09T00:00:00.000Z', alerts: [{ rule: 'auc below 0.75', metric: 'performance.auc.value', value: 0.74, threshold: 0.75, kind: 'below', message: 'performance.auc.value = 0.74 is below 0.75', firedAt: '2026-01-09T00:15:00.000Z' }] })
]
let reference: { reportId: string, setAt: string } | null = { reportId: 'ref-0001', setAt: '2026-01-07T00:20:00.000Z' }

let server: Server
let api: string
let dir: string

function send (res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-cli-'))
  writeFileSync(join(dir, 'good.token'), `${TOKEN}\n`)
  writeFileSync(join(dir, 'bad.token'), 'wrong-token-0123456789\n')
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/healthz') { send(res, 200, { status: 'ok', peerId: '12D3KooWStubCoordinator', uptimeS: 3725 }); return }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) { send(res, 401, { error: { code: 'ERR_UNAUTHORIZED', message: 'missing or wrong bearer token' } }); return }
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      const p = url.pathname
      if (p === '/v1/reports') {
        const last = Number(url.searchParams.get('last') ?? 20)
        const kind = url.searchParams.get('kind') ?? 'any'
        send(res, 200, { reports: reports.filter(r => kind === 'any' || r.round.kind === kind).slice(-last) })
      } else if (p === '/v1/reports/latest') {
        send(res, 200, reports[reports.length - 1])
      } else if (p.startsWith('/v1/reports/')) {
        const r = reports.find(x => x.id === decodeURIComponent(p.slice('/v1/reports/'.length)))
        if (r === undefined) send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no such report' } })
        else send(res, 200, r)
      } else if (p === '/v1/status') {
        send(res, 200, { status: 'ok', peerId: '12D3KooWStubCoordinator', specHash: 'ab'.repeat(32), model: 'credit-risk', agents: { total: 3, online: 2 }, lastRound: makeRound('round-cur-0003', { status: 'done', reportId: 'cur-0003', included: ['a', 'b'], dropped: ['c'], finishedAt: '2026-01-02T00:15:03.000Z' }), nextScheduledRound: null, reference })
      } else if (p === '/v1/agents') {
        send(res, 200, { agents: [
          { peerId: '12D3KooWAgentAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', online: true, lastSeen: new Date().toISOString(), lastIncludedRound: 'round-cur-0003' },
          { peerId: '12D3KooWAgentBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', online: true, lastSeen: new Date().toISOString(), lastIncludedRound: 'round-cur-0003' },
          { peerId: '12D3KooWAgentCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC', online: false, lastSeen: null, lastIncludedRound: null }
        ] })
      } else if (p === '/v1/reference' && req.method === 'GET') {
        if (reference === null) send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no reference set' } })
        else send(res, 200, reference)
      } else if (p === '/v1/reference' && req.method === 'PUT') {
        const { id } = JSON.parse(body) as { id: string }
        if (id !== 'ref-0001') { send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `no reference-capable report ${id}` } }); return }
        reference = { reportId: id, setAt: '2026-01-10T00:00:00.000Z' }
        send(res, 200, reference)
      } else if (p === '/v1/rounds' && req.method === 'POST') {
        send(res, 409, { error: { code: 'ERR_TOO_FEW_AGENTS', message: 'only 2 agents online, minAgents is 3' } })
      } else {
        send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no route' } })
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  await new Promise<void>(resolve => server.close(() => resolve()))
  rmSync(dir, { recursive: true, force: true })
})

async function fedmon (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', FEDMON_API: '', FEDMON_TOKEN_FILE: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, stdout, stderr }
}

function assertOneLineError (r: { code: number | null, stderr: string }, pattern: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`)
  assert.match(lines[0], /^fedmon: /)
  assert.match(lines[0], pattern)
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, 'no stack trace')
}

test('a wrong or missing token gives one clear line and exit 1', async () => {
  const bad = await fedmon(['report', 'latest', '--api', api, '--token-file', join(dir, 'bad.token')])
  assertOneLineError(bad, /unauthorized: wrong or missing token \(--token-file\)/)
  const none = await fedmon(['status', '--api', api])
  assertOneLineError(none, /unauthorized/)
  const missingFile = await fedmon(['report', 'history', '--api', api, '--token-file', join(dir, 'nope.token')])
  assertOneLineError(missingFile, /nope\.token: token file not found/)
})

test('an unknown report id gives one clear line and exit 1', async () => {
  const r = await fedmon(['report', 'does-not-exist', '--json', '--api', api, '--token-file', join(dir, 'good.token')])
  assertOneLineError(r, /no report with id does-not-exist/)
})

test('an unreachable coordinator and bad usage give one clear line (exit 1 and 2)', async () => {
  const r = await fedmon(['status', '--api', 'http://127.0.0.1:9'])
  assertOneLineError(r, /cannot reach the coordinator at http:\/\/127\.0\.0\.1:9 \(is it running\?\)/)
  const usage = await fedmon(['report', 'history', '--last', 'many', '--api', api])
  assertOneLineError(usage, /--last must be an integer/, 2)
  const badUrl = await fedmon(['status', '--api', 'not a url'])
  assertOneLineError(badUrl, /invalid --api URL/, 2)
})

test('a malformed config file gives one line naming the file and the field, exit 1, before anything starts', async () => {
  const yamlFile = join(dir, 'coordinator-broken.yaml')
  writeFileSync(yamlFile, 'agents: [unclosed\n')
  assertOneLineError(await fedmon(['coordinator', '--config', yamlFile]), /coordinator-broken\.yaml: not valid YAML\/JSON/)
  const fieldFile = join(dir, 'agent-bad.yaml')
  writeFileSync(fieldFile, 'identity: a.key\ncoordinator: /ip4/127.0.0.1/tcp/4001\ndata: { path: x.jsonl }\nstate: s\n')
  assertOneLineError(await fedmon(['agent', '--config', fieldFile]), /agent-bad\.yaml: coordinator: must end with \/p2p\/<coordinator peer id>/)
  assertOneLineError(await fedmon(['coordinator', '--config', join(dir, 'absent.yaml')]), /absent\.yaml: file not found/)
})

test('report --json prints the report object', async () => {
  const r = await fedmon(['report', 'cur-0002', '--json', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), reports[1])
  const latest = await fedmon(['report', '--json', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(JSON.parse(latest.stdout).id, 'cur-0003')
})

test('report prints the terminal report (the shared renderer), without colour when not a TTY', async () => {
  const r = await fedmon(['report', 'cur-0003', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /cur-0003/)
  assert.match(r.stdout, /credit-risk/)
  assert.match(r.stdout, /0\.74/)
  assert.match(r.stdout, /income/)
  assert.match(r.stdout, /is below 0\.75/)
  assert.doesNotMatch(r.stdout, /\u001b\[/, 'no ANSI codes when stdout is a pipe')
  const forced = await fedmon(['report', 'cur-0003', '--api', api, '--token-file', join(dir, 'good.token')], { NO_COLOR: '', FORCE_COLOR: '1' })
  assert.match(forced.stdout, /\u001b\[/, 'FORCE_COLOR turns colour on')
})

test('report history: table, sparkline and chart; short metric names; --json', async () => {
  const r = await fedmon(['report', 'history', '--metric', 'auc', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /performance\.auc\.value — 3 reports, oldest first/)
  assert.match(r.stdout, /WINDOW END\s+KIND\s+REPORT\s+SAMPLES\s+AUC\s+ALERTS/)
  assert.match(r.stdout, /2026-01-07 00:00Z\s+reference\s+ref-0001\s+10,000\s+0\.82\s+0/)
  assert.match(r.stdout, /cur-0003\s+10,000\s+0\.74\s+1/)
  assert.match(r.stdout, /█▆▁\s+min 0\.74\s+max 0\.82\s+last 0\.74\s+\(−0\.08 since the first\)/)
  assert.match(r.stdout, /┤/)
  const j = await fedmon(['report', 'history', '--metric', 'drift.income.psi', '--last', '2', '--json', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(j.code, 0, j.stderr)
  const parsed = JSON.parse(j.stdout) as { metric: string, points: Array<{ id: string, value: number }> }
  assert.equal(parsed.metric, 'drift.features.income.psi')
  assert.deepEqual(parsed.points.map(x => [x.id, x.value]), [['cur-0002', 0.3], ['cur-0003', 0.3]])
  const unknown = await fedmon(['report', 'history', '--metric', 'performance.nonsense', '--api', api, '--token-file', join(dir, 'good.token')])
  assertOneLineError(unknown, /no report has a numeric value for performance\.nonsense/)
})

test('status: health, agents online/offline, last and next round, reference', async () => {
  const r = await fedmon(['status', '--api', api, '--token-file', join(dir, 'good.token')])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /coordinator\s+12D3KooWStubCoordinator\s+ok \(up 1h2m\)/)
  assert.match(r.stdout, /model\s+credit-risk/)
  assert.match(r.stdout, /agents\s+2\/3 online/)
  assert.match(r.stdout, /online\s+just now\s+round-cur-0003/)
  assert.match(r.stdout, /offline\s+never\s+—/)
  assert.match(r.stdout, /last round\s+round-cur-0003\s+current\s+done/)
  assert.match(r.stdout, /2 included, 1 dropped, 3\.0 s/)
  assert.match(r.stdout, /next round\s+manual only/)
  assert.match(r.stdout, /reference\s+ref-0001/)
  const j = await fedmon(['status', '--json', '--api', api, '--token-file', join(dir, 'good.token')])
  const parsed = JSON.parse(j.stdout) as { agents: { online: number, roster: unknown[] }, health: { status: string } }
  assert.equal(parsed.agents.online, 2)
  assert.equal(parsed.agents.roster.length, 3)
  assert.equal(parsed.health.status, 'ok')
})

test('reference show and set', async () => {
  const token = ['--api', api, '--token-file', join(dir, 'good.token')]
  const show = await fedmon(['reference', 'show', ...token])
  assert.equal(show.code, 0, show.stderr)
  assert.match(show.stdout, /^ref-0001\s+set 2026-01-07T00:20:00\.000Z\s+window 2026-01-01T00:00:00\.000Z → 2026-01-07T00:00:00\.000Z/)
  const set = await fedmon(['reference', 'set', 'ref-0001', '--json', ...token])
  assert.deepEqual(JSON.parse(set.stdout), { reportId: 'ref-0001', setAt: '2026-01-10T00:00:00.000Z' })
  const missing = await fedmon(['reference', 'set', 'cur-0002', ...token])
  assertOneLineError(missing, /no report with id cur-0002 that can serve as the reference/)
})

test('every product command has --help with an example', async () => {
  for (const args of [['report'], ['report', 'history'], ['status'], ['reference'], ['reference', 'show'], ['reference', 'set'], ['demo']]) {
    const r = await fedmon([...args, '--help'])
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stdout, /Example/, args.join(' '))
  }
})

test('ApiClient: 409 carries the server message; waitForRound polls; getReference maps 404 to null', async () => {
  const client = new ApiClient({ baseUrl: api, token: TOKEN })
  await assert.rejects(client.startRound({ window: { from: 0, to: 3_600_000 } }), (e: unknown) => e instanceof ApiError && e.status === 409 && e.message === 'coordinator: only 2 agents online, minAgents is 3 (ERR_TOO_FEW_AGENTS)')
  await assert.rejects(client.startRound({ window: { from: 'yesterday', to: 1 } }), /invalid time/)
  reference = null
  assert.equal(await client.getReference(), null)
  reference = { reportId: 'ref-0001', setAt: '2026-01-07T00:20:00.000Z' }
  assert.equal((await client.listReports({ last: 1 }))[0].id, 'cur-0003')
})

test('terminal helpers: sparkline, chart, table alignment, relative time, colour policy', () => {
  assert.equal(sparkline([0, 1, null, 0.5]), '▁█ ▅')
  assert.equal(sparkline([2, 2]), '▄▄')
  const chart = asciiChart([1, 2, 3], { height: 3 }).split('\n')
  assert.equal(chart.length, 4)
  assert.match(chart[0], /3 ┤│ │ ●|3 ┤    ●/)
  assert.equal(table(['A', 'NUM'], [['x', '1'], ['yy', '10']], { align: ['left', 'right'] }), 'A   NUM\nx     1\nyy   10')
  const now = Date.parse('2026-01-01T12:00:00Z')
  assert.equal(relativeTime('2026-01-01T11:55:00Z', now), '5m ago')
  assert.equal(relativeTime('2026-01-01T14:00:00Z', now), 'in 2h')
  assert.equal(relativeTime(null, now), 'never')
  const saved = { NO_COLOR: process.env.NO_COLOR, FORCE_COLOR: process.env.FORCE_COLOR }
  delete process.env.FORCE_COLOR
  process.env.NO_COLOR = '1'
  assert.equal(useColor({ isTTY: true }), false)
  delete process.env.NO_COLOR
  assert.equal(useColor({ isTTY: true }), true)
  assert.equal(useColor({ isTTY: false }), false)
  if (saved.NO_COLOR !== undefined) process.env.NO_COLOR = saved.NO_COLOR
  if (saved.FORCE_COLOR !== undefined) process.env.FORCE_COLOR = saved.FORCE_COLOR
})

test('history view: a long history keeps the chart within a terminal width; missing values are gaps', () => {
  const many = Array.from({ length: 120 }, (_, i) => makeReport({ id: `r${i}`, auc: i % 10 === 0 ? null : 0.7 + (i % 7) / 100 }))
  const text = renderHistory(historyPoints(many, 'auc'), 'auc', { color: false })
  assert.match(text, /chart: the last 50 reports/)
  const chartLines = text.split('\n').filter(l => l.includes('┤'))
  assert.equal(chartLines.length, 8)
  for (const l of chartLines) assert.ok([...l].length <= 120, `chart line too wide: ${[...l].length}`)
  assert.match(text, /r10\s.*—/, 'a report without the metric shows a dash')
  assert.equal(renderHistory([], 'auc', { color: false }).startsWith('no reports yet'), true)
})
