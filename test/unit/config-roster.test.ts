import '../../shared/polyfill.js'
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { loadRosterFile } from '../../shared/config/roster.js'
import { loadAgentConfig } from '../../shared/config/agent.js'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { generateIdentity, writeIdentity } from '../../shared/identity.js'
import { ConfigError } from '../../shared/errors.js'
import { pino } from 'pino'
import { createLogger } from '../../shared/log.js'
import { AgentDaemon } from '../../agent/daemon.js'

/*
 * The federation's roster file (shared/config/roster.ts) as the agent and the coordinator load it: both forms,
 * the hash pin, the errors an operator sees, and an agent's reload that keeps the old roster when the new
 * one is not acceptable.
 */

const dir = mkdtempSync(join(tmpdir(), 'fedmon-roster-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

const [a, b, c, coord] = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()])
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex')

function configError (field: string | undefined, file: string, message?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.file, file)
    assert.equal(err.field, field)
    assert.ok(!/[\r\n]/.test(err.message), 'one line')
    if (message !== undefined) assert.match(err.message, message)
    return true
  }
}

test('roster file: `agents:` or a bare list, bare ids or { id, name }, hashed over its bytes', () => {
  const withKey = join(dir, 'with-key.yaml')
  writeFileSync(withKey, `# the federation\nagents:\n  - ${a.peerId}\n  - { id: ${b.peerId}, name: site-b }\n`)
  const r = loadRosterFile(withKey)
  assert.deepEqual(r.ids, [a.peerId, b.peerId])
  assert.equal(r.sha256, sha256(withKey))
  const bare = join(dir, 'bare.json')
  writeFileSync(bare, JSON.stringify([c.peerId, { id: a.peerId }]))
  assert.deepEqual(loadRosterFile(bare).ids, [c.peerId, a.peerId])
})

test('roster file: mistakes name the file and the entry', () => {
  const file = join(dir, 'bad.yaml')
  const cases: Array<[string, string | undefined, RegExp]> = [
    [`agents: [${a.peerId}, bob]\n`, 'agents[1]', /not a libp2p peer id/],
    [`agents: [${a.peerId}, ${a.peerId}]\n`, 'agents[1]', /duplicate peer id \(also agents\[0\]\)/],
    ['agents: []\n', 'agents', /no peer id/],
    [`agent: [${a.peerId}]\n`, 'agent', /unknown key/],
    [`- { id: ${a.peerId}, nmae: x }\n`, '[0].nmae', /unknown key/],
    ['- { name: x }\n', '[0].id', /required/],
    [`- { id: ${a.peerId}, name: 7 }\n`, '[0].name', /printable name/],
    ['just text\n', '(top level)', /list of peer ids/],
    ['agents: [unclosed\n', undefined, /not valid YAML/]
  ]
  for (const [text, field, message] of cases) {
    writeFileSync(file, text)
    assert.throws(() => loadRosterFile(file), configError(field, file, message), text)
  }
  assert.throws(() => loadRosterFile(join(dir, 'absent.yaml')), configError(undefined, join(dir, 'absent.yaml'), /file not found/))
})

function agentConfig (name: string, extra: string): string {
  const file = join(dir, `${name}.yaml`)
  writeFileSync(file, `identity: ${name}.key\ncoordinator: /ip4/127.0.0.1/tcp/9/p2p/${coord.peerId}\ndata: {path: x.jsonl}\nstate: state-${name}\n${extra}`)
  return file
}

test('agent config: without federation.roster the config still loads (the §5 contract\'s keys suffice), roster null', () => {
  // The daemon then trusts the coordinator's participant list and warns at start; the sans-IO client refuses a
  // round when it has neither a roster nor that trust (test/unit/adversary-review.test.ts).
  const missing = agentConfig('no-roster', '')
  const plain = loadAgentConfig(missing)
  assert.equal(plain.roster, null)
  assert.equal(plain.federation, undefined)
  const trusting = agentConfig('trusting', 'policy: {trustCoordinatorRoster: true}\n')
  const config = loadAgentConfig(trusting)
  assert.equal(config.roster, null)
  assert.equal(config.policy.trustCoordinatorRoster, true)
})

