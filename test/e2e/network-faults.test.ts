import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Packr } from 'msgpackr'
import type { Connection, Stream } from '@libp2p/interface'
import { Federation, sampleRecords, SAMPLE_SPEC, T0, DAY, type SampleRecord, dayWindows } from './helpers/federation.js'
import { killAllDaemons, waitFor, httpJson, sleep, stopDaemon, exitWithin, type Daemon, rssMiB } from './helpers/processes.js'
import { RawPeer, varint } from './helpers/raw-peer.js'
import { loadIdentity } from '../../shared/identity.js'
import { createFedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { createLogger } from '../../shared/log.js'
import { encodeFrame } from '../../shared/wire/codec.js'
import { SPEC_PROTOCOL, HELLO_PROTOCOL, secaggProtocol } from '../../shared/wire/protocols.js'
import type { Report } from '../../shared/report.js'

/*
 * Network-level adversaries and faults against a real coordinator process (loopback, built CLI), from a raw
 * libp2p peer holding a roster key (test/e2e/helpers/raw-peer.ts): a peer that asks for a large answer on
 * many streams and never reads; a flood of connections and of streams (silent, slow and bulk) on every
 * protocol; replays of captured frames (same round, older round, another key); a participant that dies in
 * the middle of a frame. After each: the coordinator still answers /healthz, a round over the honest agents
 * finishes with exactly their record counts, and the coordinator's RSS (/proc/<pid>/status) stays bounded.
 */

const CORE = ['site-1', 'site-2', 'site-3', 'site-4']
const DYING = 'site-5'
// Long enough that the replay test's frames fit inside the masked-input phase that a hung agent holds open
// on a loaded machine (CI runs two test files at once).
const PHASE_TIMEOUT_MS = 6000
const WEEKS = 2
const records: Record<string, SampleRecord[]> = {}
// At least 200 records a week per site: every one-day window then holds more than the agents' default
// policy.minRecords (10) of each site's records.
for (const [i, name] of [...CORE, DYING].entries()) records[name] = sampleRecords(3000 + i, 200 + 10 * i, { weeks: WEEKS })

/**
 * A spec of about 980 KiB (a vocabulary of long category names; agents accept up to 1 MiB): its answer on the
 * spec protocol exceeds what a Yamux stream window (256 KiB, grown up to 1 MiB while the stream negotiates)
 * lets through, so a peer that stops reading makes the coordinator's write block.
 */
const BIG_SPEC = {
  ...SAMPLE_SPEC,
  features: {
    ...SAMPLE_SPEC.features,
    region: { type: 'categorical', categories: Array.from({ length: 256 }, (_, i) => `region-${String(i).padStart(4, '0')}-${'x'.repeat(3900)}`) }
  }
}

/** Generous: the coordinator idles at ~100–150 MiB; this bounds growth from one misbehaving roster peer. */
const RSS_GROWTH_BOUND_MIB = 256

let fed: Federation
let dumpFile: string
let coordinator: Daemon
let passed = 0
const TESTS = 6
const packr = new Packr({ useRecords: false, moreTypes: true })

const freshWindow = dayWindows(WEEKS * 7)



/** Samples the coordinator's RSS every 100 ms until stopped; returns the peak. */
function rssSampler (pid: number): { stop: () => number } {
  let peak = rssMiB(pid)
  const timer = setInterval(() => { try { peak = Math.max(peak, rssMiB(pid)) } catch { /* exited */ } }, 100)
  return { stop: () => { clearInterval(timer); return Math.max(peak, rssMiB(pid)) } }
}

before(async () => {
  fed = await Federation.create({
    sites: [...CORE, DYING].map(name => ({ name, records: records[name] })),
    extraRoster: ['flooder', 'hog'],
    spec: BIG_SPEC,
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  dumpFile = join(fed.root, 'coordinator-frames.bin')
  coordinator = await fed.startCoordinator({ FEDMON_TEST_DUMP_FRAMES: dumpFile })
  for (const site of CORE) fed.startAgent(site)
  await fed.waitForOnline(CORE)
})

after(async () => {
  await Promise.all(hogs.map(async h => await h.stop().catch(() => {})))
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

async function cleanRound (): Promise<{ report: Report, roundId: string }> {
  await fed.waitForOnline(CORE)
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  const report = await fed.assertExactReport(await fed.roundOutcome(roundId), window, CORE)
  return { report, roundId }
}

async function healthy (): Promise<void> {
  assert.equal((await httpJson(`${fed.api}/healthz`)).status, 200)
  assert.equal((await httpJson(`${fed.api}/v1/status`)).status, 200)
  assert.equal(coordinator.child.exitCode, null, 'the coordinator is still running')
}

/** Coordinator log lines (parsed) whose message matches and that name `peer`. */
function coordinatorLines (msg: RegExp, peer?: string): Array<Record<string, unknown>> {
  return coordinator.log().split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    try {
      const o = JSON.parse(line) as Record<string, unknown>
      return msg.test(String(o.msg)) && (peer === undefined || o.peer === peer) ? [o] : []
    } catch { return [] }
  })
}

/** Every frame the coordinator received so far (the dump is the frames' bytes back to back). */
function capturedFrames (): Array<{ type: string, roundId: string, bytes: Uint8Array }> {
  const buf = readFileSync(dumpFile)
  const out: Array<{ type: string, roundId: string, bytes: Uint8Array }> = []
  let start = 0
  packr.unpackMultiple(buf, (value: any, _start?: number, end?: number) => {
    const stop = end ?? buf.length
    out.push({ type: String(value?.type), roundId: String(value?.roundId), bytes: buf.subarray(start, stop) })
    start = stop
  })
  return out
}

/** Opens up to `n` streams on `protocol`, round robin over `conns`; counts the outcomes. */
async function openMany (conns: Connection[], protocol: string, n: number, use: (s: Stream) => Promise<void> | void = () => {}): Promise<{ opened: Stream[], failed: number }> {
  const opened: Stream[] = []
  let failed = 0
  const BATCH = 64
  for (let i = 0; i < n; i += BATCH) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(BATCH, n - i) }, async (_, j) => {
      const live = conns.filter(c => c.status === 'open')
      const conn = live[(i + j) % Math.max(1, live.length)]
      if (conn === undefined) throw new Error('no open connection')
      const s = await RawPeer.openOn(conn, protocol, { signal: AbortSignal.timeout(5000) })
      await use(s)
      return s
    }))
    for (const r of batch) { if (r.status === 'fulfilled') opened.push(r.value); else failed++ }
  }
  return { opened, failed }
}

