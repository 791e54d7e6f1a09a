/**
 * Security review, issue 10 items 2, 4, 5, 6 and the minimum-records rule of item 3: each attack written
 * against the real agent state machine (SecAggClient) with a real ContributionLedger, through the in-process
 * harness (every message through msgpackr + zod, as on the network). Each test states what the attack got
 * before the fix, and asserts that it gets nothing now.
 */
import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import type { Announce, Decline, SecAggMessage } from '../../shared/secagg/messages.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { ContributionLedger, LedgerError, LEDGER_FILE } from '../../agent/ledger.js'
import { runRound, sentTypes, signAnnounce, sumOf, SIM_SPEC_HASH, type HarnessAgent } from './adversary-harness.js'

const HOUR = 3_600_000
const NOW = Date.UTC(2026, 2, 10, 12)
const W = { from: NOW - 3 * HOUR, to: NOW - 2 * HOUR }
const DIM = 8

let ids: { coordinator: Identity, agents: Identity[] }
let sybils: { coordinator: Identity, agents: Identity[] }
let dir: string
before(async () => {
  ids = await createIdentities(8, 505)
  sybils = await createIdentities(6, 506) // identities the coordinator made up
  dir = mkdtempSync(join(tmpdir(), 'fedmon-review-'))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

const inputOf = (i: number): Uint32Array => new Uint32Array(DIM).map((_, j) => 100 * i + j + 7)

test('item 2: a round filled with the coordinator\'s own sybils is refused by the one real site, with a signed decline; nothing of its data leaves', () => {
  const victim = ids.agents[0]
  // The federation the victim knows: itself and three real sites (none of which the coordinator invites).
  const roster = new Set(ids.agents.slice(0, 4).map(a => a.id))
  const zeros = new Uint32Array(DIM)
  const agents: HarnessAgent[] = [
    { identity: victim, input: inputOf(1), roster },
    ...sybils.agents.slice(0, 5).map(identity => ({ identity, input: zeros }))
  ]
  // What the attack got before the fix: with trustCoordinatorRoster (the explicit opt-out) it still does.
  const optOut = runRound({ roundId: 'sybil-opt-out', coordinator: ids.coordinator, agents: agents.map((a, i) => i === 0 ? { ...a, policy: { trustCoordinatorRoster: true } } : a), dim: DIM, window: W, now: NOW, minAgents: 3 })
  assert.equal(optOut.status, 'done')
  assert.deepEqual(optOut.result!.sum, inputOf(1), 'with the opt-out, the "sum" over sybils is the victim\'s vector')

  const res = runRound({ roundId: 'sybil', coordinator: ids.coordinator, agents, dim: DIM, window: W, now: NOW, minAgents: 3 })
  const refusal = res.rejected.find(r => r.at === victim.id && r.type === 'announce')
  assert.equal(refusal?.code, 'ERR_POLICY')
  assert.match(refusal!.message, /5 of 6 participants are not on this agent's roster/)
  assert.deepEqual(sentTypes(res, victim.id), ['decline'], 'the victim only explains itself')
  const decline = res.transcript.find(d => d.from === victim.id)!.message as Decline
  assert.match(decline.reason, /not on this agent's roster/)
  assert.ok(!(res.result?.included ?? []).includes(victim.id))
  // Without a roster at all (and no opt-out) an agent joins nothing.
  const noRoster = runRound({ roundId: 'no-roster', coordinator: ids.coordinator, agents: [{ ...agents[0], roster: new Set() }, ...agents.slice(1)], dim: DIM, window: W, now: NOW, minAgents: 3 })
  assert.match(noRoster.rejected.find(r => r.at === victim.id)!.message, /no roster of its own/)
})

const SPEC = parseMonitorSpec({ model: 'm', score: { bins: 16 }, features: { age: { type: 'numeric', edges: [18, 30, 45, 65] } } })
const LAYOUT = buildLayout(SPEC)

test('item 4: a max entry below the layout\'s is refused before anything is sent (it would make contributing depend on the data)', () => {
  const body: Omit<Announce, 'signature'> = {
    type: 'announce', roundId: 'low-max-entry', protocol: 'fedmon-secagg/1', coordinator: ids.coordinator.id,
    participants: ids.agents.slice(0, 4).map((a, i) => ({ id: a.id, addrs: [`/memory/${i}`] })),
    window: W, specHash: specHashOf(SPEC), vectorLength: LAYOUT.length, maxEntry: 3, minAgents: 2,
    threshold: 2, degree: 3, graph: 'full', phaseTimeoutMs: 10_000, issuedAt: NOW, reference: false
  }
  const announce = { ...signAnnounce(ids.coordinator, body), spec: canonicalJson(SPEC) }
  const opts = { self: ids.agents[0].id, coordinator: ids.coordinator.id, sign: ids.agents[0].sign, verify: verifyPeerSignature, roster: new Set(ids.agents.map(a => a.id)) }
  assert.throws(() => SecAggClient.fromAnnounce(opts, ids.coordinator.id, announce, NOW),
    (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && /max entry 3 is below the spec layout's/.test(e.message))
  // The same with the spec fetched later: the round fails at provideSpec, before the masked input.
  const client = SecAggClient.fromAnnounce(opts, ids.coordinator.id, { ...announce, spec: undefined }, NOW)
  assert.throws(() => client.provideSpec(canonicalJson(SPEC)), /max entry 3 is below/)
  assert.equal(client.status, 'failed')
  assert.notEqual(client.declineNotice(), null, 'declined with the reason')
})

test('item 4: a data-dependent overflow uses up the window (decline), so probing the record count round by round learns one bit, once', () => {
  const state = join(dir, 'overflow')
  const ledger = ContributionLedger.open(state)
  const roster = new Set(ids.agents.slice(0, 5).map(a => a.id))
  const agents = (round: number): HarnessAgent[] => ids.agents.slice(0, 5).map((identity, i) => ({
    identity, roster,
    // The victim's count exceeds the round's max entry: before the fix it silently never sent its input and
    // its window stayed open for the next, narrower probe.
    input: new Uint32Array(DIM).fill(i === 0 ? 50 + round : i),
    guard: i === 0 ? ledger : undefined
  }))
  const first = runRound({ roundId: 'probe-1', coordinator: ids.coordinator, agents: agents(1), dim: DIM, window: W, now: NOW, maxEntry: 40, minAgents: 3 })
  assert.equal(first.status, 'done')
  assert.deepEqual(first.result!.sum, sumOf(agents(1).slice(1).map(a => a.input), DIM))
  assert.deepEqual(sentTypes(first, ids.agents[0].id), ['advertise-keys', 'decline'])
  const decline = first.transcript.find(d => d.from === ids.agents[0].id && d.message.type === 'decline')!.message as Decline
  assert.equal(decline.code, 'ERR_OVERFLOW')
  assert.match(decline.reason, /window used up/)
  assert.ok(ledger.entries().some(e => e.roundId === 'probe-1' && e.contributedAt !== null), 'the window is recorded as used')
  // The next probe over (part of) the window is refused at the Announce, whatever its max entry.
  const second = runRound({ roundId: 'probe-2', coordinator: ids.coordinator, agents: agents(2), dim: DIM, window: { from: W.from, to: W.from + HOUR / 2 }, now: NOW, maxEntry: 60, minAgents: 3 })
  assert.match(second.rejected.find(r => r.at === ids.agents[0].id)!.message, /already contributed to in round probe-1/)
  assert.ok(!sentTypes(second, ids.agents[0].id).includes('masked-input'))
})

test('item 3/4: a window with fewer records than policy.minRecords is declined with the reason, ledger untouched; rounds per window are bounded', () => {
  const state = join(dir, 'min-records')
  const ledger = ContributionLedger.open(state, { maxRoundsPerWindow: 3 })
  const roster = new Set(ids.agents.slice(0, 5).map(a => a.id))
  const agents: HarnessAgent[] = ids.agents.slice(0, 5).map((identity, i) => ({
    identity, roster, input: inputOf(i), records: i === 0 ? 3 : 500, policy: { minRecords: 10 }, guard: i === 0 ? ledger : undefined
  }))
  for (let k = 1; k <= 3; k++) {
    const res = runRound({ roundId: `few-${k}`, coordinator: ids.coordinator, agents, dim: DIM, window: W, now: NOW + k, minAgents: 3 })
    assert.equal(res.status, 'done')
    assert.deepEqual(res.result!.sum, sumOf(agents.slice(1).map(a => a.input), DIM))
    const decline = res.transcript.find(d => d.from === ids.agents[0].id && d.message.type === 'decline')?.message as Decline | undefined
    assert.match(decline?.reason ?? '', /the window holds fewer of this agent's records than its minimum 10/)
    assert.doesNotMatch(decline?.reason ?? '', /\b3\b/, 'the site\'s record count never leaves it')
    assert.ok(!sentTypes(res, ids.agents[0].id).includes('masked-input'))
    assert.ok(ledger.entries().every(e => e.contributedAt === null), 'ledger records no contribution')
  }
  // A fourth round over the same window is one probe too many.
  const fourth = runRound({ roundId: 'few-4', coordinator: ids.coordinator, agents, dim: DIM, window: W, now: NOW + 4, minAgents: 3 })
  assert.match(fourth.rejected.find(r => r.at === ids.agents[0].id)!.message, /3 rounds already covered window .* at most 3 \(policy.maxRoundsPerWindow\)/)
})

test('item 5: a state dir lost while the identity key survives re-opens nothing: earlier windows are refused until an explicit, recorded reset', () => {
  const keyDir = join(dir, 'keys')
  const state = join(dir, 'lost-state')
  const identityFile = join(keyDir, 'site.key')
  const round = (id: string, window: { from: number, to: number }): { roundId: string, window: { from: number, to: number }, specHash: string, reference: boolean, participants: string[] } =>
    ({ roundId: id, window, specHash: SIM_SPEC_HASH, reference: false, participants: ['a', 'b', 'c'] })
  // First start of this identity: its whole history is in the new ledger (there was none before).
  mkdirSync(keyDir, { recursive: true })
  const first = ContributionLedger.open(state, { identityFile, now: NOW })
  assert.equal(first.notBefore, null)
  assert.ok(existsSync(`${identityFile}.ledger.json`), 'anchor written beside the key')
  first.admit(round('r1', W), NOW)
  first.contribute(round('r1', W), NOW)
  assert.throws(() => first.admit(round('r2', W), NOW), /overlaps/)

  // The state dir is wiped (the attack: before the fix an empty ledger started and W could be summed again).
  rmSync(state, { recursive: true, force: true })
  const lost: Array<{ notBefore: number }> = []
  const later = NOW + 5 * HOUR
  const second = ContributionLedger.open(state, { identityFile, now: later, onLost: info => lost.push(info) })
  assert.deepEqual(lost.map(l => l.notBefore), [later])
  assert.throws(() => second.admit(round('r2', W), later), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && /starts before .* ledger was started again/.test(e.message))
  // Windows after the restart run as usual.
  second.admit(round('r3', { from: later, to: later + HOUR }), later)
  // Only an operator's reset allows earlier windows, and the file keeps it.
  second.reset(W.from, 'restored from backup of 2026-03-10; windows since then verified unused', later + 1)
  second.admit(round('r2', W), later + 2)
  const file = JSON.parse(readFileSync(join(state, LEDGER_FILE), 'utf8'))
  assert.equal(file.resets.length, 1)
  assert.match(file.resets[0].reason, /restored from backup/)

  // A ledger that is not this identity's (copied from elsewhere) is refused outright.
  const other = join(dir, 'other-state')
  ContributionLedger.open(other, { now: NOW })
  const copied = readFileSync(join(other, LEDGER_FILE))
  rmSync(state, { recursive: true, force: true })
  ContributionLedger.open(state, { identityFile, now: later }) // a lost one again: fresh ledger, new anchor
  writeFileSync(join(state, LEDGER_FILE), copied)
  assert.throws(() => ContributionLedger.open(state, { identityFile }), (e: unknown) => e instanceof LedgerError && /not the contribution ledger of this identity/.test(e.message))
})

test('item 6: a low-order s-key is refused by the server, and caught by an agent at key-set, before its ledger records anything', () => {
  const roster = new Set(ids.agents.slice(0, 5).map(a => a.id))
  const evil = ids.agents[4]
  const lowOrder = new Uint8Array(32) // u = 0: a point of order 1 (X25519 gives the all-zero secret)
  const forge = (m: Extract<SecAggMessage, { type: 'advertise-keys' }>): typeof m => ({ ...m, sPk: lowOrder, signature: evil.sign(transcript.advertBytes(m.roundId, m.cPk, lowOrder, m.bCommit)) })
  // (a) A roster member advertises a low-order s-key, signed by itself: the honest server refuses the advert.
  const plain: HarnessAgent[] = ids.agents.slice(0, 5).map((identity, i) => ({ identity, roster, input: inputOf(i) }))
  const refused = runRound({
    roundId: 'low-order-server', coordinator: ids.coordinator, agents: plain, dim: DIM, window: W, now: NOW, minAgents: 3,
    intercept: d => d.message.type === 'advertise-keys' && d.from === evil.id ? [{ ...d, message: forge(d.message) }] : [d]
  })
  assert.ok(refused.rejected.some(r => r.at === 'coordinator' && r.type === 'advertise-keys' && /low-order key/.test(r.message)), JSON.stringify(refused.rejected))
  assert.equal(refused.status, 'done')
  assert.deepEqual(refused.result!.sum, sumOf(plain.slice(0, 4).map(a => a.input), DIM))

  // (b) A coordinator in league with it hands the key to agent 0 anyway (the evil agent signed it). Before the
  // fix agent 0 recorded its contribution and only then failed deriving the pairwise mask: the window used up.
  const ledger = ContributionLedger.open(join(dir, 'low-order'))
  const agents = plain.map((a, i) => i === 0 ? { ...a, guard: ledger } : a)
  const res = runRound({
    roundId: 'low-order-agent', coordinator: ids.coordinator, agents, dim: DIM, window: W, now: NOW, minAgents: 3,
    intercept: (d) => {
      const m = d.message
      if (m.type !== 'key-set' || d.to !== ids.agents[0].id) return [d]
      const keys = m.keys.map(k => k.index === 4 ? { ...k, sPk: lowOrder, signature: evil.sign(transcript.advertBytes(m.roundId, k.cPk, lowOrder, k.bCommit)) } : k)
      return [{ ...d, message: { ...m, keys } }]
    }
  })
  const refusal = res.rejected.find(r => r.at === ids.agents[0].id && r.type === 'masking-set')
  assert.equal(refusal?.code, 'ERR_CONSISTENCY', JSON.stringify(res.rejected))
  assert.match(refusal!.message, /includes neighbour 4, which never advertised keys to us/)
  assert.equal(res.status, 'done')
  assert.ok(!res.result!.included.includes(ids.agents[0].id))
  assert.ok(ledger.entries().every(e => e.contributedAt === null), 'no contribution recorded: the window stays usable')
  assert.ok(!res.transcript.some(d => d.from === ids.agents[0].id && (d.to === evil.id || d.message.type === 'masked-input')), 'no shares to the evil neighbour, no masked input')
})

test('item 7: participants listed in an order chosen to place a victim among colluders are refused; the graph comes from the sorted list', () => {
  const roster = new Set(ids.agents.map(a => a.id))
  const sorted = [...ids.agents].map(a => a.id)
  assert.deepEqual(sorted, [...sorted].sort(), 'test identities come in peer-id order')
  // The coordinator's choice: the victim at index 3, its colluders at 2 and 4 (its neighbours on a ring of 8).
  const placed = [sorted[5], sorted[6], sorted[1], sorted[0], sorted[2], sorted[7], sorted[3], sorted[4]]
  const body: Omit<Announce, 'signature'> = {
    type: 'announce', roundId: 'placed', protocol: 'fedmon-secagg/1', coordinator: ids.coordinator.id,
    participants: placed.map((id, i) => ({ id, addrs: [`/memory/${i}`] })), window: W, specHash: SIM_SPEC_HASH,
    vectorLength: DIM, maxEntry: 1000, minAgents: 2, threshold: 1, degree: 2, graph: 'sparse', phaseTimeoutMs: 10_000, issuedAt: NOW, reference: false
  }
  const opts = { self: sorted[0], coordinator: ids.coordinator.id, sign: ids.agents[0].sign, verify: verifyPeerSignature, roster }
  assert.throws(() => SecAggClient.fromAnnounce(opts, ids.coordinator.id, signAnnounce(ids.coordinator, body), NOW),
    (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && /not sorted by peer id/.test(e.message))
  // The same round with the list sorted is judged on its parameters (here t = 1 is refused only if colluders
  // are tolerated: with C = ⌊0.05 · 8⌋ = 0 it is legal).
  const fair = { ...body, participants: sorted.map((id, i) => ({ id, addrs: [`/memory/${i}`] })) }
  assert.ok(SecAggClient.fromAnnounce(opts, ids.coordinator.id, signAnnounce(ids.coordinator, fair), NOW) instanceof SecAggClient)
  // With a larger tolerance (C = 2 of 8) the sparse t = 1 is refused as below the lowest safe threshold.
  assert.throws(() => SecAggClient.fromAnnounce({ ...opts, policy: { maxCorruptFraction: 0.25 } }, ids.coordinator.id, signAnnounce(ids.coordinator, fair), NOW),
    (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && /threshold 1 is below 3, the lowest that keeps 2 colluders/.test(e.message))
})
