import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import type { SecAggError } from '../../shared/secagg/errors.js'
import { parseSecAggMessage, type SecAggMessage, type UnmaskShares } from '../../shared/secagg/messages.js'
import { SecAggServer } from '../../shared/secagg/server.js'
import { createIdentities, simulatedInput, type Identity } from '../../shared/secagg/simulate.js'
import { encodeFrame, decodeFrame } from '../../shared/wire/codec.js'

/*
 * Closed connections, in process: a server and real clients joined by a FIFO router (every message through the
 * wire codec). An agent that "dies" stops right after a message it sends, and the coordinator learns that its
 * connection closed (server.disconnected) after that message, as on the network (a message is acknowledged
 * once the coordinator has taken it, so a process killed after sending it closes its connection afterwards).
 * Time moves only when nothing is in flight, to the next deadline of the server or a live client; a server
 * phase ended by its deadline is counted. Without dropout detection every case below waits for a deadline.
 */

const DIM = 48
const MAX_ENTRY = 7
const PHASE_MS = 1000
const WINDOW = { from: 1_700_000_000_000, to: 1_700_000_086_400_000 }
const SPEC_HASH = 'cd'.repeat(32)
const ROUND = 'round-disconnect'

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(8, 91) })

const wire = (m: SecAggMessage): SecAggMessage => parseSecAggMessage(decodeFrame(encodeFrame(m)))

type Entry = { from: string, to: string, message: SecAggMessage } | { disconnect: string }

interface RoundRun {
  server: SecAggServer
  /** Server phases that ended at their deadline (or failed there). */
  deadlines: string[]
  toCoordinator: Array<{ from: string, message: SecAggMessage }>
  rejected: Array<{ from: string, type: string, code: string }>
  inputs: Uint32Array[]
  ids: string[]
}

interface RunOptions {
  threshold: number
  minAgents: number
  /** Agent index → the message type after which it dies (its connection closes after that message). */
  dies?: Map<number, SecAggMessage['type']>
  /** Agent index → a problem its data check finds once it has sent its shares (it then declines). */
  lateProblem?: Map<number, string>
  /** Called after every step with the server (e.g. to report a connection closing or coming back). */
  afterStep?: (server: SecAggServer, now: number) => void
  /** Messages to hold back until nothing else is in flight (then delivered, before time moves). */
  holdBack?: (from: string, message: SecAggMessage, server: SecAggServer) => boolean
}

