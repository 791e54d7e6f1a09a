import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NeighbourGraph } from '../../shared/secagg/graph.js'
import { MESSAGE_ROUTES, SecAggMessage } from '../../shared/secagg/messages.js'
import { binomialTailAtLeast, chooseGraphParams, consistencyQuorum, corruptTolerance, minimumSafeThreshold } from '../../shared/secagg/params.js'

test('(k, t) from n, δ = 33 %, α = 5 %: per-graph security 2^-80 (grinding), full graph for small n', () => {
  const at = (n: number) => chooseGraphParams({ n, dropoutRate: 0.33, corruptFraction: 0.05, graph: 'auto' })
  assert.deepEqual(at(1000), { graph: 'sparse', k: 112, t: 44 })
  assert.deepEqual(at(10_000), { graph: 'sparse', k: 122, t: 47 })
  assert.deepEqual(at(300), { graph: 'sparse', k: 108, t: 43 })
  assert.equal(at(100).graph, 'full')
  assert.deepEqual(at(5), { graph: 'full', k: 4, t: 3 })
  // The tails behind them: n · P[Bin(k, α) ≥ t] ≤ 2^-80 and n · P[Bin(k, 1 − δ) < t] ≤ 2^-20, t the smallest such.
  assert.ok(1000 * binomialTailAtLeast(112, 0.05, 44) <= 2 ** -80 && 1000 * binomialTailAtLeast(112, 0.05, 43) > 2 ** -80)
  assert.ok(1000 * (1 - binomialTailAtLeast(112, 0.67, 44)) <= 2 ** -20)
  for (const n of [100, 1000, 10_000]) {
    const { k, t } = at(n)
    assert.ok(t <= Math.floor((1 - 0.33) * k) && t > 0.05 * k, `n=${n}: t within (αk, (1−δ)k]`)
  }
  assert.equal(chooseGraphParams({ n: 1000, dropoutRate: 0.33, corruptFraction: 0.05, graph: 'full' }).k, 999)
  assert.equal(chooseGraphParams({ n: 1000, dropoutRate: 0.33, corruptFraction: 0.05, graph: 'auto', threshold: 40 }).t, 40)
  assert.throws(() => chooseGraphParams({ n: 1000, dropoutRate: 0.6, corruptFraction: 0.4, graph: 'auto' }), /0.9/)
})

test('sparse graph: k-regular, symmetric, derived from the round id', () => {
  const g = new NeighbourGraph('sparse', 101, 10, 'round-a')
  for (let i = 0; i < 101; i++) {
    const nb = g.neighbours(i)
    assert.equal(nb.length, 10)
    assert.ok(!nb.includes(i))
    for (const j of nb) { assert.ok(g.neighbours(j).includes(i)); assert.ok(g.areNeighbours(i, j)) }
  }
  assert.deepEqual(new NeighbourGraph('sparse', 101, 10, 'round-a').neighbours(7), g.neighbours(7))
  assert.notDeepEqual(new NeighbourGraph('sparse', 101, 10, 'round-b').neighbours(7), g.neighbours(7))
  assert.equal(new NeighbourGraph('full', 5, 4, 'x').neighbours(2).join(), '0,1,3,4')
})

test('every message type has a route', () => {
  const types = SecAggMessage.options.map(o => o.shape.type.value)
  assert.deepEqual(Object.keys(MESSAGE_ROUTES).sort(), [...types].sort())
  assert.equal(MESSAGE_ROUTES.shares, 'agent->agent')
})

test('what an agent requires against a malicious coordinator: C from its own roster, the quorum, the lowest safe t', () => {
  assert.equal(corruptTolerance(0.05, 1000), 50)
  assert.equal(corruptTolerance(0.05, 10), 0)
  assert.equal(corruptTolerance(0.1, 30), 3) // 0.1 · 30 in floating point is 3.0000000000000004
  // Two survivor sets with q signers each need 2q − C > n honest signers: never both.
  for (const [n, c] of [[10, 0], [80, 4], [1000, 50], [7, 3]]) {
    const q = consistencyQuorum(n, c)
    assert.ok(2 * q - c > n && 2 * (q - 1) - c <= n, `n=${n}, C=${c}: q=${q} is the smallest quorum that works`)
  }
  assert.equal(consistencyQuorum(1000, 50), 526)
  // Full graph: t > C. Sparse: the binomial tail, never above C + 1 (C colluders hold at most C shares).
  assert.equal(minimumSafeThreshold('full', 10, 9, 0), 1)
  assert.equal(minimumSafeThreshold('full', 100, 99, 5), 6)
  assert.equal(minimumSafeThreshold('sparse', 24, 10, 1), 2)
  const t = minimumSafeThreshold('sparse', 1000, 112, 50)
  assert.ok(t <= 44 && 1000 * binomialTailAtLeast(112, 0.05, t) <= 2 ** -80 && 1000 * binomialTailAtLeast(112, 0.05, t - 1) > 2 ** -80)
  // Too many colluders for the neighbourhood: no threshold is safe.
  assert.equal(minimumSafeThreshold('sparse', 100, 10, 60), 11)
})
