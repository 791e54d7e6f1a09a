import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../../shared/errors.js'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { loadAgentConfig } from '../../shared/config/agent.js'
import { loadMonitorSpec } from '../../shared/stats/spec.js'
import { loadRosterFile } from '../../shared/config/roster.js'
import { editDistance } from '../../shared/config/load.js'

/*
 * Issue 14, "config errors": a YAML syntax error names the line and column, and an unknown key that is close
 * to a known one at the same level says which one was probably meant — in every loader (coordinator, agent,
 * spec, roster).
 */

const dir = mkdtempSync(join(tmpdir(), 'fedmon-config-errors-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'

function write (name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

function fails (load: () => unknown): ConfigError {
  try {
    load()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.ok(!/[\r\n]/.test(err.message), `one line: ${err.message}`)
    return err
  }
  assert.fail('expected the load to fail')
}

const coordinatorYaml = (privacy: string): string => [
  'identity: ./id.key',
  `agents: [${PEER}]`,
  'spec: ./spec.yaml',
  'store: ./store.db',
  'privacy:',
  privacy,
  ''
].join('\n')

test('a YAML syntax error names the file, the line and the column', () => {
  const unclosed = write('unclosed.yaml', coordinatorYaml('  minAgents: [3'))
  const err = fails(() => loadCoordinatorConfig(unclosed))
  assert.match(err.message, /unclosed\.yaml: not valid YAML\/JSON at line \d+, column \d+: /)
  const badIndent = write('indent.yaml', 'identity: ./id.key\napi:\n  listen: 127.0.0.1:7600\n tokenFile: t\n')
  const err2 = fails(() => loadCoordinatorConfig(badIndent))
  assert.match(err2.message, /indent\.yaml: not valid YAML\/JSON at line 4, column 1: All mapping items must start at the same column$/)
  const tab = write('tab.yaml', 'model: m\nscore:\n\tcolumn: s\n')
  assert.match(fails(() => loadMonitorSpec(tab)).message, /tab\.yaml: not valid YAML\/JSON at line 3, column 1/)
  const json = write('bad.json', '{"identity": "x",\n  "agents": [1,,2]}')
  assert.match(fails(() => loadCoordinatorConfig(json)).message, /bad\.json: not valid YAML\/JSON at line 2, column 16: Unexpected , in flow sequence$/)
})

test('an unknown key close to a known one at its level: did you mean …?', () => {
  const typo = write('typo.yaml', coordinatorYaml('  minAgent: 3'))
  const err = fails(() => loadCoordinatorConfig(typo))
  assert.equal(err.field, 'privacy.minAgent')
  assert.match(err.message, /typo\.yaml: privacy\.minAgent: unknown key; did you mean "minAgents"\?/)

  // A key of another level is no suggestion: `threshold` is a privacy key, not a top-level one.
  const far = write('far.yaml', coordinatorYaml('  minAgents: 3') + 'thrshold: 2\n')
  const err2 = fails(() => loadCoordinatorConfig(far))
  assert.equal(err2.field, 'thrshold')
  assert.doesNotMatch(err2.message, /did you mean/)
  assert.match(err2.message, /unknown key/)

  // Nothing close: no guess, but the keys that are allowed there.
  const nothing = write('nothing.yaml', coordinatorYaml('  minAgents: 3\n  colour: red'))
  const err3 = fails(() => loadCoordinatorConfig(nothing))
  assert.equal(err3.field, 'privacy.colour')
  assert.doesNotMatch(err3.message, /did you mean/)
  assert.match(err3.message, /allowed here: minAgents, threshold/)

  // Under a default()-wrapped object and in an array element, in the spec and the agent config too.
  const phase = write('phase.yaml', coordinatorYaml('  minAgents: 3') + 'round: { phaseTimeoutMS: 100 }\n')
  assert.match(fails(() => loadCoordinatorConfig(phase)).message, /round\.phaseTimeoutMS: unknown key; did you mean "phaseTimeoutMs"\?/)
  const alerts = write('alerts.yaml', coordinatorYaml('  minAgents: 3') + 'alerts: [{ metric: auc, bellow: 0.7 }]\n')
  assert.match(fails(() => loadCoordinatorConfig(alerts)).message, /alerts\[0\]\.bellow: unknown key; did you mean "below"\?/)
  const spec = write('spec.yaml', 'model: m\nscore: { colum: s }\nlabel: { column: y }\n')
  assert.match(fails(() => loadMonitorSpec(spec)).message, /spec\.yaml: score\.colum: unknown key; did you mean "column"\?/)
  const agent = write('agent.yaml', [
    'identity: ./id.key', `coordinator: /ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, 'data: { path: "./x/*.jsonl" }', 'state: ./state',
    'polcy: { minAgents: 3 }', ''
  ].join('\n'))
  assert.match(fails(() => loadAgentConfig(agent)).message, /agent\.yaml: polcy: unknown key; did you mean "policy"\?/)
  // A misspelt required key is also that key missing: the typo is reported, as the cause.
  const misspelt = write('misspelt.yaml', coordinatorYaml('  minAgents: 3').replace('identity:', 'identiy:'))
  assert.match(fails(() => loadCoordinatorConfig(misspelt)).message, /misspelt\.yaml: identiy: unknown key; did you mean "identity"\?/)
  const roster = write('roster.yaml', `agent: [${PEER}]\n`)
  assert.match(fails(() => loadRosterFile(roster)).message, /roster\.yaml: agent: unknown key; did you mean "agents"\?/)
})

test('editDistance: insertions, deletions, substitutions and adjacent transpositions cost one each', () => {
  assert.equal(editDistance('minAgents', 'minAgents'), 0)
  assert.equal(editDistance('minAgent', 'minAgents'), 1)
  assert.equal(editDistance('mniAgents', 'minAgents'), 1)
  assert.equal(editDistance('maxAgents', 'minAgents'), 2)
  assert.equal(editDistance('', 'abc'), 3)
})
