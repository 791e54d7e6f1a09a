import { createHash } from 'node:crypto'
import { z } from 'zod'
import { specHashOf, type Layout, type NumericFeatureLayout } from '../stats/layout.js'
import { buildTaskLayout, type TaskLayout } from '../stats/tasks/index.js'
import { regressionPolicyProblem } from '../stats/tasks/regression.js'
import { multiclassPolicyProblem } from '../stats/tasks/multiclass.js'
import { MonitorSpec, MAX_SUM_PRECISION_BITS, refreshAgesMs, specProblem } from '../stats/spec.js'
import { labelDependentEntries } from '../stats/label-entries.js'
import { segmentCellCount } from '../stats/segments.js'
import { formatDuration } from '../config/duration.js'
import { SecAggError } from './errors.js'
import type { Announce } from './messages.js'
import type { Participant } from './types.js'

/**
 * An agent's own privacy policy: what it is willing to contribute to, checked before it takes any part in a
 * round (and again, for the spec and the ledger, right before its masked input leaves). Every refusal is a
 * SecAggError('ERR_POLICY') whose message says which rule refused what. Pure functions, no I/O.
 */

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a hex sha-256')
const ms = z.number().int().nonnegative()

export const AgentPolicy = z.strictObject({
  /** Minimum cohort: refuse rounds whose minAgents (the fewest agents a sum may cover) is below this. */
  minAgents: z.number().int().min(1).optional(),
  /** Refuse rounds whose Shamir threshold is below this. */
  minThreshold: z.number().int().min(1).optional(),
  /**
   * The fraction of the federation (this agent's roster) that may collude with the coordinator: C = ⌊α·R⌋
   * agents. Sets the consistency quorum (more than (n + C)/2 signatures on one survivor set) and the lowest
   * Shamir threshold this agent accepts for the round's graph. Default 0.05.
   */
  maxCorruptFraction: z.number().min(0).max(0.5).optional(),
  /**
   * Take part in rounds whose participants are not all on this agent's own roster (federation.roster):
   * the coordinator alone then decides who is in a round, sybils included. Off by default.
   */
  trustCoordinatorRoster: z.boolean().optional(),
  /**
   * Never contribute a window holding fewer than this many of this agent's records (decline, ledger untouched).
   * 0: contribute every window, even one without a record (the zero vector, indicator 0); the coordinator's
   * contributing-sites check (privacy.minAgents) then keeps a report from being fewer sites' figures than it says.
   */
  minRecords: z.number().int().min(0).optional(),
  /**
   * Decline (ledger untouched) a window where more than this share of the records has an unusable score or
   * label, or whose records all lack a readable timestamp: a wrong column mapping, not data (agent/data-check.ts).
   */
  maxBadRecordFraction: z.number().min(0).max(1).optional(),
  /** Join at most this many rounds whose windows overlap one window (failed rounds count): bounds probing. */
  maxRoundsPerWindow: z.number().int().min(1).optional(),
  maxVectorLength: z.number().int().positive().optional(),
  /**
   * Segments (spec.segments): the most cells (Σ over segment columns of declared values + 1) this agent
   * contributes to. Each cell is one more slice of its records in the sum. 0: no segments at all.
   */
  maxSegmentCells: z.number().int().min(0).optional(),
  /** Segments: the only columns a spec may segment this agent's records by (absent: any column). */
  allowedSegmentColumns: z.array(z.string().min(1)).optional(),
  allowedSpecHashes: z.array(hex64).optional(),
  /** Refuse Announces issued more than this long ago (ms, by the agent's clock): stale or replayed. */
  maxAnnounceAgeMs: ms.optional(),

  // ---- the monitor spec (needs the spec itself: carried in the Announce or handed to provideSpec) ----
  /**
   * Every column the spec reads must be listed: the score and label columns, each feature's name and, when
   * the spec sets one, its `column` (so an allowed feature name cannot be pointed at a forbidden column).
   */
  allowedColumns: z.array(z.string().min(1)).optional(),
  /** Largest layout length of one feature: value buckets + missing/invalid (numeric) or categories + other + missing. */
  maxBucketsPerFeature: z.number().int().min(1).optional(),
  /**
   * Largest resolution on one column, across every feature that reads it (its name, or its `column`): the
   * buckets that the union of their cut points makes (|union of edges| + 1 value buckets + missing + invalid; for
   * categories |union| + other + missing, both when a column is read both ways). Offset edges on several
   * features of one column would otherwise multiply the resolution that maxBucketsPerFeature allows one
   * feature. Default: maxBucketsPerFeature, so a per-feature limit also limits every column.
   */
  maxBucketsPerColumn: z.number().int().min(1).optional(),
  /**
   * Largest score resolution: the score bins that the union of the score histogram's edges, the calibration
   * bins' edges, the threshold and the cut points of any feature reading the score column makes (each splits
   * the records by score), so calibration bins cannot refine a coarse histogram.
   */
  maxScoreBins: z.number().int().min(2).optional(),
  /**
   * false: contribute no sums of record values at all — only specs with `score.sums: false` and `moments: false`
   * on every numeric feature (counts only; the report then has no log loss, Brier, ECE, mean/std shift).
   */
  allowSums: z.boolean().optional(),
  /**
   * The finest sums this agent contributes, in bits per record: every numeric feature's moments must be clipped,
   * `moments: { clip: [lo, hi], precisionBits: ≤ this }` (or false; the legacy unclipped moments are refused), the
   * score/loss sums must set `score.sums: { precisionBits: ≤ this }` (or false; without it they are at 24 bits),
   * and at most one feature per column may sum its values (two clips on one column act as a cut point). A sum
   * over a lone record then reveals its value to within (hi − lo)/2^bits and no finer: choose bits ≤
   * log2(maxBucketsPerColumn) and ≤ log2(maxScoreBins) and the sums tell no more of one record than a bucket does.
   */
  maxSumPrecisionBits: z.number().int().min(0).max(MAX_SUM_PRECISION_BITS).optional(),
  /**
   * Differential privacy this agent insists on (shared/dp): `required` refuses specs without `privacy.dp`;
   * `maxEpsilon` / `maxDelta` refuse too little noise. The agent always adds the noise itself.
   */
  dp: z.strictObject({
    required: z.boolean().optional(),
    maxEpsilon: z.number().positive().optional(),
    maxDelta: z.number().positive().max(1e-3).optional()
  }).optional(),

  // ---- the window ----
  /** Refuse windows shorter than this (a narrow window isolates few records). */
  minWindowMs: ms.optional(),
  /**
   * Refuse windows longer than this: the ledger never lets a window be aggregated twice, so one round over a
   * site's whole history would use up all of it for good.
   */
  maxWindowMs: ms.optional(),
  /** Refuse windows that end more than this after the agent's clock (0: the window must have closed). */
  maxWindowLeadMs: ms.optional(),
  /** Refuse windows that start more than this before the agent's clock (data older than the site shares). */
  maxWindowAgeMs: ms.optional(),
  /**
   * The privacy.dp budget one window may spend over its first round and its label-refresh rounds (basic
   * composition: the ε of the first round plus each revealed refresh's). A refresh that would exceed it is refused.
   */
  maxEpsilonPerWindow: z.number().positive().optional()
})
export type AgentPolicy = z.infer<typeof AgentPolicy>

