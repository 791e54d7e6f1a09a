// examples/coordinator.yaml ships the schedule, the webhooks and the all-interfaces listen address commented out
// (a copied example must not schedule rounds, post to example.com or listen on 0.0.0.0), yet each commented
// block is a working example: switched on, it validates.
import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { repoRoot } from '../fixtures/repo.js'

const examples = join(repoRoot(), 'examples')
const dir = mkdtempSync(join(tmpdir(), 'fedmon-examples-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
copyFileSync(join(examples, 'roster.yaml'), join(dir, 'roster.yaml'))
const text = readFileSync(join(examples, 'coordinator.yaml'), 'utf8')

/** The example with the commented block that starts at `# KEY:` switched on (one leading "# " removed per line). */
function switchOn (key: string): string {
  const lines = text.split('\n')
  const start = lines.findIndex(l => l.startsWith(`# ${key}:`))
  assert.ok(start >= 0, `a commented ${key} block`)
  let end = start + 1
  while (end < lines.length && /^#\s/.test(lines[end]) && !/^# [a-z]\w*:/.test(lines[end])) end++
  return [...lines.slice(0, start), ...lines.slice(start, end).map(l => l.replace(/^# ?/, '')), ...lines.slice(end)].join('\n')
}

const load = (name: string, yaml: string): ReturnType<typeof loadCoordinatorConfig> => {
  writeFileSync(join(dir, name), yaml)
  return loadCoordinatorConfig(join(dir, name))
}

test('as shipped: no schedule, no webhook, loopback only', () => {
  const c = load('shipped.yaml', text)
  assert.equal(c.schedule, undefined)
  assert.deepEqual(c.webhooks, [])
  assert.ok(c.listen.every(a => a.startsWith('/ip4/127.0.0.1/')))
  assert.doesNotMatch(text, /^\s*-\s*\/ip4\/0\.0\.0\.0/m, 'the all-interfaces address is commented')
  assert.doesNotMatch(text, /^\s*-?\s*(url: )?https:\/\/hooks\.example\.com/m, 'the example webhook is commented')
})

test('each commented block, switched on, is valid config', () => {
  assert.ok(load('schedule.yaml', switchOn('schedule')).schedule !== undefined)
  const hooks = load('webhooks.yaml', switchOn('webhooks')).webhooks
  assert.equal(hooks.length, 2)
  assert.deepEqual(hooks[1], { url: 'https://hooks.example.com/fedmon', secretFile: 'webhook.secret' })
  const listen = text.replace(/^ {2}# - \/ip4\/0\.0\.0\.0/m, '  - /ip4/0.0.0.0')
  assert.ok(load('listen.yaml', listen).listen.includes('/ip4/0.0.0.0/tcp/4001'))
})
