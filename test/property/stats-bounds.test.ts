/**
 * Property tests: the certified bounds hold on every input — AUC in [lower, upper] (ties, single class, coarse
 * bins), KS in [value, upper] — checked against exact independent implementations over raw values.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, scoreBinOf } from '../../shared/stats/layout.js'
import { rocAucBounds, averagePrecision } from '../../shared/stats/performance.js'
import { ksBounded, psi, jensenShannon, quantileGroups, regroup, PSI_EMPTY_BIN_PROPORTION } from '../../shared/stats/drift.js'
import { sketchMapping } from '../../shared/stats/sketch.js'

/** Exact ROC AUC (Mann–Whitney, ties ½) by sorting: independent of the histogram code. */
function exactAuc (scores: number[], labels: number[]): number | null {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b])
  const P = labels.filter(y => y === 1).length; const N = labels.length - P
  if (P === 0 || N === 0) return null
  let rankSum = 0
  for (let i = 0; i < idx.length;) {
    let j = i
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) j++
    const avgRank = (i + 1 + j) / 2
    for (let k = i; k < j; k++) if (labels[idx[k]] === 1) rankSum += avgRank
    i = j
  }
  return (rankSum - P * (P + 1) / 2) / (P * N)
}

/** Exact two-sample KS statistic over raw values (sup of |F_a − F_b|). */
function exactKs (a: number[], b: number[]): number {
  const all = [...new Set([...a, ...b])].sort((x, y) => x - y)
  const sa = [...a].sort((x, y) => x - y); const sb = [...b].sort((x, y) => x - y)
  let i = 0; let j = 0; let d = 0
  for (const x of all) {
    while (i < sa.length && sa[i] <= x) i++
    while (j < sb.length && sb[j] <= x) j++
    d = Math.max(d, Math.abs(i / sa.length - j / sb.length))
  }
  return d
}

const score = fc.oneof(
  fc.double({ min: 0, max: 1, noNaN: true }),
  fc.constantFrom(0, 1, 0.5, 0.25, 0.999, 0.001), // ties and edges
  fc.integer({ min: 0, max: 20 }).map(k => k / 20) // coarse ties
)
const records = fc.array(fc.record({ s: score, y: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 1 })) }), { minLength: 1, maxLength: 300 })

test('AUC: the exact AUC always lies within the certified bound; single-class data gives null', () => {
  fc.assert(fc.property(records, fc.constantFrom(2, 7, 100, 4096), fc.constantFrom('linear', 'logit'), (rs, bins, scale) => {
    const layout = buildLayout(MonitorSpec.parse({ model: 'p', score: { bins, scale } }))
    const neg = new Array<number>(bins).fill(0); const pos = new Array<number>(bins).fill(0)
    for (const r of rs) (r.y === 1 ? pos : neg)[scoreBinOf(layout, r.s)]++
    const b = rocAucBounds(neg, pos)
    const exact = exactAuc(rs.map(r => r.s), rs.map(r => r.y))
    if (exact === null) {
      assert.deepEqual(b, { value: null, lower: null, upper: null })
      return
    }
    assert.ok(b.lower !== null && b.upper !== null && b.value !== null)
    const eps = 1e-12
    assert.ok(b.lower - eps <= exact && exact <= b.upper + eps, `exact ${exact} in [${b.lower}, ${b.upper}]`)
    assert.ok(b.lower - eps <= b.value && b.value <= b.upper + eps)
  }), { numRuns: 300 })
})

test('AUC and average precision are exact when every distinct score has its own bin', () => {
  fc.assert(fc.property(fc.array(fc.record({ k: fc.integer({ min: 0, max: 49 }), y: fc.integer({ min: 0, max: 1 }) }), { minLength: 2, maxLength: 200 }), (rs) => {
    const bins = 50
    const neg = new Array<number>(bins).fill(0); const pos = new Array<number>(bins).fill(0)
    for (const r of rs) (r.y === 1 ? pos : neg)[r.k]++
    const exact = exactAuc(rs.map(r => r.k), rs.map(r => r.y))
    const b = rocAucBounds(neg, pos)
    if (exact === null) return
    assert.ok(Math.abs((b.value ?? NaN) - exact) < 1e-12)
    // average precision, scikit-learn's definition, computed over sorted raw records
    const sorted = [...rs].sort((a, c) => c.k - a.k)
    const P = rs.filter(r => r.y === 1).length
    let tp = 0; let fp = 0; let ap = 0; let prevRecall = 0
    for (let i = 0; i < sorted.length; i++) {
      if (sorted[i].y === 1) tp++; else fp++
      if (i + 1 < sorted.length && sorted[i + 1].k === sorted[i].k) continue
      ap += (tp / P - prevRecall) * (tp / (tp + fp)); prevRecall = tp / P
    }
    assert.ok(Math.abs((averagePrecision(neg, pos) ?? NaN) - ap) < 1e-12)
  }), { numRuns: 200 })
})

const values = fc.array(fc.oneof(
  fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, 1, -1, 1e-12, 3.5, 1e13),
  fc.integer({ min: -5, max: 5 })
), { minLength: 1, maxLength: 200 })

test('KS over sketch buckets: value <= exact D <= upper', () => {
  const m = sketchMapping(0.05, 1e-9, 1e12)
  fc.assert(fc.property(values, values, (a, b) => {
    const ha = new Array<number>(m.valueBuckets).fill(0); const hb = new Array<number>(m.valueBuckets).fill(0)
    for (const v of a) ha[m.indexOf(v)]++
    for (const v of b) hb[m.indexOf(v)]++
    const k = ksBounded(ha, hb)
    const d = exactKs(a, b)
    assert.ok(k.value !== null && k.upper !== null)
    assert.ok(k.value <= d + 1e-12 && d <= k.upper + 1e-12, `D ${d} in [${k.value}, ${k.upper}]`)
  }), { numRuns: 300 })
})

test('PSI and JS equal their definitions on the same bins; quantile groups partition the buckets', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(50), fc.nat(50)), { minLength: 2, maxLength: 30 }), fc.integer({ min: 2, max: 12 }), (pairs, k) => {
    const r = pairs.map(p => p[0]); const c = pairs.map(p => p[1])
    const R = r.reduce((x, y) => x + y, 0); const C = c.reduce((x, y) => x + y, 0)
    if (R === 0 || C === 0) { assert.equal(psi(r, c), null); return }
    let expected = 0; let js = 0
    for (let i = 0; i < r.length; i++) {
      const pr = r[i] / R || PSI_EMPTY_BIN_PROPORTION; const pc = c[i] / C || PSI_EMPTY_BIN_PROPORTION
      expected += (pc - pr) * Math.log(pc / pr)
      const p = r[i] / R; const q = c[i] / C; const mid = (p + q) / 2
      js += (p > 0 ? p * Math.log2(p / mid) : 0) + (q > 0 ? q * Math.log2(q / mid) : 0)
    }
    assert.ok(Math.abs((psi(r, c) ?? NaN) - expected) < 1e-9)
    assert.ok(Math.abs((jensenShannon(r, c) ?? NaN) - Math.sqrt(Math.max(0, js / 2))) < 1e-9)
    const ends = quantileGroups(r, k)
    assert.ok(ends.length >= 1 && ends.length <= k)
    assert.equal(ends[ends.length - 1], r.length - 1)
    assert.equal(regroup(r, ends).reduce((x, y) => x + y, 0), R)
    assert.equal(regroup(c, ends).reduce((x, y) => x + y, 0), C)
  }), { numRuns: 300 })
})
