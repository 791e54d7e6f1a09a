/**
 * Synthetic prediction logs for the demo: a credit-default model scored at 5 sites over two weeks.
 * Each site has its own population (age, income, region mix, tenure). The ground truth is logistic; the
 * model's score uses week-1 coefficients. In week 2 the inputs shift (older applicants at two sites,
 * lower incomes everywhere, a new regional mix at one site) and the relationship changes (tenure stops
 * protecting, income matters less), so the model degrades: lower AUC, worse calibration, and drift.
 * Recent labels arrive late: many of the last two days' records are still unlabelled. With `lateLabels` (what
 * `fedmon demo` writes) the current week's labels are not in the logs at all: they arrive in label files joined
 * by prediction id — 40 % during the week (labels/SITE/early.jsonl), the rest in the day after it closes
 * (labels/SITE/late.jsonl, written later by writeLateLabels), 3 % never.
 * Deterministic: the same seed gives the same files.
 */
import { mkdirSync, createWriteStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mulberry32 } from '../../shared/prng.js'

export const DAY_MS = 86_400_000
export const DEMO_SITES = ['site-a', 'site-b', 'site-c', 'site-d', 'site-e'] as const
export const REGIONS = ['north', 'south', 'east', 'west', 'central'] as const

/** The monitor spec the demo coordinator uses. */
export const DEMO_SPEC = {
  model: 'credit-default-v3',
  score: { column: 'score', bins: 1000, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.5,
  features: {
    age: { type: 'numeric', edges: [18, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 80] },
    income: { type: 'numeric', edges: [15000, 20000, 25000, 30000, 40000, 50000, 60000, 75000, 100000, 150000, 250000] },
    region: { type: 'categorical', categories: [...REGIONS] },
    tenure: { type: 'numeric', edges: [0, 3, 6, 12, 24, 36, 48, 60, 84, 120] }
  },
  // Labels arrive late: each window is refreshed a day, a week and a month after it closes (issue 11).
  labels: { refreshAfter: ['1d', '7d', '30d'] },
  // Every performance figure per region too (issue 12 §3): the region feature's column picks the cell.
  segments: [{ column: 'region', values: [...REGIONS] }]
}

/**
 * The demo's spec under distributed differential privacy (`fedmon demo --dp`): count entries only (no
 * fixed-point sums), 100 score bins — fine enough for AUC to 3 decimals, coarse enough that the noise of
 * ε = 1 per round moves it by about 0.002 at 50,000 records per site (npm run -s bench -- dp).
 */
export function demoDpSpec (epsilon: number, delta = 1e-6): Record<string, unknown> {
  return {
    ...DEMO_SPEC,
    score: { ...DEMO_SPEC.score, bins: 100, sums: false },
    features: Object.fromEntries(Object.entries(DEMO_SPEC.features).map(([name, f]) => [name, f.type === 'numeric' ? { ...f, moments: false } : f])),
    // a region cell holds a fifth of the records: 20 score bins keep its AUC above the noise (wider binning bound)
    segments: DEMO_SPEC.segments.map(s => ({ ...s, scoreBins: 20 })),
    privacy: { dp: { epsilon, delta } }
  }
}

export interface DemoWindows {
  reference: { from: number, to: number }
  current: { from: number, to: number }
}

/**
 * Two whole UTC weeks, the current one ending at the start of yesterday: a day has passed since it closed, so
 * its 1 d label refresh is due. reference = the week before it.
 */
export function demoWindows (now = Date.now()): DemoWindows {
  const end = Math.floor(now / DAY_MS) * DAY_MS - DAY_MS
  return { reference: { from: end - 14 * DAY_MS, to: end - 7 * DAY_MS }, current: { from: end - 7 * DAY_MS, to: end } }
}


function normal (rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x))

interface SiteProfile { ageMean: number, incomeMedian: number, regionWeights: number[], tenureMean: number }

const PROFILES: SiteProfile[] = [
  { ageMean: 38, incomeMedian: 52000, regionWeights: [5, 1, 1, 1, 2], tenureMean: 40 },
  { ageMean: 42, incomeMedian: 61000, regionWeights: [1, 5, 1, 1, 2], tenureMean: 48 },
  { ageMean: 35, incomeMedian: 45000, regionWeights: [1, 1, 5, 1, 2], tenureMean: 30 },
  { ageMean: 45, incomeMedian: 58000, regionWeights: [1, 1, 1, 5, 2], tenureMean: 55 },
  { ageMean: 33, incomeMedian: 40000, regionWeights: [2, 2, 2, 2, 4], tenureMean: 24 }
]

const REGION_EFFECT = [0.1, -0.2, 0.3, 0, -0.1]

