import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { generateIdentity } from '../../shared/identity.js'
import { createFedmonNode } from '../../shared/net/node.js'
import { createAllowListGater } from '../../shared/net/gater.js'
import { SecAggMessenger } from '../../shared/net/messenger.js'
import { DialAllowList, dialTarget, dialRuleProblem, scopeOf, selectAnnouncedAddrs } from '../../shared/net/dial-policy.js'
import { MAX_ANNOUNCED_ADDRS } from '../../shared/wire/protocols.js'
import { createLogger } from '../../shared/log.js'
import { waitFor } from '../e2e/helpers/processes.js'
import { startHarness, identityAfter } from './agent-harness.js'

/*
 * Item 7.5 of the security review: agents dial only the addresses their operator allows (network.dialAllow,
 * default public + the coordinator's network), however an address reached them; the coordinator passes on
 * only dialable hello addresses.
 */

const logger = createLogger('test', 'silent')
const cleanups: Array<() => Promise<void>> = []
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}) })

/** A TCP server on 127.0.0.1 that counts the connections it accepts (and drops them). */
async function countingServer (): Promise<{ port: number, count: () => number }> {
  let n = 0
  const server: Server = createServer((socket) => { n++; socket.destroy() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => { await new Promise<void>(resolve => server.close(() => { resolve() })) })
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  return { port: address.port, count: () => n }
}

test('address scopes and dial targets', () => {
  assert.equal(scopeOf('127.0.0.1', 4), 'loopback')
  assert.equal(scopeOf('::1', 6), 'loopback')
  assert.equal(scopeOf('10.2.3.4', 4), 'private')
  assert.equal(scopeOf('172.31.255.1', 4), 'private')
  assert.equal(scopeOf('172.32.0.1', 4), 'public')
  assert.equal(scopeOf('100.64.1.1', 4), 'private')
  assert.equal(scopeOf('fd12::1', 6), 'private')
  assert.equal(scopeOf('169.254.169.254', 4), 'link-local', 'the cloud metadata address is not public')
  assert.equal(scopeOf('198.51.100.7', 4), 'special')
  assert.equal(scopeOf('2001:db8::1', 6), 'special')
  assert.equal(scopeOf('::ffff:7f00:1', 6), 'loopback', 'an IPv4-mapped loopback address is loopback')
  assert.equal(scopeOf('2606:4700::1111', 6), 'public')
  assert.equal(scopeOf('8.8.8.8', 4), 'public')
  for (const ip of ['0.0.0.0', '224.0.0.1', '255.255.255.255']) assert.equal(scopeOf(ip, 4), null, ip)
  assert.equal(scopeOf('::', 6), null)
  assert.equal(scopeOf('ff02::1', 6), null)

  assert.deepEqual(dialTarget('/ip4/8.8.8.8/tcp/4002'), { host: '8.8.8.8', port: 4002, family: 4 })
  assert.deepEqual(dialTarget('/dns4/Site-B.Example.org./tcp/4002'), { host: 'site-b.example.org', port: 4002, family: 'dns' })
  const id = '12D3KooWEfezYcu1DdRVJa6wWjFijY8iY7Pao4DvpQM1Rt4usHY9'
  assert.ok(dialTarget(`/ip4/8.8.8.8/tcp/1/p2p/${id}`, id) !== null)
  for (const bad of [`/ip4/8.8.8.8/tcp/1/p2p/${id}x`, '/ip4/0.0.0.0/tcp/4002', '/ip4/8.8.8.8/tcp/0', '/ip4/8.8.8.8/udp/4002/quic-v1', '/ip4/224.0.0.251/tcp/5353', '/dnsaddr/example.org', '/unix/tmp/x', 'not a multiaddr', '/ip4/8.8.8.8']) {
    assert.equal(dialTarget(bad, id), null, bad)
  }
  assert.equal(dialTarget('/ip4/8.8.8.8/tcp/1/p2p/12D3KooWPz7Lyi49uU8Kw1M3C2XTCtX5UFMHMoPimQsU8Zc2kdoM', id), null, 'the /p2p of another peer')
})

test('dial allow-lists: grammar, matching, and the default from the coordinator\'s address', () => {
  assert.equal(dialRuleProblem('public'), null)
  assert.equal(dialRuleProblem('10.0.0.0/8'), null)
  assert.equal(dialRuleProblem('fd00::/8'), null)
  assert.equal(dialRuleProblem('10.1.2.3'), null)
  assert.equal(dialRuleProblem('site-b.example.org'), null)
  assert.match(dialRuleProblem('10.0.0.0/33') ?? '', /0-32/)
  assert.match(dialRuleProblem('/ip4/10.0.0.0/8') ?? '', /CIDR/)
  assert.match(dialRuleProblem('all') ?? '', /DNS name with a dot/, 'a bare word is a mistyped keyword, not a host')
  const list = new DialAllowList(['public', '10.1.0.0/16', 'site-b.example.org'])
  assert.ok(list.allowsAddr('/ip4/8.8.8.8/tcp/1'))
  assert.ok(list.allowsAddr('/ip4/10.1.9.9/tcp/1'))
  assert.ok(!list.allowsAddr('/ip4/10.2.0.1/tcp/1'))
  assert.ok(!list.allowsAddr('/ip4/127.0.0.1/tcp/1'))
  assert.ok(!list.allowsAddr('/ip4/169.254.169.254/tcp/80'))
  assert.ok(list.allowsAddr('/dns4/SITE-B.example.org/tcp/1'))
  assert.ok(!list.allowsAddr('/dns4/internal.example.org/tcp/1'), 'a name not listed: what it resolves to is unknown')
  assert.ok(!new DialAllowList(['0.0.0.0/0']).allowsAddr('/ip4/0.0.0.0/tcp/1'), 'never dialable, whatever the list')

  assert.deepEqual(DialAllowList.forCoordinator([{ ip: '127.0.0.1', family: 4 }]).entries, ['public', 'loopback'])
  assert.deepEqual(DialAllowList.forCoordinator([{ ip: '10.20.30.40', family: 4 }]).entries, ['public', '10.0.0.0/8'])
  assert.deepEqual(DialAllowList.forCoordinator([{ ip: '172.18.0.2', family: 4 }]).entries, ['public', '172.16.0.0/12'])
  assert.deepEqual(DialAllowList.forCoordinator([{ ip: '203.0.114.9', family: 4 }]).entries, ['public'])
  assert.deepEqual(DialAllowList.forCoordinator([]).entries, ['public'])
  const docker = DialAllowList.forCoordinator([{ ip: '172.18.0.2', family: 4 }])
  assert.ok(docker.allowsAddr('/ip4/172.18.0.5/tcp/4002'))
  assert.ok(!docker.allowsAddr('/ip4/192.168.1.1/tcp/22'), 'another private network is not the coordinator\'s')
  assert.ok(!docker.allowsAddr('/ip4/127.0.0.1/tcp/22'), 'loopback only when the coordinator is on loopback')
})

test('the coordinator announces only dialable hello addresses, loopback only of a local agent, within the size cap', () => {
  const peer = '12D3KooWEfezYcu1DdRVJa6wWjFijY8iY7Pao4DvpQM1Rt4usHY9'
  const hello = ['/ip4/127.0.0.1/tcp/4002', '/ip4/10.0.0.7/tcp/4002', '/ip4/0.0.0.0/tcp/4002', '/ip4/8.8.8.8/udp/1/quic-v1', `/ip4/8.8.4.4/tcp/1/p2p/${peer}`, 'garbage', '/ip4/8.8.8.8/tcp/4002\n']
  const remote = selectAnnouncedAddrs(hello, { peer, remoteAddr: '/ip4/10.0.0.7/tcp/50123' })
  assert.deepEqual(remote.kept, ['/ip4/10.0.0.7/tcp/4002', `/ip4/8.8.4.4/tcp/1/p2p/${peer}`])
  const local = selectAnnouncedAddrs(hello, { peer, remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/50123') })
  assert.deepEqual(local.kept, ['/ip4/127.0.0.1/tcp/4002', '/ip4/10.0.0.7/tcp/4002', `/ip4/8.8.4.4/tcp/1/p2p/${peer}`])
  const allowed = selectAnnouncedAddrs(hello, { peer, remoteAddr: '/ip4/127.0.0.1/tcp/1', allow: new DialAllowList(['public']) })
  assert.deepEqual(allowed.kept, [`/ip4/8.8.4.4/tcp/1/p2p/${peer}`])
  const many = Array.from({ length: 20 }, (_, i) => `/ip4/8.8.8.${i + 1}/tcp/4002`)
  assert.equal(selectAnnouncedAddrs(many, { peer }).kept.length, MAX_ANNOUNCED_ADDRS)
  const long = Array.from({ length: 5 }, (_, i) => `/dns4/${'a'.repeat(200)}${i}.example.org/tcp/4002`)
  assert.equal(selectAnnouncedAddrs(long, { peer }).kept.length, 2, 'at most 512 characters of addresses')
})

test('the gater refuses a dial to a disallowed address: no TCP connection is opened', async () => {
  const server = await countingServer()
  const [self, other] = await Promise.all([generateIdentity(), generateIdentity()])
  const allow = new DialAllowList(['public'])
  const node = await createFedmonNode({ privateKey: self.privateKey, listen: [], gater: createAllowListGater({ isAllowed: () => true, allowDial: addr => allow.allowsAddr(addr), logger }) })
  await node.start()
  cleanups.push(async () => { await node.stop() })
  await assert.rejects(node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${server.port}/p2p/${other.peerId}`), { signal: AbortSignal.timeout(3_000) }))
  // The messenger's path: announced addresses filtered out never reach the peer store.
  const messenger = new SecAggMessenger({ node, logger, accept: [], frameLimit: () => 1024, onMessage: () => {}, filterAddrs: (_peer, addrs) => addrs.filter(a => allow.allowsAddr(a)) })
  await assert.rejects(messenger.send(other.peerId, { type: 'consistency-signature', roundId: 'r', signature: new Uint8Array(64) }, { addrs: [`/ip4/127.0.0.1/tcp/${server.port}`], attempts: 1, attemptTimeoutMs: 2_000 }))
  assert.deepEqual((await node.peerStore.get(await import('@libp2p/peer-id').then(m => m.peerIdFromString(other.peerId))).catch(() => ({ addresses: [] }))).addresses, [])
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.equal(server.count(), 0)
})

for (const [name, extra, dials] of [
  ['network.dialAllow: [public] (not loopback)', { network: { dialAllow: ['public'] } }, false],
  ['the default (the coordinator is on loopback, so loopback is allowed)', {}, true]
] as const) {
  test(`an Announce's neighbour address on loopback, agent with ${name}: ${dials ? 'dialled' : 'never dialled'}`, async () => {
    const server = await countingServer()
    const self = await generateIdentity()
    // A neighbour whose id sorts after ours: this agent is the one that dials it early (connectNeighbours).
    const [neighbour, other] = await Promise.all([identityAfter(self.peerId), generateIdentity()])
    const h = await startHarness({ self, roster: [self.peerId, neighbour.peerId, other.peerId], extra })
    cleanups.push(h.stop)
    await h.announce('round-dial', [{ id: self.peerId, addrs: [] }, { id: neighbour.peerId, addrs: [`/ip4/127.0.0.1/tcp/${server.port}`] }, { id: other.peerId, addrs: [] }])
    await waitFor('the agent to accept the round', () => h.logs().some(l => l.msg === 'round accepted'), { timeoutMs: 10_000, intervalMs: 20 })
    if (dials) {
      await waitFor('the agent to dial the announced address', () => server.count() > 0, { timeoutMs: 10_000, intervalMs: 20 })
    } else {
      await waitFor('the dropped address to be logged', () => h.logs().some(l => l.msg?.startsWith('announced addresses not dialled') === true && l.peer === neighbour.peerId), { timeoutMs: 5_000, intervalMs: 20 })
      await new Promise(resolve => setTimeout(resolve, 1_500))
      assert.equal(server.count(), 0, 'no connection to the disallowed address')
      assert.equal(h.logs().filter(l => l.msg?.startsWith('announced addresses not dialled') === true).length, 1, 'logged once per peer and round')
    }
  })
}
