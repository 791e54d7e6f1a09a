import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createIdentities, simulateRound, type Identity } from '../../shared/secagg/simulate.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { PROTOCOL_VERSION } from '../../shared/secagg/messages.js'

/**
 * Issue 15 part 2 (10,000 agents): nothing any party signs or checks per message grows with n. Signatures
 * cover digests of the round's sets, never their texts, and the digests stay as binding as the lists were.
 */

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(160, 15) })

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const participants = (n: number): Array<{ id: string, addrs: string[] }> =>
  range(n).map(i => ({ id: `12D3KooW${String(i).padStart(44, '0')}`, addrs: [`/ip4/10.0.0.1/tcp/${4000 + i}`] }))
const announceBody = (n: number) => ({
  roundId: 'r-1', protocol: PROTOCOL_VERSION as typeof PROTOCOL_VERSION, coordinator: 'coord', participants: participants(n), window: { from: 0, to: 3_600_000 },
  specHash: 'a'.repeat(64), vectorLength: 100, maxEntry: 1000, minAgents: 2, threshold: 3, degree: 4, graph: 'sparse' as const,
  phaseTimeoutMs: 1000, issuedAt: 0, reference: false
})

test('signed bytes of the survivor, masking, unmask-request and consistency messages do not grow with the set', () => {
  for (const make of [transcript.consistencyBytes, transcript.survivorsBytes, transcript.maskingSetBytes]) {
    assert.equal(make('r-1', range(10_000)).length, make('r-1', range(10)).length)
    assert.ok(make('r-1', range(10_000)).length < 200)
  }
  assert.equal(transcript.unmaskRequestBytes('r-1', range(7000), range(3000).map(i => 7000 + i)).length,
    transcript.unmaskRequestBytes('r-1', range(7), [7, 8, 9]).length)
})

test('the Announce signature covers a digest of the participant list, not its text', () => {
  const small = transcript.announceBytes(announceBody(10)).length
  const large = transcript.announceBytes(announceBody(10_000)).length
  // Only the decimal count of participants differs.
  assert.ok(large - small <= 4, `${small} → ${large} bytes`)
})

test('set digests bind the exact set, the round and the purpose', () => {
  const seen = new Set<string>()
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
  const sets = [[], [0], [1], [0, 1], [1, 2], [12, 3], [1, 23], [0, 1, 2], range(100), [...range(100), 100], range(101).filter(i => i !== 50)]
  for (const s of sets) {
    const bytes = hex(transcript.consistencyBytes('r-1', s))
    assert.ok(!seen.has(bytes), `collision for ${JSON.stringify(s)}`)
    seen.add(bytes)
    assert.equal(hex(transcript.consistencyBytes('r-1', s)), bytes, 'deterministic')
    assert.notEqual(hex(transcript.consistencyBytes('r-2', s)), bytes, 'bound to the round')
    assert.notEqual(hex(transcript.indexSetDigest('survivors', 'r-1', s)), hex(transcript.survivorSetDigest('r-1', s)), 'bound to the purpose')
  }
  // Only participant indexes have a digest (u32 is injective on them alone): 1.5 must not pass for 1.
  for (const bad of [1.5, -1, 2 ** 32, Number.NaN]) {
    assert.throws(() => transcript.consistencyBytes('r-1', [0, bad]), (err: Error & { code?: string }) => err.code === 'ERR_BAD_MESSAGE')
  }
  // Survivors and dropped cannot trade members in an unmask request under one signature.
  assert.notEqual(hex(transcript.unmaskRequestBytes('r-1', [0, 1], [2])), hex(transcript.unmaskRequestBytes('r-1', [0], [1, 2])))
})

test('the participant digest is injective across id/address boundaries and list shapes', () => {
  const hex = (list: Array<{ id: string, addrs: string[] }>): string => Buffer.from(transcript.participantsDigest('r', list)).toString('hex')
  const variants = [
    [{ id: 'ab', addrs: ['c'] }],
    [{ id: 'a', addrs: ['bc'] }],
    [{ id: 'abc', addrs: [] }],
    [{ id: 'a', addrs: ['b', 'c'] }],
    [{ id: 'a', addrs: [] }, { id: 'b', addrs: ['c'] }],
    [{ id: 'a', addrs: ['b'] }, { id: 'c', addrs: [] }],
    [{ id: 'é', addrs: [] }],
    [{ id: 'e', addrs: [] }]
  ]
  const digests = variants.map(hex)
  assert.equal(new Set(digests).size, variants.length)
  assert.notEqual(Buffer.from(transcript.participantsDigest('r', variants[0])).toString('hex'), Buffer.from(transcript.participantsDigest('s', variants[0])).toString('hex'))
})

test('in a real round, nothing the coordinator signs grows with n (40 vs 160 agents)', async () => {
  const largest = async (n: number): Promise<number> => {
    let max = 0
    const coordinator: Identity = { id: identities.coordinator.id, sign: data => { max = Math.max(max, data.length); return identities.coordinator.sign(data) } }
    const sim = await simulateRound({ agents: n, dim: 8, identities: { coordinator, agents: identities.agents }, seed: 5, dropout: 0.2, dropPoint: 'masked-input', graph: 'sparse' })
    assert.equal(sim.status, 'done', sim.failure?.message)
    assert.ok(sim.correct)
    return max
  }
  const small = await largest(40)
  const large = await largest(160)
  assert.ok(large - small <= 4, `largest coordinator-signed message: ${small} bytes at n = 40, ${large} at n = 160`)
})

test('streaming order (coordinator first, input read at the masking set) gives the same round as FIFO', async () => {
  const base = { agents: 60, dim: 33, identities, seed: 7, dropout: 0.3, dropPoint: 'masked-input' as const, graph: 'sparse' as const, measureBytes: true }
  const fifo = await simulateRound(base)
  const streamed = await simulateRound({ ...base, streaming: true })
  for (const sim of [fifo, streamed]) {
    assert.equal(sim.status, 'done', sim.failure?.message)
    assert.ok(sim.correct)
  }
  assert.deepEqual(streamed.result!.included, fifo.result!.included)
  assert.deepEqual(streamed.result!.sum, fifo.result!.sum)
  // Every included agent both sent and received; what it received is at least the Announce and its key set.
  for (const id of streamed.result!.included) {
    assert.ok((streamed.bytesSent.get(id) ?? 0) > 4 * 33)
    assert.ok((streamed.bytesReceived.get(id) ?? 0) > 0)
    assert.equal(streamed.bytesReceived.get(id), fifo.bytesReceived.get(id))
  }
})
