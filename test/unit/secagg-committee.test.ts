/**
 * The consistency committee (issue 15 §2): beyond 700 participants only a committee drawn from the round id
 * certifies the survivor set, so an agent downloads and checks at most ~400 signatures however large the round.
 * - committeeMembers: deterministic from the round id, distinct, in range, different per round, near uniform;
 * - committeeQuorum: everyone's quorum up to the committee size, else ⌊(s + c)/2⌋ + 1 with c the 2^-80 bound on
 *   the colluders among the committee (checked against the binomial tail here; scipy gives c = 107 at s = 700,
 *   α = 5 %);
 * - a round with a committee: the certificate holds exactly the committee's quorum, all members' signatures,
 *   and the sum is exact; an agent refuses a committee too small to outvote the colluders it tolerates.
 * The split-view attack against a committee: test/unit/adversary-split-view.test.ts.
 */
import '../../shared/polyfill.js'
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { committeeMembers } from '../../shared/secagg/committee.js'
import { binomialTailAtLeast, chooseCommitteeSize, committeeQuorum, consistencyQuorum, CONSISTENCY_COMMITTEE_SIZE, GRAPH_SECURITY } from '../../shared/secagg/params.js'
import { createIdentities, simulateRound, type Identity } from '../../shared/secagg/simulate.js'
import type { UnmaskRequest } from '../../shared/secagg/messages.js'
import { runRound, sumOf, type HarnessAgent } from './adversary-harness.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(80, 4242) })

test('committee members: deterministic from the round id, distinct, in range, a new draw per round, near uniform', () => {
  const a = committeeMembers(10_000, 700, 'round-a')
  assert.equal(a.size, 700)
  assert.deepEqual([...committeeMembers(10_000, 700, 'round-a')], [...a])
  for (const i of a) assert.ok(Number.isInteger(i) && i >= 0 && i < 10_000)
  const b = committeeMembers(10_000, 700, 'round-b')
  const overlap = [...a].filter(i => b.has(i)).length
  assert.ok(overlap < 120, `two rounds' committees share ${overlap} members (expected ~49)`)
  assert.equal(committeeMembers(50, 700, 'r').size, 50, 'everyone when the committee is not smaller than the round')
  // over 400 rounds of n = 100, s = 30, every participant is drawn ~120 times
  const hits = new Array<number>(100).fill(0)
  for (let r = 0; r < 400; r++) for (const i of committeeMembers(100, 30, `r${r}`)) hits[i]++
  assert.ok(Math.min(...hits) > 70 && Math.max(...hits) < 170, `draws per participant ${Math.min(...hits)}..${Math.max(...hits)}`)
})

test('committee quorum: everyone\'s up to the committee size, then ⌊(s + c)/2⌋ + 1 with c the 2^-80 colluder bound', () => {
  assert.equal(committeeQuorum(500, 25, 700), consistencyQuorum(500, 25))
  const q = committeeQuorum(10_000, 500, CONSISTENCY_COMMITTEE_SIZE)
  assert.equal(q, 404)
  // c: the fewest colluders among 700 whose excess has probability ≤ 2^-80 (scipy: 107)
  const c = 107
  assert.ok(binomialTailAtLeast(700, 0.05, c + 1) <= GRAPH_SECURITY && binomialTailAtLeast(700, 0.05, c) > GRAPH_SECURITY, `c = ${c}`)
  assert.equal(q, Math.floor((700 + c) / 2) + 1)
  // the colluders are never more than C, whatever the tail says
  assert.equal(committeeQuorum(80, 4, 40), Math.floor((40 + 4) / 2) + 1)
  assert.equal(chooseCommitteeSize(10_000, 500), 700)
  assert.equal(chooseCommitteeSize(1000, 50), 700, 'n = 1,000: 404 signatures instead of 526')
  assert.equal(chooseCommitteeSize(600, 30), 600, 'up to 700 participants everyone certifies')
  assert.throws(() => chooseCommitteeSize(100, 5, 0), /committee size/)
})

test('a round with a committee of 40 at n = 80: the certificate is the committee\'s quorum of members\' signatures, and the sum is exact', async () => {
  const requests: UnmaskRequest[] = []
  let committee: number | undefined
  let roundId = ''
  const sim = await simulateRound({
    agents: 80, dim: 32, identities, seed: 3, graph: 'auto', degree: 72, threshold: 25, minAgents: 2, maxEntry: 1000, committeeSize: 40, dropoutRate: 0.1, dropPoint: 'masked-input',
    intercept: (d) => {
      if (d.message.type === 'announce') { committee = d.message.committee; roundId = d.message.roundId }
      if (d.message.type === 'unmask-request' && requests.length === 0) requests.push(d.message)
      return [d]
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct, 'the sum equals the survivors\' inputs')
  assert.equal(committee, 40)
  const members = committeeMembers(80, 40, roundId)
  const q = committeeQuorum(80, 4, 40)
  assert.equal(requests[0].signatures.length, q)
  for (const { index } of requests[0].signatures) assert.ok(members.has(index), `signer ${index} is a committee member`)
})

test('an agent refuses a committee too small to outvote the colluders it tolerates', () => {
  const agents: HarnessAgent[] = identities.agents.slice(0, 10).map((identity, i) => ({ identity, input: Uint32Array.from([i, 2 * i]), policy: { maxCorruptFraction: 0.3 } }))
  const res = runRound({ roundId: 'small-committee', coordinator: identities.coordinator, agents, dim: 2, window: { from: 0, to: 3_600_000 }, now: 1000, threshold: 6, minAgents: 3, committeeSize: 3 })
  assert.equal(res.status, 'failed')
  assert.ok(res.rejected.some(r => r.code === 'ERR_POLICY' && /committee of 3 cannot outvote/.test(r.message)), JSON.stringify(res.rejected.slice(0, 2)))
  // the same committee at the default tolerance (C = 0 of 10) is safe: the round finishes exactly
  const relaxed = runRound({ roundId: 'small-committee-2', coordinator: identities.coordinator, agents: agents.map(a => ({ ...a, policy: {} })), dim: 2, window: { from: 0, to: 3_600_000 }, now: 1000, threshold: 6, minAgents: 3, committeeSize: 3 })
  assert.equal(relaxed.status, 'done', relaxed.failure?.message)
  assert.deepEqual([...relaxed.result!.sum], [...sumOf(agents.map(a => a.input), 2)])
})
