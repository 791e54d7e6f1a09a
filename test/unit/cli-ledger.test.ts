// `fedmon ledger show|reset`: the operator's view of an agent's contribution ledger, and the one recorded way
// past the notBefore a lost ledger gets (issue 10 item 5). Real CLI process, real files.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ContributionLedger } from '../../agent/ledger.js'
import { generateIdentity, writeIdentity } from '../../shared/identity.js'

const CLI = fileURLToPath(new URL('../../bin/fedmon.js', import.meta.url))
const HOUR = 3_600_000
let dir: string
let config: string

const fedmon = (...args: string[]): { code: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-cli-ledger-'))
  const site = await generateIdentity()
  const coordinator = await generateIdentity()
  writeIdentity(join(dir, 'site.key'), site)
  config = join(dir, 'agent.yaml')
  writeFileSync(config, JSON.stringify({
    identity: 'site.key', coordinator: `/ip4/127.0.0.1/tcp/4001/p2p/${coordinator.peerId}`,
    data: { path: 'logs/*.jsonl' }, state: 'state'
  }))
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

test('keygen --show prints the peer id of an existing key; --out and --show together is a usage error', () => {
  const out = fedmon('keygen', '--out', join(dir, 'k.key'))
  assert.equal(out.code, 0, out.stderr)
  const shown = fedmon('keygen', '--show', join(dir, 'k.key'))
  assert.equal(shown.stdout, out.stdout)
  assert.match(out.stdout, /^12D3KooW\w+\n$/)
  const both = fedmon('keygen', '--out', join(dir, 'k2.key'), '--show', join(dir, 'k.key'))
  assert.equal(both.code, 2)
  assert.match(both.stderr, /exactly one of --out FILE .* or --show FILE/)
  const missing = fedmon('keygen', '--show', join(dir, 'none.key'))
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /none\.key: cannot read identity key/)
})

test('ledger show / reset: a lost ledger refuses earlier windows until the operator resets it, and the reset is kept', () => {
  const window = { from: Date.now() - 48 * HOUR, to: Date.now() - 47 * HOUR }
  const round = { roundId: 'r1', window, specHash: 'c'.repeat(64), reference: false, participants: ['a', 'b', 'c'] }
  const first = ContributionLedger.open(join(dir, 'state'), { identityFile: join(dir, 'site.key') })
  first.admit(round, Date.now())
  first.contribute(round, Date.now())
  let shown = JSON.parse(fedmon('ledger', 'show', '--config', config, '--json').stdout)
  assert.equal(shown.notBefore, null)
  assert.equal(shown.entries.length, 1)

  // The state dir is lost; the key (and its anchor) survive: the next open starts a ledger with notBefore ≈ now.
  rmSync(join(dir, 'state'), { recursive: true, force: true })
  const started = Date.now()
  const show = fedmon('ledger', 'show', '--config', config, '--json')
  assert.equal(show.code, 0, show.stderr)
  assert.match(show.stderr, /this identity kept one: started a new ledger that refuses windows before notBefore/)
  shown = JSON.parse(show.stdout)
  assert.ok(shown.notBefore >= started - 1000 && shown.notBefore <= Date.now(), String(shown.notBefore))
  assert.throws(() => ContributionLedger.open(join(dir, 'state')).admit({ ...round, roundId: 'r2' }, Date.now()), /starts before/)

  // Refused resets say why, in one line.
  const bad = fedmon('ledger', 'reset', '--config', config, '--not-before', 'yesterday', '--reason', 'restored from backup')
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /--not-before: not an ISO-8601 instant/)
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr)
  const terse = fedmon('ledger', 'reset', '--config', config, '--not-before', 'any', '--reason', 'x')
  assert.notEqual(terse.code, 0)
  assert.match(terse.stderr, /--reason: say why/)

  const notBefore = new Date(window.from).toISOString()
  const reset = fedmon('ledger', 'reset', '--config', config, '--not-before', notBefore, '--reason', 'restored state/ from the backup of the day before; no round since')
  assert.equal(reset.code, 0, reset.stderr)
  assert.match(reset.stdout, new RegExp(`not before ${notBefore.replace(/[.]/g, '\\.')}`))
  assert.match(reset.stderr, /contribution ledger reset by the operator/)
  shown = JSON.parse(fedmon('ledger', 'show', '--config', config, '--json').stdout)
  assert.equal(shown.notBefore, window.from)
  assert.equal(shown.resets.length, 1)
  assert.match(shown.resets[0].reason, /restored state/)
  const text = fedmon('ledger', 'show', '--config', config)
  assert.match(text.stdout, /reset .* restored state/)
  // Every round the new ledger recorded is listed with its window (here: none yet after the loss).
  const fresh = ContributionLedger.open(join(dir, 'state'))
  fresh.admit({ ...round, roundId: 'r3' }, Date.now())
  assert.match(fedmon('ledger', 'show', '--config', config).stdout, new RegExp(`${new Date(window.from).toISOString().replace(/[.]/g, '\\.')} \\.\\. .*round r3  spec c{12}  3 participants  joined .*, not contributed \\(declined, dropped or failed\\)`))
  assert.equal(bad.code, 2, 'a usage error exits 2')
})

test('ledger show lists the rounds under each ledger scope (the data source each monitor reads)', async () => {
  // an identity and state of its own (the test above lost and reset the shared one's ledger)
  const own = join(dir, 'scopes')
  const site = await generateIdentity()
  writeIdentity(join(own, 'site.key'), site)
  const scopedConfig = join(own, 'agent.yaml')
  writeFileSync(scopedConfig, JSON.stringify({ identity: 'site.key', coordinator: '/ip4/127.0.0.1/tcp/4001/p2p/' + site.peerId, data: { path: 'logs/*.jsonl' }, state: 'state' }))
  const window = { from: Date.now() - 30 * HOUR, to: Date.now() - 29 * HOUR }
  const ledger = ContributionLedger.open(join(own, 'state'), { identityFile: join(own, 'site.key') })
  for (const [i, scope] of ['jsonl:/data/credit/*.jsonl', 'jsonl:/data/balance/*.jsonl'].entries()) {
    const round = { roundId: `scoped-${i}`, window, specHash: String(i).repeat(64), reference: false, participants: ['a', 'b', 'c'] }
    const guard = ledger.forScope(scope)
    guard.admit(round, Date.now())
    guard.contribute(round, Date.now())
  }
  const shown = fedmon('ledger', 'show', '--config', scopedConfig)
  assert.equal(shown.code, 0, shown.stderr)
  assert.match(shown.stdout, /scope {6}jsonl:\/data\/credit\/\*\.jsonl\n {2}\S+ \.\. \S+ {2}round scoped-0 /)
  assert.match(shown.stdout, /scope {6}jsonl:\/data\/balance\/\*\.jsonl\n {2}\S+ \.\. \S+ {2}round scoped-1 /)
})