/** True when the policy has rules that need the spec document (not just its hash). */
export function hasSpecRules (policy: AgentPolicy): boolean {
  return policy.allowedColumns !== undefined || policy.maxBucketsPerFeature !== undefined || policy.maxScoreBins !== undefined ||
    policy.maxBucketsPerColumn !== undefined || policy.allowSums === false || policy.maxSumPrecisionBits !== undefined ||
    policy.dp !== undefined || policy.maxSegmentCells !== undefined || policy.allowedSegmentColumns !== undefined
}

const refuse = (message: string): SecAggError => new SecAggError('ERR_POLICY', message)
const hours = (ms: number): string => `${+(ms / 3_600_000).toFixed(2)} h`
const iso = (t: number): string => Number.isFinite(t) && Math.abs(t) < 8.64e15 ? new Date(t).toISOString() : String(t)

/** The Announce fields the policy looks at, with its participant list (SecAggClient.participantsOf). */
export type AnnounceTerms = Pick<Announce, 'window' | 'specHash' | 'vectorLength' | 'minAgents' | 'threshold' | 'issuedAt'> & { participants: readonly Participant[] }

/** Checks an Announce's terms against the policy (everything but the spec document); throws ERR_POLICY to refuse. */
export function checkAnnouncePolicy (policy: AgentPolicy, announce: AnnounceTerms, now: number): void {
  const n = announce.participants.length
  const { from, to } = announce.window
  if (to <= from) throw refuse('empty window')
  if (policy.minAgents !== undefined && announce.minAgents < policy.minAgents) {
    throw refuse(`round minAgents ${announce.minAgents} is below this agent's minimum ${policy.minAgents}`)
  }
  if (policy.minAgents !== undefined && n < policy.minAgents) {
    throw refuse(`${n} participants is fewer than this agent's minimum ${policy.minAgents}`)
  }
  if (n < announce.minAgents) throw refuse(`${n} participants is fewer than minAgents ${announce.minAgents}`)
  if (policy.minThreshold !== undefined && announce.threshold < policy.minThreshold) {
    throw refuse(`threshold ${announce.threshold} is below this agent's minimum ${policy.minThreshold}`)
  }
  if (policy.maxVectorLength !== undefined && announce.vectorLength > policy.maxVectorLength) {
    throw refuse(`vector length ${announce.vectorLength} exceeds this agent's maximum ${policy.maxVectorLength}`)
  }
  if (policy.allowedSpecHashes !== undefined && !policy.allowedSpecHashes.includes(announce.specHash)) {
    throw refuse(`spec ${announce.specHash.slice(0, 12)}… is not allowed by this agent`)
  }
  if (policy.maxAnnounceAgeMs !== undefined && now - announce.issuedAt > policy.maxAnnounceAgeMs) {
    throw refuse(`announce issued ${Math.round((now - announce.issuedAt) / 1000)} s ago, older than this agent's maximum ${Math.round(policy.maxAnnounceAgeMs / 1000)} s (stale or replayed)`)
  }
  // A future-dated Announce would stay "fresh" for longer than the policy allows: same bound as clock skew.
  if (policy.maxAnnounceAgeMs !== undefined && announce.issuedAt - now > policy.maxAnnounceAgeMs) {
    throw refuse(`announce is dated ${Math.round((announce.issuedAt - now) / 1000)} s in the future (agent clock ${iso(now)})`)
  }
  if (policy.minWindowMs !== undefined && to - from < policy.minWindowMs) {
    throw refuse(`window of ${to - from} ms is shorter than this agent's minimum ${policy.minWindowMs} ms`)
  }
  if (policy.maxWindowMs !== undefined && to - from > policy.maxWindowMs) {
    throw refuse(`window of ${hours(to - from)} is longer than this agent's maximum of ${hours(policy.maxWindowMs)} (policy.maxWindowMs)`)
  }
  if (policy.maxWindowLeadMs !== undefined && to > now + policy.maxWindowLeadMs) {
    throw refuse(`window ends in the future (${iso(to)}, agent clock ${iso(now)})`)
  }
  if (policy.maxWindowAgeMs !== undefined && from < now - policy.maxWindowAgeMs) {
    throw refuse(`window starts at ${iso(from)}, older than this agent's maximum age of ${policy.maxWindowAgeMs} ms`)
  }
}

