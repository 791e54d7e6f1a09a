import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { deriveKey } from '../../shared/crypto/hkdf.js'
import { addMaskInPlace } from '../../shared/crypto/prg.js'
import { combineShares, SHARE_BYTES, type Share } from '../../shared/crypto/shamir.js'
import { x25519PublicKey, x25519SharedSecret } from '../../shared/crypto/x25519.js'
import type { SecAggClient } from '../../shared/secagg/client.js'
import { PROTOCOL_VERSION, type AdvertiseKeys, type MaskedInput, type UnmaskShares } from '../../shared/secagg/messages.js'
import { createIdentities, simulateRound, simulatedInput, type Delivery, type Identity } from '../../shared/secagg/simulate.js'
import { SIM_SPEC_HASH } from './adversary-harness.js'

/**
 * A coordinator colluding with some agents pools everything they saw: the coordinator's whole transcript
 * (adverts, masked inputs, unmask shares) and each colluder's own s-key and the Shamir shares it holds.
 * It then tries to recover an honest survivor's input x_u. With fewer than t colluders it must fail; with t
 * it succeeds (so the test can fail: the reconstruction code is right, only the shares are missing).
 */

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(10, 91) })

const N = 10
const T = 4
const DIM = 4096
const SEED = 92
const MAX_ENTRY = 3

interface ColluderView { index: number, sPrivate: Uint8Array, held: Map<number, { b: Uint8Array, s: Uint8Array }> }
interface Pooled { coordinatorSaw: Delivery[], colluders: ColluderView[], roundId: string }

type ClientInternals = { held: Map<number, { b: Uint8Array, s: Uint8Array }>, sKey: { privateKey: Uint8Array } | null }

