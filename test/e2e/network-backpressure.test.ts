import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Federation, sampleRecords, SAMPLE_SPEC, T0, DAY, type SampleRecord, dayWindows } from './helpers/federation.js'
import { killAllDaemons, waitFor, httpJson, sleep, exitWithin, type Daemon, rssMiB } from './helpers/processes.js'
import { encodeFrame } from '../../shared/wire/codec.js'
import { SHARE_CIPHERTEXT_BYTES } from '../../shared/secagg/messages.js'
import { SPEC_PROTOCOL, secaggProtocol, MAX_CONTROL_STREAMS_PER_PEER, MAX_INBOUND_CONNECTIONS_PER_PEER, WRITE_HIGH_WATER_MARK } from '../../shared/wire/protocols.js'

/*
 * Backpressure at the TCP level, against a real coordinator process: a roster peer (helpers/stall-peer-child.ts)
 * asks for the ~1 MiB spec on many streams over several connections and SIGSTOPs itself as its requests leave,
 * so not one byte of the answers is ever read: its kernel receive buffers fill, TCP's window closes, and the
 * coordinator's writes to it stall for good (checked in /proc/net/tcp). While it is stopped: the coordinator's
 * RSS is sampled every 250 ms, /healthz answers, a round over the honest agents is exact, and a neighbour that
 * dies in the middle of a `shares` frame towards an agent is logged and dropped while that round finishes
 * exactly. Then the stalled writes hit their timeout, the stalled peer is SIGKILLed, and the coordinator's
 * descriptors return to their baseline.
 */

const CORE = ['site-1', 'site-2', 'site-3', 'site-4']
const DYING = 'site-5'
const WEEKS = 2
/** Rounds that wait for a dead participant last about two phases; long enough for the half-frame child. */
const PHASE_TIMEOUT_MS = 4000
/** handleControl's default: the whole spec exchange, writing the answer included, must end within this. */
const CONTROL_EXCHANGE_TIMEOUT_MS = 30_000
const records: Record<string, SampleRecord[]> = {}
// At least 200 records a week per site: every one-day window then holds more than the agents' default
// policy.minRecords (10) of each site's records.
for (const [i, name] of [...CORE, DYING].entries()) records[name] = sampleRecords(5000 + i, 200 + 10 * i, { weeks: WEEKS })

/** A spec of about 980 KiB (agents accept up to 1 MiB): each answer is four times a Yamux stream's window. */
const BIG_SPEC = {
  ...SAMPLE_SPEC,
  features: {
    ...SAMPLE_SPEC.features,
    region: { type: 'categorical', categories: Array.from({ length: 256 }, (_, i) => `region-${String(i).padStart(4, '0')}-${'x'.repeat(3900)}`) }
  }
}

const MiB = 1024 * 1024
/** Heap per libp2p connection (TCP + Noise + Yamux), measured in ../shared/docs/stack-notes.md: ~150 KiB. */
const CONNECTION_COST = 150 * 1024

/**
 * The stalled peer opens its spec streams over one connection: the answers it may hold (4 × ~1 MiB) then go
 * through one socket, more than the kernel buffers of one loopback connection take (measured: ~3.8 MiB in the
 * coordinator's send queue, ~110 KiB in the stopped peer's receive queue), so the coordinator's own writes
 * stall too. (Spread over 4 connections, each answer fits in its socket's kernel buffers and nothing stalls in
 * the coordinator: the kernel holds it.)
 */
const STALL_CONNECTIONS = 1
const STALL_STREAMS_PER_CONNECTION = 64

let fed: Federation
let coordinator: Daemon
let passed = 0
const TESTS = 4

const here = dirname(fileURLToPath(import.meta.url))
const children: ChildProcess[] = []

const freshWindow = dayWindows(WEEKS * 7)


// ---- /proc readings ----


const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** The inodes of the sockets `pid` holds (its fds that link to `socket:[N]`). */
function socketInodes (pid: number): Set<string> {
  const out = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m !== null) out.add(m[1])
    } catch { /* closed meanwhile */ }
  }
  return out
}

/** The process state letter of /proc/<pid>/stat ('T' = stopped). */
const processState = (pid: number): string => /\) (\w) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?'

interface TcpSocket { localPort: number, remotePort: number, established: boolean, txQueue: number, rxQueue: number, inode: string }