/** Each node dials `perNode` fresh connections one after the other, all nodes at once. */
async function floodConnections (peers: RawPeer[], perNode: number): Promise<{ ok: number, failed: number }> {
  let ok = 0
  let failed = 0
  await Promise.all(peers.map(async (p) => {
    for (let i = 0; i < perNode; i++) {
      try { await p.connect({ fresh: true, signal: AbortSignal.timeout(10_000) }); ok++ } catch { failed++ }
    }
  }))
  return { ok, failed }
}

const openConns = (peers: RawPeer[]): Connection[] => peers.flatMap(p => p.connections()).filter(c => c.status === 'open')

const stillOpen = (streams: Stream[]): number => streams.filter(s => s.status === 'open').length

let hogs: RawPeer[] = []
let hogStartedAt = 0

test('baseline: a round over the honest agents with exact counts', async (t) => {
  const { roundId } = await cleanRound()
  t.diagnostic(`baseline round ${roundId}: coordinator RSS ${rssMiB(coordinator.child.pid as number)} MiB`)
  passed++
})

test('a roster peer that asks for the ~1 MiB spec on many streams and never reads: throttled per peer, memory bounded, honest agents served', async (t) => {
  const pid = coordinator.child.pid as number
  const rssBefore = rssMiB(pid)
  const sampler = rssSampler(pid)
  const specHash = (await httpJson(`${fed.api}/v1/status`)).body.specHash as string
  const request = encodeFrame({ type: 'spec-request', specHash })
  const specBytes = encodeFrame({ type: 'spec', spec: JSON.parse(readFileSync(fed.specFile, 'utf8')) }).byteLength
  hogs = await RawPeer.startMany(4, { keyFile: fed.keys.hog, target: fed.coordinatorAddr })
  hogStartedAt = Date.now()
  const CONNECTIONS = 24
  const STREAMS = 1500
  await floodConnections(hogs, CONNECTIONS / hogs.length)
  const conns = openConns(hogs).length
  // pause(): stop reading, so Yamux stops granting window and the coordinator's answer backs up there.
  const { opened, failed } = await openMany(openConns(hogs), SPEC_PROTOCOL, STREAMS, async (s) => { s.pause(); await hogs[0].writeFrame(s, request) })
  await sleep(1500) // let the coordinator answer what it accepted (and refuse the rest)
  const open = stillOpen(opened)
  const received = opened.map(s => s.readBufferLength)
  const during = sampler.stop()
  t.diagnostic(`hog: bytes of the answer that reached its paused streams: max ${Math.max(0, ...received)}, total ${received.reduce((a, b) => a + b, 0)} (answer ${specBytes} bytes)`)
  t.diagnostic(`hog: ${conns}/${CONNECTIONS} connections accepted, ${opened.length}/${STREAMS} spec requests written (${failed} refused), ${open} still open after 1.5 s; coordinator RSS ${rssBefore} → peak ${during} MiB`)
  await healthy()
  const { roundId } = await cleanRound() // the honest agents fetch the same spec on their own connections
  t.diagnostic(`round ${roundId} during the hog: done, exact`)
  assert.ok(during - rssBefore < RSS_GROWTH_BOUND_MIB, `RSS grew by ${during - rssBefore} MiB (bound ${RSS_GROWTH_BOUND_MIB})`)
  const throttled = coordinatorLines(/stream refused: too many \/fedmon\/spec/, fed.ids.hog)
  assert.ok(throttled.length > 0, 'the coordinator refused the hog\'s spec streams over its per-peer budget')
  // The hog stays connected, never reading; the last test reports which of its answers the coordinator gave up.
  passed++
})