/** A spec document verified against a round's spec hash, with its layout. */
export interface VerifiedSpec { spec: MonitorSpec, layout: TaskLayout }
/** A verified binary spec: what the score and sums rules below read. */
export interface VerifiedBinarySpec { spec: MonitorSpec, layout: Layout }

/**
 * Parses a spec received for a round (canonical JSON text, or an already decoded object) and checks that it
 * hashes to the announced spec hash. The hash is what the coordinator signed, so the document itself may
 * travel unsigned. Throws ERR_POLICY (mismatch) or ERR_BAD_MESSAGE (not a valid spec).
 */
export function verifySpec (document: unknown, specHash: string): VerifiedSpec {
  let value = document
  if (typeof document === 'string') {
    try {
      value = JSON.parse(document)
    } catch {
      throw new SecAggError('ERR_BAD_MESSAGE', 'the round\'s spec is not valid JSON')
    }
  }
  const parsed = MonitorSpec.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new SecAggError('ERR_BAD_MESSAGE', `the round's spec is invalid: ${issue.path.map(String).join('.') || '(spec)'}: ${issue.message}`)
  }
  const problem = specProblem(parsed.data)
  if (problem !== null) throw new SecAggError('ERR_BAD_MESSAGE', `the round's spec is invalid: ${problem.field}: ${problem.message}`)
  const hash = specHashOf(parsed.data)
  if (hash !== specHash) throw refuse(`the spec hashes to ${hash.slice(0, 12)}…, the round announced ${specHash.slice(0, 12)}…`)
  let layout: TaskLayout
  try {
    layout = buildTaskLayout(parsed.data)
  } catch (err) {
    throw new SecAggError('ERR_BAD_MESSAGE', `the round's spec has no valid layout: ${(err as Error).message}`)
  }
  return { spec: parsed.data, layout }
}

