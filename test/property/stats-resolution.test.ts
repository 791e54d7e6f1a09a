/**
 * Property tests for what the agent's policy counts (issue 10.3): the cut points it counts are exactly the ones
 * the buckets use, so the per-column resolution it bounds is what an adversary gets by combining the features of
 * one column; and the clipped moments decode to the clipped values' mean and std within the step the report states.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { columnResolutions, featureCuts } from '../../shared/secagg/policy.js'
import { writeLimbs } from '../../shared/stats/fixed-point.js'
import { buildLayout, clippedLevelOf, type NumericFeatureLayout } from '../../shared/stats/layout.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { sketchMapping } from '../../shared/stats/sketch.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'

const passed = (cuts: Array<{ at: number, inclusive: boolean }>, v: number): number => cuts.filter(c => (c.inclusive ? v > c.at : v >= c.at)).length

test('sketch cuts: a value\'s bucket is the number of cuts it has passed, for any alpha and range', () => {
  const value = fc.tuple(fc.constantFrom(-1, 1), fc.double({ min: -40, max: 40, noNaN: true })).map(([s, e]) => s * Math.exp(e))
  fc.assert(fc.property(
    fc.double({ min: 0.001, max: 0.2, noNaN: true }), fc.double({ min: -25, max: 5, noNaN: true }), fc.double({ min: 0.5, max: 25, noNaN: true }),
    fc.array(fc.oneof(value, fc.constant(0)), { minLength: 1, maxLength: 30 }),
    (alpha, logMin, logSpan, values) => {
      const m = sketchMapping(alpha, Math.exp(logMin), Math.min(1e12, Math.exp(logMin + logSpan)))
      const cuts = m.cuts()
      assert.equal(cuts.length, m.valueBuckets - 1)
      for (let i = 1; i < cuts.length; i++) assert.ok(cuts[i].at > cuts[i - 1].at || (cuts[i].at === cuts[i - 1].at && cuts[i].inclusive && !cuts[i - 1].inclusive), `cut ${i} ordered`)
      for (const v of values) {
        const near = cuts.some(c => Math.abs(v - c.at) <= 1e-12 * Math.abs(c.at)) // ln-based and power-based bounds may differ in the last bit
        const diff = Math.abs(m.indexOf(v) - passed(cuts, v))
        assert.ok(diff === 0 || (near && diff === 1), `v=${v}: index ${m.indexOf(v)}, cuts passed ${passed(cuts, v)}`)
      }
    }), { numRuns: 200 })
})

test('column resolution: features on one column tell apart exactly |union of cuts| + 1 value classes, never more', () => {
  const edges = fc.uniqueArray(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 8 }).map(a => [...a].sort((x, y) => x - y))
  fc.assert(fc.property(fc.array(edges, { minLength: 1, maxLength: 4 }), fc.boolean(), (sets, withSketch) => {
    const features: Record<string, unknown> = Object.fromEntries(sets.map((e, i) => [`f${i}`, { type: 'numeric', column: 'c', edges: e }]))
    if (withSketch) features.s = { type: 'numeric', column: 'c', range: [1, 100], alpha: 0.2 }
    const spec = parseMonitorSpec({ model: 'p', features })
    const layout = buildLayout(spec)
    const [res] = columnResolutions({ spec, layout })
    const numeric = layout.features as NumericFeatureLayout[]
    // probe every cut value, and between and beyond them: each distinct bucket tuple is one class the vector tells apart
    const at = [...new Set(numeric.flatMap(f => featureCuts(f).map(c => c.at)))].sort((a, b) => a - b)
    const probes = [at[0] - 1, ...at.flatMap((a, i) => [a, i + 1 < at.length ? (a + at[i + 1]) / 2 : a + 1])]
    const bucketOf = (f: NumericFeatureLayout, v: number): number => (f.sketch !== null ? f.sketch.indexOf(v) : passed(featureCuts(f), v))
    const classes = new Set(probes.map(v => numeric.map(f => bucketOf(f, v)).join(',')))
    assert.equal(classes.size, res.cuts + 1, `probes ${probes.length}`)
    assert.equal(res.buckets, res.cuts + 3)
    if (sets.length === 1 && !withSketch) assert.equal(res.buckets, layout.features[0].length, 'one feature: its own layout length')
  }), { numRuns: 150 })
})

test('clipped moments: the decoded mean and std are within step/2 of the clipped values\' own', () => {
  fc.assert(fc.property(
    fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 60 }),
    fc.double({ min: -1e5, max: 1e5, noNaN: true }), fc.double({ min: 1e-3, max: 1e6, noNaN: true }), fc.integer({ min: 0, max: 24 }),
    (xs, lo, width, bits) => {
      const hi = lo + width
      const spec = parseMonitorSpec({ model: 'p', features: { x: { type: 'numeric', edges: [0], moments: { clip: [lo, hi], precisionBits: bits } } } })
      const layout = buildLayout(spec)
      const f = layout.features[0] as NumericFeatureLayout
      const m = f.moments
      assert.ok(m.kind === 'clipped')
      const v = new Uint32Array(layout.length)
      for (const x of xs) v[f.offset + (x < 0 ? 0 : 1)]++
      const u = xs.map(x => BigInt(clippedLevelOf(m, x)))
      assert.ok(u.every(l => l >= 0n && l <= 2n ** BigInt(bits)), 'levels in [0, 2^bits]: one record moves Σu by at most 2^bits')
      writeLimbs(v, m.sum, u.reduce((a, b) => a + b, 0n))
      writeLimbs(v, m.sumSquares, u.reduce((a, b) => a + b * b, 0n))
      const d = computeReportBody({ spec, layout, current: v, reference: { vector: v, id: 'r', window: null } }).drift.features.x as any
      const c = xs.map(x => Math.min(Math.max(x, lo), hi))
      const mean = c.reduce((a, b) => a + b, 0) / c.length
      const std = Math.sqrt(c.reduce((a, b) => a + (b - mean) ** 2, 0) / c.length)
      const slack = 1e-9 * Math.max(1, Math.abs(lo), Math.abs(hi)) // the float arithmetic of the decode
      assert.ok(Math.abs(d.mean.current - mean) <= m.step / 2 + slack, `mean ${d.mean.current} vs ${mean}, step ${m.step}`)
      assert.ok(Math.abs(d.std.current - std) <= m.step / 2 + slack, `std ${d.std.current} vs ${std}, step ${m.step}`)
    }), { numRuns: 300 })
})
