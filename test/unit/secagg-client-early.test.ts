import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import type { Announce, SecAggMessage } from '../../shared/secagg/messages.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { signAnnounce, SIM_SPEC_HASH } from './adversary-harness.js'

// The agent daemon keeps a message for a later phase (isEarly) and drops the rest: an early message must be
// recognised, and a late one must never be kept (kept late messages were retried on every tick).

const NOW = Date.UTC(2026, 0, 15, 12)
let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(4, 5) })

function client (): SecAggClient {
  const body: Omit<Announce, 'signature'> = {
    type: 'announce', roundId: 'r-early', protocol: 'fedmon-secagg/1', coordinator: ids.coordinator.id,
    participants: ids.agents.map((a, i) => ({ id: a.id, addrs: [`/memory/${i}`] })),
    window: { from: NOW - 7_200_000, to: NOW - 3_600_000 }, specHash: SIM_SPEC_HASH, vectorLength: 8, maxEntry: 100, minAgents: 2,
    threshold: 2, degree: 3, graph: 'full', phaseTimeoutMs: 10_000, issuedAt: NOW, reference: false
  }
  return SecAggClient.fromAnnounce({ self: ids.agents[0].id, coordinator: ids.coordinator.id, sign: ids.agents[0].sign, verify: verifyPeerSignature, policy: {}, roster: new Set(ids.agents.map(a => a.id)) }, ids.coordinator.id, signAnnounce(ids.coordinator, body), NOW)
}

const msg = (type: SecAggMessage['type'], roundId = 'r-early'): SecAggMessage => ({ type, roundId }) as unknown as SecAggMessage

test('isEarly: messages of later phases are early, earlier ones and other rounds never are', () => {
  const c = client()
  for (const type of ['key-set', 'masking-set', 'survivors', 'unmask-request'] as const) assert.equal(c.isEarly(msg(type)), true, type)
  assert.equal(c.isEarly(msg('shares')), false, 'shares are buffered by the client, never kept outside it')
  assert.equal(c.isEarly(msg('key-set', 'r-other')), false)
  c.start(NOW) // -> advertised: the key-set is now due, not early
  assert.equal(c.isEarly(msg('key-set')), false)
  assert.equal(c.isEarly(msg('masking-set')), true)
  c.abort()
  assert.equal(c.isEarly(msg('masking-set')), false, 'nothing is early once the round ended')
})
