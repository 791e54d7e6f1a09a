// docker-compose.yml cannot run here (no Docker engine): validate it with `docker-compose config` and
// check that its services run exactly the daemon commands the e2e tests run.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { repoRoot } from '../fixtures/repo.js'

/** The repository root: the nearest ancestor of this file with docker-compose.yml and package.json. */

const root = repoRoot()
const composeBinary = spawnSync('docker-compose', ['version'], { encoding: 'utf8' })
const haveCompose = composeBinary.error === undefined && composeBinary.status === 0

interface ComposeService { image?: string, build?: { context: string }, command?: string[], volumes?: Array<string | { source?: string, target: string }>, ports?: Array<string | { published?: string | number, target: number }>, environment?: Record<string, string> }

test('docker-compose.yml validates with `docker-compose config`', { skip: haveCompose ? false : 'docker-compose not installed (Debian package docker-compose; .ci/run installs it)' }, () => {
  const res = spawnSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config'], { encoding: 'utf8', cwd: root })
  assert.equal(res.status, 0, `docker-compose config failed: ${res.stderr}`)
  const config = parseYaml(res.stdout) as { services: Record<string, ComposeService>, volumes: Record<string, unknown> }
  const services = config.services
  assert.deepEqual(Object.keys(services).sort(), ['coordinator', 'site-a', 'site-b', 'site-c'])

  // One image for all, built from the Dockerfile.
  const images = new Set(Object.values(services).map(s => s.image))
  assert.equal(images.size, 1)
  for (const s of Object.values(services)) assert.ok(s.build !== undefined, 'every service builds the same image')

  // The commands are the daemons' own.
  assert.deepEqual(services.coordinator.command?.slice(0, 2), ['coordinator', '--config'])
  for (const site of ['site-a', 'site-b', 'site-c']) assert.deepEqual(services[site].command?.slice(0, 2), ['agent', '--config'])

  // Each site has its own data volume; nobody shares another's state.
  const target = (v: string | { source?: string, target: string }): [string, string] => typeof v === 'string' ? [v.split(':')[0], v.split(':')[1]] : [v.source ?? '', v.target]
  const dataVolumes = ['site-a', 'site-b', 'site-c'].map(s => services[s].volumes?.map(target).find(([, t]) => t === '/data')?.[0])
  assert.equal(new Set(dataVolumes).size, 3, `distinct data volumes: ${dataVolumes.join(', ')}`)
  const stateVolumes = Object.values(services).map(s => s.volumes?.map(target).find(([, t]) => t === '/var/lib/fedmon')?.[0])
  assert.equal(new Set(stateVolumes).size, 4)
  for (const v of [...dataVolumes, ...stateVolumes]) assert.ok(v !== undefined && v in config.volumes, `${v} is a named volume`)

  // The coordinator's API is published (on the host's loopback).
  const ports = JSON.stringify(services.coordinator.ports)
  assert.match(ports, /7600/)
})

test('the daemon commands in compose are the ones the e2e helpers run', { skip: existsSync(join(root, 'test', 'e2e', 'helpers', 'federation.ts')) ? false : 'e2e helpers not present' }, () => {
  const helpers = readFileSync(join(root, 'test', 'e2e', 'helpers', 'federation.ts'), 'utf8')
  assert.match(helpers, /\['coordinator', '--config', /)
  assert.match(helpers, /\['agent', '--config', /)
  const compose = parseYaml(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, ComposeService> }
  assert.deepEqual(compose.services.coordinator.command?.slice(0, 2), ['coordinator', '--config'])
})

test('Dockerfile: node:20-slim, npm ci, build; the entrypoint generates keys with fedmon keygen', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')
  assert.match(dockerfile, /^FROM node:20-slim/m)
  assert.match(dockerfile, /npm ci/)
  assert.match(dockerfile, /tsc -p tsconfig\.json/)
  assert.match(dockerfile, /ENTRYPOINT \["\/app\/examples\/docker\/entrypoint\.sh"\]/)
  const entrypoint = join(root, 'examples', 'docker', 'entrypoint.sh')
  assert.match(readFileSync(entrypoint, 'utf8'), /fedmon keygen --out/)
  const sh = spawnSync('sh', ['-n', entrypoint], { encoding: 'utf8' })
  assert.equal(sh.status, 0, sh.stderr)
  const node = spawnSync(process.execPath, ['--check', join(root, 'examples', 'docker', 'render-config.mjs')], { encoding: 'utf8' })
  assert.equal(node.status, 0, node.stderr)
  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8')
  assert.match(ignore, /^node_modules$/m)
})

test('the container config renderer writes configs the real schemas accept, from the roster of peer ids', async (t) => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { generateIdentity } = await import('../../shared/identity.js')
  const { loadCoordinatorConfig } = await import('../../shared/config/coordinator.js')
  const { loadAgentConfig } = await import('../../shared/config/agent.js')
  const { sha256Hex } = await import('../../shared/config/roster.js')
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-render-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const rosterDir = join(dir, 'roster')
  mkdirSync(rosterDir)
  // The coordinator's service name must resolve: "localhost" stands in for "coordinator" here.
  const names = ['localhost', 'site-a', 'site-b', 'site-c']
  const ids: Record<string, string> = {}
  for (const name of names) {
    mkdirSync(join(dir, name))
    ids[name] = (await generateIdentity()).peerId
    writeFileSync(join(dir, name, 'identity.json'), JSON.stringify({ peerId: ids[name] }))
    writeFileSync(join(rosterDir, `${name}.id`), `${ids[name]}\n`) // as if every service had started once
  }
  const script = join(root, 'examples', 'docker', 'render-config.mjs')
  const render = (role: string, name: string, extra: Record<string, string>): void => {
    const res = spawnSync(process.execPath, [script, role, name], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, FEDMON_STATE_DIR: join(dir, name), FEDMON_ROSTER_DIR: rosterDir, FEDMON_DATA_DIR: join(dir, name), ...extra }
    })
    assert.equal(res.status, 0, `${role} ${name}: ${res.stderr}`)
  }
  render('coordinator', 'localhost', { FEDMON_AGENTS: 'site-a site-b site-c' })
  const coordinator = loadCoordinatorConfig(join(dir, 'localhost', 'coordinator.yaml'))
  assert.deepEqual(coordinator.agents, [ids['site-a'], ids['site-b'], ids['site-c']])
  assert.equal(coordinator.api.listen, '0.0.0.0:7600')
  for (const site of ['site-a', 'site-b', 'site-c']) {
    render('agent', site, { FEDMON_COORDINATOR: 'localhost', FEDMON_AGENTS: 'site-a site-b site-c' })
    const agent = loadAgentConfig(join(dir, site, 'agent.yaml'))
    assert.equal(agent.coordinator, `/ip4/127.0.0.1/tcp/4001/p2p/${ids.localhost}`)
    // Each site's own roster file, with the same bytes as the coordinator's.
    assert.deepEqual(agent.roster?.ids, coordinator.agents)
    assert.equal(agent.roster?.sha256, sha256Hex(readFileSync(join(dir, 'localhost', 'roster.yaml'))))
    assert.equal(agent.data.path, `${join(dir, site)}/**/*.jsonl`)
  }
})
