import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { declineBytes, signDecline } from '../../shared/secagg/decline.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import { MAX_DECLINE_REASON_CHARS, parseSecAggMessage, type SecAggMessage, type UnmaskShares } from '../../shared/secagg/messages.js'
import type { ContributionGuard } from '../../shared/secagg/policy.js'
import { SecAggServer } from '../../shared/secagg/server.js'
import { createIdentities, simulatedInput, type Identity } from '../../shared/secagg/simulate.js'
import { encodeFrame, decodeFrame } from '../../shared/wire/codec.js'

/*
 * Declines, in process: a server and real clients joined by a FIFO router, every message through the wire
 * codec and parseSecAggMessage. Agents refuse through their contribution guard (the ledger's interface), at the
 * Announce (admit) or right before the masked input leaves (contribute), and send the signed Decline the agent
 * daemon sends. Time only moves (to the next deadline) when no message is in flight, so a phase that ends
 * without a tick ended because every agent answered or declined, not by its deadline.
 */

const DIM = 64
const MAX_ENTRY = 5
const PHASE_MS = 1000
const WINDOW = { from: 1_700_000_000_000, to: 1_700_000_086_400_000 }
const SPEC_HASH = 'ab'.repeat(32)

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(8, 77) })

const wire = (m: SecAggMessage): SecAggMessage => parseSecAggMessage(decodeFrame(encodeFrame(m)))

interface Refusals {
  /** Agent index → reason: refused by its guard at the Announce. */
  atAnnounce?: Map<number, string>
  /** Agent index → reason: its guard refuses to record the contribution (just before the masked input). */
  atContribute?: Map<number, string>
}

interface RoundRun {
  server: SecAggServer
  ticks: number
  toCoordinator: Array<{ from: string, message: SecAggMessage }>
  rejected: Array<{ from: string, type: string, code: string }>
  inputs: Uint32Array[]
}

function guardFor (index: number, refusals: Refusals): ContributionGuard {
  const refuse = (reason: string | undefined): void => { if (reason !== undefined) throw new SecAggError('ERR_POLICY', reason) }
  return {
    admit: () => { refuse(refusals.atAnnounce?.get(index)) },
    contribute: () => { refuse(refusals.atContribute?.get(index)) }
  }
}

/** Runs one round over agents 0..n-1 to its end; `extra` deliveries are injected right after the Announce. */
function runRound (n: number, opts: {
  threshold: number
  minAgents: number
  refusals?: Refusals
  inject?: (server: SecAggServer, now: number) => void
  /** Called after each delivery; returns extra coordinator messages (e.g. an Abort). */
  afterStep?: (server: SecAggServer) => Array<{ to: string, message: SecAggMessage }>
}): RoundRun {
  const refusals = opts.refusals ?? {}
  const agents = ids.agents.slice(0, n)
  const coordinator = ids.coordinator
  const server = new SecAggServer({
    roundId: 'round-decline', coordinator: coordinator.id, sign: coordinator.sign, verify: verifyPeerSignature,
    participants: agents.map(a => ({ id: a.id, addrs: [] })), vectorLength: DIM, specHash: SPEC_HASH, window: WINDOW,
    maxEntry: MAX_ENTRY, minAgents: opts.minAgents, threshold: opts.threshold, graph: 'full', phaseTimeoutMs: PHASE_MS
  })
  let now = WINDOW.to + 60_000
  const queue: Array<{ from: string, to: string, message: SecAggMessage }> = []
  const run: RoundRun = { server, ticks: 0, toCoordinator: [], rejected: [], inputs: agents.map((_, i) => simulatedInput(9, i, DIM, MAX_ENTRY)) }
  const clients = new Map<string, SecAggClient>()
  const push = (from: string, out: Array<{ to: string, message: SecAggMessage }>): void => { for (const o of out) queue.push({ from, to: o.to, message: o.message }) }
  const noticeOf = (id: string, client: SecAggClient): void => { const d = client.declineNotice(); if (d !== null) push(id, [d]) }

  push(coordinator.id, server.start(now))
  opts.inject?.(server, now)
  for (let steps = 0; server.status === 'running' || queue.length > 0; steps++) {
    assert.ok(steps < 100_000, 'the round does not end')
    const next = queue.shift()
    if (next === undefined) {
      const deadline = server.nextDeadline()
      assert.notEqual(deadline, null, 'a running server always has a deadline')
      now = deadline as number
      run.ticks++
      push(coordinator.id, server.tick(now))
      continue
    }
    const message = wire(next.message)
    try {
      if (next.to === coordinator.id) {
        run.toCoordinator.push({ from: next.from, message })
        push(coordinator.id, server.receive(next.from, message, now))
        continue
      }
      const agentIndex = agents.findIndex(a => a.id === next.to)
      const agent = agents[agentIndex]
      const opts = { self: agent.id, coordinator: coordinator.id, sign: agent.sign, verify: verifyPeerSignature, guard: guardFor(agentIndex, refusals), roster: new Set(ids.agents.map(a => a.id)) }
      if (message.type === 'announce') {
        let client: SecAggClient
        try {
          client = SecAggClient.fromAnnounce(opts, next.from, message, now)
        } catch (err) {
          const decline = SecAggClient.declineAnnounce(opts, next.from, message, err)
          if (decline !== null) push(agent.id, [decline])
          continue
        }
        clients.set(agent.id, client)
        push(agent.id, client.start(now))
        push(agent.id, client.setInput(run.inputs[agentIndex], now))
        continue
      }
      const client = clients.get(agent.id)
      if (client === undefined) continue // refused at the Announce: ignores the round
      try {
        push(agent.id, client.receive(next.from, message, now))
      } finally {
        noticeOf(agent.id, client)
      }
    } catch (err) {
      run.rejected.push({ from: next.from, type: message.type, code: (err as SecAggError).code })
    } finally {
      if (opts.afterStep !== undefined) push(coordinator.id, opts.afterStep(server))
    }
  }
  return run
}

