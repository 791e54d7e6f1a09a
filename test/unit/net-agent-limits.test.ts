import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Connection, Stream } from '@libp2p/interface'
import { generateIdentity, type Identity } from '../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { SecAggMessenger } from '../../shared/net/messenger.js'
import { varint } from '../../shared/net/framed.js'
import { encodeFrame } from '../../shared/wire/codec.js'
import { agentFrameLimitFor, secaggProtocol, CONTROL_FRAME_LIMIT, SHARES_FRAME_LIMIT, MAX_NEIGHBOUR_STREAMS_PER_PEER, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_ADDR_CHARS } from '../../shared/wire/protocols.js'
import { MAX_PARTICIPANTS, MAX_SPEC_CHARS, SHARE_CIPHERTEXT_BYTES, type SecAggMessage } from '../../shared/secagg/messages.js'
import { createLogger } from '../../shared/log.js'
import { waitFor } from '../e2e/helpers/processes.js'
import { startHarness, type Harness } from './agent-harness.js'

/*
 * Item 7.3 of the security review: the agent's frame limits per message type. Coordinator → agent types are
 * taken from the coordinator only (refused before a byte is read), a neighbour's `shares` frame is a share
 * pair's worth, the coordinator's frames are bounded by the agent's roster size, and a neighbour has fewer
 * streams in flight than the coordinator.
 */

const logger = createLogger('test', 'silent')
const cleanups: Array<() => Promise<void>> = []
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}) })

// The largest values the schemas allow: a 128-character round id of 3-byte characters, 64-byte signatures.
const ROUND = '€'.repeat(128)
const SIG = new Uint8Array(64)

function largestHonest (n: number): SecAggMessage[] {
  const indexes = Array.from({ length: n }, (_, i) => n - 1 - i) // large indexes first: the widest msgpack ints
  // Each participant with the addresses the coordinator keeps at most (selectAnnouncedAddrs).
  const addrLength = Math.floor(MAX_ANNOUNCED_ADDR_CHARS / MAX_ANNOUNCED_ADDRS)
  const addrs = Array.from({ length: MAX_ANNOUNCED_ADDRS }, (_, i) => `/dns4/${'a'.repeat(addrLength - 20)}${i}/tcp/65535`.slice(0, addrLength))
  const key = new Uint8Array(32)
  return [
    {
      type: 'announce',
      roundId: ROUND,
      protocol: 'fedmon-secagg/1',
      coordinator: 'c'.repeat(128),
      participants: indexes.map(i => ({ id: `12D3KooW${String(i).padStart(44, 'x')}`.padEnd(128, 'y'), addrs })),
      window: { from: -(2 ** 52), to: 2 ** 52 },
      specHash: 'f'.repeat(64),
      vectorLength: 2 ** 28,
      maxEntry: 2 ** 32 - 1,
      minAgents: 2 ** 31,
      threshold: 2 ** 31,
      degree: 2 ** 31,
      graph: 'sparse',
      phaseTimeoutMs: 2 ** 31,
      issuedAt: 2 ** 52,
      reference: true,
      signature: SIG,
      spec: '€'.repeat(MAX_SPEC_CHARS)
    },
    // a large round's key set brings each neighbour's addresses (the roster-bitmap Announce names none)
    { type: 'key-set', roundId: ROUND, keys: indexes.map(index => ({ index, cPk: key, sPk: key, bCommit: key, signature: SIG, addrs })) },
    { type: 'masking-set', roundId: ROUND, members: indexes, signature: SIG },
    { type: 'survivors', roundId: ROUND, members: indexes, signature: SIG },
    { type: 'unmask-request', roundId: ROUND, survivors: indexes, dropped: indexes, signatures: indexes.map(index => ({ index, signature: SIG })), signature: SIG },
    { type: 'abort', roundId: ROUND, code: 'E'.repeat(64), reason: '€'.repeat(1024), signature: SIG },
    { type: 'shares', roundId: ROUND, ciphertext: new Uint8Array(SHARE_CIPHERTEXT_BYTES) }
  ]
}

test('agent frame limits: the largest honest message of every agent-bound type fits, for 5, 1000 and the most participants', () => {
  for (const n of [5, 1000, MAX_PARTICIPANTS]) {
    for (const m of largestHonest(n)) {
      const size = encodeFrame(m).byteLength
      const limit = agentFrameLimitFor(m.type, n)
      assert.ok(size <= limit, `${m.type} with ${n} participants: ${size} bytes > limit ${limit}`)
      // Not much more than needed either (the share pair and the abort have fixed sizes).
      if (m.type !== 'shares' && m.type !== 'abort') assert.ok(limit < size * 2 + 64 * 1024, `${m.type} with ${n}: limit ${limit} is far above the largest honest ${size}`)
    }
  }
  assert.ok(SHARES_FRAME_LIMIT < 2048, 'a share pair and its envelope')
  // For a federation of 5, nothing but the Announce (which may carry a 1 Mi-character spec) comes near the old flat limit.
  for (const type of ['key-set', 'masking-set', 'survivors', 'unmask-request', 'abort', 'shares']) assert.ok(agentFrameLimitFor(type, 5) <= 16 * 1024, type)
  assert.ok(agentFrameLimitFor('announce', 5) < CONTROL_FRAME_LIMIT / 2)
})

// ---- the real agent daemon ----

let h: Harness
let p: Identity
let q: Identity
let peerNode: FedmonNode

