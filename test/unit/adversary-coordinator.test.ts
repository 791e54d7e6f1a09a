import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyPeerSignature } from '../../shared/crypto/ed25519.js'
import { SecAggClient } from '../../shared/secagg/client.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import type { Announce, SecAggMessage, UnmaskShares } from '../../shared/secagg/messages.js'
import type { AgentPolicy, ContributionGuard } from '../../shared/secagg/policy.js'
import * as transcript from '../../shared/secagg/transcript.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { ContributionLedger } from '../../agent/ledger.js'
import { runRound, sentTypes, signAnnounce, sumOf, SIM_SPEC_HASH, type HarnessAgent } from './adversary-harness.js'

const HOUR = 3_600_000
const NOW = Date.UTC(2026, 0, 15, 12)
const WINDOW = { from: NOW - 2 * HOUR, to: NOW - HOUR }

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(10, 71) })

/** A valid, signed Announce for agents 0..n-1 (full graph); `change` edits it before signing, as a malicious coordinator would. */
function announce (n: number, change: (a: Omit<Announce, 'signature'>) => void = () => {}): Announce {
  const body: Omit<Announce, 'signature'> = {
    type: 'announce', roundId: `r-${Math.random().toString(36).slice(2)}`, protocol: 'fedmon-secagg/1', coordinator: ids.coordinator.id,
    participants: ids.agents.slice(0, n).map((a, i) => ({ id: a.id, addrs: [`/memory/${i}`] })),
    window: { ...WINDOW }, specHash: SIM_SPEC_HASH, vectorLength: 16, maxEntry: 1000, minAgents: 2,
    threshold: Math.max(1, n - 2), degree: n - 1, graph: 'full', phaseTimeoutMs: 10_000, issuedAt: NOW, reference: false
  }
  change(body)
  return signAnnounce(ids.coordinator, body)
}

function join0 (a: Announce, policy: AgentPolicy, now = NOW, guard?: ContributionGuard): SecAggClient {
  return SecAggClient.fromAnnounce({ self: ids.agents[0].id, coordinator: ids.coordinator.id, sign: ids.agents[0].sign, verify: verifyPeerSignature, policy, guard, roster: new Set(ids.agents.map(x => x.id)) }, ids.coordinator.id, a, now)
}

function refused (run: () => unknown, why: RegExp): void {
  assert.throws(run, (e: unknown) => e instanceof SecAggError && e.name === 'SecAggError' && e.code === 'ERR_POLICY' && why.test(e.message), `expected ERR_POLICY matching ${why}`)
}