/** IPv4 TCP sockets from /proc/net/tcp: tx_queue = bytes sent but not acknowledged, rx_queue = received, unread. */
function tcpSockets (): TcpSocket[] {
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).flatMap((line) => {
    const f = line.trim().split(/\s+/)
    if (f.length < 10) return []
    const [tx, rx] = f[4].split(':').map(h => parseInt(h, 16))
    return [{ localPort: parseInt(f[1].split(':')[1], 16), remotePort: parseInt(f[2].split(':')[1], 16), established: f[3] === '01', txQueue: tx, rxQueue: rx, inode: f[9] }]
  })
}

/** Both ends of every TCP connection between the stalled peer and the coordinator's libp2p port. */
function stalledConnections (stallPid: number, coordinatorPort: number): Array<{ peerPort: number, peerRxQueue: number, coordinatorTxQueue: number }> {
  const inodes = socketInodes(stallPid)
  const all = tcpSockets()
  return all.filter(s => inodes.has(s.inode) && s.remotePort === coordinatorPort && s.established).map((peerEnd) => {
    const coordinatorEnd = all.find(s => s.localPort === coordinatorPort && s.remotePort === peerEnd.localPort)
    return { peerPort: peerEnd.localPort, peerRxQueue: peerEnd.rxQueue, coordinatorTxQueue: coordinatorEnd?.txQueue ?? 0 }
  })
}

/**
 * The coordinator's libp2p sockets (by its descriptors, on its libp2p port) connected to one of `remotePorts`.
 * The local port matters: the same ephemeral port number can be in use at once by another process's
 * connection to another port, e.g. this test's own HTTP request to the coordinator's API.
 */
