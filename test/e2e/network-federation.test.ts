import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, existsSync, writeFileSync, rmSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Federation, sampleRecords, writeJsonl, isoWindow, T0, DAY, REFERENCE_WINDOW, CURRENT_WINDOW, type SampleRecord } from './helpers/federation.js'
import { runCli, killAllDaemons, killProcessGroup, stopDaemon, waitFor, httpJson, sleep } from './helpers/processes.js'
import { loadIdentity } from '../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { writeFrame } from '../../shared/net/framed.js'
import { secaggProtocol } from '../../shared/wire/protocols.js'
import { createLogger } from '../../shared/log.js'
import { loadMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import { scanWindow } from '../../agent/scan.js'
import type { Report } from '../../shared/report.js'

// One federation for every case (sequential): 5 sites, 2 more that drop out on purpose, 1 rogue roster key.
const SITES = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5']
const DROPPERS = ['site-6', 'site-7']
// Agents contribute each record to one sum only (the ledger's rule against differencing), so every round
// after the first two gets a week of its own.
const WEEKS = 6
const week = (w: number): string => isoWindow(T0 + w * 7 * DAY, T0 + (w + 1) * 7 * DAY)
const DROPOUT_WINDOW = week(2)
const AFTER_ROGUE_WINDOW = week(3)
const ABORTED_WINDOW = week(4)
const AFTER_RESTART_WINDOW = week(5)
const records: Record<string, SampleRecord[]> = {}
for (const [i, name] of [...SITES, ...DROPPERS].entries()) records[name] = sampleRecords(1000 + i, 150 + 20 * i, { weeks: WEEKS })

let fed: Federation
let dumpFile: string
const reports: Report[] = []

before(async () => {
  fed = await Federation.create({
    sites: [...SITES, ...DROPPERS].map(name => ({ name, records: records[name] })),
    extraRoster: ['rogue'],
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: 6000
  })
  dumpFile = join(fed.root, 'coordinator-frames.bin')
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  // Keep the logs of a failed run (FEDMON_KEEP_E2E=1 keeps them always).
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

// Each test body ends with `passed++`; the temp dir is removed only when all of them got there.
let passed = 0
const TESTS = 7

function windowOf (w: string): { from: number, to: number } {
  const [from, to] = w.split('..').map(s => Date.parse(s))
  return { from, to }
}

/** `fedmon evaluate` over the pooled files of `sites` (written to one directory), as JSON. */
async function evaluatePooled (sites: string[], window: string, referenceWindow?: string): Promise<Report> {
  const dir = join(fed.root, 'pooled', sites.join('+'))
  mkdirSync(dir, { recursive: true })
  writeJsonl(join(dir, 'all.jsonl'), sites.flatMap(s => records[s]))
  const args = ['evaluate', '--spec', fed.specFile, '--data', join(dir, '*.jsonl'), '--window', window, '--json']
  if (referenceWindow !== undefined) args.push('--reference-window', referenceWindow)
  const res = await runCli(args)
  assert.equal(res.code, 0, `evaluate failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as Report
}

function assertSameMetrics (got: Report, want: Report): void {
  assert.deepEqual(got.samples, want.samples)
  for (const key of ['auc'] as const) assert.deepEqual(got.performance[key], want.performance[key])
  for (const key of ['pr_auc', 'log_loss', 'brier', 'ece']) {
    const a = got.performance[key] as number | null
    const b = want.performance[key] as number | null
    if (typeof a === 'number' && typeof b === 'number') assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${key}: ${a} vs ${b}`)
    else assert.deepEqual(a, b, key)
  }
}

async function roundOk (window: string, reference = false): Promise<Report> {
  const res = await fed.runRound(window, { reference })
  assert.equal(res.code, 0, `round run failed: ${res.stderr}`)
  return JSON.parse(res.stdout) as Report
}

test('a reference round then a current round over 5 agents equal `fedmon evaluate` on the pooled files', async () => {
  const ref = await roundOk(REFERENCE_WINDOW, true)
  assert.equal(ref.round.kind, 'reference')
  assert.deepEqual([...ref.agents.included].sort(), SITES.map(s => fed.ids[s]).sort())
  assert.deepEqual(ref.agents.dropped, [])
  assertSameMetrics(ref, await evaluatePooled(SITES, REFERENCE_WINDOW))
  reports.push(ref)

  const cur = await roundOk(CURRENT_WINDOW)
  assert.equal(cur.round.kind, 'current')
  assert.equal(cur.drift.reference?.id, ref.id)
  const want = await evaluatePooled(SITES, CURRENT_WINDOW, REFERENCE_WINDOW)
  assertSameMetrics(cur, want)
  for (const [name, drift] of Object.entries(want.drift.features)) {
    assert.ok(Math.abs((cur.drift.features[name].psi ?? 0) - (drift.psi ?? 0)) < 1e-9, `psi of ${name}`)
  }
  reports.push(cur)

  const latest = await httpJson(`${fed.api}/v1/reports/latest`)
  assert.equal(latest.body.id, cur.id)
  const agents = await httpJson(`${fed.api}/v1/agents`)
  assert.equal(agents.body.agents.filter((a: { online: boolean }) => a.online).length, SITES.length)
  passed++
})

test("the coordinator's received bytes never contain a site's unmasked vector", async () => {
  const spec = loadMonitorSpec(fed.specFile)
  const layout = buildLayout(spec)
  const dump = readFileSync(dumpFile)
  assert.ok(dump.length > SITES.length * layout.length * 4 * 2, 'the dump holds the masked inputs of both rounds')
  let checkedChunks = 0
  for (const site of SITES) {
    for (const w of [REFERENCE_WINDOW, CURRENT_WINDOW]) {
      const x = await scanWindow({ spec, layout, source: { path: fed.dataGlob(site) }, window: windowOf(w) })
      const bytes = Buffer.from(x.buffer, x.byteOffset, x.byteLength)
      assert.equal(dump.indexOf(bytes), -1, `${site}'s whole vector appears in the coordinator's input`)
      // Any 64-byte aligned piece with ≥ 3 non-zero counts is specific enough that it must not appear either.
      for (let i = 0; i + 16 <= x.length; i += 16) {
        const piece = x.subarray(i, i + 16)
        if (piece.filter(v => v !== 0).length < 3) continue
        checkedChunks++
        assert.equal(dump.indexOf(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)), -1, `${site}: entries ${i}..${i + 15} appear unmasked`)
      }
    }
  }
  assert.ok(checkedChunks > 20, `checked ${checkedChunks} distinctive pieces`)
  passed++
})

test('agents killed after ShareKeys and after their masked input: the round completes over the survivors with exactly their data', async () => {
  const [afterShares, afterMasked] = DROPPERS
  const d1 = fed.startAgent(afterShares, { FEDMON_TEST_EXIT_AFTER: 'shares' })
  const d2 = fed.startAgent(afterMasked, { FEDMON_TEST_EXIT_AFTER: 'masked-input' })
  await fed.waitForOnline([...SITES, ...DROPPERS])
  const report = await roundOk(DROPOUT_WINDOW)
  assert.equal((await d1.exited).signal, 'SIGKILL')
  assert.equal((await d2.exited).signal, 'SIGKILL')
  assert.equal(report.agents.invited.length, 7)
  assert.ok(report.agents.dropped.includes(fed.ids[afterShares]), 'the agent killed after ShareKeys is dropped')
  assert.ok(!report.agents.included.includes(fed.ids[afterShares]))
  for (const s of SITES) assert.ok(report.agents.included.includes(fed.ids[s]), `${s} included`)
  const includedSites = report.agents.included.map(id => fed.siteOf(id) as string).sort()
  assert.ok(includedSites.length >= 5)
  const want = await evaluatePooled(includedSites, DROPOUT_WINDOW, REFERENCE_WINDOW)
  assertSameMetrics(report, want)
  passed++
})

test('a key not on the roster cannot connect; garbage frames get a peer disconnected; daemons keep serving', async () => {
  // 1. an agent process with a key the coordinator does not know
  const strangerId = await fed.keygen('stranger')
  const config = join(fed.root, 'stranger.json')
  // (its own roster file lists it: an agent refuses to start on a roster without its own peer id)
  writeFileSync(join(fed.root, 'stranger-roster.yaml'), `agents: [${strangerId}]\n`)
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(fed.agentConfig('site-1'), 'utf8')), identity: 'stranger.key', state: 'state/stranger', federation: { roster: 'stranger-roster.yaml' } }))
  const stranger = fed.startAgent('stranger', {}, { config })
  await waitFor('the stranger to be refused', () => fed.daemons.coordinator.log().includes(strangerId) && stranger.log().includes('cannot reach the coordinator'))
  const agents = await httpJson(`${fed.api}/v1/agents`)
  assert.ok(!JSON.stringify(agents.body).includes(strangerId))
  await stopDaemon(stranger)

  // 2. a roster member that speaks garbage
  const logger = createLogger('rogue', 'silent')
  const rogue = loadIdentity(fed.keys.rogue)
  const coordinatorId = fed.ids.coordinator
  const node: FedmonNode = await createFedmonNode({ privateKey: rogue.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gater: createAllowListGater({ isAllowed: () => true, logger }) })
  await node.start()
  try {
    const coordinatorPeer = peerIdFromString(coordinatorId)
    await node.dial(multiaddr(fed.coordinatorAddr))
    const garbage = await node.dialProtocol(coordinatorPeer, secaggProtocol('masked-input'))
    await writeFrame(garbage, Uint8Array.from([0x92, 0xc1, 0xff, 0xff, 0x13, 0x37])).catch(() => {})
    await waitFor('the coordinator to disconnect the rogue', () => node.getConnections(coordinatorPeer).length === 0)
    await node.dial(multiaddr(fed.coordinatorAddr))
    const oversized = await node.dialProtocol(coordinatorPeer, secaggProtocol('advertise-keys'))
    oversized.send(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x04])) // varint prefix: 1 GiB
    await waitFor('the coordinator to disconnect the rogue again', () => node.getConnections(coordinatorPeer).length === 0)
    assert.ok((fed.daemons.coordinator.log().match(/bad frame/g) ?? []).length >= 1)

    // 3. an agent does not admit a peer that is not in its current round
    const site1Addr = /listening on (\S+?)(,|\s|$)/.exec(fed.daemons['site-1'].log())?.[1]
    assert.ok(site1Addr !== undefined, 'site-1 printed its address')
    const opened = await node.dialProtocol(multiaddr(site1Addr), secaggProtocol('shares'), { signal: AbortSignal.timeout(5000) }).then(() => true, () => false)
    assert.equal(opened, false, 'a stranger to the round cannot open a stream to an agent')
    await waitFor('site-1 to log the refusal', () => fed.daemons['site-1'].log().includes(rogue.peerId))
  } finally {
    await node.stop()
  }
  assert.equal((await httpJson(`${fed.api}/healthz`)).status, 200)
  const after = await roundOk(AFTER_ROGUE_WINDOW)
  assert.equal(after.agents.included.length, SITES.length)
  passed++
})

