import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateIdentity, createSigner, createVerifier, type Identity } from '../../shared/identity.js'
import { AgentRoundService, type MonitorBinding } from '../../agent/rounds.js'
import { PROTOCOL_VERSION, type Announce, type SecAggMessage } from '../../shared/secagg/messages.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { chooseGraphParams } from '../../shared/secagg/params.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import type { Logger } from '../../shared/log.js'

/*
 * Issue 12 §1: every round names its monitor in the signed Announce; the agent runs one round per monitor
 * (a new Announce replaces only its own monitor's round) and declines, with the reason, a monitor it does not serve.
 */

const HOUR = 3_600_000
const SPEC_HASH = 'c'.repeat(64)

async function setup (): Promise<{ coordinator: Identity, agents: Identity[] }> {
  return { coordinator: await generateIdentity(), agents: await Promise.all([0, 1, 2].map(async () => await generateIdentity())) }
}

function announceBody (coordinator: Identity, agents: Identity[], roundId: string, monitor?: string): Omit<Announce, 'signature' | 'type'> {
  const now = Date.now()
  const end = Math.floor(now / HOUR) * HOUR
  const participants = agents.map(a => ({ id: a.peerId, addrs: [] })).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  const { k, t, graph } = chooseGraphParams({ n: participants.length, graph: 'full', dropoutRate: 0.3, corruptFraction: 0.05 })
  return {
    roundId, protocol: PROTOCOL_VERSION, coordinator: coordinator.peerId, participants, window: { from: end - HOUR, to: end },
    specHash: SPEC_HASH, vectorLength: 8, maxEntry: 1000, minAgents: 3, threshold: t, degree: k, graph, phaseTimeoutMs: 60_000,
    issuedAt: now, reference: false, ...(monitor !== undefined ? { monitor } : {})
  }
}

function signed (coordinator: Identity, body: Omit<Announce, 'signature' | 'type'>): Announce {
  return { type: 'announce', ...body, signature: createSigner(coordinator.privateKey)(transcript.announceBytes(body)) }
}

test('announceBytes: without a monitor exactly the bytes of before; with one, ["monitor", name] appended', async () => {
  const { coordinator, agents } = await setup()
  const plain = announceBody(coordinator, agents, 'round-1')
  const text = new TextDecoder().decode(transcript.announceBytes(plain))
  assert.doesNotMatch(text, /monitor/)
  assert.match(text, /,false\]$/, 'ends with the reference flag, as before monitors existed')
  const named = new TextDecoder().decode(transcript.announceBytes({ ...plain, monitor: 'fraud' }))
  assert.equal(named, `${text.slice(0, -1)},"monitor","fraud"]`)
})

test('one round per monitor; a new announce replaces only its monitor\'s round; an unknown monitor is declined; a changed monitor breaks the signature', async () => {
  const { coordinator, agents } = await setup()
  const self = agents[0]
  const sent: SecAggMessage[] = []
  const admitted: string[][] = []
  const logs: string[] = []
  const record = (obj: unknown, msg?: string): void => { logs.push(JSON.stringify({ ...(obj as object), msg })) }
  const logger = { info: record, warn: record, error: record, debug: record } as unknown as Logger
  const bindings: Record<string, MonitorBinding> = { credit: { key: 'credit' }, fraud: { key: 'fraud' } }
  const service = new AgentRoundService({
    self: self.peerId,
    coordinator: coordinator.peerId,
    sign: createSigner(self.privateKey),
    verify: createVerifier(),
    roster: new Set(agents.map(a => a.peerId)),
    sender: { send: async (_to, message) => { sent.push(message) } },
    fetchSpec: async () => await new Promise(() => {}), // never answers: the rounds stay at their start
    computeInput: async () => await new Promise(() => {}),
    admit: (ids) => { admitted.push(ids) },
    bindMonitor: (named) => {
      const b = named !== undefined ? bindings[named] : undefined
      if (b === undefined) throw new SecAggError('ERR_POLICY', `this site serves no monitor named "${String(named)}"`)
      return b
    },
    logger,
    tickMs: 60_000
  })
  try {
    service.receive(coordinator.peerId, signed(coordinator, announceBody(coordinator, agents, 'round-credit-1', 'credit')))
    service.receive(coordinator.peerId, signed(coordinator, announceBody(coordinator, agents, 'round-fraud-1', 'fraud')))
    assert.deepEqual(service.runningRoundIds.sort(), ['round-credit-1', 'round-fraud-1'], 'rounds of two monitors run side by side')
    assert.equal(admitted.at(-1)?.length, 3, 'the participants of the running rounds are admitted')
    service.receive(coordinator.peerId, signed(coordinator, announceBody(coordinator, agents, 'round-credit-2', 'credit')))
    assert.deepEqual(service.runningRoundIds.sort(), ['round-credit-2', 'round-fraud-1'], 'only credit\'s round was replaced')

    service.receive(coordinator.peerId, signed(coordinator, announceBody(coordinator, agents, 'round-nope', 'nope')))
    await new Promise(resolve => setTimeout(resolve, 10))
    const decline = sent.find(m => m.type === 'decline' && m.roundId === 'round-nope') as (SecAggMessage & { reason: string }) | undefined
    assert.ok(decline !== undefined, 'a signed decline for the monitor this site does not serve')
    assert.match(decline.reason, /serves no monitor named "nope"/)

    const forged = { ...signed(coordinator, announceBody(coordinator, agents, 'round-forged', 'credit')), monitor: 'fraud' }
    service.receive(coordinator.peerId, forged)
    assert.ok(!service.runningRoundIds.includes('round-forged'))
    assert.ok(logs.some(l => l.includes('round-forged') && l.includes('ERR_BAD_SIGNATURE')), 'the monitor is covered by the signature')
    assert.deepEqual(service.runningRoundIds.sort(), ['round-credit-2', 'round-fraud-1'])
  } finally {
    service.stop()
  }
  assert.deepEqual(service.runningRoundIds, [])
  assert.deepEqual(admitted.at(-1), [])
})