function socketsTo (pid: number, remotePorts: number[]): TcpSocket[] {
  const inodes = socketInodes(pid)
  const libp2pPort = Number(/\/tcp\/(\d+)\//.exec(fed.coordinatorAddr)?.[1])
  return tcpSockets().filter(s => inodes.has(s.inode) && s.localPort === libp2pPort && remotePorts.includes(s.remotePort))
}

/** Samples the coordinator's RSS and open descriptors every 250 ms until stopped. */
function sampler (pid: number): { stop: () => Array<{ t: number, rss: number, fds: number }>, samples: Array<{ t: number, rss: number, fds: number }> } {
  const samples: Array<{ t: number, rss: number, fds: number }> = []
  const t0 = Date.now()
  const take = (): void => { try { samples.push({ t: Date.now() - t0, rss: rssMiB(pid), fds: fdCount(pid) }) } catch { /* exited */ } }
  take()
  const timer = setInterval(take, 250)
  timer.unref() // a failed test must not keep the runner alive
  return { samples, stop: () => { clearInterval(timer); take(); return samples } }
}

// ---- federation ----

before(async () => {
  fed = await Federation.create({
    sites: [...CORE, DYING].map(name => ({ name, records: records[name] })),
    extraRoster: ['stalled'],
    spec: BIG_SPEC,
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  coordinator = await fed.startCoordinator()
  for (const site of CORE) fed.startAgent(site)
  await fed.waitForOnline(CORE)
})

after(async () => {
  sampling?.stop()
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

async function cleanRound (): Promise<{ roundId: string, ms: number }> {
  await fed.waitForOnline(CORE)
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  const outcome = await fed.roundOutcome(roundId)
  await fed.assertExactReport(outcome, window, CORE)
  return { roundId, ms: Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt) }
}

async function healthy (): Promise<void> {
  assert.equal((await httpJson(`${fed.api}/healthz`)).status, 200)
  assert.equal((await httpJson(`${fed.api}/v1/status`)).status, 200)
  assert.equal(coordinator.child.exitCode, null, 'the coordinator is still running')
}

/** Parsed JSON log lines of `daemon` whose message matches and that name `peer`. */
function logLines (daemon: Daemon, msg: RegExp, peer?: string): Array<Record<string, unknown>> {
  return daemon.log().split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    try {
      const o = JSON.parse(line) as Record<string, unknown>
      return msg.test(String(o.msg)) && (peer === undefined || o.peer === peer) ? [o] : []
    } catch { return [] }
  })
}

/** Spawns a helper script of test/e2e/helpers as a child process, collecting its output. */
function spawnHelper (script: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess, out: () => string, exited: Promise<unknown> } {
  const child = spawn(process.execPath, [join(here, 'helpers', script), ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  return { child, out: () => out, exited: new Promise(resolve => child.once('close', resolve)) }
}

// ---- state shared by the tests, in order ----

let baseline = { rss: 0, fds: 0 }
let stall: { child: ChildProcess, exited: Promise<unknown>, stoppedAt: number, report: any, ports: number[] } | null = null
let sampling: ReturnType<typeof sampler> | null = null
let answerBytes = 0

test('baseline: a round over the honest agents with exact counts; RSS and descriptors after warm-up', async (t) => {
  const { roundId, ms } = await cleanRound() // also the warm-up: loads the unmask worker, compiles the hot paths
  const pid = coordinator.child.pid as number
  baseline = { rss: rssMiB(pid), fds: fdCount(pid) }
  t.diagnostic(`baseline round ${roundId}: done, exact (${ms} ms); coordinator RSS ${baseline.rss} MiB, ${baseline.fds} fds`)
  passed++
})

test('a roster peer that asks for the ~1 MiB spec on many streams and stops reading at the OS level (SIGSTOP): TCP stalls, memory bounded, honest round exact', async (t) => {
  const pid = coordinator.child.pid as number
  const coordinatorPort = Number(/\/tcp\/(\d+)\//.exec(fed.coordinatorAddr)?.[1])
  const specHash = (await httpJson(`${fed.api}/v1/status`)).body.specHash as string
  const requestFile = join(fed.root, 'spec-request.bin')
  writeFileSync(requestFile, encodeFrame({ type: 'spec-request', specHash }))
  answerBytes = encodeFrame({ type: 'spec', spec: JSON.parse(readFileSync(fed.specFile, 'utf8')) }).byteLength

  sampling = sampler(pid)
  const h = spawnHelper('stall-peer-child.js', [fed.keys.stalled, fed.coordinatorAddr, SPEC_PROTOCOL, requestFile, String(STALL_CONNECTIONS), String(STALL_STREAMS_PER_CONNECTION)])
  const line = await waitFor('the stalled peer to send its requests and stop', () => /^\{.*\}$/m.exec(h.out())?.[0], { timeoutMs: 30_000, intervalMs: 50 })
  const stallPid = h.child.pid as number
  stall = { child: h.child, exited: h.exited, stoppedAt: Date.now(), report: JSON.parse(line), ports: [] }
  await waitFor('the stalled peer to be stopped', () => processState(stallPid) === 'T', { timeoutMs: 5000, intervalMs: 20 })
  t.diagnostic(`stalled peer: ${JSON.stringify(stall.report)}; answer ${answerBytes} bytes`)

  // The stall is at the TCP level: bytes the peer's kernel received and nobody reads, bytes the coordinator's
  // kernel cannot deliver (zero window), on the peer's connections, and no progress a second later.
  await sleep(1500)
  const first = stalledConnections(stallPid, coordinatorPort)
  await sleep(1000)
  const second = stalledConnections(stallPid, coordinatorPort)
  stall.ports = second.map(c => c.peerPort)
  const sum = (xs: Array<{ peerRxQueue: number, coordinatorTxQueue: number }>, k: 'peerRxQueue' | 'coordinatorTxQueue'): number => xs.reduce((n, x) => n + x[k], 0)
  t.diagnostic(`TCP, per connection of the stalled peer: peer rx_queue ${JSON.stringify(second.map(c => c.peerRxQueue))}, coordinator tx_queue ${JSON.stringify(second.map(c => c.coordinatorTxQueue))} bytes`)
  assert.ok(second.length > 0 && second.length <= MAX_INBOUND_CONNECTIONS_PER_PEER, `the peer holds 1..${MAX_INBOUND_CONNECTIONS_PER_PEER} connections (${second.length})`)
  assert.ok(sum(second, 'peerRxQueue') > 0, 'answers are sitting unread in the stopped peer\'s kernel receive buffers')
  assert.ok(sum(second, 'coordinatorTxQueue') > 0, 'the coordinator\'s kernel holds bytes it cannot deliver (the peer\'s TCP window is closed)')
  assert.equal(sum(second, 'peerRxQueue'), sum(first, 'peerRxQueue'), 'nothing more arrived a second later: TCP is stalled, not slow')

  await healthy()
  const { roundId, ms } = await cleanRound() // the honest agents fetch the same ~1 MiB spec meanwhile
  t.diagnostic(`round ${roundId} during the stall: done, exact (${ms} ms)`)
  assert.equal(processState(stallPid), 'T', 'the peer is still stopped')
  passed++
})

test('during the stall: a neighbour dies in the middle of a `shares` frame to an agent; the agent logs it and keeps running, the round finishes exactly without it', async (t) => {
  // site-5 joins and SIGKILLs itself once its keys are advertised: it is a participant every agent admits.
  // Its identity then comes back as a raw process that writes a length prefix and half a `shares` frame to
  // site-1, and is SIGKILLed in turn.
  const dying = fed.startAgent(DYING, { FEDMON_TEST_EXIT_AFTER: 'advertise-keys' })
  await fed.waitForOnline([...CORE, DYING])
  const site1 = fed.daemons['site-1']
  const started = logLines(site1, /agent started/)[0]
  const listen = (started?.listen as string[] | undefined)?.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
  assert.ok(listen !== undefined, 'site-1 logged its listen address')
  const target = listen.includes('/p2p/') ? listen : `${listen}/p2p/${fed.ids['site-1']}`
  const frameFile = join(fed.root, 'shares.bin')
  const raw = spawnHelper('raw-peer-child.js', [fed.keys[DYING], target, secaggProtocol('shares'), frameFile, '0.5'], { RAW_PEER_WAIT_STDIN: '1' })
  await waitFor('the raw child to load', () => {
    if (raw.child.exitCode !== null) throw new Error(`raw child exited: ${raw.out()}`)
    return raw.out().includes('ready')
  }, { timeoutMs: 30_000, intervalMs: 50 })

  const window = freshWindow()
  const roundId = await fed.startRound(window)
  // A shares frame as site-5 would send it (its ciphertext cannot be checked before the frame is whole).
  writeFileSync(frameFile, encodeFrame({ type: 'shares', roundId, ciphertext: new Uint8Array(randomBytes(SHARE_CIPHERTEXT_BYTES)) }))
  await exitWithin(dying, 30_000)
  raw.child.stdin?.write('go\n')
  try {
    await waitFor('the raw child to send half a frame', () => raw.out().includes('partial frame sent'), { timeoutMs: 15_000, intervalMs: 20 })
    await sleep(200)
  } finally {
    raw.child.kill('SIGKILL')
    await raw.exited
  }
  const outcome = await fed.roundOutcome(roundId)
  const report = await fed.assertExactReport(outcome, window, CORE)
  assert.deepEqual(report.agents.dropped.map(id => fed.siteOf(id)), [DYING])
  const cut = await waitFor('site-1 to log the cut frame', () => {
    const lines = logLines(site1, /incomplete frame|bad frame/, fed.ids[DYING])
    return lines.length > 0 ? lines : null
  }, { timeoutMs: 10_000 })
  assert.equal(site1.child.exitCode, null, 'site-1 is still running')
  assert.equal(String(cut[0].protocol), secaggProtocol('shares'))
  t.diagnostic(`${raw.out().trim().split('\n').at(-1) ?? ''}; site-1: "${String(cut[0].msg)}" ${String(cut[0].code)}; round ${roundId} done, ${DYING} dropped, exact (${Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt)} ms)`)
  await healthy()
  passed++
})

test('the stalled writes are given up at the exchange timeout; after SIGKILL of the stalled peer its connections and descriptors are freed; RSS stayed bounded', async (t) => {
  assert.ok(stall !== null && sampling !== null, 'the stall test ran')
  const pid = coordinator.child.pid as number
  const stalledId = fed.ids.stalled
  // The coordinator's spec handler gives the whole exchange CONTROL_EXCHANGE_TIMEOUT_MS from the stream's
  // opening; its answers to the stopped peer cannot drain, so each held stream must end on that timeout.
  // (The kernel took ~3.9 of the 4 MiB: the answers handed down first may have left whole; those exchanges
  // ended normally, the others time out together, their streams having opened together.)
  const gaveUpLines = (): Array<Record<string, unknown>> => logLines(coordinator, /control request refused/, stalledId).filter(l => l.protocol === SPEC_PROTOCOL)
  await waitFor('the coordinator to give up its stalled spec answers', () => gaveUpLines().length > 0, { timeoutMs: CONTROL_EXCHANGE_TIMEOUT_MS + 15_000, intervalMs: 250 })
  const stalledFor = Date.now() - stall.stoppedAt
  await sleep(1000)
  const gaveUp = gaveUpLines()
  const fdsStalled = fdCount(pid)
  // The timeouts end the exchanges, not the connection: the peer is on the roster and may be merely slow.
  assert.equal(socketsTo(pid, stall.ports).length, stall.ports.length, 'the coordinator still holds the stopped peer\'s connection')
  const rssAfterTimeout = rssMiB(pid)

  stall.child.kill('SIGKILL')
  await stall.exited
  // The peer's kernel resets its connections; the coordinator closes them and their descriptors.
  const fdsAfter = await waitFor('the coordinator to close the dead peer\'s sockets, its descriptors back to the baseline', () => {
    const n = fdCount(pid)
    return socketsTo(pid, stall?.ports ?? []).length === 0 && n <= baseline.fds ? n : null
  }, { timeoutMs: 15_000, intervalMs: 100 })
  await sleep(1000)
  const samples = sampling.stop()
  const peak = Math.max(...samples.map(s => s.rss))
  const peakFds = Math.max(...samples.map(s => s.fds))
  const rssAfter = rssMiB(pid)

  /*
   * What the stopped peer can make the coordinator hold, from the limits in force:
   * - at most MAX_CONTROL_STREAMS_PER_PEER spec exchanges at once over all its connections (messenger.ts
   *   PeerBudget; the rest are reset on arrival), each until it ends or times out;
   * - each exchange holds its answer at most twice: its msgpack encoding, queued on the stream (writeFrame
   *   never queues more than WRITE_HIGH_WATER_MARK + one 256 KiB chunk, which is more than the answer, so
   *   the whole answer), and its Noise ciphertext, which the connection hands to the socket until the socket
   *   says it is full (the Yamux window does not limit it: the peer's Yamux grew each young stream's window
   *   to MiBs while the streams negotiated); what the kernel took is kernel memory, not RSS;
   * - at most MAX_INBOUND_CONNECTIONS_PER_PEER connections (gater), ~150 KiB each.
   * That is ~8.6 MiB. Twice that covers the allocator's rounding and the garbage of the encodings until the
   * next GC. The honest rounds run meanwhile are part of the samples too: over the warm-up baseline they add
   * 4 spec answers fetched by the honest agents (~4 MiB) and a few vectors, under the 32 MiB of V8's young
   * generation (2 × 16 MiB semi-spaces), which is what RSS can swing by between two scavenges. Without the
   * per-peer budget, libp2p's own limit (8 spec streams per connection, 4 connections) would let the peer
   * hold 32 answers: ≥ 64 MiB with their copies, beyond this bound.
   */
  const answer = Math.max(answerBytes, 1)
  const retained = MAX_CONTROL_STREAMS_PER_PEER * 2 * Math.min(answer, WRITE_HIGH_WATER_MARK + 256 * 1024) + MAX_INBOUND_CONNECTIONS_PER_PEER * CONNECTION_COST
  const boundMiB = Math.ceil((2 * retained) / MiB) + 32
  const byPhase = (from: number, to: number): number => Math.max(0, ...samples.filter(s => s.t >= from && s.t < to).map(s => s.rss))
  t.diagnostic(`coordinator RSS: baseline ${baseline.rss} MiB; peak during the stall ${peak} MiB (+${Math.round((peak - baseline.rss) * 10) / 10}; bound +${boundMiB} MiB, of which ${Math.round(retained / MiB * 10) / 10} MiB retained by design); after the timeout ${rssAfterTimeout} MiB; after the peer's death ${rssAfter} MiB; ${samples.length} samples over ${Math.round(samples.at(-1)?.t ?? 0) / 1000} s; max per 10 s: ${[0, 10, 20, 30, 40, 50].map(s => byPhase(s * 1000, (s + 10) * 1000)).filter(x => x > 0).join(', ')} MiB`)
  t.diagnostic(`descriptors: baseline ${baseline.fds}, peak ${peakFds}, with the peer stopped after the timeout ${fdsStalled}, after its death ${fdsAfter}; ${gaveUp.length} stalled answers given up after ${Math.round(stalledFor / 1000)} s (${[...new Set(gaveUp.map(l => String(l.code)))].join(',')})`)
  assert.ok(peak - baseline.rss < boundMiB, `RSS grew by ${peak - baseline.rss} MiB while the peer was stopped (bound ${boundMiB} MiB)`)
  assert.ok(gaveUp.every(l => l.code === 'TimeoutError'), 'the stalled exchanges ended on their timeout')
  assert.ok(gaveUp.length <= stall.report.streams.requestsCompleted, 'only the exchanges the peer held were given up')
  assert.ok(stall.report.streams.requestsCompleted <= MAX_CONTROL_STREAMS_PER_PEER, 'the peer held at most the per-peer budget of spec exchanges')
  await healthy()
  const { roundId, ms } = await cleanRound()
  t.diagnostic(`round ${roundId} after the peer's death: done, exact (${ms} ms)`)
  passed++
})
