import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openStore } from '../../coordinator/store.js'
import { makeReport, makeRound } from './product-fixtures.js'

/*
 * A finished round is one commit: report, round marked done, a reference round's vector made the current
 * reference, the included agents. A failure anywhere inside leaves none of it (what a crash mid-commit does
 * too: SQLite rolls the open transaction back), so a restart never finds a reference report without its
 * vector, a stored reference that is not current, or a report whose round still says running.
 */

test('a reference round commits report, round, vector, current reference and included agents together', () => {
  const store = openStore(':memory:')
  const round = makeRound('round-ref', { kind: 'reference' })
  store.saveRound(round)
  store.saveReport(makeReport({ id: 'ref', kind: 'reference' }), round, { reference: { specHash: 'h1', vector: Uint32Array.of(4, 5, 6) }, included: ['peerA', 'peerB'] })
  assert.equal(store.getReport('ref')?.id, 'ref')
  assert.equal(store.getRound('round-ref')?.status, 'done')
  assert.equal(store.getRound('round-ref')?.reportId, 'ref')
  assert.deepEqual(store.getReferenceVector('ref'), { specHash: 'h1', vector: Uint32Array.of(4, 5, 6) })
  assert.equal(store.currentReference()?.reportId, 'ref')
  assert.deepEqual(store.agents().map(a => [a.peerId, a.lastIncludedRound]), [['peerA', 'round-ref'], ['peerB', 'round-ref']])
  // A current round's commit leaves the reference alone.
  const current = makeRound('round-cur')
  store.saveReport(makeReport({ id: 'cur' }), current, { included: ['peerA'] })
  assert.equal(store.currentReference()?.reportId, 'ref')
  assert.equal(store.getReferenceVector('cur'), null)
  store.close()
})

test('a failure inside the commit leaves nothing of it: no report, round still running, reference and agents unchanged', () => {
  const store = openStore(':memory:')
  const first = makeRound('round-ref')
  store.saveReport(makeReport({ id: 'ref', kind: 'reference' }), { ...first, kind: 'reference' }, { reference: { specHash: 'h1', vector: Uint32Array.of(1) }, included: ['peerA'] })
  const round = makeRound('round-ref2', { kind: 'reference' })
  store.saveRound(round)
  // A vector whose length cannot be read: the write fails after the report row was written in the transaction.
  class Unreadable extends Uint32Array {
    override get length (): number { throw new Error('disk gone') }
  }
  assert.throws(() => { store.saveReport(makeReport({ id: 'ref2', kind: 'reference' }), round, { reference: { specHash: 'h2', vector: new Unreadable(3) }, included: ['peerB'] }) }, /disk gone/)
  assert.equal(store.getReport('ref2'), null)
  assert.equal(store.getRound('round-ref2')?.status, 'running')
  assert.equal(store.getRound('round-ref2')?.reportId, null)
  assert.equal(store.getReferenceVector('ref2'), null)
  assert.equal(store.currentReference()?.reportId, 'ref')
  assert.deepEqual(store.agents().map(a => a.peerId), ['peerA'])
  assert.deepEqual(store.listReports().map(r => r.id), ['ref'])
  assert.equal(store.integrityCheck(), 'ok')
  store.close()
})
