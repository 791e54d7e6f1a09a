/**
 * A stored reference vector from another spec or layout version (e.g. layout v1, which also summed the count of
 * undated records) must never be compared entry by entry with this layout's vectors: the report body says why
 * drift was not computed, and the coordinator stores that report.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex } from '../../shared/stats/layout.js'
import { computeReportBody, referenceMismatch } from '../../shared/stats/report-body.js'

const spec = MonitorSpec.parse({ model: 'ref', score: { bins: 16 }, features: { c: { type: 'categorical', categories: ['a', 'b'] } } })
const layout = buildLayout(spec)
const current = new Uint32Array(layout.length)
current[counterIndex(layout, 'recordsInWindow')] = 10
const window = { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' }

test('a reference summed under another spec hash: no drift, a note naming both hashes, the detail kept in the report', () => {
  const v1Hash = 'ab'.repeat(32)
  const body = computeReportBody({ spec, layout, current, reference: { vector: new Uint32Array(layout.length), specHash: v1Hash, id: 'report-old', window } })
  assert.deepEqual(body.drift.features, {})
  assert.equal(body.drift.score, null)
  assert.deepEqual(body.drift.reference, { id: 'report-old', window }, 'which reference was skipped')
  assert.match(body.drift.note ?? '', /reference report-old was summed under spec hash abababababab…, this round under [0-9a-f]{12}….*fedmon-layout-v3.*drift not computed/)
  assert.deepEqual(body.drift.referenceMismatch, { specHash: v1Hash, vectorLength: layout.length, expectedSpecHash: layout.specHash, expectedVectorLength: layout.length })
  assert.equal(JSON.parse(JSON.stringify(body)).drift.note, body.drift.note, 'plain JSON: stored as is')
})

test('a reference of another length (a v1 vector had one more counter): the same, never an exception mid-round', () => {
  const longer = new Uint32Array(layout.length + 1)
  const body = computeReportBody({ spec, layout, current, reference: { vector: longer, id: 'report-v1', window: null } })
  assert.match(body.drift.note ?? '', /reference report-v1 has \d+ entries, this layout \d+: drift not computed/)
  assert.equal(referenceMismatch(layout, { vector: longer, id: null, window: null })?.detail.vectorLength, layout.length + 1)
})

test('a reference of this spec is compared (so the mismatch check can fail)', () => {
  const body = computeReportBody({ spec, layout, current, reference: { vector: current, specHash: layout.specHash, id: 'report-ok', window } })
  assert.equal(referenceMismatch(layout, { vector: current, specHash: layout.specHash, id: null, window: null }), null)
  assert.ok(body.drift.score !== null)
  assert.ok('c' in body.drift.features)
  assert.equal(body.drift.referenceMismatch, undefined)
  // a current vector of the wrong length is still a programming error
  assert.throws(() => computeReportBody({ spec, layout, current: new Uint32Array(3), reference: null }), /ERR_STATS_LENGTH|does not match the layout/)
})