test('agent config: the roster path is relative to the config file; a pin that does not match the bytes is refused', () => {
  const roster = join(dir, 'roster.yaml')
  writeFileSync(roster, `agents: [${a.peerId}, ${b.peerId}]\n`)
  const pinned = agentConfig('pinned', `federation: {roster: roster.yaml, rosterSha256: ${sha256(roster).toUpperCase()}}\n`)
  const config = loadAgentConfig(pinned)
  assert.equal(config.federation?.roster, roster)
  assert.equal(config.federation?.rosterSha256, sha256(roster))
  assert.deepEqual(config.roster?.ids, [a.peerId, b.peerId])
  const wrong = agentConfig('wrong-pin', `federation: {roster: roster.yaml, rosterSha256: "${'0'.repeat(64)}"}\n`)
  assert.throws(() => loadAgentConfig(wrong), configError('federation.rosterSha256', wrong, new RegExp(`roster file ${roster} has sha-256 ${sha256(roster)}, not the pinned 0{64}`)))
  // (unquoted, YAML reads an all-digit hash as a number: the message says what to do)
  const unquoted = agentConfig('unquoted-pin', `federation: {roster: roster.yaml, rosterSha256: ${'1'.repeat(64)}}\n`)
  assert.throws(() => loadAgentConfig(unquoted), configError('federation.rosterSha256', unquoted, /quote it/))
  const short = agentConfig('short-pin', 'federation: {roster: roster.yaml, rosterSha256: abc}\n')
  assert.throws(() => loadAgentConfig(short), configError('federation.rosterSha256', short, /64 hex digits/))
  const absent = agentConfig('absent-roster', 'federation: {roster: nowhere.yaml}\n')
  assert.throws(() => loadAgentConfig(absent), configError('federation.roster', absent, /roster file .*nowhere\.yaml: file not found/))
  // A mistake inside the roster names the roster file.
  writeFileSync(join(dir, 'broken-roster.yaml'), 'agents: [nobody]\n')
  const broken = agentConfig('broken', 'federation: {roster: broken-roster.yaml}\n')
  assert.throws(() => loadAgentConfig(broken), configError('agents[0]', join(dir, 'broken-roster.yaml'), /not a libp2p peer id/))
})

test('agent config: network.dialAllow rules are checked', () => {
  writeFileSync(join(dir, 'roster.yaml'), `agents: [${a.peerId}]\n`)
  const ok = agentConfig('dial-ok', 'federation: {roster: roster.yaml}\nnetwork: {dialAllow: [public, loopback, 10.1.0.0/16, "fd00::/8", site-b.example.org]}\n')
  assert.deepEqual(loadAgentConfig(ok).network?.dialAllow, ['public', 'loopback', '10.1.0.0/16', 'fd00::/8', 'site-b.example.org'])
  const bad = agentConfig('dial-bad', 'federation: {roster: roster.yaml}\nnetwork: {dialAllow: [public, 10.0.0.0/33]}\n')
  assert.throws(() => loadAgentConfig(bad), configError('network.dialAllow[1]', bad, /prefix length must be 0-32/))
  const empty = agentConfig('dial-empty', 'federation: {roster: roster.yaml}\nnetwork: {dialAllow: []}\n')
  assert.throws(() => loadAgentConfig(empty), configError('network.dialAllow', empty, /at least one rule/))
})