async function runAndPool (colluders: number[]): Promise<Pooled> {
  const clients = new Map<number, SecAggClient>()
  const views: ColluderView[] = []
  const coordinatorSaw: Delivery[] = []
  const sim = await simulateRound({
    agents: N, dim: DIM, identities: ids, seed: SEED, maxEntry: MAX_ENTRY, graph: 'full', threshold: T,
    onClient: (i, c) => { clients.set(i, c) },
    intercept: (d) => {
      if (d.to === ids.coordinator.id || d.from === ids.coordinator.id) coordinatorSaw.push(d)
      const from = ids.agents.findIndex(a => a.id === d.from)
      if (d.message.type === 'share-receipt' && colluders.includes(from)) {
        // The colluder's secrets at this point (copied: the client wipes them at the end of the round).
        const inner = clients.get(from) as unknown as ClientInternals
        views.push({
          index: from,
          sPrivate: new Uint8Array(inner.sKey!.privateKey),
          held: new Map([...inner.held].map(([o, { b, s }]) => [o, { b: new Uint8Array(b), s: new Uint8Array(s) }]))
        })
      }
      return [d]
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.equal(sim.t, T)
  assert.equal(views.length, colluders.length)
  return { coordinatorSaw, colluders: views, roundId: coordinatorSaw[0].message.roundId }
}

/** The attack: returns the recovered x_u, or the residual and why it failed. */
function attack (pool: Pooled, victim: number): { recovered: Uint32Array | null, residual: Uint32Array, reason: string } {
  const adverts = new Map<number, AdvertiseKeys>()
  let y: Uint32Array | null = null
  const bShares: Share[] = []
  for (const d of pool.coordinatorSaw) {
    const from = ids.agents.findIndex(a => a.id === d.from)
    if (d.message.type === 'advertise-keys') adverts.set(from, d.message)
    if (d.message.type === 'masked-input' && from === victim) y = new Uint32Array((d.message as MaskedInput).vector)
    if (d.message.type === 'unmask-shares') {
      const m = d.message as UnmaskShares
      const at = m.bOwners.indexOf(victim)
      if (at >= 0) bShares.push({ x: from + 1, share: m.bShares.slice(at * SHARE_BYTES, (at + 1) * SHARE_BYTES) })
    }
  }
  assert.ok(y !== null)
  // 1. The self mask: the coordinator always learns b_u of a survivor (t b-shares), by design.
  addMaskInPlace(y, combineShares(bShares, T), -1)
  // 2. Pairwise masks with colluders: each colluder knows its own seed with the victim.
  const ctx = { protocol: PROTOCOL_VERSION, roundId: pool.roundId, specHash: SIM_SPEC_HASH, vectorLength: DIM }
  for (const c of pool.colluders) {
    const seed = deriveKey(x25519SharedSecret(c.sPrivate, adverts.get(victim)!.sPk), 'pairwise-mask', ctx, ids.agents[c.index].id, ids.agents[victim].id)
    addMaskInPlace(y, seed, victim < c.index ? -1 : 1)
  }
  // 3. Pairwise masks with honest agents need the victim's s-key: pool the colluders' s-shares of it.
  const sShares: Share[] = pool.colluders.map(c => ({ x: c.index + 1, share: c.held.get(victim)!.s }))
  let sk: Uint8Array
  try {
    sk = combineShares(sShares, T)
  } catch (err) {
    // Interpolating through the shares they have (as if t were smaller) gives some 32 bytes: not the key.
    let guess: Uint8Array | null = null
    try { guess = combineShares(sShares, sShares.length) } catch { /* inconsistent: no key at all */ }
    const matches = guess !== null && Buffer.from(x25519PublicKey(guess)).equals(Buffer.from(adverts.get(victim)!.sPk))
    return { recovered: null, residual: y, reason: `${(err as Error).message}; interpolation with ${sShares.length} shares ${matches ? 'FOUND' : 'did not find'} the key` }
  }
  assert.deepEqual(x25519PublicKey(sk), new Uint8Array(adverts.get(victim)!.sPk), 'the reconstructed s-key is the victim\'s')
  const colluding = new Set(pool.colluders.map(c => c.index))
  for (let v = 0; v < N; v++) {
    if (v === victim || colluding.has(v)) continue
    const seed = deriveKey(x25519SharedSecret(sk, adverts.get(v)!.sPk), 'pairwise-mask', ctx, ids.agents[victim].id, ids.agents[v].id)
    addMaskInPlace(y, seed, victim < v ? -1 : 1)
  }
  return { recovered: y, residual: y, reason: 'recovered' }
}

/** Chi-square of the byte histogram (255 dof; P[> 360] ≈ 1e-5). */
function byteChiSquare (v: Uint32Array): number {
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  const counts = new Float64Array(256)
  for (const b of bytes) counts[b]++
  const e = bytes.length / 256
  let chi = 0
  for (const c of counts) chi += (c - e) ** 2 / e
  return chi
}

test(`coordinator + ${T - 1} colluding agents (t − 1) cannot recover an honest agent's input`, async () => {
  const colluders = [1, 2, 3]
  const pool = await runAndPool(colluders)
  for (const victim of [0, 5, 9]) {
    const x = simulatedInput(SEED, victim, DIM, MAX_ENTRY)
    const { recovered, residual, reason } = attack(pool, victim)
    assert.equal(recovered, null, `victim ${victim} recovered`)
    assert.match(reason, /need 4 shares to reconstruct, got 3; interpolation with 3 shares did not find the key/)
    // What remains after removing everything they know is still uniform, and is not x_u.
    assert.ok(byteChiSquare(residual) < 360, `residual not uniform: ${byteChiSquare(residual)}`)
    assert.ok(byteChiSquare(x) > 100 * 360)
    assert.notDeepEqual(residual, x)
  }
})

test(`with t = ${T} colluding agents the same attack recovers the input exactly (the threshold is what protects)`, async () => {
  const pool = await runAndPool([1, 2, 3, 4])
  for (const victim of [0, 9]) {
    const { recovered, reason } = attack(pool, victim)
    assert.equal(reason, 'recovered')
    assert.deepEqual(recovered, simulatedInput(SEED, victim, DIM, MAX_ENTRY))
  }
})
