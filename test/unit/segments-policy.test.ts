/**
 * Segments against the agent's policy (shared/secagg/policy.ts): a spec with more cells than
 * policy.maxSegmentCells, or segmenting by a column not in policy.allowedSegmentColumns, is refused with
 * ERR_POLICY and a reason naming the field; the segmented vector length is what maxVectorLength checks; the
 * policy's spec rules make the agent fetch the spec document.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildTaskLayout } from '../../shared/stats/tasks/index.js'
import { specHashOf } from '../../shared/stats/layout.js'
import { AgentPolicy, checkAnnouncePolicy, checkSpecPolicy, hasSpecRules, verifySpec, columnsReadBy } from '../../shared/secagg/policy.js'
import { SecAggError } from '../../shared/secagg/errors.js'

const spec = MonitorSpec.parse({
  model: 'seg-policy',
  segments: [{ column: 'region', values: ['north', 'south', 'east'] }, { column: 'channel', values: ['web', 'app'] }]
})
const layout = buildTaskLayout(spec)
const verified = verifySpec(JSON.stringify(spec), specHashOf(spec))

const refusal = (policy: unknown, pattern: RegExp): void => {
  assert.throws(() => checkSpecPolicy(AgentPolicy.parse(policy), verified, { vectorLength: layout.length }),
    (e: unknown) => e instanceof SecAggError && e.code === 'ERR_POLICY' && pattern.test(e.message), JSON.stringify(policy))
}

test('maxSegmentCells: a spec with more cells is refused, naming the field and the count', () => {
  assert.equal(verified.layout.length, layout.length)
  refusal({ maxSegmentCells: 6 }, /segments make 7 cells \(region: 3 values \+ other, channel: 2 values \+ other\).*at most 6 \(policy\.maxSegmentCells\)/)
  refusal({ maxSegmentCells: 0 }, /policy\.maxSegmentCells/)
  checkSpecPolicy(AgentPolicy.parse({ maxSegmentCells: 7 }), verified, { vectorLength: layout.length })
})

test('allowedSegmentColumns: segmenting by another column is refused, naming the column and the field', () => {
  refusal({ allowedSegmentColumns: ['region'] }, /column\(s\) channel, not in policy\.allowedSegmentColumns/)
  checkSpecPolicy(AgentPolicy.parse({ allowedSegmentColumns: ['region', 'channel'] }), verified, { vectorLength: layout.length })
  // allowedColumns covers every column read, the segment columns too
  assert.ok(columnsReadBy(spec).includes('channel'))
  refusal({ allowedColumns: ['score', 'label', 'region'] }, /does not share: channel/)
})

test('the policy rules need the spec document; maxVectorLength checks the segmented length', () => {
  assert.ok(hasSpecRules(AgentPolicy.parse({ maxSegmentCells: 3 })))
  assert.ok(hasSpecRules(AgentPolicy.parse({ allowedSegmentColumns: [] })))
  const terms = { participants: ['a', 'b', 'c'].map(id => ({ id, addrs: [] })), window: { from: 0, to: 1000 }, specHash: layout.specHash, vectorLength: layout.length, minAgents: 2, threshold: 2, issuedAt: 0 }
  assert.throws(() => checkAnnouncePolicy(AgentPolicy.parse({ maxVectorLength: layout.length - 1 }), terms, 0), /vector length \d+ exceeds/)
  checkAnnouncePolicy(AgentPolicy.parse({ maxVectorLength: layout.length }), terms, 0)
})