/** The columns a spec reads from the agent's records (before the agent's own column mapping). */
export function columnsReadBy (spec: MonitorSpec): string[] {
  const columns = new Set([spec.score.column, spec.label.column])
  for (const [name, feature] of Object.entries(spec.features)) {
    columns.add(name)
    if (feature.column !== undefined) columns.add(feature.column)
  }
  for (const s of spec.segments ?? []) columns.add(s.column)
  return [...columns]
}

/** The column a feature reads (before the agent's own column mapping): its `column`, else its name. */
export function columnOf (name: string, feature: { column?: string }): string {
  return feature.column ?? name
}

/** A cut point on a column's values: records split into "below" (v < at, or v ≤ at when inclusive) and the rest. */
export interface Cut { at: number, inclusive: boolean }
const cutKey = (c: Cut): string => `${c.inclusive ? '<=' : '<'}${c.at}`

/** The cut points a numeric feature's buckets put on its column (its edges, or the sketch's bucket bounds). */
export function featureCuts (f: NumericFeatureLayout): Cut[] {
  if (f.edges !== null) return f.edges.map(at => ({ at, inclusive: false })) // buckets [e_i, e_i+1)
  if (f.sketch === null) throw new Error(`numeric feature ${f.name} without edges or sketch`)
  return f.sketch.cuts()
}

/** The resolution the features reading one column give together (what an adversary gets by combining them). */
export interface ColumnResolution {
  column: string
  features: string[]
  /** Distinct numeric cut points over all its numeric features. */
  cuts: number
  /** Distinct categories over all its categorical features. */
  categories: number
  /** Buckets the union makes: cuts + 1 value buckets (when read as a number), the categories, missing, invalid/other. */
  buckets: number
}

/** Per column read by a feature: the union of the cut points and categories of every feature reading it. */
export function columnResolutions ({ spec, layout }: VerifiedBinarySpec): ColumnResolution[] {
  const byColumn = new Map<string, { features: string[], cuts: Set<string>, categories: Set<string>, numeric: boolean }>()
  for (const f of layout.features) {
    const column = columnOf(f.name, spec.features[f.name])
    const entry = byColumn.get(column) ?? { features: [], cuts: new Set<string>(), categories: new Set<string>(), numeric: false }
    entry.features.push(f.name)
    if (f.type === 'numeric') {
      entry.numeric = true
      for (const c of featureCuts(f)) entry.cuts.add(cutKey(c))
    } else {
      for (const c of f.categories) entry.categories.add(c)
    }
    byColumn.set(column, entry)
  }
  return [...byColumn].map(([column, e]) => ({
    column,
    features: e.features,
    cuts: e.cuts.size,
    categories: e.categories.size,
    buckets: (e.numeric ? e.cuts.size + 1 : 0) + e.categories.size + 2
  }))
}

/**
 * The score's effective resolution: the bins that the union of every cut on the score makes — histogram edges,
 * calibration-bin edges, the threshold (tp/fp split at it), and the cuts of features that read the score column.
 */
