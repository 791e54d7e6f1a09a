import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { deriveKey } from '../../shared/crypto/hkdf.js'
import { expandMask } from '../../shared/crypto/prg.js'
import { generateX25519KeyPair, x25519SharedSecret } from '../../shared/crypto/x25519.js'
import { computeUnmaskInWorkers, splitUnmaskWork, UnmaskWorkerPool } from '../../shared/secagg/unmask-pool.js'
import { computeUnmaskCorrection, unmaskExpansions, type UnmaskWork } from '../../shared/secagg/unmask.js'

const survivorKeys = Array.from({ length: 8 }, (_, i) => ({ id: `survivor-${i}`, ...generateX25519KeyPair() }))
const droppedKeys = Array.from({ length: 5 }, (_, i) => ({ id: `dropped-${i}`, ...generateX25519KeyPair() }))

const workArb = fc.record({
  vectorLength: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 16_380, max: 16_400 })),
  roundId: fc.string({ minLength: 1, maxLength: 12 }),
  seeds: fc.array(fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(1 as const, -1 as const)), { maxLength: 6 }),
  pairwise: fc.array(fc.record({
    dropped: fc.integer({ min: 0, max: droppedKeys.length - 1 }),
    peers: fc.array(fc.tuple(fc.integer({ min: 0, max: survivorKeys.length - 1 }), fc.constantFrom(1 as const, -1 as const)), { maxLength: 8 })
  }), { maxLength: 5 })
}).map(({ vectorLength, roundId, seeds, pairwise }): UnmaskWork => ({
  vectorLength,
  keyContext: { protocol: 'fedmon-secagg/1', roundId, specHash: 'ab'.repeat(32), vectorLength },
  seeds: seeds.map(([seed, sign]) => ({ seed, sign })),
  pairwise: pairwise.map(p => ({
    id: droppedKeys[p.dropped].id,
    secretKey: droppedKeys[p.dropped].privateKey.slice(),
    peers: p.peers.map(([w, sign]) => ({ id: survivorKeys[w].id, publicKey: survivorKeys[w].publicKey, sign }))
  }))
}))

/** The correction written out term by term with the protocol's own primitives (no accumulator, no cache). */
function referenceCorrection (work: UnmaskWork): Uint32Array {
  const out = new Uint32Array(work.vectorLength)
  const add = (seed: Uint8Array, sign: 1 | -1): void => {
    const mask = expandMask(seed, work.vectorLength)
    for (let i = 0; i < out.length; i++) out[i] += sign * mask[i]
  }
  for (const { seed, sign } of work.seeds) add(seed, sign)
  for (const job of work.pairwise) {
    for (const peer of job.peers) add(deriveKey(x25519SharedSecret(job.secretKey, peer.publicKey), 'pairwise-mask', work.keyContext, job.id, peer.id), peer.sign)
  }
  return out
}

const copyWork = (work: UnmaskWork): UnmaskWork => ({
  ...work,
  seeds: work.seeds.map(s => ({ ...s, seed: s.seed.slice() })),
  pairwise: work.pairwise.map(p => ({ ...p, secretKey: p.secretKey.slice() }))
})

let pool: UnmaskWorkerPool
before(async () => { pool = new UnmaskWorkerPool({ workers: 2 }); await pool.start() })
after(async () => { await pool.stop() })

test('worker pool, in-thread and term-by-term corrections are bit-identical', async () => {
  await fc.assert(fc.asyncProperty(workArb, async (work) => {
    const expected = referenceCorrection(work)
    assert.deepEqual(computeUnmaskCorrection(copyWork(work)), expected)
    assert.deepEqual(await pool.compute(copyWork(work)), expected)
  }), { numRuns: 25 })
})

