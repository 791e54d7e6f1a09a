import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import { SecAggServer } from '../../shared/secagg/server.js'
import { createIdentities, DROP_POINTS, simulatedInput, simulateRound, type DropPoint, type Identity } from '../../shared/secagg/simulate.js'
import { computeUnmaskInWorkers } from '../../shared/secagg/unmask-pool.js'
import { computeUnmaskCorrection } from '../../shared/secagg/unmask.js'
import type { Outgoing } from '../../shared/secagg/types.js'

let identities: { coordinator: Identity, agents: Identity[] }
before(async () => { identities = await createIdentities(40, 23) })

test('deferred unmask on workers: exact sums, identical to the in-thread server, with dropouts at every phase', async () => {
  for (const [i, point] of DROP_POINTS.entries()) {
    const dropout = new Map<number, DropPoint>([[1, point], [5 + i, point], [20, DROP_POINTS[(i + 3) % DROP_POINTS.length]]])
    const options = { agents: 24, dim: 16_390, identities, seed: 40 + i, dropout, graph: 'sparse' as const, degree: 10, threshold: 4 }
    const inThread = await simulateRound(options)
    const onWorkers = await simulateRound({ ...options, unmaskWorkers: 2 })
    assert.equal(onWorkers.status, 'done', onWorkers.failure?.message)
    assert.ok(onWorkers.correct, `workers, drop at ${point}`)
    assert.ok(inThread.correct, `in thread, drop at ${point}`)
    assert.deepEqual(onWorkers.result!.included, inThread.result!.included)
    assert.deepEqual(onWorkers.result!.sum, inThread.result!.sum)
    assert.ok((onWorkers.phaseTimings.unmaskComputeMs ?? -1) >= 0)
  }
})

/** Drives one small round with no dropouts until the server has its unmask work pending. */
function roundUntilPendingUnmask (n: number, dim: number): { server: SecAggServer, expected: Uint32Array, ids: string[] } {
  const agents = identities.agents.slice(0, n)
  const ids = agents.map(a => a.id)
  const coordinator = identities.coordinator
  const server = new SecAggServer({
    roundId: 'deferred-1', coordinator: coordinator.id, sign: coordinator.sign, verify: verifyPeerSignature,
    participants: ids.map((id, i) => ({ id, addrs: [`/memory/${i}`] })), vectorLength: dim,
    specHash: createHash('sha256').update('spec').digest('hex'), window: { from: 0, to: 1000 },
    maxEntry: 1000, minAgents: 2, graph: 'full', phaseTimeoutMs: 1000, deferUnmask: true
  })
  const clients = new Map<string, SecAggClient>()
  const queue: Array<{ from: string } & Outgoing> = server.start(0).map(o => ({ from: coordinator.id, ...o }))
  const expected = new Uint32Array(dim)
  while (queue.length > 0) {
    const { from, to, message } = queue.shift()!
    let out: Outgoing[]
    if (to === coordinator.id) {
      try {
        out = server.receive(from, message, 0)
      } catch (err) {
        // Unmask shares arriving once every secret is reconstructed are refused, as after 'done'.
        if (!(err instanceof SecAggError && err.code === 'ERR_WRONG_PHASE' && message.type === 'unmask-shares')) throw err
        out = []
      }
    } else if (message.type === 'announce') {
      const i = ids.indexOf(to)
      const client = SecAggClient.fromAnnounce({ self: to, coordinator: coordinator.id, sign: agents[i].sign, verify: verifyPeerSignature, roster: new Set(ids) }, from, message, 0)
      clients.set(to, client)
      const x = simulatedInput(9, i, dim, 1000)
      for (let j = 0; j < dim; j++) expected[j] += x[j]
      out = [...client.start(0), ...client.setInput(x, 0)]
    } else {
      out = clients.get(to)!.receive(from, message, 0)
    }
    queue.push(...out.map(o => ({ from: to, ...o })))
  }
  return { server, expected, ids }
}

test('deferred unmask: the server waits without a deadline, refuses input, and finishes on completeUnmask', async () => {
  const { server, expected, ids } = roundUntilPendingUnmask(6, 100)
  const work = server.pendingUnmask()
  assert.ok(work !== null)
  assert.equal(server.status, 'running')
  assert.equal(server.phase, 'unmask')
  assert.equal(server.nextDeadline(), null)
  assert.deepEqual(server.tick(10 ** 9), [])
  assert.throws(() => server.receive(ids[0], { type: 'consistency-signature', roundId: 'deferred-1', signature: new Uint8Array(64) }, 1),
    (err: SecAggError) => err.code === 'ERR_WRONG_PHASE')
  assert.throws(() => server.completeUnmask(new Uint32Array(99), 1), (err: SecAggError) => err.code === 'ERR_BAD_LENGTH')
  assert.equal(work.seeds.length, 6) // every survivor's self mask; no dropped agent, no pairwise work
  const correction = await computeUnmaskInWorkers(work, { workers: 2 })
  assert.deepEqual(server.completeUnmask(correction, 2), [])
  assert.equal(server.status, 'done')
  assert.deepEqual(server.result()!.sum, expected)
  assert.equal(server.pendingUnmask(), null)
  assert.ok(work.seeds.every(s => s.seed.every(b => b === 0)), 'the secrets in the work are wiped')
  assert.throws(() => server.completeUnmask(correction, 3), (err: SecAggError) => err.code === 'ERR_WRONG_PHASE')
})

test('deferred unmask: abort while pending fails the round and wipes the pending secrets', () => {
  const { server } = roundUntilPendingUnmask(4, 20)
  const work = server.pendingUnmask()!
  const wrong = computeUnmaskCorrection({ ...work, seeds: work.seeds.map(s => ({ ...s, seed: s.seed.slice() })) })
  const notices = server.abort('ERR_ABORTED', 'unmask workers failed')
  assert.equal(server.status, 'failed')
  assert.equal(notices.length, 4)
  assert.equal(server.pendingUnmask(), null)
  assert.ok(work.seeds.every(s => s.seed.every(b => b === 0)))
  assert.throws(() => server.completeUnmask(wrong, 1), (err: SecAggError) => err.code === 'ERR_WRONG_PHASE')
})

test('simulator: the coordinator unmasks as soon as its work is pending, before the late agents are served', async () => {
  // A real coordinator starts its worker pool the moment the last needed share arrives, while the agents keep
  // running elsewhere; the in-process simulator must not first run every late agent (their signature checks
  // would count as unmask time). Late unmask shares then find the round already done.
  const run = await simulateRound({ agents: 24, dim: 64, identities, seed: 7, graph: 'sparse', degree: 10, threshold: 4, unmaskWorkers: 1 })
  assert.equal(run.status, 'done', run.failure?.message)
  assert.ok(run.correct)
  const late = run.rejected.filter(r => r.at === 'coordinator' && r.type === 'unmask-shares')
  assert.ok(late.length > 0, 'some agents answer after the secrets are rebuilt')
  assert.deepEqual(late.filter(r => !/round is done/.test(r.message)), [], JSON.stringify(late.slice(0, 3)))
})
