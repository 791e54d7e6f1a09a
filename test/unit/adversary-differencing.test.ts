import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import type { ContributionGuard } from '../../shared/secagg/policy.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import { ContributionLedger, LEDGER_FILE, LedgerError } from '../../agent/ledger.js'
import { runRound, sentTypes, sumOf, type HarnessAgent } from './adversary-harness.js'

/**
 * Differencing: two sums over the same records whose participant sets differ by one agent reveal that
 * agent's vector by subtraction. The contribution ledger (agent/ledger.ts) makes each record enter one sum.
 */

const HOUR = 3_600_000
const NOW = Date.UTC(2026, 0, 15, 12)
const W = { from: NOW - 3 * HOUR, to: NOW - HOUR }
const DIM = 32

let ids: { coordinator: Identity, agents: Identity[] }
let dir: string
before(async () => {
  ids = await createIdentities(8, 131)
  dir = mkdtempSync(join(tmpdir(), 'fedmon-h7-diff-'))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** Each site's records of window W, as the vector it would contribute (the same in every round over W). */
const recordsOf = (i: number): Uint32Array => new Uint32Array(DIM).map((_, j) => (i * 7 + j * 3) % 50)

function sites (n: number, ledgers: boolean, tag: string): HarnessAgent[] {
  return ids.agents.slice(0, n).map((identity, i) => ({
    identity, input: recordsOf(i), guard: ledgers ? ContributionLedger.open(join(dir, tag, `site-${i}`)) : undefined
  }))
}

test('without the ledger: two rounds over the same window, one agent apart, reveal that agent by subtraction', () => {
  const all = sites(8, false, 'none')
  const first = runRound({ roundId: 'diff-a', coordinator: ids.coordinator, agents: all, dim: DIM, window: W, now: NOW, threshold: 4 })
  // The coordinator "re-runs" the window and claims agent 7 dropped: it simply leaves it out.
  const second = runRound({ roundId: 'diff-b', coordinator: ids.coordinator, agents: all.slice(0, 7), dim: DIM, window: W, now: NOW + 60_000, threshold: 4 })
  assert.equal(first.status, 'done')
  assert.equal(second.status, 'done')
  const leaked = first.result!.sum.map((v, j) => (v - second.result!.sum[j]) >>> 0)
  assert.deepEqual(leaked, recordsOf(7), 'the difference of the two sums is agent 7\'s vector')
})

test('with the ledger: the second round over an overlapping window is refused by every agent that contributed', () => {
  const all = sites(8, true, 'ledger')
  const first = runRound({ roundId: 'ledger-a', coordinator: ids.coordinator, agents: all, dim: DIM, window: W, now: NOW, threshold: 4 })
  assert.equal(first.status, 'done')
  assert.deepEqual(first.result!.sum, sumOf(all.map(a => a.input), DIM))
  // The contribution was recorded durably (a fresh process sees it).
  const reopened = ContributionLedger.open(join(dir, 'ledger', 'site-0'))
  assert.equal(reopened.entries().length, 1)
  assert.ok(reopened.entries()[0].contributedAt !== null)
  assert.deepEqual(reopened.entries()[0].window, W)

  // The same attack, in three disguises: the same window without agent 7; a re-run with the same invited
  // set where agent 7 is made to "drop"; a window that only partly overlaps.
  const attempts = [
    { roundId: 'ledger-b', agents: all.slice(0, 7), window: W, drop: null },
    { roundId: 'ledger-c', agents: all, window: W, drop: ids.agents[7].id },
    { roundId: 'ledger-d', agents: all.slice(0, 7), window: { from: W.from + HOUR, to: W.to + HOUR }, drop: null }
  ]
  for (const a of attempts) {
    const res = runRound({
      roundId: a.roundId, coordinator: ids.coordinator, agents: a.agents, dim: DIM, window: a.window, now: NOW + 60_000, threshold: 4,
      intercept: d => d.from === a.drop ? [] : [d]
    })
    assert.equal(res.status, 'failed', `${a.roundId} must not produce a sum`)
    assert.equal(res.result, null)
    for (const agent of a.agents) {
      const id = agent.identity.id
      if (id === a.drop) continue
      assert.ok(res.rejected.some(r => r.at === id && r.type === 'announce' && r.code === 'ERR_POLICY' && /overlaps .* already contributed to in round ledger-a/.test(r.message)), `${a.roundId}: ${id} refused`)
      assert.deepEqual(sentTypes(res, id), ['decline'], `${a.roundId}: ${id} sent nothing but its signed decline`)
    }
  }
  // A disjoint window is fine: the next scheduled window.
  const next = runRound({ roundId: 'ledger-e', coordinator: ids.coordinator, agents: all.slice(0, 7), dim: DIM, window: { from: W.to, to: W.to + 2 * HOUR }, now: NOW + 3 * HOUR, threshold: 4 })
  assert.equal(next.status, 'done', next.failure?.message)
})

test('the contribution is recorded before the masked input leaves; if it cannot be recorded, nothing leaves', () => {
  const all = sites(5, false, 'unused')
  const events: string[] = []
  const failing: ContributionGuard = {
    admit: () => { events.push('admit') },
    contribute: () => { events.push('contribute'); throw new Error('ENOSPC: no space left on device') }
  }
  all[0].guard = failing
  const res = runRound({ roundId: 'no-record', coordinator: ids.coordinator, agents: all, dim: DIM, window: W, now: NOW, threshold: 3 })
  const victim = ids.agents[0].id
  assert.deepEqual(events, ['admit', 'contribute'])
  assert.ok(res.rejected.some(r => r.at === victim && r.code === 'ERR_POLICY' && /ENOSPC/.test(r.message)), JSON.stringify(res.rejected))
  assert.ok(!sentTypes(res, victim).includes('masked-input'))
  assert.equal(res.status, 'done')
  assert.ok(!res.result!.included.includes(victim))
  assert.deepEqual(res.result!.sum, sumOf(all.slice(1).map(a => a.input), DIM))
})

test('ledger file: atomic, no secrets, corrupt file refused (never silently emptied), unwritable ledger refuses the round', () => {
  const state = join(dir, 'file-test')
  const ledger = ContributionLedger.open(state)
  const round = { roundId: 'r1', window: W, specHash: 'a'.repeat(64), reference: false, participants: ['p1', 'p2'] }
  ledger.admit(round, NOW)
  ledger.contribute(round, NOW + 1)
  assert.deepEqual(readdirSync(state), [LEDGER_FILE], 'no temp file left behind')
  const text = readFileSync(join(state, LEDGER_FILE), 'utf8')
  assert.deepEqual(Object.keys(JSON.parse(text).entries[0]).sort(), ['contributedAt', 'joinedAt', 'participants', 'reference', 'roundId', 'specHash', 'window'])
  // Re-admitting the same round, or any overlapping one, is refused with a reason.
  assert.throws(() => ledger.admit(round, NOW + 2), (e: unknown) => e instanceof SecAggError && /already contributed/.test(e.message))
  assert.throws(() => ledger.admit({ ...round, roundId: 'r2', window: { from: W.to - 1, to: W.to + HOUR } }, NOW + 2), /overlaps/)
  ledger.admit({ ...round, roundId: 'r3', window: { from: W.to, to: W.to + HOUR } }, NOW + 2)
  // Pruning only forgets windows that ended before the cut-off.
  assert.equal(ledger.prune(W.to), 0)
  assert.equal(ledger.prune(W.to + 1), 1)

  writeFileSync(join(state, LEDGER_FILE), '{"version":1,"entries":[{"roundId":')
  assert.throws(() => ContributionLedger.open(state), (e: unknown) => e instanceof LedgerError && e.code === 'ERR_LEDGER' && /refusing to run without it/.test(e.message))
  writeFileSync(join(state, LEDGER_FILE), '{"version":1,"entries":[{"roundId":"x"}]}')
  assert.throws(() => ContributionLedger.open(state), (e: unknown) => e instanceof LedgerError && /entries\.0\./.test(e.message))

  // The file's place taken by a directory: every write fails, so the agent refuses at the Announce.
  const blocked = join(dir, 'blocked')
  const blockedLedger = ContributionLedger.open(blocked)
  rmSync(join(blocked, LEDGER_FILE))
  mkdirSync(join(blocked, LEDGER_FILE), { recursive: true })
  writeFileSync(join(blocked, LEDGER_FILE, 'x'), 'occupied')
  const agents = sites(4, false, 'unused2')
  agents[1].guard = blockedLedger
  const res = runRound({ roundId: 'blocked', coordinator: ids.coordinator, agents, dim: DIM, window: W, now: NOW, threshold: 2 })
  assert.ok(res.rejected.some(r => r.at === ids.agents[1].id && r.type === 'announce' && r.code === 'ERR_POLICY' && /cannot write the contribution ledger/.test(r.message)), JSON.stringify(res.rejected))
  assert.deepEqual(sentTypes(res, ids.agents[1].id), ['decline'])
  assert.ok(existsSync(join(blocked, LEDGER_FILE, 'x')))
})
