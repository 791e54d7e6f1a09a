/**
 * The roster-bitmap Announce over real processes (issue 15 §2): a coordinator that names the round's
 * participants by their bits over the roster (forced here from 1 participant on; by default from 1,000) and 4
 * agent daemons that rebuild the list from their own roster file. The Announce carries no address: the shares
 * travel peer to peer to the addresses each agent's key set brought, and the round is exact.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Federation, sampleRecords, dayWindows } from './helpers/federation.js'
import { killAllDaemons } from './helpers/processes.js'

const SITES = ['site-1', 'site-2', 'site-3', 'site-4']
let fed: Federation
let ok = false
const freshWindow = dayWindows(14)

before(async () => {
  fed = await Federation.create({ sites: SITES.map((name, i) => ({ name, records: sampleRecords(60 + i, 200, { weeks: 2 }) })), privacy: { minAgents: 3 } })
  await fed.startCoordinator({ FEDMON_TEST_COMPACT_ANNOUNCE_FROM: '1' })
  for (const site of SITES) fed.startAgent(site)
  await fed.waitForOnline(SITES)
})

after(async () => {
  await killAllDaemons()
  if (ok && process.env.FEDMON_KEEP_E2E === undefined) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

test('a round whose Announce names participants by roster bits: agents rebuild the list, learn addresses from their key sets, the sum is exact', async (t) => {
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  const outcome = await fed.roundOutcome(roundId)
  await fed.assertExactReport(outcome, window, SITES)
  for (const site of SITES) {
    const accepted = fed.daemons[site].log().split('\n').find(l => l.includes(roundId) && l.includes('round accepted'))
    assert.ok(accepted !== undefined && JSON.parse(accepted).listedBy === 'roster bits', `${site} rebuilt the participants from roster bits: ${accepted}`)
  }
  for (const site of SITES) assert.ok(!fed.daemons[site].log().includes('round refused'), `${site} refused: ${fed.daemons[site].log().split('\n').filter(l => l.includes('refused')).join('\n')}`)
  t.diagnostic(`round ${roundId}: done over ${SITES.length} agents in ${Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt)} ms with the roster-bitmap Announce`)
  ok = true
})