test('a flood of connections and streams from a roster key: throttled, memory bounded, a round during it is exact', async (t) => {
  const pid = coordinator.child.pid as number
  const rssBefore = rssMiB(pid)
  const sampler = rssSampler(pid)
  const flooders = await RawPeer.startMany(30, { keyFile: fed.keys.flooder, target: fed.coordinatorAddr })
  try {
    // 1. 300 connections with the same roster key: 30 nodes (as 30 processes would) dialling 10 each.
    const DIALS = 300
    const dials = await floodConnections(flooders, DIALS / flooders.length)
    await sleep(500)
    const held = openConns(flooders).length
    t.diagnostic(`connection flood: ${dials.ok}/${DIALS} dials completed (${dials.failed} failed), ${held} connections open after 0.5 s`)
    if (held === 0) await flooders[0].connect({ fresh: true })

    // 2. A round runs while the streams flood.
    const window = freshWindow()
    const roundId = await fed.startRound(window)

    // 3. Silent streams (opened, nothing written) on every protocol the coordinator serves.
    const protocols = [
      ...['advertise-keys', 'share-receipt', 'masked-input', 'consistency-signature', 'unmask-shares'].map(secaggProtocol),
      HELLO_PROTOCOL, SPEC_PROTOCOL, '/ipfs/id/1.0.0', '/ipfs/ping/1.0.0'
    ]
    const silent: Record<string, string> = {}
    let silentOpen = 0
    for (const protocol of protocols) {
      const { opened, failed } = await openMany(openConns(flooders), protocol, 200)
      silent[protocol.split('/').slice(-2).join('/')] = `${opened.length} ok/${failed} refused`
      silentOpen += stillOpen(opened)
    }
    t.diagnostic(`silent streams (200 per protocol): ${JSON.stringify(silent)}; ${silentOpen} still open`)

    // 4. Slow writers: a length prefix and then a byte at a time on the vector protocol.
    if (openConns(flooders).length === 0) await flooders[0].connect({ fresh: true })
    const slow = await openMany(openConns(flooders), secaggProtocol('masked-input'), 100, (s) => { s.send(varint(60_000)) })
    for (let i = 0; i < 5; i++) {
      for (const s of slow.opened) { try { if (s.status === 'open') s.send(Uint8Array.of(0x90)) } catch { /* reset by the coordinator */ } }
      await sleep(200)
    }
    t.diagnostic(`slow writers: ${slow.opened.length}/100 opened, ${stillOpen(slow.opened)} still open`)

    // 5. Bulk: frames of almost 8 MiB declared on the receipt/unmask protocols, 4 MiB of each sent.
    if (openConns(flooders).length === 0) await flooders[0].connect({ fresh: true })
    const chunk = new Uint8Array(64 * 1024).fill(0xcc)
    let bulkBytes = 0
    const bulk = await openMany(openConns(flooders), secaggProtocol('unmask-shares'), 32, async (s) => {
      s.send(varint(8 * 1024 * 1024 - 100))
      for (let sent = 0; sent < 4 * 1024 * 1024 && s.status === 'open'; sent += chunk.byteLength) {
        try { if (!s.send(chunk)) await new Promise(resolve => setTimeout(resolve, 5)) } catch { break }
        bulkBytes += chunk.byteLength
      }
    })
    const duringFlood = sampler.stop()
    t.diagnostic(`bulk: ${bulk.opened.length}/32 streams, ${Math.round(bulkBytes / 1048576)} MiB handed to the transport, ${stillOpen(bulk.opened)} still open; coordinator RSS ${rssBefore} → peak ${duringFlood} MiB`)

    await healthy()
    const outcome = await fed.roundOutcome(roundId)
    await fed.assertExactReport(outcome, window, CORE)
    t.diagnostic(`round ${roundId} during the flood: done, exact (${Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt)} ms)`)
    assert.ok(duringFlood - rssBefore < RSS_GROWTH_BOUND_MIB, `RSS grew by ${duringFlood - rssBefore} MiB during the flood (bound ${RSS_GROWTH_BOUND_MIB})`)
  } finally {
    await Promise.all(flooders.map(async f => await f.stop()))
  }
  await sleep(1000)
  t.diagnostic(`after the flood: coordinator RSS ${rssMiB(pid)} MiB, ${coordinatorLines(/connection refused|too many/i).length} refusal lines in its log`)
  await healthy()
  await cleanRound()
  passed++
})

