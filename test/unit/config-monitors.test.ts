import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../shared/errors.js'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { loadAgentConfig } from '../../shared/config/agent.js'

/*
 * Issue 12 §1: `monitors` in the coordinator's and the agent's config; the single-`spec` / single-`data` forms
 * keep loading as one monitor. Every error names the file and the field.
 */

const dir = mkdtempSync(join(tmpdir(), 'fedmon-config-monitors-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'
const COORD = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`

function write (name: string, value: unknown): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(value))
  return file
}

function configError (field: string, file: string, pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.field, field, err.message)
    assert.ok(err.message.includes(file), err.message)
    assert.match(err.message, pattern)
    return true
  }
}

const coordinatorBase = { identity: 'id.key', agents: [PEER], store: 'store.db' }

test('coordinator: a single-spec config is one unnamed monitor with the top-level schedule, reference and alerts', () => {
  const file = write('legacy.json', { ...coordinatorBase, spec: 'spec.yaml', schedule: { every: '1h' }, reference: { from: 0, to: 3_600_000 }, alerts: [{ metric: 'performance.auc.value', below: 0.7 }] })
  const config = loadCoordinatorConfig(file)
  assert.equal(config.monitors.length, 1)
  const [m] = config.monitors
  assert.equal(m.name, null)
  assert.equal(m.spec, join(dir, 'spec.yaml'))
  assert.equal(m.schedule?.every, '1h')
  assert.deepEqual(m.reference, { from: 0, to: 3_600_000 })
  assert.equal(m.alerts.length, 1)
  assert.deepEqual(m.webhooks, [])
  assert.equal(config.spec, join(dir, 'spec.yaml'))
})

test('coordinator: `monitors` gives each its own spec, schedule, reference, alerts and webhooks', () => {
  const file = write('many.json', {
    ...coordinatorBase,
    monitors: [
      { name: 'credit', spec: 'credit.yaml', schedule: { every: '1h' }, alerts: [{ metric: 'performance.auc.value', below: 0.7 }] },
      { name: 'fraud', spec: '/abs/fraud.yaml', schedule: { every: '1d' }, reference: { from: '2026-01-01T00:00:00Z', to: '2026-01-08T00:00:00Z' }, webhooks: ['https://hooks.example.com/x'] }
    ]
  })
  const config = loadCoordinatorConfig(file)
  assert.deepEqual(config.monitors.map(m => m.name), ['credit', 'fraud'])
  assert.deepEqual(config.monitors.map(m => m.spec), [join(dir, 'credit.yaml'), '/abs/fraud.yaml'])
  assert.deepEqual(config.monitors.map(m => m.schedule?.every), ['1h', '1d'])
  assert.deepEqual(config.monitors[1].reference, { from: Date.parse('2026-01-01T00:00:00Z'), to: Date.parse('2026-01-08T00:00:00Z') })
  assert.equal(config.monitors[0].alerts.length, 1)
  assert.equal(config.monitors[1].alerts.length, 0)
  assert.equal(config.monitors[1].webhooks.length, 1)
  assert.deepEqual(config.monitors.map(m => m.field), ['monitors[0]', 'monitors[1]'])
})

test('coordinator: errors name the field and the file', () => {
  const none = write('none.json', coordinatorBase)
  assert.throws(() => loadCoordinatorConfig(none), configError('spec', none, /required.*monitors/))
  const both = write('both.json', { ...coordinatorBase, spec: 'spec.yaml', monitors: [{ name: 'a', spec: 'a.yaml' }] })
  assert.throws(() => loadCoordinatorConfig(both), configError('spec', both, /not allowed beside `monitors`/))
  const topSchedule = write('top-schedule.json', { ...coordinatorBase, schedule: { every: '1h' }, monitors: [{ name: 'a', spec: 'a.yaml' }] })
  assert.throws(() => loadCoordinatorConfig(topSchedule), configError('schedule', topSchedule, /monitors\[\]\.schedule/))
  const dup = write('dup.json', { ...coordinatorBase, monitors: [{ name: 'a', spec: 'a.yaml' }, { name: 'a', spec: 'b.yaml' }] })
  assert.throws(() => loadCoordinatorConfig(dup), configError('monitors[1].name', dup, /already the name of monitors\[0\]/))
  const badName = write('bad-name.json', { ...coordinatorBase, monitors: [{ name: 'credit risk', spec: 'a.yaml' }] })
  assert.throws(() => loadCoordinatorConfig(badName), configError('monitors[0].name', badName, /monitor name/))
  const noSpec = write('no-spec.json', { ...coordinatorBase, monitors: [{ name: 'a' }] })
  assert.throws(() => loadCoordinatorConfig(noSpec), configError('monitors[0].spec', noSpec, /./))
  const typo = write('typo.json', { ...coordinatorBase, monitors: [{ name: 'a', spec: 'a.yaml', shedule: { every: '1h' } }] })
  assert.throws(() => loadCoordinatorConfig(typo), configError('monitors[0].shedule', typo, /did you mean "schedule"/))
  const empty = write('empty.json', { ...coordinatorBase, monitors: [] })
  assert.throws(() => loadCoordinatorConfig(empty), configError('monitors', empty, /at least one monitor/))
  const badAlert = write('bad-alert.json', { ...coordinatorBase, monitors: [{ name: 'a', spec: 'a.yaml', alerts: [{ metric: 'performance.auc.value', bellow: 0.7 }] }] })
  assert.throws(() => loadCoordinatorConfig(badAlert), configError('monitors[0].alerts[0].bellow', badAlert, /did you mean "below"/))
})

const agentBase = { identity: 'id.key', coordinator: COORD, state: 'state' }

test('agent: a config without `monitors` serves one unnamed monitor with its top-level data and policy', () => {
  const file = write('agent-legacy.json', { ...agentBase, data: { path: 'preds.jsonl' }, policy: { minAgents: 4 } })
  const config = loadAgentConfig(file)
  assert.equal(config.monitors.length, 1)
  assert.equal(config.monitors[0].name, null)
  assert.equal(config.monitors[0].data.path, join(dir, 'preds.jsonl'))
  assert.equal(config.monitors[0].policy.minAgents, 4)
  assert.equal(config.data.path, join(dir, 'preds.jsonl'))
})

test('agent: each monitor has its data and column mapping; its policy goes over the top-level one', () => {
  const file = write('agent-many.json', {
    ...agentBase,
    policy: { minAgents: 4, minRecords: 20 },
    monitors: [
      { name: 'credit', data: { path: 'credit/*.jsonl', columns: { score: 'p' }, labels: { path: 'credit-labels/*.csv' } } },
      { name: 'fraud', data: { path: '/abs/fraud.csv' }, policy: { minRecords: 50 } }
    ]
  })
  const config = loadAgentConfig(file)
  assert.deepEqual(config.monitors.map(m => m.name), ['credit', 'fraud'])
  assert.equal(config.monitors[0].data.path, join(dir, 'credit/*.jsonl'))
  assert.equal(config.monitors[0].data.labels?.path, join(dir, 'credit-labels/*.csv'))
  assert.equal(config.monitors[0].data.columns?.score, 'p')
  assert.equal(config.monitors[1].data.path, '/abs/fraud.csv')
  assert.equal(config.monitors[0].policy.minRecords, 20)
  assert.equal(config.monitors[1].policy.minRecords, 50)
  assert.equal(config.monitors[1].policy.minAgents, 4)
  assert.equal(config.monitors[1].policy.maxWindowMs, 31 * 86_400_000, 'defaults still apply')
})

test('agent: errors name the field and the file', () => {
  const none = write('agent-none.json', agentBase)
  assert.throws(() => loadAgentConfig(none), configError('data', none, /required/))
  const both = write('agent-both.json', { ...agentBase, data: { path: 'a.jsonl' }, monitors: [{ name: 'a', data: { path: 'a.jsonl' } }] })
  assert.throws(() => loadAgentConfig(both), configError('data', both, /monitors\[\]\.data/))
  const dup = write('agent-dup.json', { ...agentBase, monitors: [{ name: 'a', data: { path: 'a.jsonl' } }, { name: 'a', data: { path: 'b.jsonl' } }] })
  assert.throws(() => loadAgentConfig(dup), configError('monitors[1].name', dup, /already the name/))
  const noData = write('agent-no-data.json', { ...agentBase, monitors: [{ name: 'a' }] })
  assert.throws(() => loadAgentConfig(noData), configError('monitors[0].data', noData, /./))
  const badPolicy = write('agent-bad-policy.json', { ...agentBase, monitors: [{ name: 'a', data: { path: 'a.jsonl' }, policy: { minRecrods: 5 } }] })
  assert.throws(() => loadAgentConfig(badPolicy), configError('monitors[0].policy.minRecrods', badPolicy, /did you mean "minRecords"/))
})

test('the commented monitors examples in examples/coordinator.yaml and examples/agent.yaml, switched on, are valid config', async () => {
  const { readFileSync, copyFileSync } = await import('node:fs')
  const { repoRoot } = await import('../fixtures/repo.js')
  const examples = join(repoRoot(), 'examples')
  const block = (file: string): string => {
    const lines = readFileSync(join(examples, file), 'utf8').split('\n')
    const start = lines.findIndex(l => l.startsWith('# monitors:'))
    assert.ok(start >= 0, `${file} has a commented monitors block`)
    let end = start + 1
    while (end < lines.length && /^#\s/.test(lines[end]) && !/^# [a-z]\w*:/.test(lines[end])) end++
    return lines.slice(start, end).map(l => l.replace(/^# ?/, '')).join('\n')
  }
  copyFileSync(join(examples, 'roster.yaml'), join(dir, 'roster.yaml'))
  const coordinatorFile = join(dir, 'example-monitors.yaml')
  writeFileSync(coordinatorFile, `identity: id.key\nagents: roster.yaml\nstore: store.db\n${block('coordinator.yaml')}\n`)
  assert.deepEqual(loadCoordinatorConfig(coordinatorFile).monitors.map(m => m.name), ['credit', 'fraud'])
  const agentFile = join(dir, 'example-agent-monitors.yaml')
  writeFileSync(agentFile, `identity: id.key\ncoordinator: ${COORD}\nstate: state\n${block('agent.yaml')}\n`)
  const agent = loadAgentConfig(agentFile)
  assert.deepEqual(agent.monitors.map(m => m.name), ['credit', 'fraud'])
  assert.equal(agent.monitors[1].policy.minRecords, 50)
})