export function scoreResolution ({ spec, layout }: VerifiedBinarySpec): { bins: number, sources: string[] } {
  const cuts = new Set<string>()
  const sources: string[] = []
  const add = (source: string, list: Cut[]): void => {
    const before = cuts.size
    for (const c of list) if (c.at > 0 && c.at <= 1) cuts.add(cutKey(c)) // valid scores are in [0, 1]
    if (cuts.size > before) sources.push(source)
  }
  const { bins, scale, logitRange } = layout.score
  const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z))
  add(`${bins} score bins`, Array.from({ length: bins - 1 }, (_, i) => ({ at: scale === 'linear' ? (i + 1) / bins : sigmoid(-logitRange + 2 * logitRange * (i + 1) / bins), inclusive: false })))
  add(`${layout.calibration.bins} calibration bins`, Array.from({ length: layout.calibration.bins - 1 }, (_, i) => ({ at: (i + 1) / layout.calibration.bins, inclusive: false })))
  add(`threshold ${spec.threshold}`, [{ at: spec.threshold, inclusive: false }]) // predicted positive: s ≥ threshold
  for (const f of layout.features) {
    if (f.type === 'numeric' && columnOf(f.name, spec.features[f.name]) === spec.score.column) add(`feature ${f.name}`, featureCuts(f))
  }
  return { bins: cuts.size + 1, sources }
}

const list = (names: string[]): string => names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`

/**
 * The sums rules (allowSums, maxSumPrecisionBits): the spec states every sum's precision and clip (spec.ts
 * ScoreSumsSpec, MomentsSpec); this refuses a spec whose sums carry more of a record than the site allows.
 */
export function checkSumsPolicy (policy: AgentPolicy, { spec, layout }: VerifiedBinarySpec): void {
  const summed = layout.features.filter((f): f is NumericFeatureLayout => f.type === 'numeric' && f.moments.kind !== 'off')
  if (policy.allowSums === false) {
    const what = [...(layout.sums.kind === 'fixed' ? ['the score and loss sums (set score.sums: false)'] : []), ...summed.map(f => `feature ${f.name}'s moments (set moments: false)`)]
    if (what.length > 0) throw refuse(`the spec sums record values: ${list(what)}; this agent contributes no sums (policy.allowSums: false)`)
  }
  const bits = policy.maxSumPrecisionBits
  if (bits === undefined) return
  const sums = layout.sums
  if (sums.kind === 'fixed' && sums.precisionBits > bits) {
    throw refuse(`the spec's score and loss sums are at 2^-${sums.precisionBits} per record${sums.legacy ? ' (no score.sums in the spec)' : ''}, this agent allows at most 2^-${bits} (policy.maxSumPrecisionBits): set score.sums: { precisionBits: ${bits} } or false`)
  }
  for (const f of summed) {
    const m = f.moments
    if (m.kind === 'exact') {
      throw refuse(`feature ${f.name}: moments are unclipped (exact Σx, Σx² at 2^-${m.scaleBits}, clamped only at ±${m.clamp}), this agent requires clipped sums of at most 2^${bits} levels (policy.maxSumPrecisionBits): set moments: { clip: [lo, hi], precisionBits: ${bits} } or false`)
    }
    if (m.kind === 'clipped' && m.precisionBits > bits) {
      throw refuse(`feature ${f.name}: moments at ${m.precisionBits} bits (steps of ${m.step} over [${m.lo}, ${m.hi}]), this agent allows at most ${bits} bits (policy.maxSumPrecisionBits)`)
    }
  }
  // Σ clip(x, lo1, hi1) − Σ clip(x, lo2, hi2) over one record places it between the clips: one sum per column.
  const byColumn = new Map<string, string[]>()
  for (const f of summed) {
    const column = columnOf(f.name, spec.features[f.name])
    byColumn.set(column, [...(byColumn.get(column) ?? []), f.name])
  }
  for (const [column, names] of byColumn) {
    if (names.length > 1) throw refuse(`column ${column}: features ${list(names)} each sum its values; two clipped sums of one column act as a cut point, this agent allows one per column (policy.maxSumPrecisionBits): set moments: false on all but one`)
  }
}

