import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Federation, sampleRecords, T0, DAY, type SampleRecord, dayWindows } from './helpers/federation.js'
import { CLI, killAllDaemons, waitFor, httpJson, sleep } from './helpers/processes.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'

/*
 * A network partition, for real: one agent (site-5) runs in its own network namespace, joined to the host by
 * a veth pair; the coordinator and the other agents listen on loopback and on the host end of the pair.
 * Mid-round (as soon as site-5 has accepted the Announce) the host end is set down: packets are lost, no FIN
 * or RST, exactly as a cut cable. The round must finish without site-5, with exactly the others' counts. Then
 * the link comes back up, site-5's connection recovers (or it reconnects), and the next round includes it.
 * Needs root (CAP_NET_ADMIN, `ip netns`); skipped with the reason otherwise.
 */

// Four others: with t = 3, each survivor's shares must be held by 3 survivors once the cut agent is gone.
const CORE = ['site-1', 'site-2', 'site-3', 'site-4']
const CUT = 'site-5'
const WEEKS = 2
const PHASE_TIMEOUT_MS = 3000
const records: Record<string, SampleRecord[]> = {}
// At least 200 records a week per site: every one-day window then holds more than the agents' default
// policy.minRecords (10) of each site's records.
for (const [i, name] of [...CORE, CUT].entries()) records[name] = sampleRecords(7000 + i, 200 + 10 * i, { weeks: WEEKS })

// Names unique to this run (interface names are at most 15 characters); a /30 in 10.213/16 for the pair.
const tag = String(process.pid % 100_000)
const NS = `fedmon-nd-${tag}`
const VETH_HOST = `vfh${tag}`
const VETH_NS = `vfn${tag}`
const octet = process.pid % 250
const HOST_IP = `10.213.${octet}.1`
const NS_IP = `10.213.${octet}.2`

let skipReason: string | null = null
let netnsCreated = false
let fed: Federation
let cutAgent: { child: ChildProcess, exited: Promise<unknown>, logFile: string } | null = null
let passed = 0
const TESTS = 3

