import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateIdentity, createSigner, createVerifier, type Identity } from '../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { SecAggMessenger } from '../../shared/net/messenger.js'
import { writeFrame } from '../../shared/net/framed.js'
import { encodeFrame } from '../../shared/wire/codec.js'
import { secaggProtocol, vectorFrameLimit } from '../../shared/wire/protocols.js'
import { SHARE_CIPHERTEXT_BYTES, type SecAggMessage } from '../../shared/secagg/messages.js'
import { createLogger } from '../../shared/log.js'
import { waitFor } from '../e2e/helpers/processes.js'

const logger = createLogger('test', 'silent')
const nodes: FedmonNode[] = []
after(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

async function makeNode (identity: Identity, allowed: () => Set<string>, refused?: string[]): Promise<FedmonNode> {
  const node = await createFedmonNode({
    privateKey: identity.privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    gater: createAllowListGater({ isAllowed: id => allowed().has(id), logger, onRefused: id => refused?.push(id) })
  })
  nodes.push(node)
  return node
}

const until = async (cond: () => boolean, what: string): Promise<void> => { await waitFor(what, cond, { timeoutMs: 5_000, intervalMs: 25 }) }

test('messages travel on per-type protocols; bad frames reset the peer; unknown peers are refused', async () => {
  const [a, b, stranger] = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()])
  const refusedByB: string[] = []
  const nodeA = await makeNode(a, () => new Set([b.peerId]))
  const nodeB = await makeNode(b, () => new Set([a.peerId]), refusedByB)
  const nodeS = await makeNode(stranger, () => new Set([b.peerId]))
  const received: Array<{ from: string, message: SecAggMessage }> = []
  const messengerB = new SecAggMessenger({
    node: nodeB,
    logger,
    accept: ['shares', 'masked-input'],
    frameLimit: type => type === 'masked-input' ? 4 * 100 + 1024 : 4096,
    onMessage: (from, message) => { received.push({ from, message }) }
  })
  const messengerA = new SecAggMessenger({ node: nodeA, logger, accept: [], frameLimit: () => 0, onMessage: () => {} })
  await messengerB.start()
  await Promise.all([nodeA.start(), nodeB.start(), nodeS.start()])
  const addrsB = nodeB.getMultiaddrs().map(m => m.toString().replace(/\/p2p\/.*$/, ''))

  // 1. a valid message, sender authenticated by Noise
  await messengerA.send(b.peerId, { type: 'shares', roundId: 'r1', ciphertext: new Uint8Array(SHARE_CIPHERTEXT_BYTES) }, { addrs: addrsB })
  await until(() => received.length === 1, 'the first message')
  assert.equal(received[0].from, a.peerId)
  assert.equal(received[0].message.type, 'shares')

  // 2. an oversized frame: refused from its length prefix, stream reset, connection closed
  const stream = await nodeA.dialProtocol(peerIdFromString(b.peerId), secaggProtocol('masked-input'))
  await writeFrame(stream, encodeFrame({ type: 'masked-input', roundId: 'r1', vector: new Uint32Array(10_000) })).catch(() => {})
  await until(() => messengerB.stats.rejected === 1, 'the oversized frame to be rejected')
  await until(() => nodeB.getConnections(peerIdFromString(a.peerId)).length === 0, 'B to drop A')
  await until(() => nodeA.getConnections(peerIdFromString(b.peerId)).length === 0, 'A to see the connection closed')

  // 3. garbage of an acceptable size
  const garbage = await nodeA.dialProtocol(peerIdFromString(b.peerId), secaggProtocol('shares'))
  await writeFrame(garbage, Uint8Array.from([0x92, 0xc1, 0xff, 0x00])).catch(() => {})
  await garbage.close().catch(() => {})
  await until(() => messengerB.stats.rejected === 2, 'the garbage frame to be rejected')

  // 4. a message of another type on the shares protocol
  await until(() => nodeA.getConnections(peerIdFromString(b.peerId)).length === 0, 'the garbage connection to close')
  const wrong = await nodeA.dialProtocol(peerIdFromString(b.peerId), secaggProtocol('shares'))
  await writeFrame(wrong, encodeFrame({ type: 'masked-input', roundId: 'r1', vector: new Uint32Array(3) })).catch(() => {})
  await wrong.close().catch(() => {})
  await until(() => messengerB.stats.rejected === 3, 'the mistyped frame to be rejected')

  // 5. B keeps serving
  await until(() => nodeA.getConnections(peerIdFromString(b.peerId)).length === 0, 'the mistyped connection to close')
  await messengerA.send(b.peerId, { type: 'masked-input', roundId: 'r1', vector: Uint32Array.from([1, 2, 3]) }, { addrs: addrsB })
  await until(() => received.length === 2, 'the message after the bad frames')
  assert.equal(received.length, 2)

  // 6. a 4 MiB vector (1M entries) — above lpStream's default 4 MiB buffer — arrives intact through the
  //    bounded writer when the limit is sized from the vector length
  received.length = 0
  const big = new Uint32Array(1 << 20)
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 0
  const bigReceived: SecAggMessage[] = []
  await nodeB.unhandle(secaggProtocol('masked-input'))
  const bigReceiver = new SecAggMessenger({ node: nodeB, logger, accept: ['masked-input'], frameLimit: () => vectorFrameLimit(big.length), onMessage: (_from, m) => { bigReceived.push(m) } })
  await bigReceiver.start()
  await messengerA.send(b.peerId, { type: 'masked-input', roundId: 'r1', vector: big }, { addrs: addrsB })
  await until(() => bigReceived.length === 1, 'the 4 MiB vector')
  const got = bigReceived[0]
  assert.ok(got.type === 'masked-input' && got.vector.length === big.length && got.vector.every((v, i) => v === big[i]))

  // 7. a peer not on B's list cannot connect at all
  await nodeS.peerStore.merge(peerIdFromString(b.peerId), { multiaddrs: nodeB.getMultiaddrs() })
  await assert.rejects(nodeS.dialProtocol(peerIdFromString(b.peerId), secaggProtocol('shares'), { signal: AbortSignal.timeout(5000) }))
  assert.ok(refusedByB.includes(stranger.peerId))
  assert.equal(received.length, 0)
})

test('the signer and verifier agree with peer ids; tampering fails', async () => {
  const id = await generateIdentity()
  const sign = createSigner(id.privateKey)
  const verify = createVerifier()
  const data = new TextEncoder().encode('round r1')
  const sig = sign(data)
  assert.equal(sig.length, 64)
  assert.equal(verify(id.peerId, data, sig), true)
  assert.equal(await id.privateKey.publicKey.verify(data, sig), true) // libp2p agrees
  sig[0] ^= 1
  assert.equal(verify(id.peerId, data, sig), false)
  assert.equal(verify('not-a-peer-id', data, sign(data)), false)
})