test('splitUnmaskWork hands out every expansion exactly once, in batches of at most the given size', () => {
  fc.assert(fc.property(workArb, fc.integer({ min: 1, max: 7 }), (work, size) => {
    const batches = splitUnmaskWork(work, size)
    const count = (w: Pick<UnmaskWork, 'seeds' | 'pairwise'>): number => w.seeds.length + w.pairwise.reduce((n, p) => n + p.peers.length, 0)
    for (const b of batches) assert.ok(count(b) >= 1 && count(b) <= size)
    assert.equal(batches.reduce((n, b) => n + count(b), 0), unmaskExpansions(work))
    const terms = (w: Pick<UnmaskWork, 'seeds' | 'pairwise'>[]): string[] => w.flatMap(b => [
      ...b.seeds.map(s => `s:${Buffer.from(s.seed).toString('hex')}:${s.sign}`),
      ...b.pairwise.flatMap(p => p.peers.map(q => `p:${p.id}:${Buffer.from(p.secretKey).toString('hex')}:${q.id}:${q.sign}`))
    ]).sort()
    assert.deepEqual(terms(batches), terms([work]))
  }), { numRuns: 100 })
})

test('a pool more workers than batches, and empty work, still give the exact correction', async () => {
  const work: UnmaskWork = { vectorLength: 33, keyContext: { protocol: 'p', roundId: 'r', specHash: '0'.repeat(64), vectorLength: 33 }, seeds: [{ seed: new Uint8Array(randomBytes(32)), sign: 1 }], pairwise: [] }
  assert.deepEqual(await computeUnmaskInWorkers(copyWork(work), { workers: 3 }), referenceCorrection(work))
  assert.deepEqual(await pool.compute({ ...work, seeds: [] }), new Uint32Array(33))
})

test('abort rejects with ERR_ABORTED and stops the pool; a bad key fails with ERR_UNMASK_WORKER', async () => {
  const own = new UnmaskWorkerPool({ workers: 2 })
  await own.start()
  const work: UnmaskWork = {
    vectorLength: 50_000,
    keyContext: { protocol: 'p', roundId: 'r', specHash: '0'.repeat(64), vectorLength: 50_000 },
    seeds: Array.from({ length: 400 }, () => ({ seed: new Uint8Array(randomBytes(32)), sign: -1 as const })),
    pairwise: []
  }
  const controller = new AbortController()
  const pending = own.compute(work, { signal: controller.signal })
  controller.abort()
  await assert.rejects(pending, (err: Error & { code?: string }) => err.name === 'UnmaskWorkerError' && err.code === 'ERR_ABORTED')
  assert.equal(own.started, false)
  await assert.rejects(own.compute(work), /not started/)

  await own.start()
  const lowOrder = new Uint8Array(32) // the all-zero point: X25519 refuses it
  const bad: UnmaskWork = { ...work, seeds: [], pairwise: [{ id: 'd', secretKey: generateX25519KeyPair().privateKey, peers: [{ id: 's', publicKey: lowOrder, sign: 1 }] }] }
  await assert.rejects(own.compute(bad), (err: Error & { code?: string }) => err.code === 'ERR_UNMASK_WORKER' && /low-order/.test(err.message))
  await own.stop()
})

test('splitUnmaskWork keeps a dropped agent\'s peers in one batch whenever they fit in one', () => {
  fc.assert(fc.property(workArb, fc.integer({ min: 1, max: 9 }), (work, size) => {
    const batches = splitUnmaskWork(work, size)
    for (const job of work.pairwise) {
      const holding = batches.filter(b => b.pairwise.some(p => p.id === job.id && Buffer.compare(p.secretKey, job.secretKey) === 0))
      // Jobs of the same dropped agent may repeat in the work: count pieces per batch against the job count.
      const jobs = work.pairwise.filter(p => p.id === job.id && Buffer.compare(p.secretKey, job.secretKey) === 0 && p.peers.length > 0).length
      if (job.peers.length > 0 && job.peers.length <= size && jobs === 1) assert.equal(holding.length, 1, `${job.peers.length} peers, batches of ${size}`)
    }
  }), { numRuns: 200 })
})

test('batches carry about the same keystream whatever the vector length (more expansions per batch at small m)', async () => {
  const { batchExpansionsFor } = await import('../../shared/secagg/unmask-pool.js')
  assert.equal(batchExpansionsFor(100_000), 32)
  assert.equal(batchExpansionsFor(10_000), 320)
  assert.equal(batchExpansionsFor(1), 1024)
  assert.equal(batchExpansionsFor(10_000_000), 1)
})
