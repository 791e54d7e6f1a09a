/**
 * `npm run -s bench -- dp [--epsilon E] [--delta D] [--sites N] [--records R] [--repetitions K] [--bins B] [--json]`:
 * the accuracy that distributed DP costs. N sites (the demo's synthetic credit model: 4 features, covariate and
 * concept drift between a reference and a current week) each hold R records per window; each site's two
 * windows are scanned by the real DuckDB scan; then, K times, every site adds its own Skellam noise (planned for
 * ε, δ per round with N survivors as the minimum) to both vectors, the noisy sums are decoded and the report is
 * computed as the coordinator does (shared/dp/report.ts). Each site plans its noise for the fewest survivors
 * (--min-survivors, default a majority: 3 of 5) and all N survive, so the sum holds N/min times that noise. Prints the 95th percentiles of |AUC − exact AUC| and of |PSI − exact| / exact
 * over the features with PSI ≥ 0.01 (smaller PSIs are "no drift" either way), and the per-entry noise std.
 * `--sums`: the spec also keeps clipped score/loss sums (6 bits) and feature moments (5 bits), noised as a second
 * release (shared/dp/plan.ts): prints the 95th percentiles of |log loss − exact| and |Brier − exact| too.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { scanWindow } from '../agent/scan.js'
import { MonitorSpec } from '../shared/stats/spec.js'
import { buildLayout } from '../shared/stats/layout.js'
import { computeReportBody } from '../shared/stats/report-body.js'
import { sumVectors } from '../shared/stats/evaluate.js'
import { planDp, noiseStd, noiseMuPerEntry } from '../shared/dp/plan.js'
import { addSkellamNoiseEach } from '../shared/dp/skellam.js'
import { cryptoUniform } from '../shared/dp/random.js'
import { noisyReportBody } from '../shared/dp/report.js'
import { DEMO_SPEC, demoWindows, writeSiteData } from '../bin/demo/data.js'

const USAGE = 'usage: npm run -s bench -- dp [--epsilon E] [--delta D] [--sites N] [--records R] [--repetitions K] [--bins B] [--sums] [--json]\n'

/** Clip ranges of the demo model's numeric features, for --sums (moments must be clipped under DP). */
const MOMENT_CLIPS: Record<string, [number, number]> = { age: [18, 90], income: [0, 250_000], tenure: [0, 240] }

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      epsilon: { type: 'string', default: '1' }, delta: { type: 'string', default: '1e-6' }, sites: { type: 'string', default: '5' },
      records: { type: 'string', default: '50000' }, repetitions: { type: 'string', default: '200' }, bins: { type: 'string', default: '100' },
      'min-survivors': { type: 'string' },
      sums: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false }
    }
  })
  const [epsilon, delta, sites, records, repetitions, bins] = ['epsilon', 'delta', 'sites', 'records', 'repetitions', 'bins'].map(k => Number(values[k as keyof typeof values]))
  // Agents plan their noise for the fewest survivors a round can unmask with: for 5 agents on the full graph,
  // t = 3 and the consistency quorum is 3 (shared/secagg/params.ts).
  const minSurvivors = values['min-survivors'] !== undefined ? Number(values['min-survivors']) : Math.min(sites, Math.floor(sites / 2) + 1)
  if (!(epsilon > 0) || !(delta > 0 && delta < 1) || !Number.isInteger(sites) || sites < 1 || sites > 5 || !Number.isInteger(records) || records < 10 || !Number.isInteger(repetitions) || repetitions < 1 || !Number.isInteger(bins) || bins < 2) {
    process.stderr.write(USAGE)
    process.exitCode = 2
    return
  }
  const withSums = values.sums === true
  const spec = MonitorSpec.parse({
    ...DEMO_SPEC,
    score: { ...DEMO_SPEC.score, bins, sums: withSums ? { precisionBits: 6 } : false },
    features: Object.fromEntries(Object.entries(DEMO_SPEC.features).map(([name, f]) => [name, f.type === 'numeric' ? { ...f, moments: withSums ? { clip: MOMENT_CLIPS[name], precisionBits: 5 } : false } : f])),
    ...(withSums ? { limits: { maxRecordsPerAgent: records } } : {}),
    privacy: { dp: { epsilon, delta } }
  })
  const layout = buildLayout(spec)
  const windows = demoWindows(Date.UTC(2026, 0, 15))
  const dir = mkdtempSync(join(tmpdir(), 'fedmon-bench-dp-'))
  try {
    const reference: Uint32Array[] = []
    const current: Uint32Array[] = []
    for (let site = 0; site < sites; site++) {
      const { dir: siteDir } = await writeSiteData(dir, site, 2 * records, windows)
      const source = { path: join(siteDir, '*.jsonl'), format: 'jsonl' as const }
      reference.push(await scanWindow({ spec, layout, source, window: windows.reference }))
      current.push(await scanWindow({ spec, layout, source, window: windows.current }))
    }
    const exact = computeReportBody({ spec, layout, current: sumVectors(current, layout.length), reference: { vector: sumVectors(reference, layout.length), id: 'ref', window: null } })
    const exactAuc = exact.performance.auc.value as number
    const drifted = Object.entries(exact.drift.features).filter(([, d]) => d.psi !== null && d.psi >= 0.01).map(([name, d]) => ({ name, psi: d.psi as number }))
    const plan = planDp(layout, { epsilon, delta }, minSurvivors)
    const mus = noiseMuPerEntry(layout, plan)
    const uniform = cryptoUniform()
    const aucErrors: number[] = []
    const psiErrors: number[] = []
    const logLossErrors: number[] = []
    const brierErrors: number[] = []
    const exactPerf = exact.performance as Record<string, unknown>
    const started = performance.now()
    for (let r = 0; r < repetitions; r++) {
      // Every site noises its own vector; the coordinator sees only the sum and publishes noisyReportBody's figures.
      const noisy = (vectors: Uint32Array[]): Uint32Array => sumVectors(vectors.map(v => addSkellamNoiseEach(Uint32Array.from(v), mus, uniform)), layout.length)
      const { body } = noisyReportBody({ spec, layout, current: noisy(current), reference: { vector: noisy(reference), id: 'ref', window: null, survivors: sites }, survivors: sites, minSurvivors })
      aucErrors.push(Math.abs((body.performance.auc.value as number) - exactAuc))
      for (const d of drifted) psiErrors.push(Math.abs((body.drift.features[d.name].psi as number) - d.psi) / d.psi)
      if (withSums) {
        const perf = body.performance as Record<string, unknown>
        logLossErrors.push(Math.abs((perf.log_loss as number) - (exactPerf.log_loss as number)))
        brierErrors.push(Math.abs((perf.brier as number) - (exactPerf.brier as number)))
      }
    }
    const result = {
      bench: 'dp', epsilon, delta, sites, recordsPerSitePerWindow: records, repetitions, scoreBins: bins,
      aucAbsErrorP95: round(p95(aucErrors), 6), psiRelErrorP95: round(p95(psiErrors), 4),
      noiseStd: round(noiseStd(plan, sites), 3), minSurvivors, muPerAgent: round(plan.muPerAgent, 3), sensitivityL1: plan.sensitivity.l1, epsilonSpent: round(plan.epsilon, 4),
      exactAuc: round(exactAuc, 4), psiFeatures: drifted.map(d => `${d.name}:${round(d.psi, 3)}`), vectorLength: layout.length,
      targets: { aucAbsErrorP95: 0.005, psiRelErrorP95: 0.1 }, noiseSeconds: round((performance.now() - started) / 1000, 2),
      ...(withSums ? {
        sums: true, exactLogLoss: round(exactPerf.log_loss as number, 4), logLossAbsErrorP95: round(p95(logLossErrors), 5),
        exactBrier: round(exactPerf.brier as number, 4), brierAbsErrorP95: round(p95(brierErrors), 5), sumsNoiseStd: round(noiseStd({ muPerAgent: plan.sums!.muPerAgent }, sites), 1)
      } : {})
    }
    if (values.json === true) process.stdout.write(JSON.stringify(result) + '\n')
    else {
      process.stdout.write(`dp ε=${epsilon} δ=${delta}: ${sites} sites × ${records} records/window, ${repetitions} repetitions: ` +
        `AUC |error| p95 ${result.aucAbsErrorP95} (target 0.005), PSI relative error p95 ${result.psiRelErrorP95} (target 0.1); ` +
        `noise std ${result.noiseStd} per count entry (Skellam μ ${result.muPerAgent} per site, L1 ${result.sensitivityL1})\n`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function p95 (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]
}
const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits
