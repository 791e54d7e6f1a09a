import '../../shared/polyfill.js'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { ContributionLedger } from '../../agent/ledger.js'
import { SecAggError } from '../../shared/secagg/errors.js'
import { checkAnnouncePolicy, checkSpecPolicy, verifySpec, windowsOverlap, type AgentPolicy } from '../../shared/secagg/policy.js'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-h7-prop-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

const windowArb = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 12 })).map(([from, len]) => ({ from, to: from + len }))
const roundArb = fc.record({ roundId: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), window: windowArb, contributes: fc.boolean() })

test('ledger: whatever a coordinator asks, no two contributed windows overlap, and a reopened ledger agrees', () => {
  let run = 0
  fc.assert(fc.property(fc.array(roundArb, { maxLength: 25 }), (rounds) => {
    const state = join(dir, `run-${run++}`)
    const ledger = ContributionLedger.open(state)
    const contributed: Array<{ from: number, to: number }> = []
    const admitted: Array<{ from: number, to: number }> = []
    const seen = new Set<string>()
    for (const r of rounds) {
      const record = { roundId: r.roundId, window: r.window, specHash: 'b'.repeat(64), reference: false, participants: ['p'] }
      // Refused: a replayed id, a window overlapping a contributed one, or a window already covered by
      // DEFAULT_MAX_ROUNDS_PER_WINDOW (3) admitted rounds (each a probe of the data).
      const expectRefusal = seen.has(r.roundId) || contributed.some(w => windowsOverlap(w, r.window)) ||
        admitted.filter(w => windowsOverlap(w, r.window)).length >= 3
      try {
        ledger.admit(record, 0)
        seen.add(r.roundId) // only admitted rounds are remembered; a refused one may be asked again (and is judged again)
        admitted.push(r.window)
        if (r.contributes) { ledger.contribute(record, 1); contributed.push(r.window) }
        assert.ok(!expectRefusal, `round ${r.roundId} ${JSON.stringify(r.window)} should have been refused`)
      } catch (err) {
        assert.ok(err instanceof SecAggError && err.code === 'ERR_POLICY', String(err))
        assert.ok(expectRefusal, `round ${r.roundId} ${JSON.stringify(r.window)} refused without reason: ${(err as Error).message}`)
      }
    }
    const windows = ContributionLedger.open(state).entries().filter(e => e.contributedAt !== null).map(e => e.window)
    assert.deepEqual(windows, contributed)
    for (let i = 0; i < windows.length; i++) for (let j = i + 1; j < windows.length; j++) assert.ok(!windowsOverlap(windows[i], windows[j]))
  }), { numRuns: 40 })
})

test('spec checks: any document is a typed rejection or a verified spec, never a crash', () => {
  const base = parseMonitorSpec({ model: 'm', score: { bins: 32 }, features: { a: { type: 'numeric', edges: [1, 2, 3] } } })
  const hash = specHashOf(base)
  const length = buildLayout(base).length
  const policy: AgentPolicy = { allowedColumns: ['score', 'label', 'a'], maxBucketsPerFeature: 8, maxScoreBins: 64 }
  const documents = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.json({ maxDepth: 3 }),
    fc.anything({ maxDepth: 2 }),
    fc.constant(canonicalJson(base)),
    fc.record({ model: fc.string({ maxLength: 5 }), score: fc.record({ bins: fc.integer({ min: -2, max: 70_000 }) }) }).map(canonicalJson)
  )
  fc.assert(fc.property(documents, (doc) => {
    try {
      const verified = verifySpec(doc, hash)
      checkSpecPolicy(policy, verified, { vectorLength: length })
      assert.equal(specHashOf(verified.spec), hash)
    } catch (err) {
      assert.ok(err instanceof SecAggError, `untyped: ${String(err)}`)
      assert.ok(err.code === 'ERR_POLICY' || err.code === 'ERR_BAD_MESSAGE', err.code)
    }
  }), { numRuns: 300 })
})

test('window rules: an accepted window always satisfies every configured bound', () => {
  const now = 1_000_000
  const optional = (arb: fc.Arbitrary<number>): fc.Arbitrary<number | undefined> => fc.option(arb, { nil: undefined })
  fc.assert(fc.property(
    fc.record({ minWindowMs: optional(fc.integer({ min: 0, max: 5000 })), maxWindowMs: optional(fc.integer({ min: 1, max: 15_000 })), maxWindowLeadMs: optional(fc.integer({ min: 0, max: 5000 })), maxWindowAgeMs: optional(fc.integer({ min: 0, max: 500_000 })) }),
    fc.integer({ min: now - 600_000, max: now + 10_000 }), fc.integer({ min: -10, max: 20_000 }),
    (policy, from, length) => {
      const announce = { participants: [{ id: 'p', addrs: [] }], window: { from, to: from + length }, specHash: '0'.repeat(64), vectorLength: 1, minAgents: 1, threshold: 1, issuedAt: now }
      let accepted = true
      try { checkAnnouncePolicy(policy, announce, now) } catch (err) {
        assert.ok(err instanceof SecAggError && err.code === 'ERR_POLICY')
        accepted = false
      }
      const ok = length > 0 &&
        (policy.minWindowMs === undefined || length >= policy.minWindowMs) &&
        (policy.maxWindowMs === undefined || length <= policy.maxWindowMs) &&
        (policy.maxWindowLeadMs === undefined || from + length <= now + policy.maxWindowLeadMs) &&
        (policy.maxWindowAgeMs === undefined || from >= now - policy.maxWindowAgeMs)
      assert.equal(accepted, ok)
    }), { numRuns: 500 })
})
