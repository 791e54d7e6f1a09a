/**
 * Contributing sites (issue 12 §3, design §8): every agent's vector carries a 0/1 indicator "this site has at
 * least one record in the window", so the sum says how many sites the report's figures come from — a report over
 * 4 included sites of which 3 had no record is one site's histogram, and must not be published as "4 included".
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindow, scanWindowDetailed } from '../../agent/scan.js'
import { MonitorSpec } from '../../shared/stats/spec.js'
import { buildLayout, counterIndex, COUNTERS, LAYOUT_VERSION, specHashOf } from '../../shared/stats/layout.js'
import { canonicalJson, sha256Hex } from '../../shared/stats/canonical.js'
import { labelDependentEntries } from '../../shared/stats/label-entries.js'
import { layoutSensitivity } from '../../shared/dp/sensitivity.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { contributingSites, tooFewContributors } from '../../shared/stats/contributing.js'
import { evaluateLocal } from '../../shared/stats/evaluate.js'
import { renderReport } from '../../shared/stats/render.js'
import { renderReportSection } from '../../shared/report-html/report-page.js'
import { noisyReportBody } from '../../shared/dp/report.js'
import { syntheticReport } from '../fixtures/reports.js'
import { AgentPolicy } from '../../shared/secagg/policy.js'
import { AGENT_POLICY_DEFAULTS } from '../../shared/config/agent.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 1, 2)
const WINDOW = { from: T0, to: T0 + 2 * HOUR }
const SPEC_DOC = { model: 'contributing', score: { bins: 8 }, calibration: { bins: 2 }, features: { x: { type: 'numeric', edges: [0, 1] } }, limits: { maxRecordsPerAgent: 10_000 } }
const spec = MonitorSpec.parse(SPEC_DOC)
const layout = buildLayout(spec)
const INDICATOR = counterIndex(layout, 'sitesWithRecords')

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-contributing-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

let files = 0
function jsonl (records: Array<{ ts: number, score: number, label: number, x: number }>): string {
  const path = join(dir, `d${files++}.jsonl`)
  writeFileSync(path, records.map(r => JSON.stringify(r)).join('\n') + (records.length > 0 ? '\n' : ''))
  return path
}

test('layout v3: one per-site indicator counter, label-independent (never in a refresh sub-layout)', () => {
  assert.equal(LAYOUT_VERSION, 'fedmon-layout-v3')
  assert.ok((COUNTERS as readonly string[]).includes('sitesWithRecords'))
  assert.ok(INDICATOR >= layout.counters.offset && INDICATOR < layout.counters.offset + COUNTERS.length)
  assert.ok(!new Set(labelDependentEntries(layout)).has(INDICATOR), 'a label arriving never changes whether a site had records')
  // the hash binds the layout version: a v2 vector of the same spec is recognised as another layout
  assert.notEqual(specHashOf(spec), sha256Hex(`fedmon-layout-v2\n${canonicalJson(spec)}`))
  // one record flips the indicator at most once: it is one more count entry one record can touch
  assert.equal(layoutSensitivity(layout).countGroups.find(g => g.name === 'counters')?.touched, 5)
})

test('the scan sets the indicator to 1 when the site has a record in the window, else 0 (records elsewhere in time do not count)', async () => {
  const inside = await scanWindow({ spec, layout, source: { path: jsonl([{ ts: T0 + 5, score: 0.4, label: 1, x: 0.5 }]) }, window: WINDOW })
  assert.equal(inside[INDICATOR], 1)
  const many = await scanWindow({ spec, layout, source: { path: jsonl(Array.from({ length: 40 }, (_, i) => ({ ts: T0 + i, score: i / 40, label: i % 2, x: i }))) }, window: WINDOW })
  assert.equal(many[INDICATOR], 1, 'an indicator, not a count')
  const outside = await scanWindowDetailed({ spec, layout, source: { path: jsonl([{ ts: T0 - 5, score: 0.4, label: 1, x: 0.5 }, { ts: WINDOW.to, score: 0.1, label: 0, x: 2 }]) }, window: WINDOW })
  assert.equal(outside.local.recordsInWindow, 0)
  assert.equal(outside.vector[INDICATOR], 0)
  assert.ok(outside.vector.every(v => v === 0), 'a site without records in the window sends the zero vector')
})

test('contributingSites reads the summed indicator; a reference summed under layout v2 is another layout', () => {
  const v = new Uint32Array(layout.length)
  v[counterIndex(layout, 'recordsInWindow')] = 30
  v[INDICATOR] = 3
  assert.equal(contributingSites(layout, v), 3)
  const body = computeReportBody({ spec, layout, current: v, reference: null })
  assert.equal(body.samples.count, 30)
  // a reference summed under layout v2 (one entry shorter, v2 hash) is another layout: no drift against it
  const old = { vector: new Uint32Array(layout.length - 1), id: 'report-v2', window: null, specHash: sha256Hex(`fedmon-layout-v2\n${canonicalJson(spec)}`) }
  const withOld = computeReportBody({ spec, layout, current: v, reference: old })
  assert.match(withOld.drift.note ?? '', /report-v2 was summed under spec hash .*fedmon-layout-v3.*drift not computed/)
})

test('tooFewContributors: exact sums are compared as they are; a noisy one only when it is below by more than the noise tail bound', () => {
  assert.equal(tooFewContributors({ contributing: 3, included: 4, minAgents: 3 }), null)
  const refused = tooFewContributors({ contributing: 1, included: 4, minAgents: 3 })
  assert.equal(refused?.code, 'ERR_TOO_FEW_CONTRIBUTORS')
  assert.match(refused?.message ?? '', /only 1 of the 4 included sites had records in the window.*at least 3/)
  assert.ok(!(refused?.message ?? '').includes('\n'))
  // DP: ±5 at 95 % (σ ≈ 2.6): 1 is within the noise of 3 → published (the noise protects)
  assert.equal(tooFewContributors({ contributing: 1, included: 4, minAgents: 3, noise95: 5 }), null)
  // refused only beyond the noise's tail bound at failure 1e-6 (≈ 20 here), not its 95 % half-width: an honest
  // round with exactly minAgents contributing sites is never refused at random (it would use up the window)
  assert.equal(tooFewContributors({ contributing: 0, included: 12, minAgents: 10, noise95: 5 }), null)
  assert.equal(tooFewContributors({ contributing: 10, included: 40, minAgents: 29, noise95: 5 }), null)
  const noisy = tooFewContributors({ contributing: 5, included: 40, minAgents: 30, noise95: 5 })
  assert.equal(noisy?.code, 'ERR_TOO_FEW_CONTRIBUTORS')
  assert.match(noisy?.message ?? '', /noisy count.*±5/)
})

test('under privacy.dp the indicator sum is a noisy count like any other: contributing is read from the clamped noisy sum', () => {
  const dpSpec = MonitorSpec.parse({ model: 'dp', score: { bins: 8, sums: false }, calibration: { bins: 2 }, features: { x: { type: 'numeric', edges: [0, 1], moments: false } }, privacy: { dp: { epsilon: 1, delta: 1e-6 } } })
  const dpLayout = buildLayout(dpSpec)
  const v = new Uint32Array(dpLayout.length)
  v[counterIndex(dpLayout, 'sitesWithRecords')] = 7
  v[counterIndex(dpLayout, 'recordsInWindow')] = 100
  const noisy = noisyReportBody({ spec: dpSpec, layout: dpLayout, current: v, reference: null, survivors: 10, minSurvivors: 10 })
  assert.equal(noisy.contributing, 7)
  const negative = Uint32Array.from(v)
  negative[counterIndex(dpLayout, 'sitesWithRecords')] = (-2) >>> 0 // noise pushed the sum below zero
  assert.equal(noisyReportBody({ spec: dpSpec, layout: dpLayout, current: negative, reference: null, survivors: 10, minSurvivors: 10 }).contributing, 0)
})

test('fedmon evaluate (one site, local) reports contributing 1, or 0 for a window without its records', async () => {
  const specFile = join(dir, 'spec.json')
  writeFileSync(specFile, JSON.stringify(SPEC_DOC))
  const source = { path: jsonl(Array.from({ length: 20 }, (_, i) => ({ ts: T0 + i * 1000, score: (i % 10) / 10, label: i % 2, x: i % 3 }))) }
  const report = await evaluateLocal({ specFile, source, window: WINDOW, referenceWindow: null, scan: scanWindowDetailed })
  assert.equal(report.agents.contributing, 1)
  assert.deepEqual(report.agents.included, ['local'])
  const empty = await evaluateLocal({ specFile, source, window: { from: WINDOW.to, to: WINDOW.to + HOUR }, referenceWindow: null, scan: scanWindowDetailed })
  assert.equal(empty.agents.contributing, 0)
})

test('fedmon report and the HTML report say how many of the included sites had records in the window', () => {
  const r = syntheticReport({ seed: 3, shift: 0.2, index: 1, reference: null, kind: 'current' })
  r.agents = { invited: ['a', 'b', 'c', 'd'], included: ['a', 'b', 'c', 'd'], dropped: [], contributing: 4 }
  assert.match(renderReport(r, { color: false }), /agents {5}4 included \(4 with records in the window\), 0 dropped/)
  const html = renderReportSection(r).html
  assert.match(html, /<span data-metric="agents.contributing">4<\/span> with records in the window/)
  // reports stored before the indicator existed have no count: nothing is claimed
  const { contributing: _c, ...older } = r.agents
  assert.doesNotMatch(renderReport({ ...r, agents: older }, { color: false }), /with records in the window/)
})

test('policy.minRecords: 0 is allowed (contribute empty windows too, the indicator then says 0); below 0 is refused', () => {
  assert.equal(AgentPolicy.parse({ minRecords: 0 }).minRecords, 0)
  assert.throws(() => AgentPolicy.parse({ minRecords: -1 }))
  assert.equal(AGENT_POLICY_DEFAULTS.minRecords, 10, 'by default an agent declines a window with fewer than 10 of its records')
})
