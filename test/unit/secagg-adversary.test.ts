import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { combineShares, SHARE_BYTES, ShamirError, type Share } from '../../shared/crypto/shamir.js'
import { addMaskInPlace } from '../../shared/crypto/prg.js'
import type { MaskedInput, SecAggMessage, UnmaskShares } from '../../shared/secagg/messages.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { createIdentities, simulateRound, type Delivery, type DropPoint, type Identity } from '../../shared/secagg/simulate.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(16, 21) })

/** Chi-square statistic of the byte histogram (256 buckets) of a vector. */
function byteChiSquare (v: Uint32Array): number {
  const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  const counts = new Float64Array(256)
  for (const b of bytes) counts[b]++
  const expected = bytes.length / 256
  let chi = 0
  for (const c of counts) chi += (c - expected) ** 2 / expected
  return chi
}
// 255 degrees of freedom: P[chi2 > 360] ≈ 1e-5.
const CHI2_LIMIT = 360

test('a curious coordinator learns only the sum: masked vectors are uniform, even after removing the self mask', async () => {
  const toCoordinator: Delivery[] = []
  const dim = 8192
  const dropout = new Map<number, DropPoint>([[3, 'masked-input']])
  const sim = await simulateRound({
    agents: 12, dim, identities, seed: 31, maxEntry: 3, dropout, graph: 'full',
    intercept: d => { if (d.to === identities.coordinator.id) toCoordinator.push(d); return [d] }
  })
  assert.equal(sim.status, 'done')
  assert.ok(sim.correct)
  const masked = toCoordinator.filter(d => d.message.type === 'masked-input').map(d => ({ from: d.from, y: (d.message as MaskedInput).vector }))
  assert.equal(masked.length, 11)
  // The inputs are tiny (0..3): unmasked they would fail the test by a wide margin.
  const plain = new Uint32Array(dim).map((_, i) => i % 4)
  assert.ok(byteChiSquare(plain) > 100 * CHI2_LIMIT)
  for (const { y } of masked) assert.ok(byteChiSquare(y) < CHI2_LIMIT, `masked vector not uniform: ${byteChiSquare(y)}`)

  // Everything the coordinator holds about each agent: b-shares for survivors, s-shares for the dropped — never both.
  const t = sim.t
  const shares = new Map<string, { b: Share[], s: Share[] }>()
  for (const d of toCoordinator) {
    if (d.message.type !== 'unmask-shares') continue
    const m = d.message as UnmaskShares
    const x = sim.ids.indexOf(d.from) + 1
    for (const [owners, bytes, kind] of [[m.bOwners, m.bShares, 'b'], [m.sOwners, m.sShares, 's']] as const) {
      owners.forEach((o, i) => {
        const entry = shares.get(sim.ids[o]) ?? { b: [], s: [] }
        entry[kind].push({ x, share: bytes.slice(i * SHARE_BYTES, (i + 1) * SHARE_BYTES) })
        shares.set(sim.ids[o], entry)
      })
    }
  }
  for (const [owner, { b, s }] of shares) assert.ok(b.length === 0 || s.length === 0, `coordinator holds both share kinds of ${owner}`)

  // The coordinator reconstructs a survivor's self mask and strips it: the pairwise masks still hide x_u.
  const victim = masked[0]
  const bShares = shares.get(victim.from)!.b
  assert.ok(bShares.length >= t)
  const y = new Uint32Array(victim.y)
  addMaskInPlace(y, combineShares(bShares, t), -1)
  assert.ok(byteChiSquare(y) < CHI2_LIMIT, 'still uniform without the self mask')
  // And its key-shares were never revealed: t − 1 shares of anything are refused.
  assert.equal(shares.get(victim.from)!.s.length, 0)
  assert.throws(() => combineShares(bShares.slice(0, t - 1), t), ShamirError)
})

test('a malicious coordinator asking for both shares of one agent is refused (ERR_NEVER_BOTH)', async () => {
  const coordinator = identities.coordinator
  const victimAgent = identities.agents[5].id
  let tampered = 0
  const sim = await simulateRound({
    agents: 10, dim: 16, identities, seed: 32, graph: 'full', dropout: new Map([[9, 'masked-input']]),
    intercept: d => {
      if (d.message.type !== 'unmask-request' || d.to !== victimAgent) return [d]
      tampered++
      // Claim survivor 0 also dropped, to obtain its s-share next to its b-share; re-signed with the real key.
      const dropped = [...new Set([0, ...d.message.dropped])].sort((a, b) => a - b)
      const message: SecAggMessage = { ...d.message, dropped, signature: coordinator.sign(transcript.unmaskRequestBytes(d.message.roundId, d.message.survivors, dropped)) }
      return [{ ...d, message }]
    }
  })
  assert.equal(tampered, 1)
  assert.ok(sim.rejected.some(r => r.at === victimAgent && r.code === 'ERR_NEVER_BOTH'), JSON.stringify(sim.rejected))
  // The others still unmask, so the round completes with the exact sum.
  assert.equal(sim.status, 'done')
  assert.ok(sim.correct)
})

test('different survivor sets for different agents are refused (ERR_CONSISTENCY)', async () => {
  const coordinator = identities.coordinator
  const split = new Set(identities.agents.slice(0, 4).map(a => a.id))
  let injected = false
  const sim = await simulateRound({
    agents: 10, dim: 16, identities, seed: 33, graph: 'full', threshold: 5,
    intercept: d => {
      if (d.message.type === 'survivors' && split.has(d.to)) {
        // These four see a survivor set without agent 9 (so they would reveal 9's key share later).
        const members = d.message.members.filter(i => i !== 9)
        return [{ ...d, message: { ...d.message, members, signature: coordinator.sign(transcript.survivorsBytes(d.message.roundId, members)) } }]
      }
      if (d.message.type === 'unmask-request' && !injected) {
        // The four signed the other set, so the honest server would not ask them; the malicious one does,
        // presenting the minority's set with everyone's signatures: only the 4 over this set verify (< t = 5).
        injected = true
        const survivors = d.message.survivors.filter(i => i !== 9)
        const dropped = [...d.message.dropped, 9].sort((a, b) => a - b)
        const forged: SecAggMessage = { ...d.message, survivors, dropped, signature: coordinator.sign(transcript.unmaskRequestBytes(d.message.roundId, survivors, dropped)) }
        return [d, ...[...split].map(to => ({ from: d.from, to, message: forged }))]
      }
      return [d]
    }
  })
  for (const id of split) assert.ok(sim.rejected.some(r => r.at === id && r.code === 'ERR_CONSISTENCY'), `${id} refused`)
  // The honest coordinator side rejected the four signatures over the other set.
  assert.equal(sim.rejected.filter(r => r.at === 'coordinator' && r.code === 'ERR_BAD_SIGNATURE').length, 4)
  // The six honest signers are enough to finish with the exact sum, and no one revealed a key share of agent 9.
  assert.equal(sim.status, 'done')
  assert.ok(sim.correct)
})