function plainSum (run: RoundRun, included: string[]): Uint32Array {
  const sum = new Uint32Array(DIM)
  for (const id of included) {
    const x = run.inputs[ids.agents.findIndex(a => a.id === id)]
    for (let i = 0; i < DIM; i++) sum[i] += x[i]
  }
  return sum
}

/** The coordinator never holds both a b-share and an s-share of one agent. */
function assertNeverBoth (run: RoundRun): void {
  const kinds = new Map<number, Set<string>>()
  for (const { message } of run.toCoordinator) {
    if (message.type !== 'unmask-shares') continue
    const m = message as UnmaskShares
    for (const o of m.bOwners) kinds.set(o, (kinds.get(o) ?? new Set()).add('b'))
    for (const o of m.sOwners) kinds.set(o, (kinds.get(o) ?? new Set()).add('s'))
  }
  for (const [owner, k] of kinds) assert.ok(k.size === 1, `both share kinds of participant ${owner} revealed`)
}

test('declines at the Announce are recorded, signed, and do not hold up the round: exact sum over the others', () => {
  const reason = 'window 2023-11-14..2023-11-15 overlaps 2023-11-14..2023-11-15, already contributed to in round r0: the same records go into one sum only (differencing)'
  const run = runRound(6, { threshold: 3, minAgents: 3, refusals: { atAnnounce: new Map([[0, reason], [1, 'announced 2 participants is fewer than this agent\'s minimum 5']]) } })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.equal(run.ticks, 0, 'no phase waited for its deadline: declined agents are not waited for')
  const result = server.result()!
  const others = ids.agents.slice(2, 6).map(a => a.id)
  assert.deepEqual(result.included, others)
  assert.deepEqual(result.dropped, [ids.agents[0].id, ids.agents[1].id])
  assert.deepEqual(result.sum, plainSum(run, others))
  const declined = server.declined()
  assert.deepEqual(declined.map(d => [d.agent, d.code, d.reason]), [[ids.agents[0].id, 'ERR_POLICY', reason], [ids.agents[1].id, 'ERR_POLICY', 'announced 2 participants is fewer than this agent\'s minimum 5']])
  for (const d of declined) {
    assert.ok(verifyPeerSignature(d.agent, declineBytes('round-decline', d.agent, d.code, d.reason), Buffer.from(d.signature, 'hex')), 'the stored signature verifies with the agent key')
  }
  // The declining agents sent nothing but their decline.
  for (const i of [0, 1]) assert.deepEqual(run.toCoordinator.filter(d => d.from === ids.agents[i].id).map(d => d.message.type), ['decline'])
  assert.deepEqual(run.rejected, [])
})

