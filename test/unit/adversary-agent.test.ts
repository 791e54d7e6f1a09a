import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { SHARE_BYTES } from '../../shared/crypto/shamir.js'
import type { SecAggMessage } from '../../shared/secagg/messages.js'
import { createIdentities, simulateRound, type Delivery, type DropPoint, type Identity, type SimulationResult } from '../../shared/secagg/simulate.js'

/**
 * One malicious agent (index 2 unless said otherwise) among honest ones: its bad messages are rejected with
 * typed errors, it is excluded when it sent nothing valid, and the round finishes for the honest agents with
 * exactly the sum of the agents the server reports as included.
 */

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(10, 101) })

const BAD = 2
const N = 10

async function roundWith (seed: number, misbehave: (d: Delivery, fromBad: boolean) => Delivery[], dropout?: Map<number, DropPoint>): Promise<SimulationResult> {
  const bad = ids.agents[BAD].id
  const sim = await simulateRound({ agents: N, dim: 64, identities: ids, seed, graph: 'full', threshold: 5, maxEntry: 1000, dropout, intercept: d => misbehave(d, d.from === bad) })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct, 'sum equals the plaintext sum of exactly the included agents')
  return sim
}

const rejectedCodes = (sim: SimulationResult, at: 'coordinator' | 'agents'): Set<string> =>
  new Set(sim.rejected.filter(r => (r.at === 'coordinator') === (at === 'coordinator')).map(r => r.code))

test('wrong vector length: rejected (ERR_BAD_LENGTH), the agent is excluded, the honest sum is exact', async () => {
  const sim = await roundWith(111, (d, bad) => bad && d.message.type === 'masked-input'
    ? [{ ...d, message: { ...d.message, vector: new Uint32Array(65) } }]
    : [d])
  assert.ok(rejectedCodes(sim, 'coordinator').has('ERR_BAD_LENGTH'))
  assert.ok(!sim.result!.included.includes(ids.agents[BAD].id))
  assert.equal(sim.result!.included.length, N - 1)
})

test('invalid signatures on its key advert: rejected (ERR_BAD_SIGNATURE), excluded', async () => {
  const sim = await roundWith(112, (d, bad) => bad && d.message.type === 'advertise-keys'
    ? [{ ...d, message: { ...d.message, signature: new Uint8Array(64).fill(7) } }]
    : [d])
  assert.ok(rejectedCodes(sim, 'coordinator').has('ERR_BAD_SIGNATURE'))
  assert.ok(!sim.result!.included.includes(ids.agents[BAD].id))
})

test('invalid consistency signature and receipt signature: rejected, the round still completes', async () => {
  const sim = await roundWith(113, (d, bad) => bad && (d.message.type === 'consistency-signature' || d.message.type === 'share-receipt')
    ? [{ ...d, message: { ...d.message, signature: new Uint8Array(64) } } as Delivery]
    : [d])
  assert.ok(rejectedCodes(sim, 'coordinator').has('ERR_BAD_SIGNATURE'))
})

test('shares sent to the wrong peer: the recipient rejects them, the round completes', async () => {
  const sim = await roundWith(114, (d, bad) => {
    if (!bad || d.message.type !== 'shares') return [d]
    // Every share is delivered to the next agent instead of its addressee (so one peer gets two, one none).
    const to = ids.agents[(ids.agents.findIndex(a => a.id === d.to) + 1) % N]
    return [{ ...d, to: to.id === ids.agents[BAD].id ? ids.agents[(BAD + 1) % N].id : to.id }]
  })
  const codes = rejectedCodes(sim, 'agents')
  assert.ok(codes.has('ERR_BAD_CIPHERTEXT') || codes.has('ERR_DUPLICATE'), [...codes].join(','))
})

test('messages for another round: rejected (ERR_WRONG_ROUND) by the coordinator and by the agents', async () => {
  const sim = await roundWith(115, (d, bad) => bad ? [{ ...d, message: { ...d.message, roundId: 'sim-115-old' } as SecAggMessage }, d] : [d])
  assert.ok(rejectedCodes(sim, 'coordinator').has('ERR_WRONG_ROUND'))
  assert.ok(rejectedCodes(sim, 'agents').has('ERR_WRONG_ROUND'))
  assert.ok(sim.result!.included.includes(ids.agents[BAD].id), 'its genuine messages still count')
})

test('a duplicate flood (200 copies of every message): rejected as ERR_DUPLICATE, no effect on the sum', async () => {
  let copies = 0
  const sim = await roundWith(116, (d, bad) => {
    if (!bad) return [d]
    copies += 199
    return Array.from({ length: 200 }, () => d)
  })
  // Every copy is refused with a typed error (none is silently applied twice).
  const duplicates = sim.rejected.filter(r => r.code === 'ERR_DUPLICATE').length
  assert.equal(duplicates, copies, `${duplicates} of ${copies} copies rejected as duplicates`)
  assert.ok(sim.result!.included.includes(ids.agents[BAD].id))
})

