/**
 * `fedmon check` (agent/local-check.ts) for every task: the two task columns are counted under their own role
 * names (regression: prediction and target; multiclass: scores and label), and a wrong column is the window's
 * problem, named, as the agent would decline it.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkLocalData } from '../../agent/local-check.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { regressionRecords } from '../fixtures/stats/regression.js'
import { mulberry32 } from '../../shared/prng.js'

const T0 = Date.UTC(2026, 4, 4)
const DAY = 86_400_000
let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-check-tasks-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

function write (name: string, records: unknown[]): string {
  const path = join(dir, name)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + '\n')
  return path
}

test('regression: prediction and target counted; a target column under another name is a warning', async () => {
  const spec = parseMonitorSpec({ model: 'price', task: 'regression', target: { clip: [-100, 400] } })
  const records = regressionRecords(3, 400, T0, DAY)
  const good = await checkLocalData({ source: { path: write('reg.jsonl', records) }, spec, maxBadFraction: 0.1 })
  const roles = Object.fromEntries(good.columns.map(c => [c.role, c]))
  assert.equal(roles.prediction.column, 'prediction')
  assert.equal(roles.target.column, 'target')
  assert.equal(roles.prediction.usable + roles.prediction.missing + roles.prediction.bad, good.records.inWindow)
  assert.equal(good.vector.scoreBins, null)
  assert.equal(good.problem, null)
  const renamed = records.map(({ target, ...r }) => ({ ...r, truth: target }))
  const bad = await checkLocalData({ source: { path: write('reg-renamed.jsonl', renamed) }, spec, maxBadFraction: 0.1 })
  // targets that have not arrived are no problem (they come later), but an absent column is said
  assert.equal(bad.columns.find(c => c.role === 'target')?.usable, 0)
  assert.equal(bad.problem, null)
  assert.ok(bad.warnings.some(w => /target: column `target` is empty or absent in every record/.test(w)), bad.warnings.join('; '))
  assert.ok(!good.warnings.some(w => /empty or absent/.test(w)))
})

test('multiclass: scores and label counted under their names; labels that are no class are bad', async () => {
  const spec = parseMonitorSpec({ model: 'm', task: 'multiclass', classes: ['a', 'b', 'c'], score: { bins: 16 } })
  const rand = mulberry32(4)
  const records = Array.from({ length: 300 }, (_, i) => {
    const p = [rand(), rand(), rand()]; const s = p[0] + p[1] + p[2]
    return { ts: T0 + i * 1000, scores: { a: p[0] / s, b: p[1] / s, c: p[2] / s }, label: i % 10 === 0 ? 'zebra' : ['a', 'b', 'c'][i % 3] }
  })
  const checked = await checkLocalData({ source: { path: write('mc.jsonl', records) }, spec, maxBadFraction: 0.5 })
  const roles = Object.fromEntries(checked.columns.map(c => [c.role, c]))
  assert.deepEqual([roles.scores.usable, roles.scores.missing, roles.scores.bad], [300, 0, 0])
  assert.deepEqual([roles.label.usable, roles.label.missing, roles.label.bad], [270, 0, 30])
  assert.equal(checked.vector.scoreBins, 16)
})

test('segments: a segment column absent from every record (a typo) is a warning, a present one is not', async () => {
  const rand = mulberry32(6)
  const records = Array.from({ length: 200 }, (_, i) => ({ ts: T0 + i * 1000, score: rand(), label: rand() < 0.3 ? 1 : 0, region: rand() < 0.5 ? 'north' : 'south' }))
  const path = write('seg.jsonl', records)
  const typo = await checkLocalData({ source: { path }, spec: parseMonitorSpec({ model: 's', segments: [{ column: 'regin', values: ['north', 'south'] }] }), maxBadFraction: 0.1 })
  assert.ok(typo.warnings.some(w => /segment column `regin`: every record of the window is in `other`/.test(w)), typo.warnings.join('; '))
  const right = await checkLocalData({ source: { path }, spec: parseMonitorSpec({ model: 's', segments: [{ column: 'region', values: ['north', 'south'] }] }), maxBadFraction: 0.1 })
  assert.ok(!right.warnings.some(w => /segment column/.test(w)), right.warnings.join('; '))
})