test('a decline just before the masked input (ledger cannot record) counts as a dropout at that phase: exact sum, never both', () => {
  const run = runRound(6, { threshold: 3, minAgents: 3, refusals: { atContribute: new Map([[4, 'the contribution ledger failed, not contributing: ENOSPC']]) } })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.equal(run.ticks, 0, 'the masked-input phase ended when the last agent either sent or declined')
  const result = server.result()!
  assert.deepEqual(result.dropped, [ids.agents[4].id])
  assert.deepEqual(result.sum, plainSum(run, result.included))
  assert.equal(result.included.length, 5)
  assert.deepEqual(server.declined().map(d => d.code), ['ERR_POLICY'])
  assert.ok(!run.toCoordinator.some(d => d.from === ids.agents[4].id && d.message.type === 'masked-input'), 'no masked input from the decliner')
  // Its masks were removed with its s-key shares (the dropout path), and nobody revealed both kinds.
  assert.ok(run.toCoordinator.some(d => d.message.type === 'unmask-shares' && (d.message as UnmaskShares).sOwners.includes(4)))
  assertNeverBoth(run)
})

test('once too many declined for max(t, minAgents, consistency quorum), the round fails at once, naming the declines; later declines are still recorded', () => {
  const refusals = new Map([[0, 'policy says no (a)'], [1, 'policy says no (b)'], [2, 'policy says no (c)'], [3, 'policy says no (d)']])
  const run = runRound(6, { threshold: 3, minAgents: 3, refusals: { atAnnounce: refusals } })
  const { server } = run
  assert.equal(server.status, 'failed')
  assert.equal(run.ticks, 0, 'failed without waiting for the advertise deadline')
  const failure = server.failure()!
  assert.equal(failure.code, 'ERR_TOO_FEW_SURVIVORS')
  // n = 6, C = 0: the consistency quorum is 4, so the 3rd decline ends the round.
  assert.match(failure.message, /^advertised keys: at most 3 agents can still take part, need at least max\(t, minAgents, consistency quorum\) = 4; 3 declined: /)
  for (const i of [0, 1, 2]) assert.ok(failure.message.includes(`${ids.agents[i].id} ERR_POLICY policy says no`), failure.message)
  // The 4th decline arrived after the failure: recorded, not an error.
  assert.equal(server.declined().length, 4)
  assert.equal(server.result(), null)
  assert.ok(!run.toCoordinator.some(d => d.message.type === 'masked-input' || d.message.type === 'unmask-shares'), 'nothing beyond the adverts was sent')
})

