/**
 * Label-refresh rounds (issue 11 §2), in process with the real client, server and contribution ledgers: a refresh
 * is unmasked only over exactly the first round's included set, at a declared age, once per age — and a
 * coordinator that tries anything else (drops a site, announces another set, an undeclared or early age, a
 * window the agent never contributed to, a second reveal) gets no share and no signature.
 */
import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { ContributionLedger } from '../../agent/ledger.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { labelDependentEntries, mergeEntries, projectEntries } from '../../shared/stats/label-entries.js'
import { runRound, sumOf, type HarnessAgent, type HarnessResult } from './adversary-harness.js'

const DAY = 86_400_000
const WINDOW = { from: Date.UTC(2026, 5, 1), to: Date.UTC(2026, 5, 8) }
const spec = MonitorSpec.parse({ model: 'late-labels', score: { bins: 8, sums: false }, calibration: { bins: 2 }, features: { region: { type: 'categorical', categories: ['n', 's'] } }, labels: { refreshAfter: ['7d', '30d'] } })
const layout = buildLayout(spec)
const SPEC_HASH = specHashOf(spec)
const SPEC_DOC = canonicalJson(spec)
const SUB = labelDependentEntries(layout)

let ids: { coordinator: Identity, agents: Identity[] }
let dir: string
before(async () => {
  ids = await createIdentities(5, 11)
  dir = mkdtempSync(join(tmpdir(), 'fedmon-refresh-'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

const fullInput = (i: number, salt: number): Uint32Array => Uint32Array.from({ length: layout.length }, (_, j) => (i * 31 + j * 7 + salt) % 50)

/** Five agents, each with its own ledger in its own state dir (fresh per test). */
function federation (tag: string): Array<HarnessAgent & { ledger: ContributionLedger }> {
  return ids.agents.map((identity, i) => {
    const ledger = ContributionLedger.open(join(dir, tag, `site-${i}`))
    return { identity, input: fullInput(i, 0), guard: ledger, ledger, provideSpec: SPEC_DOC }
  })
}

function firstRound (agents: HarnessAgent[], roundId: string, opts: { drop?: string } = {}): HarnessResult {
  const res = runRound({
    roundId, coordinator: ids.coordinator, agents, dim: layout.length, window: WINDOW, now: WINDOW.to + DAY, specHash: SPEC_HASH, maxEntry: layout.maxEntry,
    intercept: d => opts.drop !== undefined && d.from === opts.drop && d.message.type === 'masked-input' ? [] : [d]
  })
  assert.equal(res.status, 'done', `first round: ${res.failure?.message}`)
  return res
}

function refresh (agents: HarnessAgent[], roundId: string, of: string, ageMs: number, opts: { now?: number, participants?: string[], intercept?: Parameters<typeof runRound>[0]['intercept'], minAgents?: number } = {}): HarnessResult {
  const sub = agents.map((a, i) => ({ ...a, input: projectEntries(fullInput(i, 3), SUB) }))
  return runRound({
    roundId, coordinator: ids.coordinator, agents: sub, dim: SUB.length, window: WINDOW, now: opts.now ?? WINDOW.to + ageMs + DAY, specHash: SPEC_HASH,
    maxEntry: layout.maxEntry, refresh: { ageMs, of }, participants: opts.participants, intercept: opts.intercept, minAgents: opts.minAgents
  })
}

/** What the agents revealed: consistency signatures and unmask shares (either is a step towards unmasking). */
const revealedBy = (res: HarnessResult): string[] => res.transcript.filter(d => d.message.type === 'unmask-shares' || d.message.type === 'consistency-signature').map(d => d.from)

test('(a) a refresh over the same set gives exactly the label-dependent sums, and merged into the first sum the refreshed vector', () => {
  const agents = federation('a')
  const first = firstRound(agents, 'round-a1')
  assert.deepEqual(first.result!.sum, sumOf(agents.map((_, i) => fullInput(i, 0)), layout.length))
  for (const a of agents) assert.equal(a.ledger.entries().find(e => e.roundId === 'round-a1')!.included?.count, 5)

  const res = refresh(agents, 'round-a2', 'round-a1', 7 * DAY)
  assert.equal(res.status, 'done', res.failure?.message)
  const expected = sumOf(agents.map((_, i) => projectEntries(fullInput(i, 3), SUB)), SUB.length)
  assert.deepEqual(res.result!.sum, expected)
  // The refreshed full vector: label-independent entries from the first round, label-dependent ones from the refresh.
  const merged = mergeEntries(first.result!.sum, SUB, res.result!.sum)
  const refreshedFull = sumOf(agents.map((_, i) => fullInput(i, 3)), layout.length)
  const inSub = new Set(SUB)
  for (let j = 0; j < layout.length; j++) assert.equal(merged[j], inSub.has(j) ? refreshedFull[j] : first.result!.sum[j], `entry ${j}`)
  for (const a of agents) assert.ok(a.ledger.entries().find(e => e.roundId === 'round-a2')!.revealedAt !== undefined)

  // the next declared age works too; the same age twice does not
  assert.equal(refresh(agents, 'round-a3', 'round-a1', 30 * DAY).status, 'done')
  const again = refresh(agents, 'round-a4', 'round-a1', 7 * DAY)
  assert.equal(again.status, 'failed')
  assert.ok(again.rejected.filter(r => r.type === 'announce').every(r => /already refreshed at 7d/.test(r.message)))
  assert.deepEqual(revealedBy(again), [])
})

test('(b) a coordinator that drops a site from a refresh, announces another set, or refreshes a window an agent never contributed to gets nothing', () => {
  const agents = federation('b')
  firstRound(agents, 'round-b1')
  const [victim, ...rest] = agents

  // announced without one included site: every announced agent refuses at once, with the mismatch code
  const fewer = refresh(agents, 'round-b2', 'round-b1', 7 * DAY, { participants: rest.map(a => a.identity.id).sort() })
  assert.equal(fewer.status, 'failed')
  assert.equal(fewer.rejected.filter(r => r.type === 'announce' && r.code === 'ERR_REFRESH_SET_MISMATCH').length, 4)
  assert.deepEqual(revealedBy(fewer), [])
  assert.ok(fewer.transcript.every(d => d.message.type !== 'masked-input'))
  assert.equal(fewer.transcript.filter(d => d.message.type === 'decline' && d.message.code === 'ERR_REFRESH_SET_MISMATCH').length, 4)

  // announced over the whole set, but the victim's masked input is "lost" and the coordinator lowers minAgents:
  // the survivor set is not the recorded one, so nobody signs it and no share leaves
  const split = refresh(agents, 'round-b3', 'round-b1', 7 * DAY, {
    minAgents: 2,
    intercept: d => d.from === victim.identity.id && d.message.type === 'masked-input' ? [] : [d]
  })
  assert.equal(split.status, 'failed')
  assert.deepEqual(revealedBy(split), [])
  const declines = split.transcript.filter(d => d.message.type === 'decline')
  assert.equal(declines.length, 4)
  assert.ok(declines.every(d => d.message.type === 'decline' && d.message.code === 'ERR_REFRESH_SET_MISMATCH'))
  // nothing was revealed in b3, so the 7d refresh is still possible (a later retry with every site back)
  assert.equal(refresh(agents, 'round-b4', 'round-b1', 7 * DAY).status, 'done')

  // a window nobody contributed to, dressed up as a refresh of a round that covered another window
  const other = runRound({
    roundId: 'round-b5', coordinator: ids.coordinator, agents: agents.map((a, i) => ({ ...a, input: projectEntries(fullInput(i, 3), SUB) })), dim: SUB.length,
    window: { from: WINDOW.to, to: WINDOW.to + 7 * DAY }, now: WINDOW.to + 60 * DAY, specHash: SPEC_HASH, maxEntry: layout.maxEntry, refresh: { ageMs: 7 * DAY, of: 'round-b1' }
  })
  assert.equal(other.status, 'failed')
  assert.ok(other.rejected.filter(r => r.type === 'announce').every(r => r.code === 'ERR_REFRESH_SET_MISMATCH' && /not window/.test(r.message)), JSON.stringify(other.rejected))
  assert.deepEqual(revealedBy(other), [])
})

test('a site dropped from the first round is not in its included set: a refresh over everyone is refused by all', () => {
  const agents = federation('c')
  const dropped = agents[2].identity.id
  const first = firstRound(agents, 'round-c1', { drop: dropped })
  assert.equal(first.result!.included.length, 4)
  const res = refresh(agents, 'round-c2', 'round-c1', 7 * DAY)
  assert.equal(res.status, 'failed')
  const refusals = res.rejected.filter(r => r.type === 'announce')
  assert.equal(refusals.length, 5)
  assert.ok(refusals.every(r => r.code === 'ERR_REFRESH_SET_MISMATCH'))
  assert.match(refusals.find(r => r.at === dropped)!.message, /no included set recorded/)
  // over exactly the four included sites it works
  const four = agents.filter(a => a.identity.id !== dropped)
  assert.equal(refresh(four, 'round-c3', 'round-c1', 7 * DAY).status, 'done')
})

test('(c) undeclared ages, ages not yet reached and a second first round over the window are refused before anything is sent', () => {
  const agents = federation('d')
  firstRound(agents, 'round-d1')
  const undeclared = refresh(agents, 'round-d2', 'round-d1', 14 * DAY)
  assert.equal(undeclared.status, 'failed')
  assert.ok(undeclared.rejected.some(r => /not one the spec declares/.test(r.message)), JSON.stringify(undeclared.rejected))
  assert.deepEqual(revealedBy(undeclared), [])
  assert.ok(undeclared.transcript.every(d => d.message.type !== 'masked-input'))

  const early = refresh(agents, 'round-d3', 'round-d1', 30 * DAY, { now: WINDOW.to + 20 * DAY })
  assert.equal(early.status, 'failed')
  assert.ok(early.rejected.some(r => /not yet reached/.test(r.message)), JSON.stringify(early.rejected))
  assert.ok(early.transcript.every(d => d.message.type !== 'masked-input'))

  // a plain second round over the window (not a refresh) is still the differencing the ledger refuses
  const again = runRound({ roundId: 'round-d4', coordinator: ids.coordinator, agents, dim: layout.length, window: WINDOW, now: WINDOW.to + 40 * DAY, specHash: SPEC_HASH, maxEntry: layout.maxEntry })
  assert.equal(again.status, 'failed')
  assert.ok(again.rejected.filter(r => r.type === 'announce').every(r => /overlaps/.test(r.message)))
})

test('the ledger composes the privacy.dp budget of a window over its first round and revealed refreshes (policy.maxEpsilonPerWindow)', () => {
  const ledger = ContributionLedger.open(join(dir, 'eps'), { maxEpsilonPerWindow: 2 })
  const base = { window: WINDOW, specHash: SPEC_HASH, reference: false, participants: ['a', 'b'] }
  ledger.admit({ ...base, roundId: 'r1' }, 1)
  ledger.contribute({ ...base, roundId: 'r1', epsilon: 1 }, 2)
  ledger.recordIncluded({ ...base, roundId: 'r1' }, { count: 2, digest: 'a'.repeat(64) }, 3)
  const at7 = { ...base, roundId: 'r2', refresh: { ageMs: 7 * DAY, of: 'r1' }, epsilon: 0.6 }
  ledger.admit(at7, 4)
  ledger.contribute(at7, 5)
  ledger.recordReveal(at7, 6)
  const at30 = { ...base, roundId: 'r3', refresh: { ageMs: 30 * DAY, of: 'r1' }, epsilon: 0.6 }
  ledger.admit({ ...at30, epsilon: undefined }, 7) // at the Announce the spec (and its ε) may not be known yet
  assert.throws(() => ledger.contribute(at30, 8), /maxEpsilonPerWindow 2 \(already spent 1\.6\)/)
  // survives a restart: the budget is in the file
  const reopened = ContributionLedger.open(join(dir, 'eps'), { maxEpsilonPerWindow: 2 })
  assert.throws(() => reopened.contribute(at30, 9), /maxEpsilonPerWindow/)
  assert.doesNotThrow(() => reopened.contribute({ ...at30, epsilon: 0.4 }, 9))
})

test('under privacy.dp a refresh adds the agents\' own noise to its sub-vector, and the window\'s ε budget caps the refreshes', () => {
  const dpSpec = MonitorSpec.parse({ ...spec, privacy: { dp: { epsilon: 1, delta: 1e-6 } } })
  const dpLayout = buildLayout(dpSpec)
  const dpSub = labelDependentEntries(dpLayout)
  const doc = canonicalJson(dpSpec)
  const hash = specHashOf(dpSpec)
  let seed = 1
  const agents = ids.agents.map((identity, i) => {
    const ledger = ContributionLedger.open(join(dir, 'dp', `site-${i}`), { maxEpsilonPerWindow: 2.5 })
    const rnd = (() => { let s = seed++ * 7919; return () => { s = (s * 16807) % 2147483647; return s / 2147483647 } })()
    return { identity, input: Uint32Array.from({ length: dpLayout.length }, (_, j) => (i + j) % 40), guard: ledger, ledger, provideSpec: doc, noiseSource: rnd }
  })
  const round = (roundId: string, refreshAge?: number): HarnessResult => runRound({
    roundId, coordinator: ids.coordinator, window: WINDOW, specHash: hash, maxEntry: dpLayout.maxEntry,
    agents: refreshAge === undefined ? agents : agents.map((a, i) => ({ ...a, input: projectEntries(Uint32Array.from({ length: dpLayout.length }, (_, j) => (i + 2 * j) % 40), dpSub) })),
    dim: refreshAge === undefined ? dpLayout.length : dpSub.length,
    now: WINDOW.to + (refreshAge ?? 0) + DAY,
    ...(refreshAge !== undefined ? { refresh: { ageMs: refreshAge, of: 'round-dp1' } } : {})
  })
  assert.equal(round('round-dp1').status, 'done')
  const res = round('round-dp2', 7 * DAY)
  assert.equal(res.status, 'done', res.failure?.message)
  const exact = sumOf(agents.map((_, i) => projectEntries(Uint32Array.from({ length: dpLayout.length }, (_, j) => (i + 2 * j) % 40), dpSub)), dpSub.length)
  const diffs = Array.from(res.result!.sum, (v, j) => ((v - exact[j]) | 0))
  assert.ok(diffs.some(d => d !== 0), 'noise was added')
  assert.ok(diffs.every(d => Math.abs(d) < 2000), 'and it is noise, not garbage')
  for (const a of agents) assert.deepEqual(a.ledger.entries().map(e => e.epsilon), [1, 1])
  // ε 1 + 1 spent: a third release (the 30 d refresh, ε 1) would make 3 > 2.5
  const third = round('round-dp3', 30 * DAY)
  assert.equal(third.status, 'failed')
  assert.ok(third.rejected.some(r => /maxEpsilonPerWindow 2\.5/.test(r.message)), JSON.stringify(third.rejected.slice(0, 2)))
  assert.ok(third.transcript.every(d => d.message.type !== 'masked-input'))
})
