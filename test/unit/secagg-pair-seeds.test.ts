import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentities, simulateRound, type Delivery, type DropPoint, type Identity } from '../../shared/secagg/simulate.js'
import { PAIR_SEED_BYTES, type UnmaskShares } from '../../shared/secagg/messages.js'

/**
 * Pair seeds (issue 15 §2): in the unmask phase each survivor sends the pairwise mask seed it shares with each
 * dropped neighbour it masked with, so the coordinator removes those masks with AES-CTR alone instead of
 * rebuilding the dropped agent's s-key and running one X25519 per surviving neighbour.
 */

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(30, 71) })

const base = { agents: 30, dim: 1000, graph: 'sparse' as const, degree: 10, threshold: 4 }
const dropAt = (indexes: number[], point: DropPoint): Map<number, DropPoint> => new Map(indexes.map(i => [i, point]))

test('survivors send the pair seeds of their dropped neighbours only: exact sum, no X25519 at the coordinator', async () => {
  const seen: Array<{ from: string, message: UnmaskShares }> = []
  const sim = await simulateRound({
    ...base, identities, seed: 3, dropout: dropAt([2, 9, 17, 25], 'masked-input'),
    intercept: (d: Delivery) => { if (d.message.type === 'unmask-shares') seen.push({ from: d.from, message: d.message }); return [d] }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.equal(sim.unmaskKeyAgreements, 0)
  assert.ok(seen.length > 0)
  // What a curious coordinator collects: seeds only for dropped neighbours, never for a survivor.
  const dropped = new Set(sim.result!.dropped.map(id => sim.ids.indexOf(id)))
  let seeds = 0
  for (const { message } of seen) {
    const owners = message.pairOwners ?? []
    assert.equal(message.pairSeeds?.length, owners.length * PAIR_SEED_BYTES)
    for (const v of owners) assert.ok(dropped.has(v), `seed of survivor ${v} revealed`)
    for (const v of message.bOwners) assert.ok(!owners.includes(v), 'never both: a b-share and a pair seed of one agent')
    seeds += owners.length
  }
  assert.ok(seeds > 0)
})

test('a survivor that sends no pair seeds (an older agent) and one that leaves in the unmask phase: the s-keys stand in', async () => {
  const strip = new Set([identities.agents[4].id, identities.agents[11].id, identities.agents[20].id])
  const sim = await simulateRound({
    ...base, identities, seed: 5,
    dropout: new Map<number, DropPoint>([[2, 'masked-input'], [9, 'masked-input'], [17, 'masked-input'], [13, 'unmask-shares']]),
    intercept: (d: Delivery) => {
      if (d.message.type !== 'unmask-shares' || !strip.has(d.from)) return [d]
      const { pairOwners: _o, pairSeeds: _s, ...rest } = d.message
      return [{ ...d, message: rest }]
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.ok((sim.unmaskKeyAgreements ?? 0) > 0, 'missing seeds are made up with X25519')
  assert.ok((sim.unmaskKeyAgreements ?? 0) < (sim.unmaskExpansions ?? 0))
})

test('a pair seed listed for a survivor, or with the wrong length, is refused and the round still ends exact', async () => {
  let tampered = 0
  const sim = await simulateRound({
    ...base, identities, seed: 8, dropout: dropAt([2, 9, 17], 'masked-input'),
    intercept: (d: Delivery) => {
      if (d.message.type !== 'unmask-shares' || tampered >= 2 || d.message.bOwners.length === 0) return [d]
      tampered++
      const m = d.message
      // first: claim a survivor's seed; second: a seed one byte short
      const message = tampered === 1
        ? { ...m, pairOwners: [m.bOwners[0]], pairSeeds: new Uint8Array(PAIR_SEED_BYTES) }
        : { ...m, pairSeeds: new Uint8Array(Math.max(0, (m.pairSeeds?.length ?? 0) - 1)), pairOwners: m.pairOwners ?? [] }
      return [{ ...d, message }]
    }
  })
  assert.equal(tampered, 2)
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.ok(sim.rejected.some(r => r.type === 'unmask-shares'), JSON.stringify(sim.rejected))
})
