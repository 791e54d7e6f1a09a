import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ContributionLedger, ledgerScopeOf } from '../../agent/ledger.js'
import type { RoundRecord } from '../../shared/secagg/policy.js'

/*
 * Issue 12 §1: the contribution ledger is scoped by data source. Two monitors reading different data may each
 * sum a window once; monitors reading the same data (however its path is spelt) share the rules; entries from
 * before scopes existed protect every scope.
 */

const dir = mkdtempSync(join(tmpdir(), 'fedmon-ledger-scopes-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const H = 3_600_000
const SPEC_A = 'a'.repeat(64)
const SPEC_B = 'b'.repeat(64)
let counter = 0

function round (window: { from: number, to: number }, specHash = SPEC_A): RoundRecord {
  return { roundId: `round-${++counter}`, window, specHash, reference: false, participants: ['p1', 'p2', 'p3'] }
}

function contributeTo (guard: { admit: (r: RoundRecord, n: number) => void, contribute: (r: RoundRecord, n: number) => void }, r: RoundRecord): void {
  guard.admit(r, 1000)
  guard.contribute(r, 1001)
}

test('a window contributed in one scope stays open in another, closed in its own', () => {
  const ledger = ContributionLedger.open(join(dir, 'two'))
  const credit = ledger.forScope('jsonl:/data/credit')
  const fraud = ledger.forScope('jsonl:/data/fraud')
  contributeTo(credit, round({ from: 0, to: 24 * H }))
  contributeTo(fraud, round({ from: 0, to: 24 * H }, SPEC_B))
  assert.throws(() => { credit.admit(round({ from: 12 * H, to: 36 * H }), 2000) }, /overlaps .* already contributed to/)
  assert.throws(() => { fraud.admit(round({ from: 12 * H, to: 36 * H }, SPEC_B), 2000) }, /overlaps/)
  // the whole ledger (no scope, e.g. a single-monitor agent's old view) sees both
  assert.equal(ledger.overlapping({ from: 0, to: 24 * H }).length, 2)
  assert.equal(ledger.overlapping({ from: 0, to: 24 * H }, 'jsonl:/data/credit').length, 1)
  // scopes survive a restart
  const reopened = ContributionLedger.open(join(dir, 'two'))
  assert.deepEqual(reopened.entries().map(e => e.scope), ['jsonl:/data/credit', 'jsonl:/data/fraud'])
  assert.throws(() => { reopened.forScope('jsonl:/data/fraud').admit(round({ from: 0, to: H }, SPEC_B), 3000) }, /overlaps/)
  reopened.forScope('jsonl:/data/other').admit(round({ from: 0, to: H }), 3000)
})

test('an entry without a scope (from before monitors) protects every scope', () => {
  const ledger = ContributionLedger.open(join(dir, 'legacy'))
  contributeTo(ledger, round({ from: 0, to: 24 * H }))
  assert.equal(ledger.entries()[0].scope, undefined)
  for (const scope of ['jsonl:/data/credit', 'csv:/data/fraud']) {
    assert.throws(() => { ledger.forScope(scope).admit(round({ from: 0, to: H }), 2000) }, /overlaps/, scope)
  }
})

test('rounds covering a window are counted per scope (policy.maxRoundsPerWindow of each monitor)', () => {
  const ledger = ContributionLedger.open(join(dir, 'cap'), { maxRoundsPerWindow: 1 })
  const w = { from: 0, to: 24 * H }
  ledger.forScope('s1').admit(round(w), 1000) // joined, never contributed
  assert.throws(() => { ledger.forScope('s1').admit(round(w), 1001) }, /at most 1/)
  ledger.forScope('s2').admit(round(w), 1002)
  ledger.forScope('s3', { maxRoundsPerWindow: 2 }).admit(round(w), 1003)
  ledger.forScope('s3', { maxRoundsPerWindow: 2 }).admit(round(w), 1004)
})

test('ledgerScopeOf names the records: the same files by another spelling are one scope', () => {
  const data = join(dir, 'data')
  mkdirSync(join(data, 'credit'), { recursive: true })
  mkdirSync(join(data, 'fraud'), { recursive: true })
  writeFileSync(join(data, 'credit', 'p.jsonl'), '')
  symlinkSync(join(data, 'credit'), join(dir, 'credit-link'))
  const direct = ledgerScopeOf({ path: join(data, 'credit', '*.jsonl') })
  assert.equal(ledgerScopeOf({ path: join(dir, 'credit-link', '*.jsonl') }), direct, 'through a symlink')
  assert.equal(ledgerScopeOf({ path: join(data, 'fraud', '..', 'credit', '*.jsonl') }), direct, 'with ..')
  assert.notEqual(ledgerScopeOf({ path: join(data, 'fraud', '*.jsonl') }), direct)
  assert.equal(ledgerScopeOf({ path: join(dir, 'credit-link', 'p.jsonl') }), ledgerScopeOf({ path: join(data, 'credit', 'p.jsonl') }))
})
