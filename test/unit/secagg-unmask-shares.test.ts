import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentities, simulateRound, type Identity } from '../../shared/secagg/simulate.js'

/** The coordinator's intake of unmask shares (one private copy per message, views per share). */

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(16, 31) })

const base = { agents: 16, dim: 40, graph: 'sparse' as const, degree: 8, threshold: 3, wire: false, dropout: new Map([[3, 'masked-input' as const]]) }

test('unmask shares whose bytes do not match their owner lists are refused (ERR_BAD_LENGTH), not read as zero shares', async () => {
  const sim = await simulateRound({
    ...base, identities, seed: 5,
    intercept: d => {
      if (d.message.type !== 'unmask-shares' || d.from !== identities.agents[0].id) return [d]
      return [{ ...d, message: { ...d.message, bShares: d.message.bShares.subarray(0, d.message.bShares.length - 4) } }]
    }
  })
  assert.ok(sim.rejected.some(r => r.at === 'coordinator' && r.type === 'unmask-shares' && r.code === 'ERR_BAD_LENGTH'), JSON.stringify(sim.rejected))
  // The others' shares still rebuild every secret: the round ends exact.
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
})

test('the coordinator keeps its own copy: overwriting a message\'s share bytes once delivered changes nothing', async () => {
  const delivered: Uint8Array[] = []
  const sim = await simulateRound({
    ...base, identities, seed: 6,
    // Messages to the coordinator are received before anything else happens (so before the next intercept call).
    streaming: true,
    intercept: d => {
      // Every earlier message to the coordinator has been received by now: scribble over it.
      for (const bytes of delivered.splice(0)) bytes.fill(0xee)
      if (d.message.type === 'unmask-shares') delivered.push(d.message.bShares, d.message.sShares)
      return [d]
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.deepEqual(sim.inconsistentShares, [])
})
