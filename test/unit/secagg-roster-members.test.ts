/**
 * The roster-bitmap Announce (issue 15 §2): from 1,000 participants on, a coordinator that knows the roster names
 * the round's participants by one bit per roster member instead of listing ids and addresses (1.25 KB instead of
 * ~860 KB at 10,000); agents rebuild the list from their own copy of the roster and learn their neighbours'
 * addresses from their key sets.
 * - the bitmap round-trips, in canonical order, and refuses bitmaps that do not fit the roster;
 * - a round with the bitmap Announce (forced at n = 30) is exact, its Announce carries no participant list,
 *   its key sets carry addresses, and it is far smaller than the listed one;
 * - an agent whose roster differs refuses, naming both digests, and says so in a signed decline;
 * - from 1,000 members the broadcast index sets (masking set, survivors, unmask request) travel as bitmaps.
 */
import '../../shared/polyfill.js'
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { membersBitmap, membersOf, memberCount, sortedRoster } from '../../shared/secagg/roster-members.js'
import { createIdentities, simulateRound, type Identity } from '../../shared/secagg/simulate.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { decodeFrame, encodeFrame } from '../../shared/wire/codec.js'
import { INDEX_BITMAP_FROM, parseSecAggMessage, toWire, type Announce, type KeySet, type SecAggMessage } from '../../shared/secagg/messages.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(30, 777) })

test('the member bitmap: one bit per roster member, rebuilt in canonical order; a bitmap that does not fit is refused', () => {
  const roster = sortedRoster(['peer-c', 'peer-a', 'peer-e', 'peer-b', 'peer-d', 'peer-f', 'peer-g', 'peer-h', 'peer-i'])
  assert.deepEqual(roster.ids, ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e', 'peer-f', 'peer-g', 'peer-h', 'peer-i'])
  assert.equal(sortedRoster(['peer-i', 'peer-h', 'peer-g', 'peer-f', 'peer-e', 'peer-d', 'peer-c', 'peer-b', 'peer-a']).digest, roster.digest, 'the digest is the roster\'s, not its order\'s')
  const bits = membersBitmap(roster, ['peer-i', 'peer-b', 'peer-e'])
  assert.equal(bits.length, 2)
  assert.equal(memberCount(bits), 3)
  assert.deepEqual(membersOf(roster, bits).map(p => p.id), ['peer-b', 'peer-e', 'peer-i'])
  assert.throws(() => membersBitmap(roster, ['peer-x']), /not on the roster/)
  assert.throws(() => membersOf(roster, new Uint8Array(3)), /bitmap of 3 bytes/)
  assert.throws(() => membersOf(roster, Uint8Array.from([0, 0b10])), /beyond the roster/)
})

test('a round with the roster-bitmap Announce (forced at n = 30): exact, no participant list, addresses in the key sets', async () => {
  const announces: Announce[] = []
  const keySets: KeySet[] = []
  const sim = await simulateRound({
    agents: 30, dim: 16, identities, seed: 5, graph: 'auto', minAgents: 2, maxEntry: 1000, compactAnnounceFrom: 10, dropoutRate: 0.1, dropPoint: 'masked-input',
    intercept: (d) => {
      if (d.message.type === 'announce' && announces.length === 0) announces.push(d.message)
      if (d.message.type === 'key-set') keySets.push(d.message)
      return [d]
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  const a = announces[0]
  assert.equal(a.participants, undefined)
  assert.ok(a.members !== undefined && memberCount(a.members.bits) === 30)
  assert.ok(keySets.length > 0 && keySets.every(k => k.keys.every(e => (e.addrs ?? []).length > 0)), 'every key-set entry brings its neighbour\'s addresses')
  const listed = { ...a, members: undefined, participants: identities.agents.slice(0, 30).map((x, i) => ({ id: x.id, addrs: [`/memory/agent-${i}`] })) }
  const [compact, full] = [encodeFrame(a).byteLength, encodeFrame(listed).byteLength]
  assert.ok(full - compact > 30 * 50, `the bitmap Announce ${compact} bytes, the listed one ${full}`)
})

test('an agent whose roster differs from the coordinator\'s refuses the bitmap Announce, naming both digests, and declines', async () => {
  let announce: Announce | null = null
  await simulateRound({
    agents: 30, dim: 4, identities, seed: 6, graph: 'auto', minAgents: 2, maxEntry: 1000, compactAnnounceFrom: 10,
    intercept: (d) => { if (d.message.type === 'announce' && announce === null) announce = d.message; return [] }
  })
  const a = announce as Announce | null
  assert.ok(a !== null)
  const self = identities.agents[0]
  const otherRoster = new Set(identities.agents.slice(0, 29).map(x => x.id)) // one member short
  const opts = { self: self.id, coordinator: identities.coordinator.id, sign: self.sign, verify: verifyPeerSignature, roster: otherRoster }
  assert.throws(() => SecAggClient.fromAnnounce(opts, identities.coordinator.id, a, Date.now()),
    (err: any) => err.code === 'ERR_POLICY' && /roster \(sha256 [0-9a-f]{12}…\) other than this agent's \(29 members, sha256 [0-9a-f]{12}…\)/.test(err.message))
  let refusal: unknown
  try { SecAggClient.fromAnnounce(opts, identities.coordinator.id, a, Date.now()) } catch (err) { refusal = err }
  // it tells the coordinator why in a signed decline (the operator reads it among the round's declines)
  const decline = SecAggClient.declineAnnounce(opts, identities.coordinator.id, a, refusal)
  assert.ok(decline !== null && decline.message.type === 'decline' && /other than this agent's/.test(decline.message.reason))
  // with the same roster it joins
  const client = SecAggClient.fromAnnounce({ ...opts, roster: new Set(identities.agents.slice(0, 30).map(x => x.id)) }, identities.coordinator.id, a, Date.now())
  assert.equal(client.announce.participants.length, 30)
})

test('large broadcast index sets travel as bitmaps and parse back to the same ascending lists (signatures unchanged)', () => {
  const members = Array.from({ length: 9000 }, (_, i) => i).filter(i => i % 7 !== 3)
  const survivors: SecAggMessage = { type: 'survivors', roundId: 'r', members, signature: new Uint8Array(64) }
  const wire = toWire(survivors) as { members: unknown }
  assert.ok(wire.members instanceof Uint8Array && wire.members.length === Math.ceil(9000 / 8))
  const back = parseSecAggMessage(decodeFrame(encodeFrame(wire)))
  assert.ok(back.type === 'survivors')
  assert.deepEqual(back.members, members)
  assert.ok(encodeFrame(wire).byteLength * 15 < encodeFrame(survivors).byteLength, 'the bitmap is over 15× smaller')
  const request: SecAggMessage = { type: 'unmask-request', roundId: 'r', survivors: members.slice(0, 1200), dropped: [1201, 1202, 5000], signatures: [], signature: new Uint8Array(64) }
  const r = parseSecAggMessage(decodeFrame(encodeFrame(toWire(request))))
  assert.ok(r.type === 'unmask-request')
  assert.deepEqual([r.survivors, r.dropped], [request.survivors, request.dropped])
  // below INDEX_BITMAP_FROM the list is sent as before (agents from before bitmaps read it)
  const small: SecAggMessage = { type: 'masking-set', roundId: 'r', members: members.slice(0, INDEX_BITMAP_FROM - 1), signature: new Uint8Array(64) }
  assert.equal(toWire(small), small)
  assert.throws(() => parseSecAggMessage({ ...small, members: new Uint8Array(2000) }), /members: Invalid input/, 'a bitmap beyond MAX_PARTICIPANTS bits is refused')
})
