import '../../shared/polyfill.js'
// The daemons' round orchestration without sockets: the coordinator's RoundService and agents'
// AgentRoundService wired through an in-memory transport, with the real secagg state machines and store.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { generateIdentity, createSigner, createVerifier, type Identity } from '../../shared/identity.js'
import { RoundService, type ComputeUnmask } from '../../coordinator/rounds.js'
import { Roster } from '../../coordinator/roster.js'
import { AgentRoundService } from '../../agent/rounds.js'
import { openStore } from '../../coordinator/store.js'
import { createAlertEvaluator } from '../../coordinator/alerts.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, type Layout } from '../../shared/stats/layout.js'
import { labelDependentEntries } from '../../shared/stats/label-entries.js'
import { createMetrics, type Metrics } from '../../coordinator/metrics.js'
import type { Report } from '../../shared/report.js'
import type { SecAggMessage } from '../../shared/secagg/messages.js'
import type { AgentPolicy } from '../../shared/secagg/client.js'
import type { ContributionGuard } from '../../shared/secagg/policy.js'
import { UnmaskWorkerPool } from '../../shared/secagg/unmask-pool.js'
import { ContributionLedger } from '../../agent/ledger.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

function captureLogger (): { logger: pino.Logger, lines: () => string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  return { logger: pino({ level: 'debug' }, stream), lines: () => lines }
}

interface FederationOptions {
  policies?: Array<AgentPolicy | undefined>
  guards?: Array<ContributionGuard | undefined>
  inputs: (i: number, length: number) => Uint32Array
  computeUnmask?: ComputeUnmask
  specDoc?: Record<string, unknown>
  metrics?: Metrics
}

async function federation (n: number, opts: FederationOptions) {
  const coordinator = await generateIdentity()
  const agents: Identity[] = await Promise.all(Array.from({ length: n }, async () => await generateIdentity()))
  const spec = parseMonitorSpec(opts.specDoc ?? { model: 'unit', score: { bins: 16 }, limits: { maxRecordsPerAgent: 1000 } })
  const layout = buildLayout(spec)
  const store = openStore(':memory:')
  const roster = new Roster(agents.map(a => a.peerId))
  for (const a of agents) { roster.connected(a.peerId, Date.now()); roster.setAddrs(a.peerId, ['/ip4/127.0.0.1/tcp/1'], Date.now()) }
  const { logger, lines } = captureLogger()
  const verify = createVerifier()
  const services = new Map<string, AgentRoundService>()
  // Delivery on a later macrotask, like a network: nothing is handled re-entrantly.
  const deliver = (fn: () => void): void => { setImmediate(() => { try { fn() } catch (err) { logger.warn({ err: (err as Error).message }, 'refused in transit') } }) }
  const rounds = new RoundService({
    peerId: coordinator.peerId,
    sign: createSigner(coordinator.privateKey),
    verify,
    roster,
    sender: { send: async (to: string, message: SecAggMessage) => { deliver(() => services.get(to)?.receive(coordinator.peerId, message)) } },
    store,
    spec,
    layout,
    privacy: { minAgents: 3 },
    phaseTimeoutMs: 400,
    alerts: createAlertEvaluator([]),
    logger,
    computeUnmask: opts.computeUnmask,
    metrics: opts.metrics
  })
  agents.forEach((a, i) => {
    services.set(a.peerId, new AgentRoundService({
      self: a.peerId,
      coordinator: coordinator.peerId,
      sign: createSigner(a.privateKey),
      verify,
      policy: opts.policies?.[i],
      guard: opts.guards?.[i],
      roster: new Set(agents.map(x => x.peerId)),
      sender: {
        send: async (to: string, message: SecAggMessage) => {
          deliver(() => { if (to === coordinator.peerId) rounds.receive(a.peerId, message); else services.get(to)?.receive(a.peerId, message) })
        }
      },
      fetchSpec: async () => spec,
      computeInput: async (announce) => ({ vector: opts.inputs(i, announce.vectorLength), records: 1000 }),
      admit: () => {},
      logger,
      tickMs: 50
    }))
  })
  return { rounds, store, layout, agents, lines, stop: () => { for (const s of services.values()) s.stop(); store.close() } }
}