const SPEC = parseMonitorSpec({
  model: 'm', score: { bins: 64 },
  features: { age: { type: 'numeric', edges: [18, 30, 45, 65] }, country: { type: 'categorical', categories: ['fr', 'de', 'it'] } }
})
const SPEC_JSON = canonicalJson(SPEC)
const SPEC_HASH = specHashOf(SPEC)
const SPEC_POLICY: AgentPolicy = { allowedColumns: ['score', 'label', 'age', 'country'], maxBucketsPerFeature: 16, maxScoreBins: 256 }
/** The announced vector length must match the spec's layout. */
const specAnnounce = (spec: typeof SPEC, n = 4): Announce => {
  const json = canonicalJson(spec)
  const hash = specHashOf(spec)
  return { ...announce(n, a => { a.specHash = hash; a.vectorLength = buildLayout(spec).length; a.maxEntry = buildLayout(spec).maxEntry }), spec: json }
}
test('a round with fewer participants than the agent\'s minimum cohort is refused', () => {
  refused(() => join0(announce(4, a => { a.minAgents = 5 }), { minAgents: 5 }), /4 participants is fewer than this agent's minimum 5/)
  refused(() => join0(announce(6, a => { a.minAgents = 2 }), { minAgents: 5 }), /minAgents 2 is below this agent's minimum 5/)
  refused(() => join0(announce(6, a => { a.threshold = 2 }), { minThreshold: 3 }), /threshold 2 is below/)
  assert.ok(join0(announce(6, a => { a.minAgents = 5 }), { minAgents: 5 }) instanceof SecAggClient)
})

test('a spec whose hash differs from the announced one is refused', () => {
  const other = parseMonitorSpec({ model: 'm', score: { bins: 64 }, features: { age: { type: 'numeric', edges: [18, 30, 45, 65, 80] } } })
  // The signed specHash is SPEC's, the document travelling with it is another spec.
  const a: Announce = { ...specAnnounce(SPEC), spec: canonicalJson(other) }
  refused(() => join0(a, SPEC_POLICY), /the spec hashes to .*, the round announced/)
  refused(() => join0(a, {}), /the spec hashes to/) // checked even without spec rules
  // The same mismatch arriving later (spec fetched separately) fails the round.
  const client = join0({ ...specAnnounce(SPEC), spec: undefined }, SPEC_POLICY)
  refused(() => client.provideSpec(canonicalJson(other)), /hashes to/)
  assert.equal(client.status, 'failed')
  assert.equal(client.failure()?.code, 'ERR_POLICY')
  assert.throws(() => client.start(NOW), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_WRONG_PHASE')
  // And garbage as a spec is a typed rejection, not a crash.
  assert.throws(() => join0({ ...specAnnounce(SPEC), spec: '{"model":' }, {}), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_BAD_MESSAGE')
  assert.throws(() => join0({ ...specAnnounce(SPEC), spec: '{"model":""}' }, {}), (e: unknown) => e instanceof SecAggError && e.code === 'ERR_BAD_MESSAGE' && /model/.test(e.message))
})

test('a spec not in the agent\'s allowed list is refused', () => {
  refused(() => join0(specAnnounce(SPEC), { allowedSpecHashes: ['0'.repeat(64)] }), /is not allowed by this agent/)
  assert.ok(join0(specAnnounce(SPEC), { allowedSpecHashes: [SPEC_HASH] }) instanceof SecAggClient)
})

test('a spec that asks for more than the agent\'s policy allows is refused', () => {
  assert.ok(join0(specAnnounce(SPEC), SPEC_POLICY) instanceof SecAggClient)
  const asks = (change: Record<string, unknown>): typeof SPEC => parseMonitorSpec({ ...JSON.parse(SPEC_JSON), ...change })
  // A column the site does not share.
  refused(() => join0(specAnnounce(asks({ features: { ...SPEC.features, diagnosis: { type: 'categorical', categories: ['a'] } } })), SPEC_POLICY), /does not share: diagnosis/)
  // An allowed feature name pointed at a forbidden column.
  refused(() => join0(specAnnounce(asks({ features: { age: { type: 'numeric', column: 'ssn', edges: [1, 2] } } })), SPEC_POLICY), /does not share: ssn/)
  // The label read from another column.
  refused(() => join0(specAnnounce(asks({ label: { column: 'hiv_status' } })), SPEC_POLICY), /does not share: hiv_status/)
  // A histogram fine enough to single out records: a log-bucket sketch (thousands of buckets) or a huge vocabulary.
  refused(() => join0(specAnnounce(asks({ features: { age: { type: 'numeric', range: [1, 1e6] } } })), SPEC_POLICY), /feature age has \d+ buckets, this agent allows at most 16/)
  const vocabulary = Array.from({ length: 100 }, (_, i) => `c${i}`)
  refused(() => join0(specAnnounce(asks({ features: { country: { type: 'categorical', categories: vocabulary } } })), SPEC_POLICY), /feature country has 102 buckets/)
  refused(() => join0(specAnnounce(asks({ score: { bins: 65536 } })), SPEC_POLICY), /65536 score bins, this agent allows at most 256/)
  // The announced vector length must be the spec's.
  refused(() => join0({ ...announce(4, a => { a.specHash = SPEC_HASH; a.vectorLength = 17 }), spec: SPEC_JSON }, SPEC_POLICY), /vector length is \d+, the round announced 17/)
})

test('windows the policy forbids are refused: too short, too long, in the future, too old', () => {
  const policy: AgentPolicy = { minWindowMs: HOUR, maxWindowMs: 7 * 24 * HOUR, maxWindowLeadMs: 60_000, maxWindowAgeMs: 30 * 24 * HOUR }
  assert.ok(join0(announce(4), policy) instanceof SecAggClient)
  refused(() => join0(announce(4, a => { a.window = { from: WINDOW.from, to: WINDOW.from + 60_000 } }), policy), /shorter than this agent's minimum/)
  refused(() => join0(announce(4, a => { a.window = { from: NOW, to: NOW + HOUR } }), policy), /window ends in the future/)
  // One round over a site's whole history would use up every record of it in the ledger for good.
  refused(() => join0(announce(4, a => { a.window = { from: NOW - 8 * 24 * HOUR, to: NOW - HOUR } }), policy), /longer than this agent's maximum of 168 h/)
  refused(() => join0(announce(4, a => { a.window = { from: NOW - 40 * 24 * HOUR, to: NOW - 39 * 24 * HOUR } }), policy), /older than this agent's maximum age/)
  refused(() => join0(announce(4, a => { a.window = { from: WINDOW.to, to: WINDOW.to } }), policy), /empty window/)
})

test('a stale Announce is refused (maxAnnounceAgeMs)', () => {
  const a = announce(4)
  assert.ok(join0(a, { maxAnnounceAgeMs: 60_000 }, NOW + 30_000) instanceof SecAggClient)
  refused(() => join0(a, { maxAnnounceAgeMs: 60_000 }, NOW + 10 * 60_000), /older than this agent's maximum 60 s \(stale or replayed\)/)
  // Post-dated to stay replayable for longer: refused as well.
  refused(() => join0(announce(4, x => { x.issuedAt = NOW + 3_600_000 }), { maxAnnounceAgeMs: 60_000 }, NOW), /3600 s in the future/)
})

test('with spec rules but no spec, the agent never releases its masked input', () => {
  const agents: HarnessAgent[] = ids.agents.slice(0, 5).map((identity, i) => ({ identity, input: new Uint32Array(16).fill(i + 1) }))
  agents[0].policy = SPEC_POLICY
  const res = runRound({ roundId: 'no-spec', coordinator: ids.coordinator, agents, dim: 16, window: WINDOW, now: NOW, threshold: 3 })
  const victim = ids.agents[0].id
  assert.ok(res.rejected.some(r => r.at === victim && r.code === 'ERR_POLICY' && /no spec was provided/.test(r.message)), JSON.stringify(res.rejected))
  assert.ok(!sentTypes(res, victim).includes('masked-input'))
  assert.ok(!sentTypes(res, victim).includes('unmask-shares'))
  // The others finish without it, with exactly their sum.
  assert.equal(res.status, 'done', res.failure?.message)
  assert.ok(!res.result!.included.includes(victim))
  assert.deepEqual(res.result!.sum, sumOf(agents.slice(1).map(a => a.input), 16))
})

test('a replayed Announce of a round the agent took part in is refused (ledger); without the ledger it is accepted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-h7-replay-'))
  try {
    const agents: HarnessAgent[] = ids.agents.slice(0, 4).map((identity, i) => ({ identity, input: new Uint32Array(8).fill(i), guard: ContributionLedger.open(join(dir, `a${i}`)) }))
    const first = runRound({ roundId: 'round-1', coordinator: ids.coordinator, agents, dim: 8, window: WINDOW, now: NOW, threshold: 3 })
    assert.equal(first.status, 'done', first.failure?.message)
    // The coordinator replays the very same signed Announce (a fresh round would need fresh keys from every agent).
    const reopened = ContributionLedger.open(join(dir, 'a0'))
    assert.ok(reopened.hasRound('round-1'))
    refused(() => join0(first.announce, {}, NOW + 1000, reopened), /round round-1 was already contributed to .*replayed announce/)
    // The attack the ledger stops: without it the replay is accepted (fresh keys, a second contribution of the window).
    assert.ok(join0(first.announce, {}, NOW + 1000) instanceof SecAggClient)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('both shares of one peer, asked in a second unmask request after the first, are refused and nothing leaves', () => {
  const agents: HarnessAgent[] = ids.agents.slice(0, 6).map((identity, i) => ({ identity, input: new Uint32Array(8).fill(i * 3) }))
  const victim = ids.agents[2].id
  let replayed = 0
  const res = runRound({
    roundId: 'never-both', coordinator: ids.coordinator, agents, dim: 8, window: WINDOW, now: NOW, threshold: 3,
    intercept: d => {
      if (d.message.type !== 'unmask-request' || d.to !== victim) return [d]
      // Then ask again, now claiming survivor 0 dropped, to get its s-share next to the b-share just revealed.
      replayed++
      const survivors = d.message.survivors.filter(i => i !== 0)
      const dropped = [0, ...d.message.dropped].sort((a, b) => a - b)
      const second: SecAggMessage = { ...d.message, survivors, dropped, signature: ids.coordinator.sign(transcript.unmaskRequestBytes(d.message.roundId, survivors, dropped)) }
      return [d, { ...d, message: second }]
    }
  })
  assert.equal(replayed, 1)
  assert.equal(res.status, 'done')
  const fromVictim = res.transcript.filter(d => d.from === victim && d.message.type === 'unmask-shares').map(d => d.message as UnmaskShares)
  assert.equal(fromVictim.length, 1)
  assert.deepEqual(fromVictim[0].sOwners, [])
  assert.ok(res.rejected.some(r => r.at === victim && r.type === 'unmask-request' && r.code === 'ERR_WRONG_PHASE'), JSON.stringify(res.rejected))
})

test('different survivor sets: agents shown a minority set reveal nothing to either request', () => {
  const agents: HarnessAgent[] = ids.agents.slice(0, 10).map((identity, i) => ({ identity, input: new Uint32Array(8).fill(i + 10) }))
  const minority = new Set(ids.agents.slice(0, 4).map(a => a.id))
  let forged = false
  const res = runRound({
    roundId: 'split-view', coordinator: ids.coordinator, agents, dim: 8, window: WINDOW, now: NOW, threshold: 5,
    intercept: d => {
      const m = d.message
      if (m.type === 'survivors' && minority.has(d.to)) {
        const members = m.members.filter(i => i !== 9)
        return [{ ...d, message: { ...m, members, signature: ids.coordinator.sign(transcript.survivorsBytes(m.roundId, members)) } }]
      }
      if (m.type === 'unmask-request' && !forged) {
        forged = true
        // The majority view (signed by 6) and the minority view (signed by 4 < t): both sent to the minority.
        const survivors = m.survivors.filter(i => i !== 9)
        const dropped = [...m.dropped, 9].sort((a, b) => a - b)
        const minorityView: SecAggMessage = { ...m, survivors, dropped, signature: ids.coordinator.sign(transcript.unmaskRequestBytes(m.roundId, survivors, dropped)) }
        return [d, ...[...minority].flatMap(to => [{ ...d, to, message: m }, { ...d, to, message: minorityView }])]
      }
      return [d]
    }
  })
  for (const id of minority) {
    assert.ok(!sentTypes(res, id).includes('unmask-shares'), `${id} revealed shares`)
    const codes = res.rejected.filter(r => r.at === id && r.type === 'unmask-request').map(r => r.code)
    assert.ok(codes.includes('ERR_CONSISTENCY'), `${id}: ${codes.join(',')}`)
  }
  // Nobody revealed a key share of agent 9, and the six honest signers still finish with the exact sum.
  for (const d of res.transcript) if (d.message.type === 'unmask-shares') assert.ok(!d.message.sOwners.includes(9))
  assert.equal(res.status, 'done')
  assert.deepEqual(res.result!.sum, sumOf(agents.map(a => a.input), 8))
})