test('replayed frames (same round after acceptance, an older round, another roster key) are refused and change nothing', async (t) => {
  const before = capturedFrames()
  const oldRound = before.filter(f => f.type !== 'undefined' && f.roundId !== 'undefined')
  assert.ok(oldRound.some(f => f.type === 'masked-input'), 'earlier rounds\' frames were captured')
  // site-5 takes part and hangs after its share receipt (connected, silent): it is in the masking set, so the
  // masked-input phase waits out its deadline for site-5's input, which leaves time to replay inside that
  // phase. (An agent that died instead would be a dropout at once: its connection closes.)
  // Everything is dialled before the round, so the replays fit in the masked-input phase's wait for site-5.
  // (site-1's second node only connects once the round is under way: the coordinator reaches the real
  // site-1 over its first, older connection, and this one is closed right after the replays.)
  const site1 = fed.ids['site-1']
  const asSite1 = await RawPeer.start({ keyFile: fed.keys['site-1'], target: fed.coordinatorAddr })
  const asOther = await RawPeer.start({ keyFile: fed.keys.flooder, target: fed.coordinatorAddr })
  await asOther.connect()
  const hung = fed.startAgent(DYING, { FEDMON_TEST_STALL_AFTER: 'share-receipt' })
  try {
    await fed.waitForOnline([...CORE, DYING])
    const window = freshWindow()
    const roundId = await fed.startRound(window)
    const current = await waitFor('the 4 honest masked inputs of this round in the dump', () => {
      const inputs = capturedFrames().filter(f => f.roundId === roundId && f.type === 'masked-input')
      return inputs.length >= CORE.length ? inputs : null
    }, { timeoutMs: 15_000, intervalMs: 20 })
    const inputsAt = Date.now()
    await asSite1.connect({ fresh: true })
    const send = async (peer: RawPeer, f: { type: string, bytes: Uint8Array }): Promise<void> => {
      const s = await peer.open(secaggProtocol(f.type))
      await peer.writeFrame(s, f.bytes)
      await s.close({ signal: AbortSignal.timeout(5000) }).catch(() => {})
    }
    let replayedAt = 0
    try {
      for (const f of current) await send(asSite1, f) // this round, after site-1's own input was accepted
      for (const f of current) await send(asOther, f) // this round, from a roster key that is not a participant
      replayedAt = Date.now()
      for (const f of oldRound.slice(-12)) await send(asSite1, f) // frames of earlier rounds
    } finally {
      // Close at once: the coordinator must keep reaching the real site-1 over its own connection.
      await asSite1.stop()
      await asOther.stop()
    }
    const outcome = await fed.roundOutcome(roundId)
    const report = await fed.assertExactReport(outcome, window, CORE)
    assert.deepEqual(report.agents.dropped.map(id => fed.siteOf(id)), [DYING])
    const refused = (peer: string): string[] => coordinatorLines(/message refused/, peer).filter(l => String(l.err).includes(roundId) || l.code !== undefined).map(l => String(l.code))
    const dupes = refused(site1).filter(c => c === 'ERR_DUPLICATE')
    const strangers = refused(fed.ids.flooder).filter(c => c === 'ERR_UNKNOWN_SENDER')
    const stale = coordinatorLines(/message for no running round/, site1).filter(l => l.round !== roundId)
    const late = coordinatorLines(/message for no running round/).filter(l => l.round === roundId && l.type === 'masked-input' && (l.peer === site1 || l.peer === fed.ids.flooder)).length
    const left = coordinatorLines(/participant disconnected/).filter(l => l.round === roundId).map(l => fed.siteOf(String(l.peer)))
    t.diagnostic(`replays: site-1 key, same round → ${dupes.length}/${current.length} refused (${[...new Set(dupes)].join(',')}); flooder key → ${strangers.length}/${current.length} refused (${[...new Set(strangers)].join(',')}); older rounds' frames → ${stale.length}/12 dropped as for no running round; round done, ${DYING} dropped, exact; same-round replays sent ${replayedAt - inputsAt} ms after the 4th input (phase deadline ${PHASE_TIMEOUT_MS} ms), ${late} arrived after the round, disconnected during it: [${left.join(',')}]`)
    // A same-round replay that arrives after the round ended is dropped as late, which would not test the
    // refusal: the phase deadline leaves the replays several seconds (they take ~0.1 s on an idle machine).
    assert.equal(late, 0, `every same-round replay arrived while the round ran (${replayedAt - inputsAt} ms after the 4th input; disconnected: [${left.join(',')}])`)
    assert.equal(dupes.length, current.length, 'every same-round replay from site-1 is refused')
    assert.equal(strangers.length, current.length, 'every replay from the other key is refused')
    assert.equal(stale.length, 12, 'every older-round frame is dropped')
  } finally {
    await stopDaemon(hung)
  }
  await healthy()
  passed++
})