/** Checks a verified spec against the policy and the Announce it came with; throws ERR_POLICY to refuse. */
export function checkSpecPolicy (policy: AgentPolicy, verified: VerifiedSpec, announce: Pick<Announce, 'vectorLength' | 'refresh'>): void {
  const { spec, layout } = verified
  const expected = announce.refresh !== undefined ? labelDependentEntries(layout).length : layout.length
  if (expected !== announce.vectorLength) {
    throw refuse(`the spec's ${announce.refresh !== undefined ? 'label-dependent sub-layout' : 'vector'} length is ${expected}, the round announced ${announce.vectorLength}`)
  }
  checkSegmentsPolicy(policy, spec)
  // every task: an agent that requires DP (or bounds ε) refuses a regression or multiclass spec as any other
  checkDpPolicy(policy, spec)
  if ('task' in layout) { // another task's spec: its task's rules (shared/stats/tasks/regression.ts, multiclass.ts)
    const problem = layout.task === 'multiclass' ? multiclassPolicyProblem(policy, spec, layout) : regressionPolicyProblem(policy, spec, layout)
    if (problem !== null) throw refuse(problem)
    // multiclass's loss sums have binary's shape (kind, precisionBits, legacy): the same sums rules, feature moments too
    if (layout.task === 'multiclass') checkSumsPolicy(policy, { spec, layout: layout as unknown as VerifiedBinarySpec['layout'] })
    return
  }
  const binary: VerifiedBinarySpec = { spec, layout }
  if (policy.allowedColumns !== undefined) {
    const allowed = new Set(policy.allowedColumns)
    const forbidden = columnsReadBy(spec).filter(c => !allowed.has(c))
    if (forbidden.length > 0) throw refuse(`the spec reads column(s) this agent does not share: ${forbidden.slice(0, 5).join(', ')}`)
  }
  if (policy.maxScoreBins !== undefined) {
    if (spec.score.bins > policy.maxScoreBins) {
      throw refuse(`the spec asks for ${spec.score.bins} score bins, this agent allows at most ${policy.maxScoreBins}`)
    }
    const score = scoreResolution(binary)
    if (score.bins > policy.maxScoreBins) {
      throw refuse(`the spec splits the score into ${score.bins} bins (${list(score.sources)} together), this agent allows at most ${policy.maxScoreBins} (policy.maxScoreBins)`)
    }
  }
  if (policy.maxBucketsPerFeature !== undefined) {
    for (const f of layout.features) {
      if (f.length > policy.maxBucketsPerFeature) {
        throw refuse(`feature ${f.name} has ${f.length} buckets, this agent allows at most ${policy.maxBucketsPerFeature} per feature`)
      }
    }
  }
  const perColumn = policy.maxBucketsPerColumn ?? policy.maxBucketsPerFeature
  if (perColumn !== undefined) {
    for (const c of columnResolutions(binary)) {
      if (c.buckets > perColumn) {
        const how = [c.cuts > 0 ? `${c.cuts} distinct cut points` : '', c.categories > 0 ? `${c.categories} distinct categories` : ''].filter(x => x !== '').join(' and ')
        throw refuse(`column ${c.column} is read by features ${list(c.features)}: together ${how}, ${c.buckets} buckets; this agent allows at most ${perColumn} per column (policy.${policy.maxBucketsPerColumn !== undefined ? 'maxBucketsPerColumn' : 'maxBucketsPerFeature, which also bounds each column'})`)
      }
    }
  }
  checkSumsPolicy(policy, binary)
}

/**
 * A label-refresh round's terms against its verified spec: the age is one the spec declares (labels.refreshAfter,
 * which every agent signed off on through the spec hash) and it has been reached by this agent's clock. Throws
 * ERR_POLICY to refuse. (Which window and which included set: the contribution ledger, ContributionGuard.)
 */
export function checkRefreshTerms (spec: MonitorSpec, announce: Pick<Announce, 'window' | 'refresh'>, now: number): void {
  const refresh = announce.refresh
  if (refresh === undefined) return
  const ages = refreshAgesMs(spec)
  if (!ages.includes(refresh.ageMs)) {
    throw refuse(`a label refresh at ${formatDuration(refresh.ageMs)} after the window's end is not one the spec declares (labels.refreshAfter: ${ages.length === 0 ? 'none' : ages.map(formatDuration).join(', ')})`)
  }
  const due = announce.window.to + refresh.ageMs
  if (now < due) throw refuse(`the label refresh at ${formatDuration(refresh.ageMs)} is due at ${iso(due)}, not yet reached (agent clock ${iso(now)})`)
}

