/**
 * Property test: the multiclass task's one-vs-rest AUC bounds (shared/stats/tasks/multiclass.ts) hold on every
 * input — each class's exact AUC (raw probabilities, ties ½) lies in its [lower, upper], the macro and weighted
 * averages of the exact AUCs in the macro and weighted bounds — over coarse and fine bins, linear and logit
 * scales, ties and classes missing from the labels. The vector is filled as the scan fills it (scoreBinOf is
 * the scan SQL's JavaScript twin).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { scoreBinOf, type Layout } from '../../shared/stats/layout.js'
import { buildMulticlassLayout, multiclassReportBody, classRowOffset, multiclassCounterIndex } from '../../shared/stats/tasks/multiclass.js'
import type { Bounded } from '../../shared/report.js'

/** Exact ROC AUC (Mann–Whitney, ties ½) by comparing every pair: independent of the histogram code. */
function exactAuc (scores: number[], positive: boolean[]): number | null {
  let P = 0; let N = 0; let wins = 0
  for (let i = 0; i < scores.length; i++) {
    if (!positive[i]) continue
    P++
    for (let j = 0; j < scores.length; j++) {
      if (positive[j]) continue
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0
    }
  }
  N = scores.length - P
  return P === 0 || N === 0 ? null : wins / (P * N)
}

const probability = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 10 }).map(k => k / 10), fc.constantFrom(0, 1, 0.5))
const input = fc.integer({ min: 2, max: 5 }).chain(K => fc.record({
  K: fc.constant(K),
  bins: fc.constantFrom(2, 7, 64, 1000),
  scale: fc.constantFrom('linear', 'logit'),
  rows: fc.array(fc.record({ p: fc.array(probability, { minLength: K, maxLength: K }), y: fc.integer({ min: 0, max: K }) }), { minLength: 1, maxLength: 120 })
}))

const contains = (b: Bounded, x: number, what: string): void => {
  assert.ok(b.lower !== null && b.upper !== null && b.lower - 1e-12 <= x && x <= b.upper + 1e-12, `${what}: exact ${x} outside [${b.lower}, ${b.upper}]`)
  assert.ok(b.value !== null && b.lower <= b.value && b.value <= b.upper, `${what}: value outside its bound`)
}

test('one-vs-rest AUC: every class\'s exact AUC, and their macro and weighted means, lie within the certified bounds', () => {
  fc.assert(fc.property(input, ({ K, bins, scale, rows }) => {
    const classes = Array.from({ length: K }, (_, k) => `c${k}`)
    const spec = parseMonitorSpec({ model: 'm', task: 'multiclass', classes, score: { bins, scale } })
    const layout = buildMulticlassLayout(spec)
    const v = new Uint32Array(layout.length)
    // as the scan: labelled rows (y < K) go to row 1 of their class and row 0 of the others; y = K is unlabeled
    for (const { p, y } of rows) {
      for (let c = 0; c < K; c++) v[classRowOffset(layout, c, y === K ? 2 : y === c ? 1 : 0) + scoreBinOf({ score: layout.score } as Layout, p[c])]++
      if (y < K) {
        const pred = p.indexOf(Math.max(...p))
        v[layout.confusion.offset + y * K + pred]++
        v[multiclassCounterIndex(layout, 'labelClass')]++
      }
    }
    const perf = multiclassReportBody({ spec, layout, current: v, reference: null }).performance as Record<string, any>
    const labelled = rows.filter(r => r.y < K)
    const exact = classes.map((_, c) => exactAuc(labelled.map(r => r.p[c]), labelled.map(r => r.y === c)))
    exact.forEach((a, c) => {
      if (a === null) assert.equal(perf.per_class[`c${c}`].auc.value, null)
      else contains(perf.per_class[`c${c}`].auc, a, `class c${c}`)
    })
    const defined = exact.map((a, c) => ({ a, w: labelled.filter(r => r.y === c).length })).filter(x => x.a !== null) as Array<{ a: number, w: number }>
    if (defined.length === 0) { assert.equal(perf.macro_auc.value, null); return }
    contains(perf.macro_auc, defined.reduce((s, x) => s + x.a, 0) / defined.length, 'macro')
    const W = defined.reduce((s, x) => s + x.w, 0)
    contains(perf.weighted_auc, defined.reduce((s, x) => s + x.a * x.w, 0) / W, 'weighted')
  }), { numRuns: 300 })
})
