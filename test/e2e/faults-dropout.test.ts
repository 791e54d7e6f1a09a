import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Federation, sampleRecords, dayWindows, type SampleRecord } from './helpers/federation.js'
import { exitWithin, killAllDaemons, type Daemon } from './helpers/processes.js'

/*
 * A killed agent is a dropout as soon as its connection closes: 5 agents on loopback (built CLI), one SIGKILLs
 * itself right after a message it sent was taken by its receiver (FEDMON_TEST_EXIT_AFTER). The phase timeout
 * is 60 s and every test's own timeout is well under it, so a round that waited for the dead agent's next
 * message until a deadline could not pass; the coordinator's log also says how each phase ended.
 */

const SITES = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5']
const VICTIM = 'site-5'
const PHASE_TIMEOUT_MS = 60_000
const TEST_TIMEOUT_MS = 40_000
const records: Record<string, SampleRecord[]> = {}
for (const [i, name] of SITES.entries()) records[name] = sampleRecords(4100 + i, 200 + 10 * i, { weeks: 1 })
const freshWindow = dayWindows(7)

let fed: Federation
let passed = 0
const TESTS = 2

before(async () => {
  fed = await Federation.create({
    sites: SITES.map(name => ({ name, records: records[name] })),
    privacy: { minAgents: 3, threshold: 3 },
    phaseTimeoutMs: PHASE_TIMEOUT_MS
  })
  await fed.startCoordinator()
  for (const site of SITES.filter(s => s !== VICTIM)) fed.startAgent(site)
})

after(async () => {
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files kept in ${fed.root}\n`)
})

/** How each phase of the round ended, from the coordinator's 'round done' / 'round did not finish' line. */
function phaseEndings (roundId: string): Record<string, string> {
  for (const line of fed.daemons.coordinator.log().split('\n')) {
    if (!line.includes(roundId) || !line.includes('phaseEndings')) continue
    return (JSON.parse(line) as { phaseEndings: Record<string, string> }).phaseEndings
  }
  throw new Error(`no end line for round ${roundId} in the coordinator log`)
}

/** Starts the victim with the kill hook, runs a round over all five, and returns its outcome once the victim is dead. */
async function roundWithVictimKilledAfter (point: string): Promise<{ roundId: string, window: { from: number, to: number }, victim: Daemon }> {
  const victim = fed.startAgent(VICTIM, { FEDMON_TEST_EXIT_AFTER: point })
  await fed.waitForOnlineExactly(SITES)
  const window = freshWindow()
  const roundId = await fed.startRound(window)
  assert.equal((await exitWithin(victim, TEST_TIMEOUT_MS)).signal, 'SIGKILL', 'the hook killed the agent')
  return { roundId, window, victim }
}

test('an agent SIGKILLed after its masked input: the round does not wait for it; its data stays in the exact sum', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { roundId, window } = await roundWithVictimKilledAfter('masked-input')
  const outcome = await fed.roundOutcome(roundId, TEST_TIMEOUT_MS)
  // Its masked input is in the sum, so it is a survivor (its masks are removed with its neighbours' shares):
  // included, with all five sites' records, although it signed nothing and sent no unmask share.
  const report = await fed.assertExactReport(outcome, window, SITES)
  assert.deepEqual(report.agents.dropped, [])
  const endings = phaseEndings(roundId)
  assert.equal(endings.consistency, 'answered', `the consistency phase ended without the dead agent's signature: ${JSON.stringify(endings)}`)
  assert.deepEqual(Object.entries(endings).filter(([, how]) => how !== 'answered'), [], 'no phase ended at its deadline')
  passed++
})

test('an agent SIGKILLed after its share receipt (before its masked input): a dropout at once; exact sum over the other four', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { roundId, window } = await roundWithVictimKilledAfter('share-receipt')
  const outcome = await fed.roundOutcome(roundId, TEST_TIMEOUT_MS)
  const report = await fed.assertExactReport(outcome, window, SITES.filter(s => s !== VICTIM))
  assert.deepEqual(report.agents.dropped, [fed.ids[VICTIM]])
  const endings = phaseEndings(roundId)
  assert.deepEqual(Object.entries(endings).filter(([, how]) => how !== 'answered'), [], `no phase ended at its deadline: ${JSON.stringify(endings)}`)
  passed++
})