test('a reference round over 4 in-memory agents stores exactly the sum of their inputs', async () => {
  const inputs: Uint32Array[] = []
  const fed = await federation(4, {
    inputs: (i, length) => {
      const x = new Uint32Array(length)
      for (let j = 0; j < length; j++) x[j] = (i * 7 + j * 13) % 50
      inputs[i] = x
      return x
    }
  })
  try {
    const { finished } = fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'reference' })
    assert.throws(() => fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }), (err: unknown) => (err as { status?: number }).status === 409)
    const outcome = await finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    assert.equal(outcome.included.length, 4)
    const stored = fed.store.getReferenceVector(outcome.reportId as string)
    assert.ok(stored !== null)
    const want = new Uint32Array(fed.layout.length)
    for (const x of inputs) for (let j = 0; j < x.length; j++) want[j] += x[j]
    assert.deepEqual(stored.vector, want)
    assert.equal(fed.store.currentReference()?.reportId, outcome.reportId)
    assert.equal(fed.store.getRound(outcome.id)?.status, 'done')
  } finally {
    fed.stop()
  }
})

test('an agent whose policy refuses the Announce is left out; the round completes over the others', async () => {
  const fed = await federation(4, {
    policies: [undefined, undefined, undefined, { minAgents: 10 }],
    inputs: (_i, length) => new Uint32Array(length).fill(1)
  })
  try {
    const outcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    assert.deepEqual(new Set(outcome.included), new Set(fed.agents.slice(0, 3).map(a => a.peerId)))
    assert.ok(outcome.dropped.includes(fed.agents[3].peerId))
    assert.ok(fed.lines().some(l => l.includes('round refused') && l.includes('ERR_POLICY')), 'the refusal is logged with its reason')
  } finally {
    fed.stop()
  }
})

test('too few agents online: refused with 409 before anything is sent', async () => {
  const fed = await federation(2, { inputs: (_i, length) => new Uint32Array(length) })
  try {
    assert.throws(() => fed.rounds.start({ window: { from: 0, to: 1 }, kind: 'current' }), (err: unknown) => (err as { status?: number, code?: string }).status === 409 && (err as { code?: string }).code === 'ERR_TOO_FEW_AGENTS')
    assert.deepEqual(fed.store.listRounds(), [])
  } finally {
    fed.stop()
  }
})

test('the unmask runs in the worker pool; an unmask failure fails the round with ERR_UNMASK', async () => {
  const pool = new UnmaskWorkerPool({ workers: 1 })
  await pool.start()
  let computed = 0
  const ok = await federation(4, {
    inputs: (i, length) => new Uint32Array(length).fill(i + 1),
    computeUnmask: async (work, { signal }) => { computed++; return await pool.compute(work, { signal }) }
  })
  try {
    const outcome = await ok.rounds.start({ window: { from: 0, to: 1000 }, kind: 'reference' }).finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    assert.equal(computed, 1)
    const stored = ok.store.getReferenceVector(outcome.reportId as string)
    assert.deepEqual(stored?.vector, new Uint32Array(ok.layout.length).fill(1 + 2 + 3 + 4))
  } finally {
    ok.stop()
    await pool.stop()
  }
  const broken = await federation(3, {
    inputs: (_i, length) => new Uint32Array(length),
    computeUnmask: async () => { throw new Error('worker crashed') }
  })
  try {
    const outcome = await broken.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(outcome.status, 'failed')
    assert.equal(outcome.failure?.code, 'ERR_UNMASK')
    assert.match(outcome.failure?.message ?? '', /worker crashed/)
    assert.equal(broken.store.getRound(outcome.id)?.status, 'failed')
  } finally {
    broken.stop()
  }
})

