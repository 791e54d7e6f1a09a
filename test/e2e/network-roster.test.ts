import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { stringify as toYaml } from 'yaml'
import { Federation, sampleRecords, T0, DAY } from './helpers/federation.js'
import { killAllDaemons, killProcessGroup, waitFor, httpJson } from './helpers/processes.js'
import { RawPeer } from './helpers/raw-peer.js'
import { sendControl } from '../../shared/net/messenger.js'
import { HELLO_PROTOCOL, secaggProtocol } from '../../shared/wire/protocols.js'
import type { Hello } from '../../shared/wire/control.js'

/*
 * Item 2 of the security review, with real processes: the coordinator's roster lists a peer it made up (a
 * sybil) that the federation's roster file, every agent's copy, does not. The sybil can join the coordinator
 * and be invited to a round, but no agent lets it connect. Once the sites' roster file lists it and the
 * agents got SIGHUP, it is admitted like any participant; once the coordinator's roster file drops it and the
 * coordinator got SIGHUP, the coordinator lets it go.
 */

const SITES = ['site-1', 'site-2', 'site-3']
const WEEK = 7 * DAY
let fed: Federation
let sybil: RawPeer
let passed = 0
const TESTS = 3

before(async () => {
  fed = await Federation.create({
    sites: SITES.map((name, i) => ({ name, records: sampleRecords(600 + i, 200, { weeks: 2 }) })),
    coordinatorOnly: ['sybil']
  })
  // The coordinator's own roster file: the federation's plus the sybil (reloaded on SIGHUP below).
  const coordinatorRoster = [...SITES, 'sybil'].map(name => ({ id: fed.ids[name], name }))
  writeFileSync(join(fed.root, 'coordinator-roster.yaml'), toYaml({ agents: coordinatorRoster }))
  const config = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8'))
  config.agents = 'coordinator-roster.yaml'
  writeFileSync(fed.coordinatorConfig, JSON.stringify(config, null, 1))
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
  // The sybil says hello to the coordinator, so the coordinator counts it online and invites it.
  sybil = await RawPeer.start({ keyFile: fed.keys.sybil, target: fed.coordinatorAddr })
  await sybil.connect()
  const hello: Hello = { type: 'hello', addrs: ['/ip4/127.0.0.1/tcp/9'], version: 'sybil' }
  await sendControl(sybil.node, fed.ids.coordinator, HELLO_PROTOCOL, hello)
  await fed.waitForOnline([...SITES, 'sybil'])
})

after(async () => {
  await sybil?.stop()
  await killAllDaemons()
  if (fed === undefined) return
  if (process.env.FEDMON_KEEP_E2E === undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

function listenAddr (site: string): string {
  const addr = /listening on (\S+?)(,|\s|$)/.exec(fed.daemons[site].log())?.[1]
  assert.ok(addr !== undefined, `${site} printed its address`)
  return addr
}

/** Starts a round on week `w` and waits until every agent has taken its Announce (accepted or refused it). */
async function roundWithSybil (w: number): Promise<string> {
  const roundId = await fed.startRound({ from: T0 + w * WEEK, to: T0 + (w + 1) * WEEK })
  await waitFor(`every agent to take round ${roundId}`, () => SITES.every(s => fed.daemons[s].log().split('\n').some(l => l.includes(roundId) && /round accepted|round refused/.test(l))), { timeoutMs: 20_000 })
  return roundId
}

/**
 * Whether the sybil gets a working connection to `addr`: it can open a stream there. (A refused dialler may
 * finish its side of the handshake before the listener's refusal closes the connection, so a dial that
 * resolves proves nothing.)
 */
async function sybilReaches (addr: string, protocol: string): Promise<boolean> {
  const signal = AbortSignal.timeout(5_000)
  try {
    const connection = await sybil.node.dial(multiaddr(addr), { signal, force: true })
    const stream = await connection.newStream(protocol, { signal })
    stream.abort(new Error('only probing'))
    return true
  } catch {
    return false
  }
}
const sybilDials = async (site: string): Promise<boolean> => await sybilReaches(listenAddr(site), secaggProtocol('shares'))

test('a sybil on the coordinator\'s roster only: invited to a round, yet no agent lets it connect', async () => {
  const roundId = await roundWithSybil(0)
  for (const site of SITES) {
    assert.equal(await sybilDials(site), false, `${site} refuses the sybil`)
    await waitFor(`${site} to log the refusal`, () => fed.daemons[site].log().split('\n').some(l => l.includes('connection refused: peer not on the roster') && l.includes(fed.ids.sybil)))
  }
  const outcome = await fed.roundOutcome(roundId)
  assert.ok(outcome.invited.includes(fed.ids.sybil), 'the coordinator invited its sybil')
  // Whatever else the round did, the sybil contributed nothing (it could not even reach a neighbour).
  assert.ok(!outcome.included.includes(fed.ids.sybil))
  passed++
})

test('the sites\' roster file lists the sybil and the agents get SIGHUP: it is admitted as a participant', async () => {
  const members = [...SITES, 'sybil'].map(name => ({ id: fed.ids[name], name }))
  writeFileSync(fed.rosterFile, toYaml({ agents: members }))
  for (const site of SITES) killProcessGroup(fed.daemons[site], 'SIGHUP')
  for (const site of SITES) {
    await waitFor(`${site} to reload its roster`, () => fed.daemons[site].log().split('\n').some(l => l.includes('roster reloaded') && l.includes(fed.ids.sybil)))
  }
  assert.ok(SITES.every(s => fed.daemons[s].child.exitCode === null), 'SIGHUP does not stop an agent')
  const roundId = await roundWithSybil(1)
  const admitted = await Promise.all(SITES.map(async site => await sybilDials(site)))
  assert.deepEqual(admitted, SITES.map(() => true), 'every agent admits the participant now on its roster')
  await fed.roundOutcome(roundId)
  passed++
})

test('the coordinator\'s roster file drops the sybil and the coordinator gets SIGHUP: it is disconnected and no longer listed', async () => {
  const coordinatorRoster = join(fed.root, 'coordinator-roster.yaml')
  writeFileSync(coordinatorRoster, toYaml({ agents: SITES.map(name => ({ id: fed.ids[name], name })) }))
  killProcessGroup(fed.daemons.coordinator, 'SIGHUP')
  await waitFor('the coordinator to reload its roster', () => fed.daemons.coordinator.log().split('\n').some(l => l.includes('roster reloaded') && l.includes(fed.ids.sybil)))
  await waitFor('the sybil to lose its connection to the coordinator', () => sybil.connections().length === 0)
  const { body } = await httpJson(`${fed.api}/v1/agents`)
  assert.deepEqual((body.agents as Array<{ peerId: string }>).map(a => a.peerId).sort(), SITES.map(s => fed.ids[s]).sort())
  assert.equal(await sybilReaches(fed.coordinatorAddr, HELLO_PROTOCOL), false, 'the coordinator refuses it from now on')
  // A broken roster file on the next SIGHUP: the coordinator keeps the current roster and keeps serving.
  writeFileSync(coordinatorRoster, 'agents: [nobody]\n')
  killProcessGroup(fed.daemons.coordinator, 'SIGHUP')
  await waitFor('the failed reload to be logged', () => fed.daemons.coordinator.log().includes('roster reload failed'))
  assert.equal((await httpJson(`${fed.api}/v1/agents`)).body.agents.length, SITES.length)
  await fed.waitForOnline(SITES)
  passed++
})