/** The segments rules (maxSegmentCells, allowedSegmentColumns): names the field, the column and the count, never a value. */
export function checkSegmentsPolicy (policy: AgentPolicy, spec: MonitorSpec): void {
  const segments = spec.segments
  if (segments === undefined) return
  const cells = segmentCellCount(segments)
  if (policy.maxSegmentCells !== undefined && cells > policy.maxSegmentCells) {
    throw refuse(`the spec's segments make ${cells} cells (${segments.map(s => `${s.column}: ${s.values.length} values + other`).join(', ')}), this agent allows at most ${policy.maxSegmentCells} (policy.maxSegmentCells)`)
  }
  if (policy.allowedSegmentColumns !== undefined) {
    const allowed = new Set(policy.allowedSegmentColumns)
    const forbidden = segments.map(s => s.column).filter(c => !allowed.has(c))
    if (forbidden.length > 0) throw refuse(`the spec segments this agent's records by column(s) ${list(forbidden)}, not in policy.allowedSegmentColumns`)
  }
}

/** The agent's DP rules against the spec's `privacy.dp`: required or not, and never less noise than allowed. */
function checkDpPolicy (policy: AgentPolicy, spec: MonitorSpec): void {
  const rules = policy.dp
  if (rules === undefined) return
  const dp = spec.privacy?.dp
  if (dp === undefined) {
    if (rules.required === true) throw refuse('the spec has no privacy.dp and this agent requires differential privacy (policy.dp.required)')
    return
  }
  if (rules.maxEpsilon !== undefined && dp.epsilon > rules.maxEpsilon) {
    throw refuse(`the spec asks for ε = ${dp.epsilon} per round, this agent allows at most ${rules.maxEpsilon} (policy.dp.maxEpsilon): too little noise`)
  }
  if (rules.maxDelta !== undefined && dp.delta > rules.maxDelta) {
    throw refuse(`the spec asks for δ = ${dp.delta}, this agent allows at most ${rules.maxDelta} (policy.dp.maxDelta)`)
  }
}

// ---- the contribution ledger interface (agent/ledger.ts implements it with a file) ----

/** What an agent remembers of a round it joins or contributes to. Nothing secret. */
export interface RoundRecord {
  roundId: string
  window: { from: number, to: number }
  specHash: string
  reference: boolean
  /** Peer ids of the invited participants. */
  participants: string[]
  /** A label-refresh round: the window's first round `of`, at `ageMs` after the window's end. */
  refresh?: { ageMs: number, of: string }
  /** The spec's per-round privacy.dp ε, once the spec is known (the ledger keeps the budget spent per window). */
  epsilon?: number
}

/**
 * What an agent records of a first round's included set, at the consistency step (the survivor set it signs):
 * the count and a SHA-256 over the peer ids in order (participants are sorted by id), so a refresh can be held
 * to exactly that set without the ledger keeping n ids per window.
 */
export interface IncludedSet { count: number, digest: string }

export function includedSetOf (ids: readonly string[]): IncludedSet {
  const hash = createHash('sha256')
  for (const id of ids) hash.update(`${id.length}:${id}`)
  return { count: ids.length, digest: hash.digest('hex') }
}

/**
 * Remembers rounds across the agent's lifetime. Both calls throw to refuse (a SecAggError saying why; any
 * other error is treated as a refusal too: if the record cannot be kept, the agent does not contribute).
 */
export interface ContributionGuard {
  /** At the Announce: refuse replays and rounds over records already contributed; remember the round id. */
  admit: (round: RoundRecord, now: number) => void
  /** Right before the masked input leaves: check again, then durably record the contribution. */
  contribute: (round: RoundRecord, now: number) => void
  /**
   * At the consistency step of a first round, before this agent signs the survivor set: durably records it as
   * the window's included set (a refresh of the window is then unmasked only with exactly this set).
   */
  recordIncluded?: (round: RoundRecord, included: IncludedSet, now: number) => void
  /**
   * A refresh round, before any of its shares is revealed: checks it is the first reveal at its age and records
   * it durably. Throws to refuse.
   */
  recordReveal?: (round: RoundRecord, now: number) => void
  /** The included set recorded for the refresh's first round (throws ERR_REFRESH_SET_MISMATCH when there is none). */
  includedSetFor?: (round: RoundRecord) => IncludedSet
}

/** Half-open windows [from, to) share at least one instant. */
export function windowsOverlap (a: { from: number, to: number }, b: { from: number, to: number }): boolean {
  return a.from < b.to && b.from < a.to
}