test('a participant dies in the middle of its masked-input frame: logged, freed, the round finishes with the survivors; then the hog leaves', async (t) => {
  const frame = capturedFrames().find(f => f.type === 'masked-input')
  assert.ok(frame !== undefined)
  const frameFile = join(fed.root, 'masked-input.bin')
  writeFileSync(frameFile, frame.bytes)
  const dying = fed.startAgent(DYING, { FEDMON_TEST_EXIT_AFTER: 'shares' })
  await fed.waitForOnline([...CORE, DYING])
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  await exitWithin(dying, 30_000)
  // site-5's identity comes back as a raw process, writes half a masked input and is SIGKILLed.
  const childScript = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'raw-peer-child.js')
  assert.ok(existsSync(childScript))
  const child = spawn(process.execPath, [childScript, fed.keys[DYING], fed.coordinatorAddr, secaggProtocol('masked-input'), frameFile, '0.5'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const childExited = new Promise(resolve => child.once('close', resolve))
  try {
    await waitFor('the child to send half a frame', () => out.includes('partial frame sent'), { timeoutMs: 15_000, intervalMs: 50 })
    await sleep(200)
  } finally {
    child.kill('SIGKILL')
    await childExited
  }
  const outcome = await fed.roundOutcome(roundId)
  const report = await fed.assertExactReport(outcome, window, CORE)
  assert.deepEqual(report.agents.dropped.map(id => fed.siteOf(id)), [DYING])
  const cut = await waitFor('the coordinator to log the cut frame', () => {
    const lines = [...coordinatorLines(/incomplete frame|bad frame/, fed.ids[DYING])]
    return lines.length > 0 ? lines : null
  }, { timeoutMs: 10_000 })
  t.diagnostic(`${out.trim()}; coordinator: "${String(cut[0].msg)}" ${String(cut[0].code)}; round ${roundId} done, ${DYING} dropped, exact (${Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt)} ms)`)
  await healthy()

  // The hog of the second test never read: the coordinator's writes to it must have been given up.
  const hogId = fed.ids.hog
  const waitLeft = hogStartedAt + 35_000 - Date.now()
  // Yamux grants window as data arrives, not as it is read, and grows it while a stream is young: most
  // answers reach even a paused peer's buffers. Those that do block are given up after the 30 s timeout.
  if (waitLeft > 0) await sleep(waitLeft)
  const gaveUp = coordinatorLines(/control request refused/, hogId)
  const rssBefore = rssMiB(coordinator.child.pid as number)
  await Promise.all(hogs.map(async h => await h.stop()))
  hogs = []
  await sleep(500)
  t.diagnostic(`hog: ${gaveUp.length} spec writes given up (${[...new Set(gaveUp.map(l => String(l.code)))].join(',')}); RSS with the hog connected ${rssBefore} MiB, after it left ${rssMiB(coordinator.child.pid as number)} MiB`)
  await cleanRound()
  passed++
})

test('an impostor on a stolen address with another key: dials to it fail Noise, it receives nothing, the round finishes without the real agent', async (t) => {
  // 5 participants (t = 3), so losing one after its keys were advertised still leaves enough share holders.
  fed.startAgent(DYING)
  await fed.waitForOnline([...CORE, DYING])
  const victim = 'site-4'
  const stolen = /listening on (\S+?)(,|\s|$)/.exec(fed.daemons[victim].log())?.[1]
  assert.ok(stolen !== undefined, `${victim} printed its address`)
  const listenAddr = stolen.replace(/\/p2p\/[^/]+$/, '')
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  await waitFor(`${victim} to accept the round`, () => fed.daemons[victim].log().includes(roundId))
  fed.daemons[victim].child.kill('SIGKILL')
  await fed.daemons[victim].exited
  // The impostor binds the victim's address at once with a key of its own (the flooder's: even a roster
  // member cannot take another member's place) and records every connection and stream that reaches it.
  const impostorKey = loadIdentity(fed.keys.flooder)
  const impostor = await createFedmonNode({ privateKey: impostorKey.privateKey, listen: [listenAddr], gater: createAllowListGater({ isAllowed: () => true, logger: createLogger('impostor', 'silent') }) })
  const reached: string[] = []
  impostor.addEventListener('connection:open', (evt) => { reached.push(`connection from ${evt.detail.remotePeer.toString()}`) })
  for (const type of ['shares', 'key-set', 'masking-set', 'survivors', 'unmask-request'] as const) {
    await impostor.handle(secaggProtocol(type), (stream) => { reached.push(`stream ${type}`); stream.abort(new Error('impostor')) })
  }
  await impostor.start()
  let dialError = ''
  try {
    // A dial of the victim's full multiaddr (address + peer id) reaches the impostor's socket and fails the
    // Noise handshake: the remote proves a different key than the /p2p/ id asked for.
    const prober = await RawPeer.start({ keyFile: fed.keys.hog, target: stolen })
    try {
      await assert.rejects(prober.connect({ signal: AbortSignal.timeout(10_000) }), (err: Error) => { dialError = `${err.name}: ${err.message}`; return true })
    } finally {
      await prober.stop()
    }
    const outcome = await fed.roundOutcome(roundId)
    const report = await fed.assertExactReport(outcome, window, [...CORE.filter(s => s !== victim), DYING])
    assert.ok(report.agents.dropped.includes(fed.ids[victim]), `${victim} dropped`)
    assert.deepEqual(reached, [], 'nothing reached the impostor: no connection, no stream')
    t.diagnostic(`impostor on ${listenAddr} with the flooder's key; a dial of ${victim}'s multiaddr: ${dialError.slice(0, 160)}; round ${roundId} done without ${victim}, exact; connections/streams that reached the impostor: ${reached.length}`)
  } finally {
    await impostor.stop()
  }
  fed.startAgent(victim)
  await fed.waitForOnline([...CORE, DYING])
  const next = freshWindow()
  await fed.assertExactReport(await fed.roundOutcome(await fed.startRound(next)), next, [...CORE, DYING])
  await healthy()
  passed++
})
