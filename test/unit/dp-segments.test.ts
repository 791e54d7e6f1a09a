/**
 * Differential privacy over a segmented spec (issues 12 §3 and 15 §1): each agent's noise covers the overall
 * entries and every cell, sized for the record's touch of the overall layout plus one cell per segment column;
 * the report's cells get confidence intervals (AUC) and ± half-widths like the overall figures, and those
 * intervals cover the exact per-cell figures.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scanWindow } from '../../agent/scan.js'
import { parseMonitorSpec } from '../../shared/stats/spec.js'
import type { Layout } from '../../shared/stats/layout.js'
import { buildTaskLayout } from '../../shared/stats/tasks/index.js'
import { computeReportBody } from '../../shared/stats/report-body.js'
import { noisyReportBody } from '../../shared/dp/report.js'
import { noiseMuPerEntry, planDp } from '../../shared/dp/plan.js'
import { addSkellamNoiseEach } from '../../shared/dp/skellam.js'
import { mulberry32 } from '../../shared/prng.js'
import type { PublishedSegment } from '../../shared/report.js'

const T0 = Date.UTC(2026, 5, 1)
const DAY = 86_400_000
const WINDOW = { from: T0, to: T0 + DAY }
const spec = parseMonitorSpec({
  model: 'dp-segments',
  score: { bins: 20, sums: false },
  features: { x: { type: 'numeric', edges: [0, 1, 2], moments: false } },
  segments: [{ column: 'region', values: ['north', 'south'] }],
  privacy: { dp: { epsilon: 1, delta: 1e-6 }, minCellRecords: 200, minCellSites: 1 } // site counts are noisy under DP (σ ≫ 3 sites)
})
const layout = buildTaskLayout(spec) as Layout

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'fedmon-dp-seg-')) })
after(() => { rmSync(dir, { recursive: true, force: true }) })

async function siteVector (site: number, rows: number): Promise<Uint32Array> {
  const rnd = mulberry32(40 + site)
  const lines: string[] = []
  for (let i = 0; i < rows; i++) {
    const region = rnd() < 0.5 ? 'north' : rnd() < 0.8 ? 'south' : 'east'
    const positive = rnd() < 0.3
    const spread = region === 'south' ? 0.5 : 0.25
    const score = Math.min(0.999, Math.max(0, (positive ? 0.6 : 0.4) + spread * (rnd() + rnd() - 1)))
    lines.push(JSON.stringify({ ts: T0 + i * 1000, score, label: positive ? 1 : 0, region, features: { x: rnd() * 3 } }))
  }
  const path = join(dir, `site-${site}.jsonl`)
  writeFileSync(path, lines.join('\n') + '\n')
  return await scanWindow({ spec, layout, source: { path }, window: WINDOW })
}

test('a DP round over segments: every cell noised, its AUC a 95 % interval that covers the exact one', async () => {
  const sites = await Promise.all([0, 1, 2].map(async s => await siteVector(s, 4000)))
  const exact = new Uint32Array(layout.length)
  for (const v of sites) for (let i = 0; i < v.length; i++) exact[i] += v[i]
  const exactBody = computeReportBody({ spec, layout, current: exact, reference: null })
  const exactCells = (exactBody.segments ?? []).filter((c): c is PublishedSegment => !c.suppressed)
  assert.deepEqual(exactCells.map(c => c.cell.region), ['north', 'south', 'other'])

  const survivors = 3
  const plan = planDp(layout, spec.privacy!.dp!, survivors)
  // the noise covers the cells: a record touches the overall entries and one cell (and its indicator)
  assert.ok(plan.sensitivity.l1 > planDp({ ...layout, segments: undefined } as unknown as Layout, spec.privacy!.dp!, survivors).sensitivity.l1)
  const mus = noiseMuPerEntry(layout, plan).map(mu => mu * survivors)
  assert.ok(mus.every(mu => mu > 0), 'every entry, cells included, gets noise')
  const rnd = mulberry32(9)
  let covered = 0
  let total = 0
  const trials = 12
  for (let t = 0; t < trials; t++) {
    const noisy = addSkellamNoiseEach(Uint32Array.from(exact), mus, () => rnd())
    const { body } = noisyReportBody({ spec, layout, current: noisy, reference: null, survivors, minSurvivors: survivors })
    for (const want of exactCells) {
      const got = body.segments?.find(c => c.cell.region === want.cell.region)
      assert.ok(got !== undefined && !got.suppressed, `cell ${want.cell.region} published: ${JSON.stringify(got)}`)
      const auc = got.performance.auc
      assert.equal(auc.confidence, 0.95)
      assert.ok((auc.noise ?? 0) > 0)
      assert.ok((got.performance as { noise95?: Record<string, number | null> }).noise95?.precision !== undefined)
      total++
      if ((auc.lower as number) <= (want.performance.auc.value as number) && (want.performance.auc.value as number) <= (auc.upper as number)) covered++
    }
  }
  assert.ok(covered >= Math.floor(0.85 * total), `cell AUC covered ${covered}/${total}`)
})