test('a shutdown during the unmask cancels the compute through the round signal', async () => {
  let cancelled = false
  let entered!: () => void
  const inUnmask = new Promise<void>(resolve => { entered = resolve })
  const fed = await federation(3, {
    inputs: (_i, length) => new Uint32Array(length),
    computeUnmask: async (_work, { signal }) => await new Promise<Uint32Array>((_resolve, reject) => {
      entered()
      signal.addEventListener('abort', () => { cancelled = true; reject(new Error('aborted')) }, { once: true })
    })
  })
  try {
    const { finished } = fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' })
    await inUnmask
    await fed.rounds.stop()
    const outcome = await finished
    assert.equal(outcome.status, 'aborted')
    assert.equal(cancelled, true)
  } finally {
    fed.stop()
  }
})

test('the contribution ledger: an overlapping window is refused by every agent that contributed; a fresh one runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-ledger-'))
  const ledgers = Array.from({ length: 3 }, (_, i) => ContributionLedger.open(join(dir, `agent-${i}`)))
  const fed = await federation(3, { guards: ledgers, inputs: (_i, length) => new Uint32Array(length).fill(1) })
  try {
    const first = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(first.status, 'done', JSON.stringify(first.failure))
    const again = await fed.rounds.start({ window: { from: 500, to: 1500 }, kind: 'current' }).finished
    assert.notEqual(again.status, 'done', 'a second sum over the same records must not finish')
    assert.ok(fed.lines().some(l => l.includes('round refused') && l.includes('differencing')), 'the refusal is logged with its reason')
    const fresh = await fed.rounds.start({ window: { from: 1000, to: 2000 }, kind: 'current' }).finished
    assert.equal(fresh.status, 'done', JSON.stringify(fresh.failure))
    for (const ledger of ledgers) assert.deepEqual(ledger.entries().filter(e => e.contributedAt !== null).map(e => e.window.from), [0, 1000])
  } finally {
    fed.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('more agents online than the spec allows: 409 with the reason, nothing sent', async () => {
  // maxRecordsPerAgent 2^30 makes the largest entry 2^30: at most 3 agents fit in 32 bits.
  const fed = await federation(4, { inputs: (_i, length) => new Uint32Array(length), specDoc: { model: 'unit', score: { bins: 4 }, limits: { maxRecordsPerAgent: 2 ** 30 } } })
  try {
    assert.throws(() => fed.rounds.start({ window: { from: 0, to: 1 }, kind: 'current' }), (err: unknown) => {
      const e = err as { status?: number, code?: string, message: string }
      return e.status === 409 && e.code === 'ERR_TOO_MANY_AGENTS' && /at most 3/.test(e.message) && !e.message.includes('\n')
    })
    assert.deepEqual(fed.store.listRounds(), [])
  } finally {
    fed.stop()
  }
})

/** One site's vector: `records` in the window (all in score bin 0, negative), and the indicator set when it has any. */
function siteVector (layout: Layout, records: number): Uint32Array {
  const v = new Uint32Array(layout.length)
  v[counterIndex(layout, 'recordsInWindow')] = records
  v[counterIndex(layout, 'labelNegative')] = records
  v[counterIndex(layout, 'scoreValid')] = records
  v[layout.score.offset] = records
  v[counterIndex(layout, 'sitesWithRecords')] = records > 0 ? 1 : 0
  return v
}

test('4 sites included, 3 of them without a record in the window: the round fails with ERR_TOO_FEW_CONTRIBUTORS and no report is stored', async () => {
  const metrics = createMetrics({ defaultMetrics: false })
  const fed = await federation(4, { metrics, inputs: (i, length) => { const v = siteVector(buildLayout(parseMonitorSpec({ model: 'unit', score: { bins: 16 }, limits: { maxRecordsPerAgent: 1000 } })), i === 0 ? 50 : 0); assert.equal(v.length, length); return v } })
  try {
    const outcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(outcome.status, 'failed')
    assert.equal(outcome.failure?.code, 'ERR_TOO_FEW_CONTRIBUTORS')
    assert.match(outcome.failure?.message ?? '', /only 1 of the 4 included sites had records in the window.*at least 3/)
    assert.equal(outcome.included.length, 4, 'every site was summed: the refusal is the coordinator\'s, after the sum')
    assert.equal(outcome.reportId, null)
    assert.equal(fed.store.getRound(outcome.id)?.status, 'failed')
    assert.equal(fed.store.getRound(outcome.id)?.failure?.code, 'ERR_TOO_FEW_CONTRIBUTORS')
    assert.equal(fed.store.latestReport({ kind: 'any' }), null)
    assert.deepEqual(fed.store.listReports({ kind: 'any' }), [])
    const exposition = (await metrics.render()).body
    assert.match(exposition, /fedmon_round_failures_total\{code="ERR_TOO_FEW_CONTRIBUTORS"\} 1/)
    assert.doesNotMatch(exposition, /fedmon_report_agents\{/, 'nothing of the refused sum is exposed')
  } finally {
    fed.stop()
  }
})

test('3 of 4 sites with records (minAgents 3): the report is published and says contributing 3', async () => {
  const metrics = createMetrics({ defaultMetrics: false })
  const fed = await federation(4, { metrics, inputs: (i, length) => { const v = new Uint32Array(length); if (i < 3) { v[0] = 20; v[counterIndex(buildLayout(parseMonitorSpec({ model: 'unit', score: { bins: 16 }, limits: { maxRecordsPerAgent: 1000 } })), 'sitesWithRecords')] = 1 } return v } })
  try {
    const outcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(outcome.status, 'done', JSON.stringify(outcome.failure))
    const report = fed.store.getReport(outcome.reportId as string) as Report
    assert.equal(report.agents.contributing, 3)
    assert.equal(report.agents.included.length, 4)
    assert.match((await metrics.render()).body, /fedmon_report_agents\{role="contributing"\} 3/)
  } finally {
    fed.stop()
  }
})

test('a label refresh is checked on the merged vector: its indicator is the first round\'s sum', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-refresh-contrib-'))
  const ledgers = Array.from({ length: 3 }, (_, i) => ContributionLedger.open(join(dir, `agent-${i}`)))
  const specDoc = { model: 'unit', score: { bins: 16 }, limits: { maxRecordsPerAgent: 1000 }, labels: { refreshAfter: ['7d'] } }
  const fed = await federation(3, { guards: ledgers, specDoc, inputs: (_i, length) => new Uint32Array(length).fill(1) })
  try {
    const layout = fed.layout
    const entries = labelDependentEntries(layout)
    assert.ok(!new Set(entries).has(counterIndex(layout, 'sitesWithRecords')))
    const firstOutcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current' }).finished
    assert.equal(firstOutcome.status, 'done', JSON.stringify(firstOutcome.failure))
    const first = fed.store.getReport(firstOutcome.reportId as string) as Report
    assert.equal(first.agents.contributing, 3)
    // the first round's stored sum as if only one site had had records (e.g. published under a lower minAgents)
    const firstSum = Uint32Array.from(fed.store.getReferenceVector(first.id)?.vector ?? [])
    firstSum[counterIndex(layout, 'sitesWithRecords')] = 1
    const participants = [...first.agents.included].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
    const outcome = await fed.rounds.start({ window: { from: 0, to: 1000 }, kind: 'current', refresh: { window: { from: 0, to: 1000 }, ageMs: 7 * 86_400_000, first, latest: first, firstSum, participants, entries } }).finished
    assert.equal(outcome.status, 'failed', 'the refresh sum (1 in every label-dependent entry) does not bring back contributors')
    assert.equal(outcome.failure?.code, 'ERR_TOO_FEW_CONTRIBUTORS', JSON.stringify(outcome.failure))
    assert.deepEqual(fed.store.listReports({ kind: 'any' }).map(r => r.id), [first.id], 'no new version stored')
  } finally {
    fed.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
