import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { stringify as toYaml } from 'yaml'
import { Federation, sampleRecords } from './helpers/federation.js'
import { killAllDaemons, waitFor, httpJson } from './helpers/processes.js'

/*
 * Issue 14, with real processes: a site the coordinator's roster does not list says so in its own log (one line
 * naming the coordinator), and both daemons take a roster file edited on disk without a SIGHUP — validated
 * first: a broken file keeps the roster they have and says why.
 */

const SITES = ['site-1', 'site-2']
let fed: Federation
let coordinatorRoster = ''
let passed = 0
const TESTS = 3

const lines = (who: string): string[] => fed.daemons[who].log().split('\n')
const writeRoster = (file: string, names: string[]): void => {
  // As editors and config tools do: write a new file, then rename it over the old one.
  writeFileSync(`${file}.tmp`, toYaml({ agents: names.map(name => ({ id: fed.ids[name], name })) }))
  renameSync(`${file}.tmp`, file)
}

before(async () => {
  fed = await Federation.create({ sites: SITES.map((name, i) => ({ name, records: sampleRecords(700 + i, 50, { weeks: 1 }) })) })
  await fed.keygen('newcomer')
  // The coordinator's own roster file lists site-1 only; the sites' copy lists both.
  coordinatorRoster = join(fed.root, 'coordinator-roster.yaml')
  writeRoster(coordinatorRoster, ['site-1'])
  const config = JSON.parse(readFileSync(fed.coordinatorConfig, 'utf8'))
  config.agents = 'coordinator-roster.yaml'
  writeFileSync(fed.coordinatorConfig, JSON.stringify(config, null, 1))
  await fed.startCoordinator()
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(['site-1'])
})

after(async () => {
  await killAllDaemons()
  if (fed === undefined) return
  if (process.env.FEDMON_KEEP_E2E === undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

test('a site the coordinator does not list logs one line: not on the roster of <coordinator>', async () => {
  const said = await waitFor('site-2 to say it is not on the roster', () => lines('site-2').find(l => l.includes(`not on the roster of ${fed.ids.coordinator}`)), { timeoutMs: 15_000 })
  assert.ok(said.includes(fed.ids['site-2']), 'the line names the agent\'s own peer id, to hand to the coordinator\'s operator')
  assert.ok(!lines('site-1').some(l => l.includes('not on the roster of')), 'a listed site says nothing of the kind')
  passed++
})

test('the coordinator takes its roster file edited on disk (no SIGHUP); a broken edit keeps the roster', async () => {
  writeRoster(coordinatorRoster, SITES)
  await waitFor('the coordinator to reload its roster', () => lines('coordinator').some(l => l.includes('roster reloaded') && l.includes(fed.ids['site-2'])), { timeoutMs: 10_000 })
  await fed.waitForOnline(SITES, 20_000)
  writeFileSync(coordinatorRoster, 'agents: [nobody]\n')
  await waitFor('the failed reload to be logged', () => lines('coordinator').find(l => l.includes('roster reload failed') && l.includes('coordinator-roster.yaml')), { timeoutMs: 10_000 })
  const { body } = await httpJson(`${fed.api}/v1/agents`)
  assert.deepEqual((body.agents as Array<{ peerId: string }>).map(a => a.peerId).sort(), SITES.map(s => fed.ids[s]).sort(), 'the roster it had stays')
  assert.equal(fed.daemons.coordinator.child.exitCode, null)
  passed++
})

test('agents take the federation\'s roster file edited on disk', async () => {
  writeRoster(fed.rosterFile, [...SITES, 'newcomer'])
  for (const site of SITES) {
    await waitFor(`${site} to reload its roster`, () => lines(site).some(l => l.includes('roster reloaded') && l.includes(fed.ids.newcomer)), { timeoutMs: 10_000 })
  }
  passed++
})
