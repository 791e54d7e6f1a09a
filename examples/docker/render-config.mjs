// Renders this container's fedmon config from its environment and the shared roster of peer ids.
// Only public facts cross containers: each service writes /roster/NAME.id (its peer id); private keys
// stay in the service's own volume. The coordinator and every agent each build the federation's roster
// file (roster.yaml in their own state volume) from the ids of the FEDMON_AGENTS services, as each site
// published its own: agents never take the roster from the coordinator.
// Usage: node render-config.mjs coordinator|agent NAME
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { stringify } from 'yaml'

/** The API listens on every interface of the container, so it needs a bearer token: made once, kept in the state volume. */
function apiTokenFile () {
  if (env.FEDMON_API_TOKEN_FILE) return env.FEDMON_API_TOKEN_FILE
  const file = join(state, 'api.token')
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
  return file
}

const [role, name] = process.argv.slice(2)
const env = process.env
// The directories are fixed in the image; the overrides exist so the test suite can render configs in a temp dir.
const state = env.FEDMON_STATE_DIR ?? '/var/lib/fedmon'
const roster = env.FEDMON_ROSTER_DIR ?? '/roster'
const dataDir = env.FEDMON_DATA_DIR ?? '/data'

const peerId = JSON.parse(readFileSync(join(state, 'identity.json'), 'utf8')).peerId
writeFileSync(join(roster, `${name}.id`), `${peerId}\n`)

async function waitForIds (names, timeoutS = 300) {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const missing = names.filter(n => !existsSync(join(roster, `${n}.id`)))
    if (missing.length === 0) return Object.fromEntries(names.map(n => [n, readFileSync(join(roster, `${n}.id`), 'utf8').trim()]))
    if (Date.now() > deadline) throw new Error(`roster incomplete after ${timeoutS}s: waiting for ${missing.join(', ')}`)
    console.log(`fedmon: waiting for peer ids of ${missing.join(', ')} in ${roster}`)
    await new Promise(resolve => setTimeout(resolve, 2000))
  }
}

/** Writes the federation's roster file (the same bytes in every container) from the agent services' ids. */
async function writeRoster () {
  const agents = (env.FEDMON_AGENTS ?? '').split(/[\s,]+/).filter(Boolean)
  if (agents.length === 0) throw new Error('FEDMON_AGENTS must list the agent service names')
  const ids = await waitForIds(agents)
  writeFileSync(join(state, 'roster.yaml'), stringify({ agents: agents.map(a => ({ id: ids[a], name: a })) }))
  return 'roster.yaml' // relative to the config file, which is written next to it
}

if (role === 'coordinator') {
  const config = {
    identity: join(state, 'identity.key'),
    listen: [`/ip4/0.0.0.0/tcp/${env.FEDMON_P2P_PORT ?? 4001}`],
    agents: await writeRoster(),
    spec: env.FEDMON_SPEC ?? '/etc/fedmon/spec.yaml',
    store: join(state, 'coordinator.db'),
    api: { listen: `0.0.0.0:${env.FEDMON_API_PORT ?? 7600}`, tokenFile: apiTokenFile() },
    privacy: { minAgents: Number(env.FEDMON_MIN_AGENTS ?? 3) },
    ...(env.FEDMON_SCHEDULE_EVERY ? { schedule: { every: env.FEDMON_SCHEDULE_EVERY, delay: env.FEDMON_SCHEDULE_DELAY ?? '15m' } } : {}),
    alerts: [
      { metric: 'performance.auc.value', below: Number(env.FEDMON_ALERT_AUC_BELOW ?? 0.75) },
      { metric: 'performance.auc.value', dropFromReference: 0.05 },
      { metric: 'drift.*.psi', above: 0.25 }
    ],
    webhooks: (env.FEDMON_WEBHOOKS ?? '').split(/[\s,]+/).filter(Boolean)
  }
  writeFileSync(join(state, 'coordinator.yaml'), stringify(config))
} else {
  const coordinatorName = env.FEDMON_COORDINATOR ?? 'coordinator'
  const { [coordinatorName]: coordinatorId } = await waitForIds([coordinatorName])
  // Resolve the service name here: the multiaddr then needs no DNS support in the transport.
  const { address } = await lookup(coordinatorName, { family: 4 })
  if (env.FEDMON_DEMO_DATA === '1' && !readdirSync(dataDir).some(f => !f.startsWith('.'))) {
    // First start with an empty data volume: fill it with this site's synthetic demo logs.
    const { writeSiteData, demoWindows, DEMO_SITES } = await import(new URL('../../dist/bin/demo/data.js', import.meta.url).href)
    const index = Math.max(0, DEMO_SITES.indexOf(name))
    mkdirSync(join(dataDir, 'demo'), { recursive: true })
    const res = await writeSiteData(join(dataDir, 'demo'), index, Number(env.FEDMON_DEMO_ROWS ?? 20000), demoWindows())
    console.log(`fedmon: wrote ${res.records} demo records to ${res.dir}`)
  }
  const config = {
    identity: join(state, 'identity.key'),
    listen: [`/ip4/0.0.0.0/tcp/${env.FEDMON_P2P_PORT ?? 4002}`],
    coordinator: `/ip4/${address}/tcp/${env.FEDMON_COORDINATOR_P2P_PORT ?? 4001}/p2p/${coordinatorId}`,
    data: { path: env.FEDMON_DATA_GLOB ?? `${dataDir}/**/*.jsonl`, format: env.FEDMON_DATA_FORMAT ?? 'jsonl' },
    state: join(state, 'agent-state'),
    federation: { roster: await writeRoster() }
  }
  writeFileSync(join(state, 'agent.yaml'), stringify(config))
}