/** Runs one round over agents 0..n-1 (full graph) to its end. */
function runRound (n: number, opts: RunOptions): RoundRun {
  const agents = ids.agents.slice(0, n)
  const coordinator = ids.coordinator
  const server = new SecAggServer({
    roundId: ROUND, coordinator: coordinator.id, sign: coordinator.sign, verify: verifyPeerSignature,
    participants: agents.map(a => ({ id: a.id, addrs: [] })), vectorLength: DIM, specHash: SPEC_HASH, window: WINDOW,
    maxEntry: MAX_ENTRY, minAgents: opts.minAgents, threshold: opts.threshold, graph: 'full', phaseTimeoutMs: PHASE_MS
  })
  let now = WINDOW.to + 60_000
  const run: RoundRun = { server, deadlines: [], toCoordinator: [], rejected: [], inputs: agents.map((_, i) => simulatedInput(5, i, DIM, MAX_ENTRY)), ids: agents.map(a => a.id) }
  const queue: Entry[] = []
  const held: Entry[] = []
  const clients = new Map<number, SecAggClient>()
  const dead = new Set<number>()
  const indexOf = new Map(agents.map((a, i) => [a.id, i]))
  const fromAgent = (i: number, out: Array<{ to: string, message: SecAggMessage }>): void => {
    if (dead.has(i)) return
    for (const o of out) queue.push({ from: agents[i].id, to: o.to, message: o.message })
    const diesAfter = opts.dies?.get(i)
    if (diesAfter !== undefined && out.some(o => o.message.type === diesAfter)) {
      dead.add(i)
      queue.push({ disconnect: agents[i].id })
    }
  }
  const fromClient = (i: number, client: SecAggClient, step: () => Array<{ to: string, message: SecAggMessage }>): void => {
    try {
      fromAgent(i, step())
    } catch (err) {
      run.rejected.push({ from: agents[i].id, type: 'client', code: (err as SecAggError).code })
    }
    const decline = client.declineNotice()
    if (decline !== null && !run.toCoordinator.some(d => d.from === agents[i].id && d.message.type === 'decline') && !queue.some(e => 'message' in e && e.from === agents[i].id && e.message.type === 'decline')) fromAgent(i, [decline])
  }
  const fromServer = (out: Array<{ to: string, message: SecAggMessage }>): void => {
    for (const o of out) queue.push({ from: coordinator.id, to: o.to, message: o.message })
  }

  fromServer(server.start(now))
  for (let steps = 0; server.status === 'running' || queue.length > 0; steps++) {
    assert.ok(steps < 100_000, 'the round does not end')
    let next = queue.shift()
    if (next === undefined && held.length > 0) next = held.shift()
    if (next === undefined) {
      if (server.status !== 'running') break
      const live = [...clients].filter(([i]) => !dead.has(i)).map(([, c]) => c.nextDeadline()).filter((d): d is number => d !== null)
      const deadline = Math.min(server.nextDeadline() ?? Infinity, ...live)
      assert.ok(Number.isFinite(deadline), 'nothing in flight and no deadline')
      now = deadline
      for (const [i, c] of clients) if (!dead.has(i)) fromClient(i, c, () => c.tick(now))
      const phase = server.phase
      fromServer(server.tick(now))
      if (server.phase !== phase) run.deadlines.push(phase)
      opts.afterStep?.(server, now)
      continue
    }
    if ('disconnect' in next) {
      fromServer(server.disconnected(next.disconnect, now))
      opts.afterStep?.(server, now)
      continue
    }
    if (opts.holdBack?.(next.from, next.message, server) === true && !held.includes(next)) { held.push(next); continue }
    const message = wire(next.message)
    if (next.to === coordinator.id) {
      try {
        run.toCoordinator.push({ from: next.from, message })
        fromServer(server.receive(next.from, message, now))
      } catch (err) {
        run.rejected.push({ from: next.from, type: message.type, code: (err as SecAggError).code })
      }
      opts.afterStep?.(server, now)
      continue
    }
    const i = indexOf.get(next.to)!
    if (dead.has(i)) continue
    const agent = agents[i]
    if (message.type === 'announce') {
      const client = SecAggClient.fromAnnounce({ self: agent.id, coordinator: coordinator.id, sign: agent.sign, verify: verifyPeerSignature, roster: new Set(ids.agents.map(a => a.id)) }, next.from, message, now)
      clients.set(i, client)
      fromClient(i, client, () => client.start(now))
      if (opts.lateProblem?.has(i) !== true) fromClient(i, client, () => client.setInput(run.inputs[i], now))
      continue
    }
    const client = clients.get(i)!
    fromClient(i, client, () => client.receive(next.from, message, now))
    const problem = opts.lateProblem?.get(i)
    if (problem !== undefined && message.type === 'key-set') fromClient(i, client, () => client.setInput(run.inputs[i], now, { records: 100, problem }))
    opts.afterStep?.(server, now)
  }
  return run
}

