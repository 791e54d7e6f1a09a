import '../../shared/polyfill.js'
// The daemons' round orchestration without sockets: the coordinator's RoundService and agents'
// AgentRoundService wired through an in-memory transport, with the real secagg state machines and store.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { generateIdentity, createSigner, createVerifier, type Identity } from '../../shared/identity.js'
import { RoundService } from '../../coordinator/rounds.js'
import { Roster } from '../../coordinator/roster.js'
import { AgentRoundService } from '../../agent/rounds.js'
import { openStore } from '../../coordinator/store.js'
import { createAlertEvaluator } from '../../coordinator/alerts.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout } from '../../shared/stats/layout.js'
import type { SecAggMessage } from '../../shared/secagg/messages.js'
import type { AgentPolicy } from '../../shared/secagg/client.js'

function captureLogger (): { logger: pino.Logger, lines: () => string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  return { logger: pino({ level: 'debug' }, stream), lines: () => lines }
}

async function federation (n: number, opts: { policies?: Array<AgentPolicy | undefined>, inputs: (i: number, length: number) => Uint32Array }) {
  const coordinator = await generateIdentity()
  const agents: Identity[] = await Promise.all(Array.from({ length: n }, async () => await generateIdentity()))
  const spec = parseMonitorSpec({ model: 'unit', score: { bins: 16 }, limits: { maxRecordsPerAgent: 1000 } })
  const layout = buildLayout(spec)
  const store = openStore(':memory:')
  const roster = new Roster(agents.map(a => a.peerId))
  for (const a of agents) { roster.connected(a.peerId, Date.now()); roster.setAddrs(a.peerId, ['/ip4/127.0.0.1/tcp/1'], Date.now()) }
  const { logger, lines } = captureLogger()
  const verify = createVerifier()
  const services = new Map<string, AgentRoundService>()
  // Delivery on a later macrotask, like a network: nothing is handled re-entrantly.
  const deliver = (fn: () => void): void => { setImmediate(() => { try { fn() } catch (err) { logger.warn({ err: (err as Error).message }, 'refused in transit') } }) }
  const rounds = new RoundService({
    peerId: coordinator.peerId,
    sign: createSigner(coordinator.privateKey),
    verify,
    roster,
    sender: { send: async (to: string, message: SecAggMessage) => { deliver(() => services.get(to)?.receive(coordinator.peerId, message)) } },
    store,
    spec,
    layout,
    privacy: { minAgents: 3 },
    phaseTimeoutMs: 400,
    alerts: createAlertEvaluator([]),
    logger
  })
  agents.forEach((a, i) => {
    services.set(a.peerId, new AgentRoundService({
      self: a.peerId,
      coordinator: coordinator.peerId,
      sign: createSigner(a.privateKey),
      verify,
      policy: opts.policies?.[i],
      sender: {
        send: async (to: string, message: SecAggMessage) => {
          deliver(() => { if (to === coordinator.peerId) rounds.receive(a.peerId, message); else services.get(to)?.receive(a.peerId, message) })
        }
      },
      computeInput: async (announce) => opts.inputs(i, announce.vectorLength),
      admit: () => {},
      logger,
      tickMs: 50
    }))
  })
  return { rounds, store, layout, agents, lines, stop: () => { for (const s of services.values()) s.stop(); store.close() } }
}

test('a reference round over 4 in-memory agents stores exactly the sum of their inputs', async () => {
  const inputs: Uint32Array[] = []
  const fed = await federation(4, {
    inputs: (i, length) => {
      const x = new Uint32Array(length)
      for (let j = 0; j < length; j++) x[j] = (i * 7 + j * 13) % 50
      inputs[i] = x
      return x
    }
  })
  try {
    const { finished } = fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'reference' })
    assert.throws(() => fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }), (err: unknown) => (err as { status?: number }).status === 409)
    const outcome = await finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    assert.equal(outcome.included.length, 4)
    const stored = fed.store.getReferenceVector(outcome.reportId as string)
    assert.ok(stored !== null)
    const want = new Uint32Array(fed.layout.length)
    for (const x of inputs) for (let j = 0; j < x.length; j++) want[j] += x[j]
    assert.deepEqual(stored.vector, want)
    assert.equal(fed.store.currentReference()?.reportId, outcome.reportId)
    assert.equal(fed.store.getRound(outcome.id)?.status, 'done')
  } finally {
    fed.stop()
  }
})

test('an agent whose policy refuses the Announce is left out; the round completes over the others', async () => {
  const fed = await federation(4, {
    policies: [undefined, undefined, undefined, { minAgents: 10 }],
    inputs: (_i, length) => new Uint32Array(length).fill(1)
  })
  try {
    const outcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    assert.deepEqual(new Set(outcome.included), new Set(fed.agents.slice(0, 3).map(a => a.peerId)))
    assert.ok(outcome.dropped.includes(fed.agents[3].peerId))
    assert.ok(fed.lines().some(l => l.includes('round refused') && l.includes('ERR_POLICY')), 'the refusal is logged with its reason')
  } finally {
    fed.stop()
  }
})

test('too few agents online: refused with 409 before anything is sent', async () => {
  const fed = await federation(2, { inputs: (_i, length) => new Uint32Array(length) })
  try {
    assert.throws(() => fed.rounds.start({ window: { from: 0, to: 1 }, kind: 'current' }), (err: unknown) => (err as { status?: number, code?: string }).status === 409 && (err as { code?: string }).code === 'ERR_TOO_FEW_AGENTS')
    assert.deepEqual(fed.store.listRounds(), [])
  } finally {
    fed.stop()
  }
})
