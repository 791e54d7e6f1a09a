import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentities, simulateRound, type Delivery, type Identity } from '../../shared/secagg/simulate.js'
import { parseSecAggMessage } from '../../shared/secagg/messages.js'
import { SecAggError } from '../../shared/secagg/errors.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(12, 41) })

const STRANGER = '12D3KooWGRUVh4dxWzXhBA7yKx1w7Nn4AqSVAWbtsPD3ASr9AGzN'

test('malformed messages to both state machines are rejected with typed errors and the round still completes', async () => {
  const seen = new Set<string>()
  const once = (key: string): boolean => { if (seen.has(key)) return false; seen.add(key); return true }
  const sim = await simulateRound({
    agents: 8, dim: 32, identities, seed: 42, graph: 'full',
    intercept: (d: Delivery) => {
      const m = d.message
      const out: Delivery[] = []
      if (m.type === 'advertise-keys' && once('adv')) {
        out.push({ ...d, message: { ...m, roundId: 'other-round' } }) // wrong round
        out.push({ ...d, message: { ...m, signature: new Uint8Array(64) } }) // bad signature
        out.push({ ...d, from: STRANGER }) // unknown sender
      }
      if (m.type === 'masked-input' && once('masked')) {
        out.push({ ...d, message: { ...m, vector: new Uint32Array(m.vector.length + 1) } }) // wrong length
      }
      if (m.type === 'key-set' && once('keyset')) {
        out.push({ ...d, message: { ...m, keys: m.keys.map((k, i) => i === 0 ? { ...k, signature: new Uint8Array(64) } : k) } }) // forged advert
        out.push({ ...d, from: STRANGER }) // not from the coordinator
      }
      if (m.type === 'shares' && once('shares')) {
        const ciphertext = new Uint8Array(m.ciphertext); ciphertext[0] ^= 1
        out.push({ ...d, message: { ...m, ciphertext } }) // tampered ciphertext
        out.push({ ...d, from: STRANGER }) // not a neighbour
      }
      if (m.type === 'masking-set' && once('masking')) {
        out.push({ ...d, message: { ...m, signature: new Uint8Array(64) } })
      }
      out.push(d)
      // Duplicates: every consistency signature and every shares message is delivered twice.
      if (m.type === 'consistency-signature' || m.type === 'shares') out.push(d)
      return out
    }
  })
  assert.equal(sim.status, 'done', sim.failure?.message)
  assert.ok(sim.correct)
  assert.equal(sim.result!.included.length, 8)
  const codes = (at: 'coordinator' | 'agent') => new Set(sim.rejected.filter(r => (r.at === 'coordinator') === (at === 'coordinator')).map(r => r.code))
  for (const code of ['ERR_WRONG_ROUND', 'ERR_BAD_SIGNATURE', 'ERR_UNKNOWN_SENDER', 'ERR_BAD_LENGTH', 'ERR_DUPLICATE']) assert.ok(codes('coordinator').has(code), `coordinator ${code}`)
  for (const code of ['ERR_BAD_SIGNATURE', 'ERR_UNKNOWN_SENDER', 'ERR_BAD_CIPHERTEXT', 'ERR_DUPLICATE']) assert.ok(codes('agent').has(code), `agent ${code}`)
})

test('parseSecAggMessage names the problem and never lets garbage through', () => {
  const cases: unknown[] = [null, 42, 'x', [], {}, { type: 'nope', roundId: 'r' }, { type: 'masked-input', roundId: 'r', vector: [1, 2, 3] },
    { type: 'advertise-keys', roundId: 'r', cPk: new Uint8Array(31), sPk: new Uint8Array(32), signature: new Uint8Array(64) },
    { type: 'shares', roundId: '', ciphertext: new Uint8Array(104) },
    { type: 'unmask-shares', roundId: 'r', bOwners: [1], bShares: new Uint8Array(43), sOwners: [], sShares: new Uint8Array(0) }]
  for (const value of cases) {
    assert.throws(() => parseSecAggMessage(value), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_BAD_MESSAGE' && e.name === 'SecAggError')
  }
  assert.throws(() => parseSecAggMessage({ type: 'advertise-keys', roundId: 'r', cPk: new Uint8Array(31), sPk: new Uint8Array(32), signature: new Uint8Array(64) }), /cPk/)
  const ok = parseSecAggMessage({ type: 'masked-input', roundId: 'r', vector: new Uint32Array(3), extra: 1 })
  assert.equal(ok.type, 'masked-input')
})