test('the failure for too few survivors names the declines even when the deadline decides it', () => {
  // n = 4, quorum 3: one decline leaves 3 that could finish, so no early failure; one of them stays silent.
  const failing = runRoundDropping(4, 3, new Map([[0, 'spec asks for 65536 score bins, this agent allows at most 4096']]))
  assert.equal(failing.status, 'failed')
  assert.equal(failing.failure()!.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(failing.failure()!.message, /^advertised keys: 2 agents, need at least max\(t, minAgents, consistency quorum\) = 3; 1 declined: \S+ ERR_POLICY spec asks for 65536 score bins/)
})

/** Agent `silentIndex` never answers the Announce; the others reply directly (advertise only matters here). */
function runRoundDropping (n: number, silentIndex: number, atAnnounce: Map<number, string>): SecAggServer {
  const agents = ids.agents.slice(0, n)
  const server = new SecAggServer({
    roundId: 'round-silent', coordinator: ids.coordinator.id, sign: ids.coordinator.sign, verify: verifyPeerSignature,
    participants: agents.map(a => ({ id: a.id, addrs: [] })), vectorLength: DIM, specHash: SPEC_HASH, window: WINDOW,
    maxEntry: MAX_ENTRY, minAgents: 3, threshold: 3, graph: 'full', phaseTimeoutMs: PHASE_MS
  })
  const now = WINDOW.to + 60_000
  const announce = wire(server.start(now)[0].message)
  agents.forEach((agent, i) => {
    if (i === silentIndex) return
    const opts = { self: agent.id, coordinator: ids.coordinator.id, sign: agent.sign, verify: verifyPeerSignature, guard: guardFor(i, { atAnnounce }), roster: new Set(ids.agents.map(a => a.id)) }
    try {
      const client = SecAggClient.fromAnnounce(opts, ids.coordinator.id, announce, now)
      for (const o of client.start(now)) server.receive(agent.id, wire(o.message), now)
    } catch (err) {
      const decline = SecAggClient.declineAnnounce(opts, ids.coordinator.id, announce, err)
      assert.notEqual(decline, null)
      server.receive(agent.id, wire(decline!.message), now)
    }
  })
  assert.equal(server.status, 'running', 'one more agent may still come: no early failure')
  server.tick(server.nextDeadline()!)
  return server
}

test('forged, unsigned, mislabelled and non-participant declines are rejected; the round goes on unaffected', () => {
  const [a0, a1] = ids.agents
  const outsider = ids.agents[7]
  const attempts: Array<{ what: string, from: string, message: SecAggMessage, code: string }> = []
  const run = runRound(5, {
    threshold: 3,
    minAgents: 3,
    inject: (server, now) => {
      const tryOne = (what: string, from: string, message: SecAggMessage): void => {
        try {
          server.receive(from, wire(message), now)
          attempts.push({ what, from, message, code: 'accepted' })
        } catch (err) {
          attempts.push({ what, from, message, code: (err as SecAggError).code })
        }
      }
      // The coordinator (or anyone) signing in agent 0's name: does not verify with agent 0's key.
      tryOne('signed by the coordinator', a0.id, signDecline(ids.coordinator.sign, 'round-decline', a0.id, 'ERR_POLICY', 'forged'))
      // Agent 1 speaking for agent 0 (its own valid signature, over agent 0's id).
      tryOne('signed by another agent', a0.id, signDecline(a1.sign, 'round-decline', a0.id, 'ERR_POLICY', 'spoofed'))
      // Agent 1's genuine decline replayed as if agent 0 sent it.
      tryOne('relabelled', a0.id, signDecline(a1.sign, 'round-decline', a1.id, 'ERR_POLICY', 'mine'))
      tryOne('zero signature', a0.id, { type: 'decline', roundId: 'round-decline', code: 'ERR_POLICY', reason: 'unsigned', signature: new Uint8Array(64) })
      // A genuine decline of another round.
      tryOne('other round', a0.id, signDecline(a0.sign, 'round-other', a0.id, 'ERR_POLICY', 'old'))
      tryOne('signed for another round, sent for this one', a0.id, { ...signDecline(a0.sign, 'round-other', a0.id, 'ERR_POLICY', 'old'), roundId: 'round-decline' })
      // Validly signed by a peer that is not a participant.
      tryOne('non-participant', outsider.id, signDecline(outsider.sign, 'round-decline', outsider.id, 'ERR_POLICY', 'let me out'))
    }
  })
  assert.deepEqual(attempts.map(a => [a.what, a.code]), [
    ['signed by the coordinator', 'ERR_BAD_SIGNATURE'],
    ['signed by another agent', 'ERR_BAD_SIGNATURE'],
    ['relabelled', 'ERR_BAD_SIGNATURE'],
    ['zero signature', 'ERR_BAD_SIGNATURE'],
    ['other round', 'ERR_WRONG_ROUND'],
    ['signed for another round, sent for this one', 'ERR_BAD_SIGNATURE'],
    ['non-participant', 'ERR_UNKNOWN_SENDER']
  ])
  assert.equal(run.server.status, 'done')
  assert.equal(run.ticks, 0)
  assert.deepEqual(run.server.declined(), [])
  assert.equal(run.server.result()!.included.length, 5, 'agent 0 is still included')
  assert.deepEqual(run.server.result()!.sum, plainSum(run, run.server.result()!.included))
})

test('the schema bounds a decline: code shape, reason length and printable text', () => {
  const ok = signDecline(ids.agents[0].sign, 'r', ids.agents[0].id, 'ERR_POLICY', 'x'.repeat(5000))
  assert.equal(ok.reason.length, MAX_DECLINE_REASON_CHARS, 'the signer cuts a long reason')
  assert.equal(wire(ok).type, 'decline')
  assert.equal(signDecline(ids.agents[0].sign, 'r', ids.agents[0].id, 'ERR_POLICY', 'a\nb\u001b[31m').reason, 'a b [31m', 'control characters become spaces')
  const bad: Array<[string, Record<string, unknown>]> = [
    ['reason too long', { reason: 'x'.repeat(MAX_DECLINE_REASON_CHARS + 1) }],
    ['empty reason', { reason: '' }],
    ['terminal escape', { reason: 'red \u001b[31m' }],
    ['newline', { reason: 'a\nb' }],
    ['code not ERR_', { code: 'policy' }],
    ['code too long', { code: `ERR_${'A'.repeat(61)}` }],
    ['short signature', { signature: new Uint8Array(63) }]
  ]
  for (const [what, patch] of bad) {
    assert.throws(() => parseSecAggMessage({ ...ok, ...patch }), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_BAD_MESSAGE', what)
  }
})

test('no decline once the masked input is in: the server refuses it, a client does not make one, a decliner cannot come back', () => {
  const [a0, a1] = ids.agents
  let phaseSeen = ''
  const afterMasked: string[] = []
  const run = runRound(5, {
    threshold: 3,
    minAgents: 3,
    inject: (server, now) => {
      // Agent 0 declines at once (a genuine decline): later messages of agent 0 are refused as it has left.
      server.receive(a0.id, wire(signDecline(a0.sign, 'round-decline', a0.id, 'ERR_POLICY', 'changed my mind')), now)
      // A second one is a duplicate.
      try { server.receive(a0.id, wire(signDecline(a0.sign, 'round-decline', a0.id, 'ERR_POLICY', 'again')), now) } catch (err) { afterMasked.push(`dup:${(err as SecAggError).code}`) }
      phaseSeen = server.phase
    }
  })
  assert.equal(phaseSeen, 'advertise')
  assert.deepEqual(afterMasked, ['dup:ERR_DUPLICATE'])
  // Agent 0's client still ran (the injected decline was not its own doing): every message it sent after was refused.
  assert.ok(run.rejected.length > 0 && run.rejected.every(r => r.from === a0.id && r.code === 'ERR_WRONG_PHASE'), JSON.stringify(run.rejected))
  assert.equal(run.server.status, 'done')
  assert.deepEqual(run.server.result()!.dropped, [a0.id])
  assert.deepEqual(run.server.result()!.sum, plainSum(run, run.server.result()!.included))
  // After the round, agent 1 (included: its masked input is in the sum) cannot decline.
  assert.throws(() => run.server.receive(a1.id, wire(signDecline(a1.sign, 'round-decline', a1.id, 'ERR_POLICY', 'too late')), WINDOW.to),
    (e: unknown) => e instanceof SecAggError && e.code === 'ERR_WRONG_PHASE' && /after its masked input/.test(e.message))
  assert.equal(run.server.declined().length, 1)
})

test('a client declines only its own refusals, and never after its masked input left', () => {
  const agent = ids.agents[0]
  const server = new SecAggServer({
    roundId: 'round-client', coordinator: ids.coordinator.id, sign: ids.coordinator.sign, verify: verifyPeerSignature,
    participants: ids.agents.slice(0, 4).map(a => ({ id: a.id, addrs: [] })), vectorLength: DIM, specHash: SPEC_HASH, window: WINDOW,
    maxEntry: MAX_ENTRY, minAgents: 3, threshold: 3, graph: 'full', phaseTimeoutMs: PHASE_MS
  })
  const now = WINDOW.to + 60_000
  const announce = wire(server.start(now)[0].message)
  const opts = { self: agent.id, coordinator: ids.coordinator.id, sign: agent.sign, verify: verifyPeerSignature, roster: new Set(ids.agents.map(a => a.id)) }
  const policyError = new SecAggError('ERR_POLICY', 'no')
  assert.notEqual(SecAggClient.declineAnnounce(opts, ids.coordinator.id, announce, policyError), null)
  // Not from the coordinator, or not its signature: nobody to tell.
  assert.equal(SecAggClient.declineAnnounce(opts, ids.agents[1].id, announce, policyError), null)
  assert.equal(SecAggClient.declineAnnounce(opts, ids.coordinator.id, { ...announce, signature: new Uint8Array(64) } as SecAggMessage, policyError), null)
  // Not one of the agent's own rules (a bad signature, a timeout): no decline.
  assert.equal(SecAggClient.declineAnnounce(opts, ids.coordinator.id, announce, new SecAggError('ERR_BAD_SIGNATURE', 'x')), null)
  // Not invited.
  assert.equal(SecAggClient.declineAnnounce({ ...opts, self: ids.agents[5].id, sign: ids.agents[5].sign }, ids.coordinator.id, announce, policyError), null)
  // A client aborted locally (shutdown) does not decline.
  const client = SecAggClient.fromAnnounce(opts, ids.coordinator.id, announce, now)
  client.abort()
  assert.equal(client.declineNotice(), null)

  // Once every masked input is in, the coordinator aborts with an ERR_POLICY code: the clients fail with that
  // code, but it is not their refusal and their data already left: no decline from anyone.
  let aborted = false
  const run = runRound(4, {
    threshold: 3,
    minAgents: 3,
    afterStep: (s) => {
      if (aborted || s.phase !== 'consistency') return []
      aborted = true
      return s.abort('ERR_POLICY', 'the coordinator changed its mind')
    }
  })
  assert.ok(aborted)
  assert.equal(run.server.status, 'failed')
  assert.equal(run.toCoordinator.filter(d => d.message.type === 'masked-input').length, 4)
  assert.deepEqual(run.toCoordinator.filter(d => d.message.type === 'decline'), [])
})
