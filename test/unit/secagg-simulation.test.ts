import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { SecAggError } from '../../shared/secagg/errors.js'
import { SecAggServer } from '../../shared/secagg/server.js'
import { createIdentities, DROP_POINTS, simulateRound, type DropPoint, type Identity } from '../../shared/secagg/simulate.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(200, 11) })

test('no dropouts: every agent included, exact sum', async () => {
  const sim = await simulateRound({ agents: 20, dim: 257, identities, seed: 1 })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.equal(sim.result!.included.length, 20)
  assert.equal(sim.rejected.filter(r => r.code !== 'ERR_WRONG_PHASE').length, 0, JSON.stringify(sim.rejected))
  assert.ok([...sim.clientStatus.values()].every(s => s === 'done'))
})

for (const point of DROP_POINTS) {
  test(`three agents drop at ${point}: exact sum over exactly the included agents`, async () => {
    const dropout = new Map<number, DropPoint>([[2, point], [7, point], [13, point]])
    const sim = await simulateRound({ agents: 16, dim: 33, identities, seed: 2, dropout })
    assert.equal(sim.status, 'done', sim.failure?.message)
    assert.ok(sim.correct)
    const droppedIds = [2, 7, 13].map(i => sim.ids[i])
    const late = point === 'consistency-signature' || point === 'unmask-shares'
    for (const id of droppedIds) assert.equal(sim.result!.included.includes(id), late, `${id} (${point})`)
    assert.equal(sim.result!.included.length, late ? 16 : 13)
  })
}

test('n = 200, sparse graph, 25 % random dropouts at every phase', async () => {
  const sim = await simulateRound({ agents: 200, dim: 64, identities, seed: 3, dropout: 0.25, graph: 'sparse' })
  assert.equal(sim.graph, 'sparse')
  assert.ok(sim.k < 199)
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.ok(sim.result!.included.length >= 150 && sim.result!.included.length <= 200 - 50 + 26)
})

test('a share lost between two live agents (one direction only) does not break the round', async () => {
  let cut = 0
  const sim = await simulateRound({
    agents: 12, dim: 20, identities, seed: 4, graph: 'full',
    intercept: d => (d.message.type === 'shares' && d.from === identities.agents[0].id && cut++ < 3) ? [] : [d]
  })
  assert.equal(cut, 11) // saw all 11 of agent 0's share messages, cut 3 of them
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.equal(sim.result!.included.length, 12)
})

test('an agent whose data never arrives is dropped at the masked-input deadline', async () => {
  const sim = await simulateRound({ agents: 10, dim: 8, identities, seed: 5, noInput: new Set([4]) })
  assert.equal(sim.status, 'done')
  assert.ok(sim.correct)
  assert.ok(!sim.result!.included.includes(sim.ids[4]))
})

test('too many dropouts: the round refuses to finish (ERR_TOO_FEW_SURVIVORS), agents are told and wipe', async () => {
  const dropout = new Map<number, DropPoint>([0, 1, 2, 3, 4, 5].map(i => [i, 'masked-input']))
  const sim = await simulateRound({ agents: 10, dim: 8, identities, seed: 6, dropout, minAgents: 5 })
  assert.equal(sim.status, 'failed')
  assert.equal(sim.failure?.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.equal(sim.result, null)
  for (const i of [6, 7, 8, 9]) assert.equal(sim.clientStatus.get(sim.ids[i]), 'failed')
})

test('minAgents above the survivors refuses the round even when t is met', async () => {
  const dropout = new Map<number, DropPoint>([[0, 'masked-input'], [1, 'masked-input']])
  const sim = await simulateRound({ agents: 8, dim: 4, identities, seed: 7, dropout, minAgents: 7, threshold: 3 })
  assert.equal(sim.status, 'failed')
  assert.equal(sim.failure?.code, 'ERR_TOO_FEW_SURVIVORS')
})

test('overflow: agents × maxEntry must fit in 2^32', () => {
  const participants = identities.agents.slice(0, 100).map(a => ({ id: a.id, addrs: [] }))
  const base = {
    roundId: 'r', coordinator: identities.coordinator.id, sign: identities.coordinator.sign, verify: () => true, participants,
    vectorLength: 4, specHash: '0'.repeat(64), window: { from: 0, to: 1 }, minAgents: 1, phaseTimeoutMs: 1000
  }
  assert.throws(() => new SecAggServer({ ...base, maxEntry: Math.ceil(2 ** 32 / 100) }), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_OVERFLOW')
  assert.doesNotThrow(() => new SecAggServer({ ...base, maxEntry: Math.floor((2 ** 32 - 1) / 100) }))
})

test('an input of the wrong length is refused and a good one accepted; an entry above the max entry withdraws the agent (declined, window used up)', async () => {
  const codes: string[] = []
  const sim = await simulateRound({
    agents: 6, dim: 4, identities, seed: 8, maxEntry: 10,
    onClient: (i, client, now) => {
      if (i !== 0 && i !== 1) return
      const bad = i === 0 ? new Uint32Array(5) : new Uint32Array([0, 11, 0, 0])
      try { client.setInput(bad, now) } catch (err) { codes.push((err as SecAggError).code) }
    }
  })
  assert.deepEqual(codes, ['ERR_BAD_LENGTH', 'ERR_OVERFLOW'])
  assert.equal(sim.status, 'done')
  assert.ok(sim.correct)
  assert.ok(sim.result!.included.includes(sim.ids[0]))
  // Whether an entry overflows depends on the data: the agent leaves for good, with a declinable refusal.
  assert.ok(!sim.result!.included.includes(sim.ids[1]))
  assert.equal(sim.clientFailures.get(sim.ids[1])?.code, 'ERR_OVERFLOW')
  assert.match(sim.clientFailures.get(sim.ids[1])!.message, /window used up/)
})

test('too many dropouts for t: the round fails when the masked inputs are in, saying that survivors lack t live neighbours', async () => {
  // n = 5, full graph, t = 3: with 2 dropped after their shares, each survivor keeps 2 live neighbours < t and
  // would refuse to sign; the server says so at once (it used to fail later on "0 consistency signatures").
  const sim = await simulateRound({ agents: 5, dim: 4, identities, seed: 12, graph: 'full', dropout: new Map([[0, 'masked-input'], [1, 'masked-input']]) })
  assert.equal(sim.status, 'failed')
  assert.equal(sim.t, 3)
  assert.equal(sim.failure?.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(sim.failure!.message, /^masked inputs: 3 agents, but only 0 of them keep t = 3 surviving neighbours/)
})