/** One round where the malicious agent flips a byte in every share it reveals of the given kind. */
async function corruptedShares (seed: number, kind: 'b' | 's', dropout?: Map<number, DropPoint>): Promise<SimulationResult> {
  const bad = ids.agents[BAD].id
  return await simulateRound({
    agents: N, dim: 64, identities: ids, seed, graph: 'full', threshold: 5, maxEntry: 1000,
    dropout: dropout ?? (kind === 's' ? new Map([[6, 'masked-input']]) : undefined),
    intercept: (d) => {
      if (d.from !== bad || d.message.type !== 'unmask-shares') return [d]
      const field = kind === 'b' ? 'bShares' : 'sShares'
      const bytes = new Uint8Array(d.message[field])
      for (let i = 0; i < bytes.length; i += SHARE_BYTES) bytes[i] ^= 0x5a
      return [{ ...d, message: { ...d.message, [field]: bytes } }]
    }
  })
}

test('corrupted s-shares of a dropped agent: caught by the advertised-key check, never a wrong sum', async () => {
  for (const seed of [117, 120, 121]) {
    const sim = await corruptedShares(seed, 's')
    if (sim.status === 'failed') assert.equal(sim.failure?.code, 'ERR_RECONSTRUCT', sim.failure?.message)
    else assert.ok(sim.correct, 'wrong sum')
  }
})

// Finding H7-2 (fixed): the server used to finish the unmask phase as soon as it held t shares of every
// secret, so one wrong share among the first t failed the round. Now a secret that does not verify against its
// signed commitment waits for the other holders' shares and is rebuilt from a subset without the wrong one.
test('corrupted s-shares: the round still finishes with the honest agents, the bad holder is named', async () => {
  for (const seed of [117, 120, 121]) {
    const sim = await corruptedShares(seed, 's')
    assert.equal(sim.status, 'done', sim.failure?.message)
    assert.ok(sim.correct, 'wrong sum')
    assert.ok(!sim.result!.included.includes(ids.agents[6].id), 'agent 6 dropped: its s-key was rebuilt')
    const caught = sim.inconsistentShares
    // Whenever the bad share was among those used, the search ran and named exactly the malicious holder.
    assert.ok(caught.every(c => c.holder === ids.agents[BAD].id && c.kind === 's'), JSON.stringify(caught))
  }
})

// Finding H7-1 (fixed): each agent commits to b_u (SHA-256, round and agent bound) in its signed advert; the
// coordinator accepts a rebuilt self-mask seed only when it matches, and otherwise searches other t-subsets.
test('corrupted b-shares of survivors: the sum is exact, never garbled; the bad holder is named', async () => {
  for (const seed of [119, 122, 123]) {
    const sim = await corruptedShares(seed, 'b')
    assert.equal(sim.status, 'done', sim.failure?.message)
    assert.ok(sim.correct, 'the coordinator published a wrong sum')
    assert.equal(sim.result!.included.length, N)
    const caught = sim.inconsistentShares
    assert.ok(caught.length > 0, 'a wrong b-share among the first t was detected')
    assert.deepEqual(new Set(caught.map(c => c.holder)), new Set([ids.agents[BAD].id]))
    assert.ok(caught.every(c => c.kind === 'b' && c.owner !== ids.agents[BAD].id))
  }
})

test('wrong shares from the only holders left: the round fails ERR_RECONSTRUCT naming the secret, never a wrong sum', async () => {
  // t = 5 of 9 other holders; four drop before unmasking and one corrupts: exactly t shares, one wrong.
  const dropout = new Map<number, DropPoint>([[5, 'unmask-shares'], [6, 'unmask-shares'], [7, 'unmask-shares'], [8, 'unmask-shares']])
  const sim = await corruptedShares(124, 'b', dropout)
  assert.equal(sim.status, 'failed')
  assert.equal(sim.failure?.code, 'ERR_RECONSTRUCT', sim.failure?.message)
  assert.match(sim.failure!.message, /self-mask seed of /)
  assert.equal(sim.result, null)
})

test('a malicious agent that claims to be another (sender spoofing at the core): refused as unknown or duplicate', async () => {
  const victim = ids.agents[7].id
  const sim = await roundWith(118, (d, bad) => bad && d.message.type === 'advertise-keys'
    ? [d, { ...d, from: victim }] // its advert again, as if from agent 7 (the network layer authenticates senders; the core must not trust a mislabelled one)
    : [d])
  assert.ok(sim.rejected.some(r => r.at === 'coordinator' && (r.code === 'ERR_BAD_SIGNATURE' || r.code === 'ERR_DUPLICATE')), JSON.stringify(sim.rejected))
  assert.ok(sim.result!.included.includes(victim))
})