test('coordinator config: `agents` inline or the path of the same roster file', () => {
  const roster = join(dir, 'shared-roster.yaml')
  writeFileSync(roster, `agents:\n  - { id: ${a.peerId}, name: site-a }\n  - ${b.peerId}\n`)
  const file = join(dir, 'coordinator.yaml')
  const base = 'identity: c.key\nspec: spec.yaml\nstore: c.db\n'
  writeFileSync(file, `${base}agents: shared-roster.yaml\n`)
  const config = loadCoordinatorConfig(file)
  assert.deepEqual(config.agents, [a.peerId, b.peerId])
  assert.equal(config.rosterFile, roster)
  writeFileSync(file, `${base}agents: [${c.peerId}]\n`)
  assert.deepEqual(loadCoordinatorConfig(file).agents, [c.peerId])
  assert.equal(loadCoordinatorConfig(file).rosterFile, undefined)
  writeFileSync(file, `${base}agents: missing.yaml\n`)
  assert.throws(() => loadCoordinatorConfig(file), configError('agents', file, /roster file .*missing\.yaml: file not found/))
  writeFileSync(file, `${base}agents: 7\n`)
  assert.throws(() => loadCoordinatorConfig(file), configError('agents', file, /a list of peer ids, or the path of a roster file/))
  writeFileSync(file, `${base}agents: shared-roster.yaml\nnetwork: {announceAllow: [nonsense/8]}\n`)
  assert.throws(() => loadCoordinatorConfig(file), configError('network.announceAllow[0]', file, /CIDR/))
})

test('agent reload (SIGHUP): takes a good roster into the same live set, keeps the old one on any failure', async () => {
  const rosterFile = join(dir, 'live-roster.yaml')
  writeFileSync(rosterFile, `agents: [${a.peerId}, ${b.peerId}]\n`)
  writeIdentity(join(dir, 'live.key'), a)
  const file = agentConfig('live', 'federation: {roster: live-roster.yaml}\n')
  const lines: string[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } })
  const daemon = new AgentDaemon({ config: loadAgentConfig(file), logger, benchSyntheticInput: true })
  await daemon.start()
  try {
    const live = daemon.roster
    assert.deepEqual([...live], [a.peerId, b.peerId])
    const errors = (): number => lines.filter(l => l.includes('roster reload failed')).length

    // Not a roster: refused, the old one stays.
    writeFileSync(rosterFile, 'agents: [nobody]\n')
    await daemon.reload()
    assert.equal(errors(), 1)
    assert.deepEqual([...daemon.roster], [a.peerId, b.peerId])
    // A roster without this agent's own id: refused too (every round would be).
    writeFileSync(rosterFile, `agents: [${b.peerId}, ${c.peerId}]\n`)
    await daemon.reload()
    assert.equal(errors(), 2)
    assert.match(lines.at(-1) ?? '', /does not list this agent's own peer id/)
    assert.deepEqual([...daemon.roster], [a.peerId, b.peerId])
    // A good roster under a pin that does not match it: refused.
    writeFileSync(rosterFile, `agents: [${a.peerId}, ${c.peerId}]\n`)
    writeFileSync(file, readFileSync(file, 'utf8').replace('federation: {roster: live-roster.yaml}', `federation: {roster: live-roster.yaml, rosterSha256: ${'f'.repeat(64)}}`))
    await daemon.reload()
    assert.equal(errors(), 3)
    assert.match(lines.at(-1) ?? '', /rosterSha256/)
    assert.deepEqual([...daemon.roster], [a.peerId, b.peerId])
    // The right pin: taken, in the same Set the round service and the gater read.
    writeFileSync(file, readFileSync(file, 'utf8').replace('f'.repeat(64), sha256(rosterFile)))
    await daemon.reload()
    assert.equal(errors(), 3)
    assert.equal(daemon.roster, live)
    assert.deepEqual([...live], [a.peerId, c.peerId])
    const reloaded = JSON.parse(lines.find(l => l.includes('roster reloaded')) ?? '{}')
    assert.deepEqual([reloaded.added, reloaded.removed], [[c.peerId], [b.peerId]])
  } finally {
    await daemon.stop()
  }
})

test('agent start: a roster that does not list this agent is an error naming federation.roster', async () => {
  const rosterFile = join(dir, 'others.yaml')
  writeFileSync(rosterFile, `agents: [${b.peerId}, ${c.peerId}]\n`)
  writeIdentity(join(dir, 'outsider.key'), a)
  const file = agentConfig('outsider', 'federation: {roster: others.yaml}\n')
  const daemon = new AgentDaemon({ config: loadAgentConfig(file), logger: createLogger('test', 'silent'), benchSyntheticInput: true })
  await assert.rejects(daemon.start(), configError('federation.roster', file, new RegExp(`${rosterFile} does not list this agent's own peer id ${a.peerId}`)))
  await daemon.stop()
})