function plainSum (run: RoundRun, included: string[]): Uint32Array {
  const sum = new Uint32Array(DIM)
  for (const id of included) {
    const x = run.inputs[run.ids.indexOf(id)]
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

test('connection closed after the masked input: no phase waits for the agent, it stays in the sum (masks removed), exact result', () => {
  const run = runRound(5, { threshold: 3, minAgents: 3, dies: new Map([[2, 'masked-input']]) })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.deepEqual(run.deadlines, [], 'no phase waited for its deadline')
  const result = server.result()!
  assert.deepEqual(result.included, run.ids, 'its masked input is in: it stays among the survivors (u3)')
  assert.deepEqual(result.dropped, [])
  assert.deepEqual(result.sum, plainSum(run, result.included))
  assert.ok(!run.toCoordinator.some(d => d.from === run.ids[2] && d.message.type === 'consistency-signature'), 'it signed nothing')
  assert.deepEqual(Object.values(server.phaseEndings()).filter(e => e === 'deadline'), [])
  assertNeverBoth(run)
})

test('connection closed after the share receipt (before the masked input): a dropout at once, its pairwise masks removed, exact sum over the others', () => {
  const run = runRound(5, { threshold: 3, minAgents: 3, dies: new Map([[1, 'share-receipt']]) })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.deepEqual(run.deadlines, [])
  const result = server.result()!
  assert.deepEqual(result.dropped, [run.ids[1]])
  assert.deepEqual(result.sum, plainSum(run, result.included))
  assertNeverBoth(run)
})

test('connection closed after the advert: left out of the key sets, so nobody waits for its shares either', () => {
  const run = runRound(5, { threshold: 3, minAgents: 3, dies: new Map([[0, 'advertise-keys']]) })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.deepEqual(run.deadlines, [])
  assert.deepEqual(server.result()!.dropped, [run.ids[0]])
  assert.deepEqual(server.result()!.sum, plainSum(run, server.result()!.included))
  for (const { message } of run.toCoordinator) {
    if (message.type === 'share-receipt') assert.ok(!message.holds.includes(0), 'no agent was given its keys')
  }
})

test('connection closed after the consistency signature: the unmask does not wait for its shares', () => {
  const run = runRound(6, { threshold: 3, minAgents: 3, dies: new Map([[3, 'consistency-signature'], [4, 'consistency-signature']]) })
  assert.equal(run.server.status, 'done', JSON.stringify(run.server.failure()))
  assert.deepEqual(run.deadlines, [])
  assert.deepEqual(run.server.result()!.included, run.ids)
  assert.deepEqual(run.server.result()!.sum, plainSum(run, run.ids))
})

test('the consistency quorum is still required: when too few live agents are left to sign, the round fails at once (ERR_TOO_FEW_SURVIVORS), no unmask share revealed', () => {
  // n = 6, C = 0: quorum 4. Three agents die after their masked inputs: at most 3 can sign.
  const run = runRound(6, { threshold: 3, minAgents: 3, dies: new Map([[0, 'masked-input'], [1, 'masked-input'], [2, 'masked-input']]) })
  const { server } = run
  assert.equal(server.status, 'failed')
  assert.deepEqual(run.deadlines, [], 'failed without waiting for a deadline')
  assert.equal(server.failure()!.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(server.failure()!.message, /consistency quorum\) = 4/)
  assert.match(server.failure()!.message, /3 disconnected: /)
  assert.ok(!run.toCoordinator.some(d => d.message.type === 'unmask-shares'), 'no unmask share left an agent')
  assert.equal(server.result(), null)
})

test('unmask: when the live holders cannot give t shares of a secret any more, the round fails at once', () => {
  // n = 6, t = 3: four die after signing; two live holders cannot rebuild anyone's self-mask seed.
  const dies = new Map<number, SecAggMessage['type']>([[0, 'consistency-signature'], [1, 'consistency-signature'], [2, 'consistency-signature'], [3, 'consistency-signature']])
  const run = runRound(6, { threshold: 3, minAgents: 3, dies })
  assert.equal(run.server.status, 'failed')
  assert.deepEqual(run.deadlines, [])
  assert.equal(run.server.failure()!.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(run.server.failure()!.message, /^unmask: /)
})

test('too few left before the masked inputs: fails at once, naming the disconnected agents', () => {
  // n = 5, C = 0: quorum 3. Three die right after their adverts: at most 2 can take part.
  const run = runRound(5, { threshold: 3, minAgents: 3, dies: new Map([[0, 'advertise-keys'], [1, 'advertise-keys'], [2, 'advertise-keys']]) })
  assert.equal(run.server.status, 'failed')
  assert.deepEqual(run.deadlines, [])
  assert.equal(run.server.failure()!.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(run.server.failure()!.message, /^advertised keys: at most 2 agents can still take part/)
  for (const i of [0, 1, 2]) assert.ok(run.server.failure()!.message.includes(run.ids[i]), run.server.failure()!.message)
  assert.equal(run.server.phaseEndings().advertise, 'unreachable')
})

test('enough agents but too few neighbours each to share with (t = 3, 3 left of 5): fails when the adverts are in, not at the share deadline', () => {
  const run = runRound(5, { threshold: 3, minAgents: 3, dies: new Map([[0, 'advertise-keys'], [1, 'advertise-keys']]) })
  assert.equal(run.server.status, 'failed')
  assert.deepEqual(run.deadlines, [])
  assert.equal(run.server.failure()!.code, 'ERR_TOO_FEW_SURVIVORS')
  assert.match(run.server.failure()!.message, /^advertised keys: 3 agents, but only 0 of them have t = 3 neighbours/)
  assert.match(run.server.failure()!.message, /2 disconnected: /)
})

test('a flaky connection: a message that still arrives while its phase is open is taken; once back, the agent is waited for again', () => {
  const flaky = 2
  let disconnectedOnce = false
  let reconnectedOnce = false
  let held = false
  let phaseAtRelease = ''
  const run = runRound(5, {
    threshold: 3,
    minAgents: 3,
    afterStep: (server, now) => {
      // The connection drops as the masking set goes out (its masked input is on its way), and comes back later.
      if (server.phase === 'masked-input' && !disconnectedOnce) { disconnectedOnce = true; server.disconnected(ids.agents[flaky].id, now) }
      if (server.phase === 'consistency' && !reconnectedOnce) { reconnectedOnce = true; server.reconnected(ids.agents[flaky].id) }
    },
    // Its consistency signature comes last, once nothing else is in flight: the server must still be waiting for it.
    holdBack: (from, message, server) => {
      if (from !== ids.agents[flaky].id || message.type !== 'consistency-signature') return false
      if (!held) { held = true; return true }
      phaseAtRelease = server.phase
      return false
    }
  })
  assert.ok(disconnectedOnce && reconnectedOnce && held)
  assert.equal(phaseAtRelease, 'consistency', 'back online, it was waited for')
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.deepEqual(run.deadlines, [])
  assert.deepEqual(server.result()!.included, run.ids, 'its masked input arrived in time: included')
  // It signed, and its signature was counted: the unmask request lists 5 signatures.
  const signers = run.toCoordinator.filter(d => d.message.type === 'consistency-signature').map(d => d.from)
  assert.ok(signers.includes(ids.agents[flaky].id))
  // (Unmask shares arriving after the sum was rebuilt are refused: the round is over by then.)
  assert.deepEqual(run.rejected.filter(r => r.type !== 'unmask-shares'), [], 'nothing it sent was refused')
})

test('a decline while the keys are shared (the data check failed late) is not waited for', () => {
  const run = runRound(5, { threshold: 3, minAgents: 3, lateProblem: new Map([[4, 'column score: 40 % of the values are not numbers']]) })
  const { server } = run
  assert.equal(server.status, 'done', JSON.stringify(server.failure()))
  assert.deepEqual(run.deadlines, [], 'the share-keys phase ended when the last agent either answered or declined')
  assert.deepEqual(server.result()!.dropped, [run.ids[4]])
  assert.deepEqual(server.declined().map(d => d.agent), [run.ids[4]])
  assert.deepEqual(server.result()!.sum, plainSum(run, server.result()!.included))
})

test('disconnected() is harmless outside a running round and for non-participants', () => {
  const agents = ids.agents.slice(0, 4)
  const server = new SecAggServer({
    roundId: ROUND, coordinator: ids.coordinator.id, sign: ids.coordinator.sign, verify: verifyPeerSignature,
    participants: agents.map(a => ({ id: a.id, addrs: [] })), vectorLength: DIM, specHash: SPEC_HASH, window: WINDOW,
    maxEntry: MAX_ENTRY, minAgents: 3, threshold: 3, graph: 'full', phaseTimeoutMs: PHASE_MS
  })
  const now = WINDOW.to + 60_000
  assert.deepEqual(server.disconnected(agents[0].id, now), [], 'before start')
  server.start(now)
  assert.deepEqual(server.disconnected(ids.agents[7].id, now), [], 'not a participant')
  assert.equal(server.status, 'running')
  server.abort('ERR_ABORTED', 'test')
  assert.deepEqual(server.disconnected(agents[1].id, now), [], 'after the end')
})