function pick (rand: () => number, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0)
  let r = rand() * total
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]
    if (r < 0) return i
  }
  return weights.length - 1
}

export interface DemoRecord {
  /** Prediction id: what late labels are joined by. */
  id: string
  ts: number
  score: number
  label: 0 | 1 | null
  features: { age: number | null, income: number | null, region: string | null, tenure: number | null }
}

/** A record and when its label becomes known (epoch ms; null: never). */
interface TimedRecord { record: DemoRecord, labelAt: number | null, truth: 0 | 1 }

/** One site's records over both windows (`rows` in total, split evenly), in time order. */
export function siteRecords (site: number, rows: number, windows: DemoWindows, seed = 20260101): DemoRecord[] {
  return timedRecords(site, rows, windows, seed).map(t => t.record)
}

function timedRecords (site: number, rows: number, windows: DemoWindows, seed = 20260101): TimedRecord[] {
  const rand = mulberry32(seed + site * 7919)
  // Label arrival times come from a stream of their own, so the records are the same with or without them.
  const arrival = mulberry32(seed + site * 7919 + 1)
  const out: TimedRecord[] = []
  const profile = PROFILES[site % PROFILES.length]
  for (let i = 0; i < rows; i++) {
    const week2 = i >= rows / 2
    const w = week2 ? windows.current : windows.reference
    const ts = w.from + Math.floor(rand() * (w.to - w.from))
    // Covariate shift in week 2: older applicants at sites d and e, incomes 25 % lower, a new regional mix at site c.
    const ageShift = week2 && site >= 3 ? 9 : 0
    const age = Math.min(90, Math.max(18, profile.ageMean + ageShift + 11 * normal(rand)))
    const income = profile.incomeMedian * (week2 ? 0.75 : 1) * Math.exp(0.45 * normal(rand))
    const weights = week2 && site === 2 ? [1, 1, 2, 1, 6] : profile.regionWeights
    const region = pick(rand, weights)
    const tenure = Math.min(240, -profile.tenureMean * Math.log(1 - rand()))
    const logIncome = Math.log(income / 50000)
    // The model learnt week 1's relationship; in week 2 tenure stops protecting and income matters less.
    const modelLogit = -1.0 + 0.06 * (age - 40) - 1.6 * logIncome + REGION_EFFECT[region] - 0.03 * tenure
    const trueLogit = week2
      ? -1.4 + 0.06 * (age - 40) - 1.0 * logIncome + REGION_EFFECT[region] - 0.01 * tenure + 0.5 * (region === 4 ? 1 : 0)
      : modelLogit
    const y = rand() < sigmoid(trueLogit) ? 1 : 0
    const score = sigmoid(modelLogit + 0.25 * normal(rand))
    // Labels arrive late: half of the last two days are still unlabelled; 3 % are never labelled.
    const age2 = (w.to - ts) / DAY_MS
    const unlabeled = rand() < (week2 && age2 < 2 ? 0.5 : 0.03)
    const known = arrival() < 0.4
    const labelAt = !week2 ? ts : arrival() < 0.03 ? null : known ? ts + Math.floor(arrival() * (w.to - ts)) : w.to + Math.floor(arrival() * 20 * 3_600_000)
    out.push({ labelAt, truth: y as 0 | 1, record: {
      id: `${DEMO_SITES[site]}-${i}`,
      ts,
      score: Math.round(score * 1e6) / 1e6,
      label: unlabeled ? null : (y as 0 | 1),
      features: {
        age: rand() < 0.01 ? null : Math.round(age),
        income: rand() < 0.02 ? null : Math.round(income),
        region: rand() < 0.01 ? null : REGIONS[region],
        tenure: rand() < 0.03 ? null : Math.round(tenure)
      }
    } })
  }
  return out.sort((a, b) => a.record.ts - b.record.ts)
}

/** Writes `DIR/data/SITE/predictions-YYYY-MM-DD.jsonl` (one file per day, as a logging pipeline would). */
export async function writeSiteData (dir: string, site: number, rows: number, windows: DemoWindows, seed?: number, opts: { lateLabels?: boolean } = {}): Promise<{ dir: string, files: number, records: number }> {
  const timed = timedRecords(site, rows, windows, seed)
  const late = opts.lateLabels === true
  // With late labels, the current week's labels live in label files (the true label, whenever it arrives).
  const records = timed.map(({ record }) => late && record.ts >= windows.current.from ? { ...record, label: null } : record)
  if (late) writeLabels(dir, site, 'early', timed.filter(t => t.record.ts >= windows.current.from && t.labelAt !== null && t.labelAt < windows.current.to))
  const siteDir = join(dir, 'data', DEMO_SITES[site])
  const files = await writeDaily(siteDir, 'predictions', records)
  return { dir: siteDir, files, records: records.length }
}