test('the coordinator killed and restarted: its reports are intact and the next round succeeds', async () => {
  const before = await Promise.all(reports.map(async r => (await httpJson(`${fed.api}/v1/reports/${r.id}`)).body as Report))
  assert.deepEqual(before.map(r => r.id), reports.map(r => r.id))
  killProcessGroup(fed.daemons.coordinator, 'SIGKILL')
  await fed.daemons.coordinator.exited
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  await fed.waitForOnline(SITES, 45_000)

  // SIGTERM during a round: the round is aborted cleanly, stored as such, and the process exits 0.
  const posted = await httpJson(`${fed.api}/v1/rounds`, { method: 'POST', body: { window: windowOf(ABORTED_WINDOW) } })
  assert.equal(posted.status, 202)
  assert.deepEqual(await stopDaemon(fed.daemons.coordinator), { code: 0, signal: null })
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  const aborted = await httpJson(`${fed.api}/v1/rounds/${posted.body.roundId as string}`)
  assert.equal(aborted.body.status, 'aborted')
  assert.equal(aborted.body.failure.code, 'ERR_ABORTED')
  for (const r of before) assert.deepEqual((await httpJson(`${fed.api}/v1/reports/${r.id}`)).body, r)
  assert.equal((await httpJson(`${fed.api}/v1/reference`)).body.reportId, reports[0].id)
  await fed.waitForOnline(SITES, 45_000)
  const next = await roundOk(AFTER_RESTART_WINDOW)
  assert.equal(next.drift.reference?.id, reports[0].id)
  assertSameMetrics(next, await evaluatePooled(SITES, AFTER_RESTART_WINDOW, REFERENCE_WINDOW))
  passed++
})

