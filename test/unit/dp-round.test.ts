/**
 * Distributed DP in a real SecAgg round (in-process, every message through the wire codec): agents add their
 * own Skellam noise before masking, the unmasked sum carries the noise of every survivor, and an agent's
 * policy refuses too little noise or a spec without DP when it requires it.
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalJson } from '../../shared/stats/canonical.js'
import { MonitorSpec, parseMonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, specHashOf } from '../../shared/stats/layout.js'
import { createIdentities, type Identity } from '../../shared/secagg/simulate.js'
import { planDp } from '../../shared/dp/plan.js'
import { mulberry32 } from '../../shared/prng.js'
import { ConfigError } from '../../shared/errors.js'
import { runRound, sumOf, type HarnessAgent } from './adversary-harness.js'

const HOUR = 3_600_000
const NOW = Date.UTC(2026, 0, 15, 12)
const WINDOW = { from: NOW - 2 * HOUR, to: NOW - HOUR }
const DP_SPEC = MonitorSpec.parse({
  model: 'dp-round',
  score: { bins: 100, sums: false },
  features: { x: { type: 'numeric', edges: [0, 1, 2], moments: false } },
  privacy: { dp: { epsilon: 1, delta: 1e-6 } }
})
const layout = buildLayout(DP_SPEC)
let coordinator: Identity
let identities: Identity[]
before(async () => { ({ coordinator, agents: identities } = await createIdentities(5, 15)) })

function agentsWith (over: Partial<HarnessAgent> = {}): HarnessAgent[] {
  return identities.map((identity, i) => {
    const input = new Uint32Array(layout.length)
    for (let j = 0; j < input.length; j++) input[j] = (j * 7 + i * 13) % 50 + 100
    const rnd = mulberry32(1000 + i)
    return { identity, input, noiseSource: () => rnd(), ...over }
  })
}

function round (agents: HarnessAgent[], spec = DP_SPEC): ReturnType<typeof runRound> {
  return runRound({ roundId: 'dp-1', coordinator, agents, dim: buildLayout(spec).length, window: WINDOW, now: NOW, specHash: specHashOf(spec), spec: canonicalJson(spec), threshold: 3, minAgents: 3, maxEntry: buildLayout(spec).maxEntry })
}

test('each agent adds its own noise before masking: the sum is exact plus Skellam of the survivors', () => {
  const agents = agentsWith()
  const res = round(agents)
  assert.equal(res.status, 'done', res.failure?.message)
  const exact = sumOf(agents.map(a => a.input), layout.length)
  const noise = Array.from(res.result!.sum, (v, i) => (v - exact[i]) | 0)
  assert.ok(noise.filter(x => x !== 0).length > 0.9 * noise.length, 'almost every entry carries noise')
  // Each agent planned for the fewest survivors (max(t, minAgents, quorum)); all 5 survived, so the sum has 5 shares.
  const client = res.clients.get(identities[0].id)!
  const plan = client.dpPlan!
  assert.ok(plan !== null && plan.epsilon <= 1)
  assert.equal(plan.minSurvivors, Math.max(3, 3, client.consistencyQuorum))
  assert.ok(Math.abs(plan.muPerAgent - planDp(layout, { epsilon: 1, delta: 1e-6 }, plan.minSurvivors).muPerAgent) < 1e-9)
  const variance = noise.reduce((s, x) => s + x * x, 0) / noise.length
  const expected = 2 * plan.muPerAgent * 5
  assert.ok(Math.abs(variance / expected - 1) < 0.3, `noise variance ${variance}, expected ${expected}`)
})

test('an agent refuses too little noise, and a spec without DP when it requires DP', () => {
  const strict = agentsWith({ policy: { dp: { maxEpsilon: 0.5 } } })
  const res = round(strict)
  assert.equal(res.status, 'failed')
  assert.ok(res.rejected.some(r => r.code === 'ERR_POLICY' && /ε = 1 per round, this agent allows at most 0.5.*too little noise/.test(r.message)), JSON.stringify(res.rejected.slice(0, 2)))
  assert.ok(!res.transcript.some(d => d.message.type === 'masked-input'))

  const plain = MonitorSpec.parse({ model: 'dp-round', score: { bins: 100, sums: false }, features: { x: { type: 'numeric', edges: [0, 1, 2], moments: false } } })
  const requiring = agentsWith({ policy: { dp: { required: true } } }).map(a => ({ ...a, input: new Uint32Array(buildLayout(plain).length) }))
  const res2 = round(requiring, plain)
  assert.equal(res2.status, 'failed')
  assert.ok(res2.rejected.some(r => r.code === 'ERR_POLICY' && /requires differential privacy/.test(r.message)))
})

test('without privacy.dp nothing changes: the sum is exact', () => {
  const plain = MonitorSpec.parse({ model: 'dp-round', score: { bins: 100, sums: false }, features: { x: { type: 'numeric', edges: [0, 1, 2], moments: false } } })
  const agents = agentsWith().map(a => ({ ...a, input: a.input.slice(0, buildLayout(plain).length) }))
  const res = round(agents, plain)
  assert.equal(res.status, 'done', res.failure?.message)
  assert.deepEqual(res.result!.sum, sumOf(agents.map(a => a.input), buildLayout(plain).length))
  assert.equal(res.clients.get(identities[0].id)!.dpPlan, null)
})

test('a DP spec with unclipped (legacy) sums is refused at load, naming the field', () => {
  assert.throws(() => parseMonitorSpec({ model: 'm', privacy: { dp: { epsilon: 1, delta: 1e-6 } } }, 'spec.yaml'),
    (err: unknown) => err instanceof ConfigError && err.field === 'score.sums' && /must be false or \{ precisionBits: 0\.\.8 \} with privacy\.dp/.test(err.message))
  assert.throws(() => parseMonitorSpec({ model: 'm', score: { sums: false }, features: { x: { type: 'numeric' } }, privacy: { dp: { epsilon: 1, delta: 1e-6 } } }, 'spec.yaml'),
    (err: unknown) => err instanceof ConfigError && err.field === 'features.x.moments')
})
