import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/processes.js'

/*
 * Issue 12 §1: two monitors whose data paths differ but match the same file would sum its records twice under
 * two contribution-ledger scopes: `fedmon agent` refuses to start, naming the field, the file and the fix.
 */
const dir = mkdtempSync(join(tmpdir(), 'fedmon-monitors-data-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const COORD = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'

test('the same file under two monitors\' different data paths is refused at start', async () => {
  mkdirSync(join(dir, 'data'), { recursive: true })
  writeFileSync(join(dir, 'data', 'a.jsonl'), '{"ts": 1, "score": 0.5, "label": 1}\n')
  const config = join(dir, 'agent.json')
  writeFileSync(config, JSON.stringify({
    identity: 'id.key',
    coordinator: COORD,
    state: 'state',
    monitors: [
      { name: 'credit', data: { path: 'data/*.jsonl' } },
      { name: 'fraud', data: { path: 'data/a.jsonl' } }
    ]
  }))
  const res = await runCli(['agent', '--config', config], { timeoutMs: 30_000 })
  assert.notEqual(res.code, 0)
  assert.match(res.stderr, /agent\.json: monitors\[1\]\.data\.path: matches .*a\.jsonl, which monitors\[0\]\.data\.path \(monitor credit\) reads too under another path/)
  assert.match(res.stderr, /give both monitors the same data\.path/)
})
