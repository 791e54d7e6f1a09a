import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NeighbourGraph } from '../../shared/secagg/graph.js'
import { MESSAGE_ROUTES, SecAggMessage } from '../../shared/secagg/messages.js'
import { chooseGraphParams } from '../../shared/secagg/params.js'

test('(k, t) from n, δ = 33 %, α = 5 %: close to Google\'s finder, full graph for small n', () => {
  const at = (n: number) => chooseGraphParams({ n, dropoutRate: 0.33, corruptFraction: 0.05, graph: 'auto' })
  assert.deepEqual(at(1000), { graph: 'sparse', k: 80, t: 27 })
  assert.deepEqual(at(10_000), { graph: 'sparse', k: 86, t: 29 })
  assert.deepEqual(at(5), { graph: 'full', k: 4, t: 3 })
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