/** The coordinator's store files moved aside (`suffix` added) or back: a coordinator that lost its store. */
function moveStore (from: string, to: string): void {
  for (const ext of ['', '-wal', '-shm']) {
    const file = join(fed.root, `coordinator.db${ext}`)
    if (existsSync(file + from)) renameSync(file + from, file + to)
    else if (existsSync(file + to)) rmSync(file + to)
  }
}

test('a second round over records already summed (the differencing attack) is refused by the coordinator, and by every agent', async (t) => {
  // The coordinator refuses first: the window already has a report (its guard rails), no agent is asked.
  const refused = await fed.runRound(CURRENT_WINDOW)
  assert.notEqual(refused.code, 0)
  assert.equal(refused.stderr.trim().split('\n').length, 1, `one line on stderr: ${refused.stderr}`)
  assert.match(refused.stderr, /^fedmon: coordinator: window \S+ overlaps \S+, which already has a report/)
  // A coordinator that lost its store (an old backup restored, or one that lies) asks again: the agents'
  // ledgers refuse. Same window as the first current round, with one agent fewer invited: the difference of
  // the two sums would be that agent's vector. Every agent that contributed refuses, says why, the round fails.
  await stopDaemon(fed.daemons.coordinator)
  moveStore('', '.kept')
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  await fed.waitForOnline(SITES, 45_000)
  await stopDaemon(fed.daemons['site-5'])
  await waitFor('site-5 offline', async () => (await httpJson(`${fed.api}/v1/status`)).body.agents.online === SITES.length - 1)
  const res = await fed.runRound(CURRENT_WINDOW)
  assert.notEqual(res.code, 0, 'the round must not produce a report')
  assert.equal(res.stderr.trim().split('\n').length, 1, `one line on stderr: ${res.stderr}`)
  assert.match(res.stderr, /round \S+ failed: ERR_/)
  for (const site of SITES.slice(0, 4)) {
    assert.match(fed.daemons[site].log(), /"msg":"round refused".*differencing|differencing.*"msg":"round refused"/, `${site} logs the refusal`)
  }
  // The operator sees why: each agent's signed Decline carries its ledger reason. Four invited, quorum 3: the
  // round fails as soon as two have declined (no phase deadline), and names them; the rest are recorded after.
  assert.match(res.stderr, /ERR_TOO_FEW_SURVIVORS: advertised keys: at most \d agents can still take part, need at least max\(t, minAgents, consistency quorum\) = 3; \d declined: 12D3Koo\w+ ERR_POLICY window \S+ overlaps \S+, already contributed to in round/)
  const printed = JSON.parse(res.stdout) as { roundId: string, status: string, failure: { code: string }, declined: Array<{ agent: string, code: string, reason: string, signature: string }> }
  assert.equal(printed.status, 'failed')
  assert.ok(printed.declined.length >= 2, `--json lists the declines: ${res.stdout}`)
  const online = SITES.slice(0, 4).map(s => fed.ids[s])
  for (const d of printed.declined) {
    assert.ok(online.includes(d.agent), `${d.agent} is one of the agents asked`)
    assert.equal(d.code, 'ERR_POLICY')
    assert.match(d.reason, /overlaps .*already contributed to in round .*differencing/)
    assert.match(d.signature, /^[0-9a-f]{128}$/)
  }
  const all = await waitFor('every decline recorded', async () => {
    const round = (await httpJson(`${fed.api}/v1/rounds/${printed.roundId}`)).body as { declined?: Array<{ agent: string }> }
    return (round.declined?.length ?? 0) === online.length ? round.declined : null
  }, { timeoutMs: 15_000 })
  assert.deepEqual(all?.map(d => d.agent).sort(), [...online].sort())
  t.diagnostic(`round run: ${res.stderr.trim()}`)
  // The coordinator gets its store back.
  await stopDaemon(fed.daemons.coordinator)
  moveStore('.kept', '')
  await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  fed.startAgent('site-5')
  await fed.waitForOnline(SITES, 45_000)
  passed++
})

test('a round with too few agents online is refused with the reason; SIGTERM stops every daemon with exit 0', async () => {
  for (const site of SITES.slice(2)) assert.deepEqual(await stopDaemon(fed.daemons[site]), { code: 0, signal: null })
  await waitFor('agents to go offline', async () => (await httpJson(`${fed.api}/v1/status`)).body.agents.online <= 2)
  const res = await fed.runRound(isoWindow(T0 - 7 * DAY, T0)) // a window without a report (an overlap is refused first)
  assert.notEqual(res.code, 0)
  assert.match(res.stderr, /only \d agent\(s\) online/)
  assert.equal(res.stderr.trim().split('\n').length, 1, 'one line on stderr')
  await sleep(10)
  const results = await fed.stopAll()
  for (const [name, r] of Object.entries(results)) {
    if (SITES.includes(name) || name === 'coordinator') assert.ok(r.code === 0 || r.code === null, `${name} exit ${JSON.stringify(r)}`)
  }
  assert.deepEqual(results.coordinator, { code: 0, signal: null })
  assert.ok(existsSync(join(fed.root, 'coordinator.db')))
  passed++
})
