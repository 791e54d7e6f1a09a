/**
 * `fedmon check --config agent.yaml` and `fedmon evaluate --config agent.yaml` as a site's operator runs them
 * (issue 14): real child processes on generated files and agent configs.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify as toYaml } from 'yaml'

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'fedmon.js')
const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'
const T0 = Date.UTC(2025, 11, 1)
const HOUR = 3_600_000
const DAY = 24 * HOUR
let dir: string

function run (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** An agent config for `data` (relative to dir). */
function agentConfig (name: string, data: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, toYaml({ identity: 'agent.key', coordinator: `/ip4/127.0.0.1/tcp/7700/p2p/${PEER}`, state: 'state', data }))
  return file
}

// 200 records 15 minutes apart from T0, ts in epoch seconds; one more row with an unterminated quote
const rows = Array.from({ length: 200 }, (_, i) => `${(T0 + i * 15 * 60_000) / 1000},0.${(i * 7) % 10},${i % 2},${i % 3 === 0 ? 'red' : 'blue'}`)
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-check-'))
  const broken = [...rows]
  broken.splice(50, 0, `${T0 / 1000},0.5,"1,red`)
  writeFileSync(join(dir, 'renamed.csv'), ['timestamp,prob,y,colour', ...broken].join('\n') + '\n')
  writeFileSync(join(dir, 'spec.yaml'), 'model: check-test\nscore: {bins: 20}\nfeatures:\n  colour: {type: categorical, categories: [red, blue]}\n')
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

test('fedmon check: wrong column names exit 1 with the reason an agent would decline with; the table shows each column', () => {
  const config = agentConfig('unmapped', { path: 'renamed.csv' })
  const r = run('check', '--config', config, '--spec', join(dir, 'spec.yaml'))
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /^fedmon: the data would be declined: .*no usable timestamp in column `ts`/)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.match(r.stdout, /^data\s+\S*renamed\.csv \(csv, 1 file\)/m)
  assert.match(r.stdout, /^records\s+201 in the files, 0 in the window, 201 without a usable ts \(1 malformed CSV row\)/m)
  assert.match(r.stdout, /^\s*ts\s+ts\s+all records\s+0\s+201\s+0\s*$/m, r.stdout)
  assert.match(r.stdout, /^PROBLEM\s+.*check data\.columns\.ts/m)
})

test('fedmon check: the mapped columns, epoch seconds detected, coverage and vector; --json; exit 0', () => {
  const config = agentConfig('mapped', { path: 'renamed.csv', columns: { ts: 'timestamp', score: 'prob', label: 'y' } })
  const r = run('check', '--config', config, '--spec', join(dir, 'spec.yaml'))
  assert.equal(r.status, 0, r.stderr + r.stdout)
  assert.match(r.stdout, /^coverage\s+first usable ts 2025-12-01T00:00:00\.000Z, last 2025-12-03T01:45:00\.000Z/m)
  assert.match(r.stdout, /^ts unit\s+auto \(window's numeric ts read: 200 as epoch s\)/m)
  assert.match(r.stdout, /^\s*score\s+prob\s+window\s+200\s+0\s+0\s*$/m)
  assert.match(r.stdout, /^\s*feature colour\s+colour\s+window\s+200\s+0\s+0\s*$/m)
  assert.match(r.stdout, /^vector\s+\d+ entries, spec [0-9a-f]{12}: 20 score bins, \d+ calibration bins, features: colour \(categorical, 4 buckets\)/m)
  assert.match(r.stdout, /^ok\s+/m)

  const w = `${new Date(T0).toISOString()}..${new Date(T0 + DAY).toISOString()}`
  const j = run('check', '--config', config, '--spec', join(dir, 'spec.yaml'), '--window', w, '--json')
  assert.equal(j.status, 0, j.stderr)
  const check = JSON.parse(j.stdout)
  assert.equal(check.ok, true)
  assert.deepEqual(check.records, { total: 201, inWindow: 96, withoutTimestamp: 1, malformedRows: 1 })
  assert.deepEqual(check.tsUnits, { s: 96 })
  assert.deepEqual(check.window, { from: T0, to: T0 + DAY })
  assert.equal(check.timestamps.usable, 200)
  // the explicit, wrong unit: one line naming it
  const wrong = agentConfig('wrong-unit', { path: 'renamed.csv', columns: { ts: 'timestamp', score: 'prob', label: 'y', tsUnit: 'ms' } })
  const x = run('check', '--config', wrong, '--window', w)
  assert.equal(x.status, 1)
  assert.match(x.stderr, /column `timestamp`: timestamps look like epoch seconds read as milliseconds/)
  // a window before any record: never "ok" — the agent's policy.minRecords (default 10) declines it
  const right = agentConfig('right-unit', { path: 'renamed.csv', columns: { ts: 'timestamp', score: 'prob', label: 'y' } })
  const empty = run('check', '--config', right, '--window', '2000-01-01..2000-01-02')
  assert.equal(empty.status, 1, empty.stdout)
  assert.match(empty.stderr, /the data would be declined: the window holds 0 of this site's records, fewer than policy.minRecords 10/)
})

test('fedmon evaluate --config uses the agent\'s data source and column mapping; --data and --config together are a usage error', () => {
  const config = agentConfig('mapped', { path: 'renamed.csv', columns: { ts: 'timestamp', score: 'prob', label: 'y' } })
  const w = `${new Date(T0).toISOString()}..${new Date(T0 + DAY).toISOString()}`
  const r = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--config', config, '--window', w, '--json')
  assert.equal(r.status, 0, r.stderr)
  const report = JSON.parse(r.stdout)
  assert.equal(report.samples.count, 96, 'the window holds 96 good records (and the malformed row is in no window)')
  const both = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--config', config, '--data', join(dir, 'renamed.csv'), '--window', w)
  assert.equal(both.status, 2)
  assert.match(both.stderr, /either --data <glob> or --config/)
  // --data with --ts-unit
  const s = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, 'renamed.csv'), '--ts-unit', 's', '--window', w, '--json')
  assert.equal(s.status, 0, s.stderr)
})