/** Label records as they arrive (`{id, label, ts}`: ts is when the label became known) into labels/SITE/NAME.jsonl. */
function writeLabels (dir: string, site: number, name: string, arrivals: TimedRecord[]): void {
  const labelDir = join(dir, 'labels', DEMO_SITES[site])
  mkdirSync(labelDir, { recursive: true })
  const lines = arrivals.map(t => JSON.stringify({ id: t.record.id, label: t.truth, ts: t.labelAt }))
  writeFileSync(join(labelDir, `${name}.jsonl`), lines.length > 0 ? `${lines.join('\n')}\n` : '')
}

/** The labels that arrive after the current week closed (labels/SITE/late.jsonl): what a refresh round picks up. */
export function writeLateLabels (dir: string, site: number, rows: number, windows: DemoWindows, seed?: number): number {
  const late = timedRecords(site, rows, windows, seed).filter(t => t.record.ts >= windows.current.from && t.labelAt !== null && t.labelAt >= windows.current.to)
  writeLabels(dir, site, 'late', late)
  return late.length
}

/**
 * The demo's second monitor (issue 12: many monitors in one federation): a regression model at the same 5 sites
 * forecasting each card account's balance next month, from income and tenure. In week 2 incomes fall and
 * customers carry larger balances than the model learnt, so it under-forecasts: a negative bias, a higher MAE.
 */
export const DEMO_REGRESSION_SPEC = {
  model: 'card-balance-v1',
  task: 'regression',
  prediction: { column: 'predicted_balance', edges: [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000] },
  target: { column: 'balance', clip: [0, 20000], precisionBits: 16, edges: [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000] },
  features: { income: DEMO_SPEC.features.income, tenure: DEMO_SPEC.features.tenure }
}

/** One balance-forecast record (JSONL): what the regression monitor's agents read. */
export interface BalanceRecord { id: string, ts: number, predicted_balance: number, balance: number | null, features: { income: number | null, tenure: number | null } }

export function siteBalances (site: number, rows: number, windows: DemoWindows, seed = 20260202): BalanceRecord[] {
  const rand = mulberry32(seed + site * 104729)
  const profile = PROFILES[site % PROFILES.length]
  const out: BalanceRecord[] = []
  for (let i = 0; i < rows; i++) {
    const week2 = i >= rows / 2
    const w = week2 ? windows.current : windows.reference
    const ts = w.from + Math.floor(rand() * (w.to - w.from))
    const income = profile.incomeMedian * (week2 ? 0.75 : 1) * Math.exp(0.45 * normal(rand))
    const tenure = Math.min(240, -profile.tenureMean * Math.log(1 - rand()))
    const learnt = 400 + 0.045 * income + 12 * tenure
    // Week 2: lower incomes, yet larger balances than the model's week-1 relationship predicts.
    const truth = (week2 ? 1.12 * learnt + 250 * (50000 / income) : learnt) * Math.exp(0.25 * normal(rand))
    out.push({
      id: `${DEMO_SITES[site]}-b${i}`,
      ts,
      predicted_balance: Math.round(learnt * Math.exp(0.08 * normal(rand))),
      // the balance is known once the month closes: the last days of a week have none yet
      balance: rand() < ((w.to - ts) / DAY_MS < 1 ? 0.6 : 0.02) ? null : Math.round(truth),
      features: { income: rand() < 0.02 ? null : Math.round(income), tenure: Math.round(tenure) }
    })
  }
  return out.sort((a, b) => a.ts - b.ts)
}

/** Writes `DIR/balances/SITE/balances-YYYY-MM-DD.jsonl`, one file per day. */
export async function writeSiteBalances (dir: string, site: number, rows: number, windows: DemoWindows, seed?: number): Promise<number> {
  const records = siteBalances(site, rows, windows, seed)
  await writeDaily(join(dir, 'balances', DEMO_SITES[site]), 'balances', records)
  return records.length
}

async function writeDaily (into: string, prefix: string, records: Array<{ ts: number }>): Promise<number> {
  mkdirSync(into, { recursive: true })
  const byDay = new Map<string, string[]>()
  for (const r of records) {
    const day = new Date(r.ts).toISOString().slice(0, 10)
    let lines = byDay.get(day)
    if (lines === undefined) { lines = []; byDay.set(day, lines) }
    lines.push(JSON.stringify(r))
  }
  for (const [day, lines] of byDay) {
    const stream = createWriteStream(join(into, `${prefix}-${day}.jsonl`))
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject)
      stream.end(`${lines.join('\n')}\n`, resolve)
    })
  }
  return byDay.size
}