function ip (...args: string[]): void {
  const res = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 })
  if (res.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(res.stderr ?? res.error?.message ?? '').trim()}`)
}

function setUpNetns (): void {
  ip('netns', 'add', NS)
  netnsCreated = true
  ip('link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS)
  ip('link', 'set', VETH_NS, 'netns', NS)
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', VETH_HOST)
  ip('link', 'set', VETH_HOST, 'up')
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', VETH_NS)
  ip('netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up')
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up')
}

function tearDownNetns (): void {
  if (!netnsCreated) return
  try { ip('netns', 'del', NS) } catch { /* already gone */ } // takes the veth pair with it
  try { ip('link', 'del', VETH_HOST) } catch { /* gone with the namespace */ }
}

const freshWindow = dayWindows(WEEKS * 7)


/** Root-namespace TCP sockets to `remoteIp` (hex in /proc/net/tcp) with their send queues. */
function sendQueuesTo (remoteIp: string): number[] {
  const hex = remoteIp.split('.').map(Number).reverse().map(n => n.toString(16).padStart(2, '0')).join('').toUpperCase()
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).flatMap((line) => {
    const f = line.trim().split(/\s+/)
    return f.length > 4 && f[2].startsWith(`${hex}:`) && f[3] === '01' ? [parseInt(f[4].split(':')[0], 16)] : []
  })
}

before(async () => {
  if (process.platform !== 'linux') { skipReason = 'network namespaces need Linux'; return }
  try {
    setUpNetns()
  } catch (err) {
    tearDownNetns()
    skipReason = `cannot create a network namespace and veth pair (needs root / CAP_NET_ADMIN): ${(err as Error).message}`
    return
  }
  fed = await Federation.create({
    sites: [...CORE, CUT].map(name => ({ name, records: records[name] })),
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  // The coordinator and the other agents also listen on the host end of the pair (reachable only from the
  // namespace); site-5 listens on its end and reaches the coordinator there.
  const port = /\/tcp\/(\d+)\//.exec(fed.coordinatorAddr)?.[1] as string
  const coordinatorConfig = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8'))
  coordinatorConfig.listen = [...coordinatorConfig.listen, `/ip4/${HOST_IP}/tcp/${port}`]
  writeFileSync(fed.coordinatorConfig, JSON.stringify(coordinatorConfig, null, 1))
  for (const site of CORE) {
    const config = JSON.parse(readFileSync(fed.agentConfig(site), 'utf8'))
    config.listen = ['/ip4/127.0.0.1/tcp/0', `/ip4/${HOST_IP}/tcp/0`]
    // Their coordinator is on loopback, so by default they would dial loopback and public addresses only:
    // site-5's private address must be allowed explicitly, as an operator would.
    config.network = { dialAllow: ['loopback', `${NS_IP}/32`] }
    writeFileSync(fed.agentConfig(site), JSON.stringify(config, null, 1))
  }
  const cutConfig = JSON.parse(readFileSync(fed.agentConfig(CUT), 'utf8'))
  cutConfig.listen = [`/ip4/${NS_IP}/tcp/0`]
  cutConfig.coordinator = `/ip4/${HOST_IP}/tcp/${port}/p2p/${fed.ids.coordinator}`
  writeFileSync(fed.agentConfig(CUT), JSON.stringify(cutConfig, null, 1))

  await fed.startCoordinator()
  for (const site of CORE) fed.startAgent(site)
  // site-5 inside the namespace (`ip netns exec` execs node in place: the pid is the agent's).
  const logFile = join(fed.root, `${CUT}.log`)
  const fd = openSync(logFile, 'a')
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, 'agent', '--config', fed.agentConfig(CUT)], {
    env: { ...process.env, FEDMON_LOG_LEVEL: 'info' }, stdio: ['ignore', fd, fd], detached: true
  })
  closeSync(fd)
  cutAgent = { child, logFile, exited: new Promise(resolve => child.once('close', resolve)) }
  await fed.waitForOnline([...CORE, CUT])
})

after(async () => {
  if (cutAgent !== null && cutAgent.child.exitCode === null && cutAgent.child.signalCode === null) {
    try { process.kill(-(cutAgent.child.pid as number), 'SIGKILL') } catch { /* gone */ }
    await cutAgent.exited
  }
  await killAllDaemons()
  tearDownNetns()
  if (fed === undefined) return
  if (process.env.FEDMON_KEEP_E2E === undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

const ms = (o: RoundOutcome): number => Date.parse(o.finishedAt ?? '') - Date.parse(o.startedAt)

/** site-5's log lines (parsed JSON) matching `msg`. */
function cutLog (msg: RegExp): Array<Record<string, unknown>> {
  return readFileSync(cutAgent?.logFile ?? '', 'utf8').split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    try {
      const o = JSON.parse(line) as Record<string, unknown>
      return msg.test(String(o.msg)) ? [o] : []
    } catch { return [] }
  })
}

test('an agent in its own network namespace takes part: the round over all five is exact', async (t) => {
  if (skipReason !== null) { t.skip(skipReason); return }
  const window = freshWindow()
  const outcome = await fed.roundOutcome(await fed.startRound(window))
  await fed.assertExactReport(outcome, window, [...CORE, CUT])
  t.diagnostic(`round ${outcome.id}: done, 5 included (site-5 over the veth pair ${VETH_HOST}/${VETH_NS}), exact (${ms(outcome)} ms)`)
  passed++
})

test('the agent is cut off mid-round (its link set down once it accepted the Announce): the round finishes without it, exactly', async (t) => {
  if (skipReason !== null) { t.skip(skipReason); return }
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  await waitFor('site-5 to accept the Announce', () => cutLog(/round accepted/).some(l => l.round === roundId), { timeoutMs: 15_000, intervalMs: 5 })
  ip('link', 'set', VETH_HOST, 'down')
  const cutAt = Date.now()
  const outcome = await fed.roundOutcome(roundId)
  const report = await fed.assertExactReport(outcome, window, CORE)
  assert.deepEqual(report.agents.dropped.map(id => fed.siteOf(id)), [CUT])
  assert.equal((await httpJson(`${fed.api}/healthz`)).status, 200)
  const sent = cutLog(/./).filter(l => l.round === roundId).map(l => String(l.msg))
  t.diagnostic(`round ${roundId}: done ${Date.parse(outcome.finishedAt ?? '') - cutAt} ms after the cut, site-5 dropped, 4 included, exact (${ms(outcome)} ms); site-5's log for the round: ${JSON.stringify(sent)}`)
  passed++
})

test('the link is healed: site-5\'s connection recovers and the next round includes it, exactly', async (t) => {
  if (skipReason !== null) { t.skip(skipReason); return }
  await sleep(500) // the cut round's last retransmissions into the void
  ip('link', 'set', VETH_HOST, 'up')
  const healedAt = Date.now()
  const connectedBefore = cutLog(/connected to the coordinator/).length
  // Healed = every root-namespace connection to site-5 has delivered what it held (TCP retransmits after
  // its backoff), and the coordinator counts site-5 online.
  await waitFor('the connections to site-5 to drain', () => sendQueuesTo(NS_IP).every(q => q === 0), { timeoutMs: 30_000, intervalMs: 100 })
  await fed.waitForOnline([...CORE, CUT])
  const recoveredMs = Date.now() - healedAt
  const window = freshWindow()
  const outcome = await fed.roundOutcome(await fed.startRound(window))
  await fed.assertExactReport(outcome, window, [...CORE, CUT])
  const reconnected = cutLog(/connected to the coordinator/).length - connectedBefore
  t.diagnostic(`healed: connections drained ${recoveredMs} ms after the link came up (${reconnected > 0 ? 'site-5 reconnected' : 'its connection survived the partition'}); round ${outcome.id}: done, 5 included, exact (${ms(outcome)} ms)`)
  passed++
})