async function harness (): Promise<Harness> {
  if (h !== undefined) return h
  const self = await generateIdentity()
  ;[p, q] = await Promise.all([generateIdentity(), generateIdentity()])
  h = await startHarness({ self, roster: [self.peerId, p.peerId, q.peerId] })
  cleanups.push(h.stop)
  peerNode = await createFedmonNode({ privateKey: p.privateKey, listen: [], gater: createAllowListGater({ isAllowed: () => true, logger }) })
  await peerNode.start()
  cleanups.push(async () => { await peerNode.stop() })
  // A round listing P: the agent admits P (a participant on its roster) from now on.
  await h.announce('round-1', [{ id: self.peerId, addrs: [] }, { id: p.peerId, addrs: [] }, { id: q.peerId, addrs: [] }])
  await waitFor('the agent to accept round-1', () => h.logs().some(l => l.msg === 'round accepted' && l.round === 'round-1'), { timeoutMs: 10_000, intervalMs: 20 })
  return h
}

async function connect (): Promise<Connection> {
  return await peerNode.dial(h.agentAddr, { signal: AbortSignal.timeout(5_000) })
}

async function openRaw (conn: Connection, type: string): Promise<Stream> {
  return await conn.newStream(secaggProtocol(type), { signal: AbortSignal.timeout(5_000), maxOutboundStreams: 1000 })
}

const stats = (): { rejected: number, bytesIn: number, framesIn: number } => {
  const s = h.agent.stats
  assert.ok(s !== null)
  return { rejected: s.rejected, bytesIn: s.bytesIn, framesIn: s.framesIn }
}

test('a participant sending a coordinator-type frame is refused before the agent reads a byte, and disconnected', async () => {
  await harness()
  const before = stats()
  const conn = await connect()
  for (const type of ['announce', 'unmask-request']) {
    if (conn.status !== 'open') break
    const stream = await openRaw(conn, type).catch(() => null)
    if (stream === null) break // the connection went with the first refusal
    // A length prefix claiming 100 MiB, then nothing: an agent that waited to read it would hang here.
    // (The agent may have reset the stream already, as soon as the protocol was negotiated.)
    try { stream.send(varint(100 * 1024 * 1024)) } catch { /* refused before we wrote */ }
    await waitFor(`the ${type} stream to be reset`, () => stream.status !== 'open', { timeoutMs: 3_000, intervalMs: 10 })
  }
  await waitFor('the participant to be disconnected', () => conn.status !== 'open', { timeoutMs: 3_000, intervalMs: 10 })
  const now = stats()
  assert.ok(now.rejected > before.rejected)
  assert.equal(now.bytesIn, before.bytesIn, 'not a byte of the frame was read')
  assert.ok(h.logs().some(l => l.msg?.includes('may not send this message type') === true && l.peer === p.peerId), 'the refusal is logged with the peer')
})

test('an oversized shares frame is refused at its length prefix; the agent keeps serving the same peer', async () => {
  await harness()
  const before = stats()
  const conn = await connect()
  const stream = await openRaw(conn, 'shares')
  // Over the share-pair limit, though far under the old 16 KiB: the body is never sent.
  stream.send(varint(SHARES_FRAME_LIMIT + 1))
  stream.send(new Uint8Array(64)) // a start of the body: still refused at the prefix
  await waitFor('the shares stream to be reset', () => stream.status !== 'open', { timeoutMs: 3_000, intervalMs: 10 })
  assert.equal(stats().bytesIn, before.bytesIn)
  assert.ok(stats().rejected > before.rejected)
  assert.ok(h.logs().some(l => l.msg?.startsWith('bad frame') === true && l.code === 'ERR_FRAME_TOO_LARGE' && l.peer === p.peerId))

  // The agent still takes a well-formed shares message from this participant (acknowledged).
  const sender = new SecAggMessenger({ node: peerNode, logger, accept: [], frameLimit: () => 1024, onMessage: () => {} })
  await sender.send(h.agentId, { type: 'shares', roundId: 'round-1', ciphertext: new Uint8Array(SHARE_CIPHERTEXT_BYTES) }, { attempts: 5, attemptTimeoutMs: 3_000 })
  assert.equal(stats().framesIn, before.framesIn + 1)
})

test('a participant has fewer streams in flight than the coordinator', async () => {
  await harness()
  const conn = peerNode.getConnections().find(c => c.status === 'open') ?? await connect()
  const before = stats().rejected
  const silent: Stream[] = []
  for (let i = 0; i < MAX_NEIGHBOUR_STREAMS_PER_PEER + 2; i++) silent.push(await openRaw(conn, 'shares'))
  await waitFor('the streams over the participant\'s budget to be reset', () => silent.filter(s => s.status !== 'open').length === 2, { timeoutMs: 3_000, intervalMs: 10 })
  assert.equal(stats().rejected - before, 2)
  for (const s of silent) s.abort(new Error('done'))

  // The coordinator may hold more at once (every one of its messages on its own stream).
  const coordinatorConn = h.coordinator.node.getConnections().find(c => c.remotePeer.toString() === h.agentId && c.status === 'open')
  assert.ok(coordinatorConn !== undefined)
  const held: Stream[] = []
  for (let i = 0; i < MAX_NEIGHBOUR_STREAMS_PER_PEER + 2; i++) held.push(await openRaw(coordinatorConn, i % 2 === 0 ? 'abort' : 'survivors'))
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.equal(held.filter(s => s.status !== 'open').length, 0, 'none of the coordinator\'s streams is refused')
  assert.equal(stats().rejected - before, 2)
  for (const s of held) s.abort(new Error('done'))
})
