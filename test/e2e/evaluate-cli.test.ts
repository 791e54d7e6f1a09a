/** `fedmon evaluate` as a user runs it: a real child process on generated files. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'fedmon.js')
let dir: string
const T0 = Date.UTC(2025, 11, 1)
const DAY = 86400_000

function run (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-eval-'))
  const lines: string[] = []
  let seed = 3
  const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  for (let i = 0; i < 4000; i++) {
    const week = i % 2
    const x = rand() * 2 - 1 + week
    const score = Math.min(1, Math.max(0, 0.5 + 0.3 * x + 0.2 * (rand() - 0.5)))
    lines.push(JSON.stringify({ ts: T0 + week * 7 * DAY + i * 1000, score, label: rand() < score ? 1 : 0, features: { x, colour: ['red', 'blue'][Math.floor(i / 2) % 2] } }))
  }
  writeFileSync(join(dir, 'preds.jsonl'), lines.join('\n') + '\n')
  // a second file, from a Windows tool (UTF-8 BOM), with 3 records without a usable ts and a line that is not JSON
  writeFileSync(join(dir, 'undated.jsonl'), '\uFEFF' + ['{"score": 0.5, "label": 1}', '{"ts": null, "score": 0.5}', '{"ts": "soon", "score": 0.5}', 'not json'].join('\n') + '\n')
  writeFileSync(join(dir, 'spec.yaml'), 'model: cli-test\nscore: {bins: 500}\nfeatures:\n  x: {type: numeric}\n  colour: {type: categorical, categories: [red, blue]}\n')
  writeFileSync(join(dir, 'bad.yaml'), 'model: m\nscore: {column: 7}\n')
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

const CUR = `${new Date(T0 + 7 * DAY).toISOString()}..${new Date(T0 + 14 * DAY).toISOString()}`
const REF = `${T0}..${T0 + 7 * DAY}`

test('evaluate --json prints one full report', () => {
  const r = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, '*.jsonl'), '--window', CUR, '--reference-window', REF, '--json')
  assert.equal(r.status, 0, r.stderr)
  const rep = JSON.parse(r.stdout)
  for (const k of ['id', 'round', 'window', 'spec', 'agents', 'samples', 'performance', 'drift', 'dataQuality', 'alerts', 'privacy', 'createdAt']) assert.ok(k in rep, k)
  assert.equal(rep.round.kind, 'local')
  assert.deepEqual(rep.agents, { invited: [], included: ['local'], dropped: [], contributing: 1 }) // one site, with records in the window
  assert.deepEqual(rep.privacy, { threshold: null, minAgents: null })
  assert.equal(rep.samples.count, 2000)
  assert.equal(rep.window.from, new Date(T0 + 7 * DAY).toISOString())
  assert.ok(rep.performance.auc.lower <= rep.performance.auc.value && rep.performance.auc.value <= rep.performance.auc.upper)
  assert.equal(rep.drift.features.x.status, 'drift')
  assert.equal(rep.drift.features.colour.status, 'ok')
  assert.equal(rep.drift.reference.window.from, new Date(T0).toISOString())
  // one site, local: its own count of undated records is shown (taken from the scan, not from the vector)
  assert.equal(rep.dataQuality.recordsWithoutTimestamp, 4)
})

test('evaluate without --json prints the table; without a reference it says so', () => {
  const r = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, '*.jsonl'), '--window', CUR)
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /AUC \(ROC\)/)
  assert.match(r.stdout, /no reference window/)
  assert.match(r.stdout, /records without usable ts +4\n/)
  assert.doesNotMatch(r.stdout, /\x1b\[/)
})

test('errors: one line naming the cause, no stack trace, usage errors exit 2', () => {
  const bad = run('evaluate', '--spec', join(dir, 'bad.yaml'), '--data', join(dir, '*.jsonl'), '--window', CUR)
  assert.equal(bad.status, 1)
  assert.match(bad.stderr, /bad\.yaml: score\.column/)
  assert.doesNotMatch(bad.stderr, /\n\s+at /)
  const none = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, 'missing-*.jsonl'), '--window', CUR)
  assert.equal(none.status, 1)
  assert.match(none.stderr, /no data file matches/)
  const win = run('evaluate', '--spec', join(dir, 'spec.yaml'), '--data', join(dir, '*.jsonl'), '--window', 'yesterday..today')
  assert.equal(win.status, 2)
  assert.match(win.stderr, /--window/)
  const help = run('evaluate', '--help')
  assert.equal(help.status, 0)
  assert.match(help.stdout, /Example:/)
})
