import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openStore, migrate, MIGRATIONS } from '../../coordinator/store.js'
import { makeReport, makeRound } from './product-fixtures.js'

/*
 * Issue 12 §1: the store keeps rounds, reports, scheduled windows and the current reference per monitor
 * (migration v5); a store from before monitors is adopted by the deployment's first monitor.
 */

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-store-monitors-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

test('two monitors: their own reports, rounds, scheduled windows (same key) and current reference', () => {
  const root = openStore(':memory:')
  const credit = root.forMonitor('credit')
  const fraud = root.forMonitor('fraud')
  credit.saveReport(makeReport({ id: 'c-ref', kind: 'reference' }), makeRound('round-c-ref', { kind: 'reference' }), { reference: { specHash: 'h1', vector: Uint32Array.of(1, 2) } })
  fraud.saveReport(makeReport({ id: 'f-ref', kind: 'reference' }), makeRound('round-f-ref', { kind: 'reference' }), { reference: { specHash: 'h2', vector: Uint32Array.of(3) } })
  credit.saveReport(makeReport({ id: 'c1' }), makeRound('round-c1'))
  assert.equal(credit.currentReference()?.reportId, 'c-ref')
  assert.equal(fraud.currentReference()?.reportId, 'f-ref')
  assert.deepEqual(credit.listReports().map(r => r.id), ['c-ref', 'c1'])
  assert.deepEqual(fraud.listReports().map(r => r.id), ['f-ref'])
  assert.deepEqual(root.listReports().map(r => r.id), ['c-ref', 'f-ref', 'c1'], 'the root view lists every monitor')
  assert.equal(fraud.latestReport({ kind: 'current' }), null)
  assert.equal(fraud.getReport('c1'), null, 'another monitor\'s report is not found through this one')
  assert.equal(root.getReport('c1')?.id, 'c1')
  assert.throws(() => { fraud.setCurrentReference('c-ref') }, /no report with id c-ref in monitor fraud/)
  // the same window is a different window per monitor: overlap, scheduled keys, round keys
  const w = { from: Date.parse('2026-01-01T00:00:00.000Z'), to: Date.parse('2026-01-02T00:00:00.000Z') }
  assert.equal(credit.reportsOverlapping(w).length, 2)
  assert.equal(fraud.reportsOverlapping(w).length, 1)
  credit.recordScheduledWindow({ key: '0-3600000', window: { from: 0, to: 3_600_000 }, state: 'done' })
  assert.equal(credit.hasScheduledWindow('0-3600000'), true)
  assert.equal(fraud.hasScheduledWindow('0-3600000'), false)
  fraud.recordScheduledWindow({ key: '0-3600000', window: { from: 0, to: 3_600_000 }, state: 'retrying', nextAttemptAt: 5 })
  assert.equal(credit.getScheduledWindow('0-3600000')?.state, 'done')
  assert.equal(fraud.getScheduledWindow('0-3600000')?.state, 'retrying')
  credit.saveRound(makeRound('round-c2', { scheduledWindowKey: '3600000-7200000' }))
  fraud.saveRound(makeRound('round-f2', { scheduledWindowKey: '3600000-7200000' }))
  assert.deepEqual(fraud.listRounds().map(r => r.id), ['round-f-ref', 'round-f2'])
  assert.equal(fraud.getRound('round-c2'), null)
  assert.deepEqual(root.monitorNames(), ['credit', 'fraud'])
  root.close()
})

test('a store from before monitors (v4) is migrated and its rows adopted by the first monitor', (t) => {
  const file = join(tempDir(t), 'v4.db')
  const db = new Database(file)
  migrate(db, MIGRATIONS.filter(m => m.version <= 4))
  db.close()
  const old = openStore(file) // writes through the root view land in monitor '' like pre-v5 rows
  old.saveReport(makeReport({ id: 'r-ref', kind: 'reference' }), makeRound('round-r-ref', { kind: 'reference' }), { reference: { specHash: 'h', vector: Uint32Array.of(1) } })
  old.recordScheduledWindow({ key: '0-3600000', window: { from: 0, to: 3_600_000 }, state: 'done' })
  old.close()
  const store = openStore(file)
  const credit = store.forMonitor('credit')
  assert.equal(credit.currentReference(), null)
  assert.ok(store.adoptUnscoped('credit') > 0)
  assert.equal(credit.currentReference()?.reportId, 'r-ref')
  assert.deepEqual(credit.listReports().map(r => r.id), ['r-ref'])
  assert.equal(credit.hasScheduledWindow('0-3600000'), true)
  assert.equal(store.adoptUnscoped('credit'), 0, 'once')
  assert.deepEqual(store.monitorNames(), ['credit'])
  store.close()
})
