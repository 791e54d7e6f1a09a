import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAgentConfig, coordinatorPeerId } from '../../shared/config/agent.js'
import { loadCoordinatorConfig, parseHostPort } from '../../shared/config/coordinator.js'
import { generateIdentity, writeIdentity, loadIdentity, loadOrCreateIdentity } from '../../shared/identity.js'
import { ConfigError } from '../../shared/errors.js'
import { parseWindowArg } from '../../bin/cmds/round.js'

const dir = mkdtempSync(join(tmpdir(), 'fedmon-config-'))

test('identity keys: 0600 protobuf, reload to the same peer id, created when missing', async () => {
  const id = await generateIdentity()
  const file = join(dir, 'keys', 'a.key')
  writeIdentity(file, id)
  assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.equal(statSync(file).size, 68)
  assert.equal(loadIdentity(file).peerId, id.peerId)
  assert.match(id.peerId, /^12D3KooW/)
  assert.throws(() => writeIdentity(file, id), /already exists/)
  const created = await loadOrCreateIdentity(join(dir, 'new.key'))
  assert.equal(created.created, true)
  assert.equal((await loadOrCreateIdentity(join(dir, 'new.key'))).peerId, created.peerId)
  writeFileSync(join(dir, 'junk.key'), 'junk')
  assert.throws(() => loadIdentity(join(dir, 'junk.key')), /not a libp2p private key/)
})

test('agent config: YAML, relative paths resolved against the config file, errors name file and field', async () => {
  const coord = await generateIdentity()
  const site = await generateIdentity()
  const file = join(dir, 'agent.yaml')
  writeFileSync(join(dir, 'roster.yaml'), `agents: [${site.peerId}]\n`)
  const federation = 'federation: {roster: roster.yaml}\n'
  writeFileSync(file, `identity: keys/site.key\ncoordinator: /ip4/127.0.0.1/tcp/4001/p2p/${coord.peerId}\ndata:\n  path: data/*.jsonl\nstate: state\n${federation}`)
  const config = loadAgentConfig(file)
  assert.equal(config.identity, join(dir, 'keys/site.key'))
  assert.equal(config.data.path, join(dir, 'data/*.jsonl'))
  assert.equal(config.federation?.roster, join(dir, 'roster.yaml'))
  assert.deepEqual(config.roster?.ids, [site.peerId])
  assert.deepEqual(config.listen, ['/ip4/127.0.0.1/tcp/0'])
  assert.equal(coordinatorPeerId(config.coordinator), coord.peerId)
  writeFileSync(file, 'identity: k\ncoordinator: /ip4/127.0.0.1/tcp/4001\ndata: {path: x}\nstate: s\n')
  assert.throws(() => loadAgentConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'coordinator' && err.message.includes(file) && /p2p/.test(err.message))
  writeFileSync(file, `identity: k\ncoordinator: /ip4/127.0.0.1/tcp/4001/p2p/${coord.peerId}\ndata: {path: x, format: xml}\nstate: s\n`)
  assert.throws(() => loadAgentConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'data.format')
  // The policy: defaults under whatever the file sets; a bad rule is named.
  assert.deepEqual(config.policy, { maxWindowLeadMs: 60_000, maxAnnounceAgeMs: 600_000, minWindowMs: 3_600_000, maxWindowMs: 31 * 86_400_000, maxWindowAgeMs: 730 * 86_400_000, minRecords: 10, maxBadRecordFraction: 0.05 })
  const base = `identity: k\ncoordinator: /ip4/127.0.0.1/tcp/4001/p2p/${coord.peerId}\ndata: {path: x.jsonl}\nstate: s\n${federation}`
  writeFileSync(file, `${base}policy: {minAgents: 4, maxAnnounceAgeMs: 5000, allowedColumns: [score, label], maxBucketsPerFeature: 12, minRecords: 50}\n`)
  assert.deepEqual(loadAgentConfig(file).policy, { minAgents: 4, maxWindowLeadMs: 60_000, maxAnnounceAgeMs: 5000, minWindowMs: 3_600_000, maxWindowMs: 31 * 86_400_000, maxWindowAgeMs: 730 * 86_400_000, minRecords: 50, maxBadRecordFraction: 0.05, allowedColumns: ['score', 'label'], maxBucketsPerFeature: 12 })
  writeFileSync(file, `${base}policy: {maxScoreBins: 1}\n`)
  assert.throws(() => loadAgentConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'policy.maxScoreBins' && err.message.includes(file))
  writeFileSync(file, `${base}policy: {maxBuckets: 3}\n`)
  assert.throws(() => loadAgentConfig(file), (err: unknown) => err instanceof ConfigError && err.message.includes(file) && /maxBuckets/.test(err.message))
})

test('coordinator config: defaults, roster ids checked, api listen parsed', async () => {
  const agent = await generateIdentity()
  const file = join(dir, 'coordinator.json')
  writeFileSync(file, JSON.stringify({ identity: 'c.key', agents: [agent.peerId], spec: 'spec.yaml', store: 'db/c.db', api: { listen: '127.0.0.1:7601', tokenFile: 'token' } }))
  const config = loadCoordinatorConfig(file)
  assert.equal(config.privacy.minAgents, 3)
  assert.equal(config.round.phaseTimeoutMs, 30_000)
  assert.equal(config.store, join(dir, 'db/c.db'))
  assert.equal(config.api.tokenFile, join(dir, 'token'))
  assert.deepEqual(parseHostPort(config.api.listen), { host: '127.0.0.1', port: 7601 })
  writeFileSync(file, JSON.stringify({ identity: 'c.key', agents: [agent.peerId, 'bob'], spec: 's', store: 'd' }))
  assert.throws(() => loadCoordinatorConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'agents[1]')
  writeFileSync(file, JSON.stringify({ identity: 'c.key', agents: [agent.peerId], spec: 's', store: 'd', privacy: { minAgents: 1 } }))
  assert.throws(() => loadCoordinatorConfig(file), (err: unknown) => err instanceof ConfigError && err.field === 'privacy.minAgents')
})

test('round run --window parses ISO and epoch ms', () => {
  assert.deepEqual(parseWindowArg('2025-12-01T00:00:00Z..2025-12-08T00:00:00Z'), { from: Date.UTC(2025, 11, 1), to: Date.UTC(2025, 11, 8) })
  assert.deepEqual(parseWindowArg('0..1000'), { from: 0, to: 1000 })
  assert.throws(() => parseWindowArg('1000..0'), /before/)
  assert.throws(() => parseWindowArg('nonsense'), /FROM\.\.TO/)
})
