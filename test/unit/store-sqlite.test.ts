import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import { openStore, migrate, MIGRATIONS, SCHEMA_VERSION, StoreError } from '../../coordinator/store.js'
import { makeReport, makeRound } from './product-fixtures.js'

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('a fresh store is migrated to the latest schema, in WAL mode with FULL sync', (t) => {
  const dir = tempDir(t)
  const store = openStore(join(dir, 'sub', 'fedmon.db'))
  assert.equal(store.schemaVersion(), SCHEMA_VERSION)
  assert.equal(store.integrityCheck(), 'ok')
  store.close()
  const db = new Database(join(dir, 'sub', 'fedmon.db'))
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  db.close()
})

test('an old schema is upgraded in place and keeps its data; a newer one is refused', (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'old.db')
  const db = new Database(file)
  migrate(db, MIGRATIONS.slice(0, 1))
  assert.equal(db.pragma('user_version', { simple: true }), 1)
  db.prepare('INSERT INTO rounds (id, kind, status, started_at, scheduled_window_key, body) VALUES (?, ?, ?, ?, ?, ?)')
    .run('r1', 'current', 'failed', '2026-01-01T00:00:00.000Z', '0-3600000', JSON.stringify(makeRound('r1', { status: 'failed', scheduledWindowKey: '0-3600000' })))
  db.close()

  const store = openStore(file)
  assert.equal(store.schemaVersion(), SCHEMA_VERSION)
  assert.equal(store.getRound('r1')?.status, 'failed')
  assert.equal(store.hasScheduledWindow('0-3600000'), true)
  store.markScheduledWindow('7200000-10800000', { note: 'started' }) // the v2 table exists
  assert.equal(store.hasScheduledWindow('7200000-10800000'), true)
  store.close()

  const newer = new Database(file)
  newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  newer.close()
  assert.throws(() => openStore(file), (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_VERSION' && /newer/.test(err.message))
})

test('rounds: insert, update by id, list newest last', () => {
  const store = openStore(':memory:')
  store.saveRound(makeRound('r1', { startedAt: '2026-01-01T00:00:00.000Z' }))
  store.saveRound(makeRound('r2', { startedAt: '2026-01-01T01:00:00.000Z' }))
  store.saveRound(makeRound('r1', { startedAt: '2026-01-01T00:00:00.000Z', status: 'failed', failure: { code: 'ERR_TOO_FEW', message: 'only 2 agents online' } }))
  assert.equal(store.getRound('nope'), null)
  assert.deepEqual(store.getRound('r1')?.failure, { code: 'ERR_TOO_FEW', message: 'only 2 agents online' })
  assert.deepEqual(store.listRounds().map(r => r.id), ['r1', 'r2'])
  assert.deepEqual(store.listRounds({ last: 1 }).map(r => r.id), ['r2'])
  assert.throws(() => store.listRounds({ last: -1 }), StoreError)
  store.close()
  assert.throws(() => store.getRound('r1'), /closed/)
})

test('reports: saved atomically with their round, latest and history by kind, newest last', () => {
  const store = openStore(':memory:')
  const ref = makeReport({ id: 'rep-ref', kind: 'reference' })
  store.saveReport(ref, makeRound('round-rep-ref', { kind: 'reference' }))
  for (const id of ['c1', 'c2', 'c3']) store.saveReport(makeReport({ id, auc: 0.7 }), makeRound(`round-${id}`))

  assert.deepEqual(store.getReport('rep-ref'), ref)
  assert.equal(store.getReport('missing'), null)
  const round = store.getRound('round-c2')
  assert.equal(round?.status, 'done')
  assert.equal(round?.reportId, 'c2')
  assert.ok(round?.finishedAt)
  assert.equal(store.latestReport()?.id, 'c3')
  assert.equal(store.latestReport({ kind: 'reference' })?.id, 'rep-ref')
  assert.equal(store.latestReport({ kind: 'current' })?.id, 'c3')
  assert.deepEqual(store.listReports().map(r => r.id), ['rep-ref', 'c1', 'c2', 'c3'])
  assert.deepEqual(store.listReports({ last: 2 }).map(r => r.id), ['c2', 'c3'])
  assert.deepEqual(store.listReports({ kind: 'reference' }).map(r => r.id), ['rep-ref'])
  assert.throws(() => store.saveReport(makeReport({ id: 'x' }), makeRound('other-round')), /belongs to round/)
  store.close()
})

test('reference vectors round-trip exactly and become current with their report; the current reference needs a stored vector', () => {
  const store = openStore(':memory:')
  store.saveReport(makeReport({ id: 'cur1' }), makeRound('round-cur1'))
  assert.equal(store.currentReference(), null)
  const vector = new Uint32Array(100_003)
  for (let i = 0; i < vector.length; i++) vector[i] = (i * 2654435761) >>> 0
  vector[0] = 0xffffffff
  store.saveReport(makeReport({ id: 'ref1', kind: 'reference' }), makeRound('round-ref1', { kind: 'reference' }), { reference: { specHash: 'f00d', vector: vector.subarray(0, 100_003) } })
  const back = store.getReferenceVector('ref1')
  assert.equal(back?.specHash, 'f00d')
  assert.deepEqual(back?.vector, vector)
  assert.equal(store.getReferenceVector('cur1'), null)
  assert.equal(store.currentReference()?.reportId, 'ref1')

  store.saveReport(makeReport({ id: 'ref2', kind: 'reference' }), makeRound('round-ref2', { kind: 'reference' }), { reference: { specHash: 'f00d', vector: Uint32Array.of(7) } })
  assert.equal(store.currentReference()?.reportId, 'ref2')
  assert.throws(() => store.setCurrentReference('cur1'), (e: unknown) => e instanceof StoreError && e.code === 'ERR_NOT_FOUND' && /no stored vector/.test(e.message))
  assert.throws(() => store.setCurrentReference('zzz'), /no report with id zzz/)
  store.setCurrentReference('ref1')
  assert.equal(store.currentReference()?.reportId, 'ref1')
  assert.ok(!Number.isNaN(Date.parse(store.currentReference()?.setAt ?? '')))
  store.close()
})

test('agents: last seen only moves forward, inclusion recorded per round', () => {
  const store = openStore(':memory:')
  store.touchAgent('peerB', '2026-01-01T10:00:00.000Z')
  store.touchAgent('peerA', '2026-01-01T10:00:00.000Z')
  store.touchAgent('peerA', '2026-01-01T09:00:00.000Z')
  store.saveReport(makeReport({ id: '7' }), makeRound('round-7'), { included: ['peerA', 'peerC'] })
  assert.deepEqual(store.agents(), [
    { peerId: 'peerA', lastSeen: '2026-01-01T10:00:00.000Z', lastIncludedRound: 'round-7' },
    { peerId: 'peerB', lastSeen: '2026-01-01T10:00:00.000Z', lastIncludedRound: null },
    { peerId: 'peerC', lastSeen: null, lastIncludedRound: 'round-7' }
  ])
  store.close()
})

test('scheduled windows: a key counts as run when claimed or when a round carries it', () => {
  const store = openStore(':memory:')
  assert.equal(store.hasScheduledWindow('a'), false)
  store.saveRound(makeRound('r1', { scheduledWindowKey: 'a' }))
  store.markScheduledWindow('b', { note: 'started' })
  store.markScheduledWindow('b', { note: 'failed: too few agents' })
  assert.equal(store.hasScheduledWindow('a'), true)
  assert.equal(store.hasScheduledWindow('b'), true)
  assert.equal(store.hasScheduledWindow('c'), false)
  store.close()
})

test('data survives close and reopen', (t) => {
  const file = join(tempDir(t), 'persist.db')
  const s1 = openStore(file)
  s1.saveReport(makeReport({ id: 'p1', kind: 'reference' }), makeRound('round-p1', { kind: 'reference' }), { reference: { specHash: 'h', vector: Uint32Array.of(1, 2, 3) } })
  s1.close()
  const s2 = openStore(file)
  assert.equal(s2.getReport('p1')?.id, 'p1')
  assert.deepEqual(s2.getReferenceVector('p1')?.vector, Uint32Array.of(1, 2, 3))
  assert.equal(s2.currentReference()?.reportId, 'p1')
  s2.close()
})

// A child process writes reports (each with a large reference vector, so most of its time is spent inside
// a transaction) and prints each id after its commit; we SIGKILL it mid-stream.
test('kill -9 while writing: the store opens, passes integrity_check, every committed report is intact', async (t) => {
  const file = join(tempDir(t), 'crash.db')
  const storeUrl = new URL('../../coordinator/store.js', import.meta.url).href
  const script = `
    import { openStore } from ${JSON.stringify(storeUrl)}
    const store = openStore(${JSON.stringify(file)})
    const vector = new Uint32Array(250000)
    for (let i = 0; ; i++) {
      const id = 'k' + i
      vector.fill(i)
      const report = { id, round: { id: 'round-' + id, kind: 'reference' }, window: { from: 'a', to: 'b' }, spec: { model: 'm', hash: 'h', vectorLength: vector.length },
        agents: { invited: [], included: [], dropped: [] }, samples: { count: i, labeled: i, positives: 0, unlabeled: 0 }, performance: { auc: { value: i / 1e6, lower: null, upper: null } },
        drift: { reference: null, features: {}, score: null }, dataQuality: {}, alerts: [], privacy: { threshold: null, minAgents: null }, createdAt: new Date(i).toISOString(), padding: 'x'.repeat(20000) }
      store.saveReport(report, { id: 'round-' + id, kind: 'reference', window: { from: 'a', to: 'b' }, status: 'running', reportId: null, invited: [], included: [], dropped: [], failure: null, startedAt: new Date(i).toISOString(), finishedAt: null, timings: {}, scheduledWindowKey: null }, { reference: { specHash: 'h', vector } })
      process.stdout.write(id + '\\n')
    }
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const committed: string[] = []
  let buffered = ''
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code, signal) => { if (signal !== 'SIGKILL') reject(new Error(`writer exited early (${code}): ${stderr}`)) })
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      committed.push(...lines)
      // Kill at an arbitrary point after enough commits; the next write is usually mid-transaction.
      if (committed.length >= 40 && child.exitCode === null && !child.killed) {
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 7))
      }
    })
    child.on('exit', () => resolve())
  })
  assert.ok(committed.length >= 40, `writer committed ${committed.length} reports: ${stderr}`)

  const store = openStore(file)
  t.after(() => store.close())
  assert.equal(store.integrityCheck(), 'ok')
  for (const id of committed) {
    const i = Number(id.slice(1))
    const report = store.getReport(id)
    assert.ok(report !== null, `committed report ${id} lost`)
    assert.equal(report.samples.count, i)
    assert.equal(store.getRound(`round-${id}`)?.reportId, id)
    const v = store.getReferenceVector(id)
    assert.ok(v !== null && v.vector.length === 250000 && v.vector[0] === i && v.vector[249999] === i, `vector of ${id} damaged`)
  }
  // Whatever was in flight is either wholly there or wholly absent.
  const all = store.listReports()
  for (const r of all) {
    assert.ok(r.id.startsWith('k'))
    assert.ok(store.getReferenceVector(r.id) !== null, `report ${r.id} committed without its vector`)
  }
  assert.ok(all.length >= committed.length)
})
