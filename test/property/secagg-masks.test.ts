import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { deriveKey } from '../../shared/crypto/hkdf.js'
import { addMaskInPlace } from '../../shared/crypto/prg.js'
import { generateX25519KeyPair, x25519SharedSecret } from '../../shared/crypto/x25519.js'
import { createIdentities, DROP_POINTS, simulateRound, type DropPoint, type Identity } from '../../shared/secagg/simulate.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(12, 7) })

test('pairwise masks cancel in the sum, for any agents, ids and vector length', () => {
  fc.assert(fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 64 }), fc.string({ minLength: 1, maxLength: 20 }), (n, m, roundId) => {
    const keys = Array.from({ length: n }, () => generateX25519KeyPair())
    const ctx = { protocol: 'fedmon-secagg/1', roundId, specHash: '00'.repeat(32), vectorLength: m }
    const total = new Uint32Array(m)
    const nonzero = new Uint32Array(m)
    for (let u = 0; u < n; u++) {
      const y = new Uint32Array(m)
      for (let v = 0; v < n; v++) {
        if (v === u) continue
        const seed = deriveKey(x25519SharedSecret(keys[u].privateKey, keys[v].publicKey), 'pairwise-mask', ctx, `agent-${u}`, `agent-${v}`)
        addMaskInPlace(y, seed, u < v ? 1 : -1)
      }
      for (let i = 0; i < m; i++) { total[i] += y[i]; nonzero[i] |= y[i] }
    }
    assert.ok(total.every(v => v === 0), 'masks cancel')
    assert.ok(nonzero.some(v => v !== 0), 'masks are not trivially zero')
  }), { numRuns: 40 })
})

test('the sum over whichever agents survive equals their plaintext sum exactly', async () => {
  const plan = fc.record({
    n: fc.integer({ min: 4, max: 12 }),
    dim: fc.integer({ min: 1, max: 40 }),
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    drops: fc.array(fc.option(fc.constantFrom(...DROP_POINTS), { freq: 2 }), { minLength: 12, maxLength: 12 })
  })
  await fc.assert(fc.asyncProperty(plan, async ({ n, dim, seed, drops }) => {
    const dropout = new Map<number, DropPoint>()
    drops.slice(0, n).forEach((p, i) => { if (p !== null) dropout.set(i, p) })
    const sim = await simulateRound({ agents: n, dim, seed, dropout, identities, graph: 'full' })
    if (sim.status === 'failed') {
      assert.equal(sim.failure?.code, 'ERR_TOO_FEW_SURVIVORS', sim.failure?.message)
      assert.equal(sim.result, null)
      return
    }
    assert.equal(sim.status, 'done')
    assert.ok(sim.correct, 'sum equals the plaintext sum over the included agents')
    const early = new Set(['advertise-keys', 'shares', 'during-shares', 'share-receipt', 'masked-input'])
    for (const id of sim.result!.included) assert.ok(!early.has(sim.dropPoints.get(id) ?? ''), `${id} dropped before its masked input but is included`)
    assert.equal(sim.result!.included.length + sim.result!.dropped.length, n)
  }), { numRuns: 25 })
})
