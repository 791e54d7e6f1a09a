import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { generateIdentity, type Identity } from '../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { SecAggMessenger } from '../../shared/net/messenger.js'
import { encodeFrame } from '../../shared/wire/codec.js'
import { frameLimitFor, secaggProtocol, CONTROL_FRAME_LIMIT } from '../../shared/wire/protocols.js'
import { MAX_PARTICIPANTS, SHARE_BYTES, type SecAggMessage } from '../../shared/secagg/messages.js'
import { createLogger } from '../../shared/log.js'
import { waitFor } from '../e2e/helpers/processes.js'

/*
 * The per-peer limits of shared/net (connections per peer in the gater, streams in flight per peer in the
 * messenger) and the schema-derived frame limits: each bites on the abuse and lets the largest honest use through.
 */

const logger = createLogger('test', 'silent')
const nodes: FedmonNode[] = []
after(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

async function makeNode (identity: Identity, opts: { listen?: boolean, maxInboundConnectionsPerPeer?: number } = {}): Promise<FedmonNode> {
  const node = await createFedmonNode({
    privateKey: identity.privateKey,
    listen: opts.listen === false ? [] : ['/ip4/127.0.0.1/tcp/0'],
    gater: createAllowListGater({ isAllowed: () => true, logger, maxInboundConnectionsPerPeer: opts.maxInboundConnectionsPerPeer })
  })
  nodes.push(node)
  await node.start()
  return node
}

const until = async (cond: () => boolean, what: string): Promise<void> => { await waitFor(what, cond, { timeoutMs: 5_000, intervalMs: 25 }) }

test('the largest honest share receipt and unmask shares fit their (schema-derived) frame limits, far below the control limit', () => {
  const indexes = Array.from({ length: MAX_PARTICIPANTS - 1 }, (_, i) => MAX_PARTICIPANTS - 1 - i)
  const receipt: SecAggMessage = { type: 'share-receipt', roundId: 'r'.repeat(128), holds: indexes, signature: new Uint8Array(64) }
  const half = Math.floor(indexes.length / 2)
  const unmask: SecAggMessage = {
    type: 'unmask-shares',
    roundId: 'r'.repeat(128),
    bOwners: indexes.slice(0, half),
    bShares: new Uint8Array(half * SHARE_BYTES),
    sOwners: indexes.slice(half),
    sShares: new Uint8Array((indexes.length - half) * SHARE_BYTES)
  }
  for (const m of [receipt, unmask]) {
    const size = encodeFrame(m).byteLength
    const limit = frameLimitFor(m.type, 1000)
    assert.ok(size <= limit, `${m.type}: ${size} bytes > limit ${limit}`)
    assert.ok(limit <= CONTROL_FRAME_LIMIT / 8, `${m.type}: limit ${limit} is not much below ${CONTROL_FRAME_LIMIT}`)
  }
  // Every owner once: all in bOwners is the largest honest unmask message too.
  const allB = { ...unmask, bOwners: indexes, bShares: new Uint8Array(indexes.length * SHARE_BYTES), sOwners: [], sShares: new Uint8Array(0) }
  assert.ok(encodeFrame(allB).byteLength <= frameLimitFor('unmask-shares', 1000))
})

test('the gater holds one peer to its inbound connection cap, and frees a slot when a connection closes', async () => {
  const [a, b] = await Promise.all([generateIdentity(), generateIdentity()])
  const listener = await makeNode(a, { maxInboundConnectionsPerPeer: 2 })
  const dialler = await makeNode(b, { listen: false })
  const addr = listener.getMultiaddrs()[0]
  const results = []
  for (let i = 0; i < 6; i++) results.push(await dialler.dial(addr, { force: true, signal: AbortSignal.timeout(5000) }).then(() => 'ok', () => 'refused'))
  await until(() => listener.getConnections().filter(c => c.status === 'open').length <= 2, 'the listener to settle')
  assert.equal(listener.getConnections().length, 2, `the listener holds 2 connections from one peer (dials: ${results.join(',')})`)
  // The dialler may complete its side of a refused upgrade, but the listener's close reaches it.
  await until(() => dialler.getConnections().filter(c => c.status === 'open').length === 2, `the dialler to lose the refused connections (dials: ${results.join(',')})`)
  await listener.getConnections()[0].close()
  await until(() => listener.getConnections().length === 1, 'the close to be seen')
  await dialler.dial(addr, { force: true, signal: AbortSignal.timeout(5000) })
  await until(() => listener.getConnections().length === 2, 'a new connection to be admitted once a slot is free')
})

test('the messenger refuses streams over a peer\'s in-flight budget, whatever the protocol or connection, and frees the budget', async () => {
  const [a, b] = await Promise.all([generateIdentity(), generateIdentity()])
  const receiver = await makeNode(a)
  const sender = await makeNode(b, { listen: false })
  const got: SecAggMessage[] = []
  const messenger = new SecAggMessenger({
    node: receiver,
    logger,
    accept: ['consistency-signature', 'advertise-keys'],
    frameLimit: type => frameLimitFor(type, 16),
    onMessage: (_from, m) => { got.push(m) },
    readTimeoutMs: 60_000,
    maxStreamsPerPeer: 3
  })
  await messenger.start()
  const conn = await sender.dial(receiver.getMultiaddrs()[0])
  // Five silent streams over two protocols: three are held (reading), two are refused at once.
  const silent: Stream[] = []
  for (const type of ['consistency-signature', 'advertise-keys', 'consistency-signature', 'advertise-keys', 'consistency-signature']) {
    silent.push(await conn.newStream(secaggProtocol(type), { signal: AbortSignal.timeout(5000) }))
  }
  await until(() => silent.filter(s => s.status !== 'open').length === 2, 'two streams over the budget to be reset')
  assert.equal(messenger.stats.rejected, 2)
  assert.deepEqual(silent.map(s => s.status === 'open'), [true, true, true, false, false])
  // While the budget is full an honest message is refused too (the peer is the one holding it)...
  const message: SecAggMessage = { type: 'consistency-signature', roundId: 'r1', signature: new Uint8Array(64) }
  const senderMessenger = new SecAggMessenger({ node: sender, logger, accept: [], frameLimit: () => 1024, onMessage: () => {} })
  await assert.rejects(senderMessenger.send(a.peerId, message, { attempts: 1, attemptTimeoutMs: 3000 }))
  // ...and once the peer lets go of its streams, the budget is back.
  assert.equal(got.length, 0)
  for (const s of silent) s.abort(new Error('done'))
  await senderMessenger.send(a.peerId, message, { attempts: 5, attemptTimeoutMs: 3000 }) // retries 100, 200… ms apart
  assert.equal(got.length, 1)
})
