/**
 * `fedmon check --config agent.yaml` with a label source (data.labels): it reports the label files, label
 * records, unknown and duplicate ids and the share of the window's predictions that got a joined label; a
 * label glob that matches nothing yet is a warning, not a problem (labels arrive late).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify as toYaml } from 'yaml'

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'fedmon.js')
const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'
const T0 = Date.UTC(2025, 11, 1)
const HOUR = 3_600_000
let dir: string

function run (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function agentConfig (name: string, data: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, toYaml({ identity: 'agent.key', coordinator: `/ip4/127.0.0.1/tcp/7700/p2p/${PEER}`, state: 'state', data }))
  return file
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-check-labels-'))
  mkdirSync(join(dir, 'logs')); mkdirSync(join(dir, 'labels'))
  // 100 predictions, ids p0..p89 (the last 10 have none), no labels of their own
  writeFileSync(join(dir, 'logs', 'preds.jsonl'), Array.from({ length: 100 }, (_, i) => JSON.stringify({ ...(i < 90 ? { id: `p${i}` } : {}), ts: T0 + i * HOUR, score: (i % 10) / 10 })).join('\n') + '\n')
  // labels for p0..p59, p0..p9 twice, and 5 ids no prediction has: 75 records, 65 ids
  const labels = [
    ...Array.from({ length: 60 }, (_, i) => `p${i},${i % 2},${T0 + (i + 24) * HOUR}`),
    ...Array.from({ length: 10 }, (_, i) => `p${i},${1 - (i % 2)},${T0 + (i + 48) * HOUR}`),
    ...Array.from({ length: 5 }, (_, i) => `ghost${i},1,${T0}`)
  ]
  writeFileSync(join(dir, 'labels', 'outcomes.csv'), 'id,label,ts\n' + labels.join('\n') + '\n')
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

test('fedmon check reports the label source: files, records, unknown and duplicate ids, joined share', () => {
  const config = agentConfig('with-labels', { path: 'logs/*.jsonl', labels: { path: 'labels/*.csv' } })
  const r = run('check', '--config', config, '--json')
  assert.equal(r.status, 0, r.stderr)
  const check = JSON.parse(r.stdout)
  assert.equal(check.labels.path, join(dir, 'labels', '*.csv'), 'relative to the config file')
  assert.equal(check.labels.format, 'csv')
  assert.deepEqual(check.labels.files, [join(dir, 'labels', 'outcomes.csv')])
  assert.equal(check.labels.records, 75)
  assert.equal(check.labels.ids, 65)
  assert.equal(check.labels.duplicateIds, 10)
  assert.equal(check.labels.unknownIds, 5)
  assert.equal(check.labels.joined, 60)
  assert.equal(check.labels.predictionsWithoutId, 10)
  assert.equal(check.labels.joinedShare, 0.6)
  // the label column counts the joined labels (as the vector does)
  assert.equal(check.columns.find((c: any) => c.role === 'label').usable, 60)
  const table = run('check', '--config', config)
  assert.equal(table.status, 0, table.stderr)
  assert.match(table.stdout, /^labels\s+\S*labels\/\*\.csv \(csv, 1 file\): 75 label records, 65 ids \(10 with several records: latest ts wins\), 5 unknown ids$/m)
  assert.match(table.stdout, /^joined\s+60 of the window's 100 predictions \(60 %\) got a label by id; 10 have no id \(column `id`\)$/m)
})

test('fedmon check: a label glob matching no file yet is a warning, and the data is still ok', () => {
  const config = agentConfig('no-labels-yet', { path: 'logs/*.jsonl', labels: { path: 'later/*.jsonl' } })
  const r = run('check', '--config', config)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^warning\s+data\.labels: no label file matches \S*later\/\*\.jsonl yet/m)
  const bad = agentConfig('bad-labels', { path: 'logs/*.jsonl', labels: { path: 'labels/*.csv', colums: {} } })
  const e = run('check', '--config', bad)
  assert.notEqual(e.status, 0)
  assert.match(e.stderr, /bad-labels\.yaml.*data\.labels.*colums/)
})
