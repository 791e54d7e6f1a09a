import { z } from 'zod'
import { buildLayout, specHashOf, type Layout } from '../stats/layout.js'
import { MonitorSpec } from '../stats/spec.js'
import { SecAggError } from './errors.js'
import type { Announce } from './messages.js'

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
  /** Never contribute a window holding fewer than this many of this agent's records (decline, ledger untouched). */
  minRecords: z.number().int().min(1).optional(),
  /** Join at most this many rounds whose windows overlap one window (failed rounds count): bounds probing. */
  maxRoundsPerWindow: z.number().int().min(1).optional(),
  maxVectorLength: z.number().int().positive().optional(),
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
  /** Largest score histogram resolution (score.bins; the histogram has 3 × bins entries). */
  maxScoreBins: z.number().int().min(2).optional(),

  // ---- the window ----
  /** Refuse windows shorter than this (a narrow window isolates few records). */
  minWindowMs: ms.optional(),
  /** Refuse windows that end more than this after the agent's clock (0: the window must have closed). */
  maxWindowLeadMs: ms.optional(),
  /** Refuse windows that start more than this before the agent's clock (data older than the site shares). */
  maxWindowAgeMs: ms.optional()
})
export type AgentPolicy = z.infer<typeof AgentPolicy>

/** True when the policy has rules that need the spec document (not just its hash). */
export function hasSpecRules (policy: AgentPolicy): boolean {
  return policy.allowedColumns !== undefined || policy.maxBucketsPerFeature !== undefined || policy.maxScoreBins !== undefined
}

const refuse = (message: string): SecAggError => new SecAggError('ERR_POLICY', message)
const iso = (t: number): string => Number.isFinite(t) && Math.abs(t) < 8.64e15 ? new Date(t).toISOString() : String(t)

/** The Announce fields the policy looks at (a decoded Announce satisfies it). */
export type AnnounceTerms = Pick<Announce, 'participants' | 'window' | 'specHash' | 'vectorLength' | 'minAgents' | 'threshold' | 'issuedAt'>

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
  if (policy.maxWindowLeadMs !== undefined && to > now + policy.maxWindowLeadMs) {
    throw refuse(`window ends in the future (${iso(to)}, agent clock ${iso(now)})`)
  }
  if (policy.maxWindowAgeMs !== undefined && from < now - policy.maxWindowAgeMs) {
    throw refuse(`window starts at ${iso(from)}, older than this agent's maximum age of ${policy.maxWindowAgeMs} ms`)
  }
}

/** A spec document verified against a round's spec hash, with its layout. */
export interface VerifiedSpec { spec: MonitorSpec, layout: Layout }

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
  const hash = specHashOf(parsed.data)
  if (hash !== specHash) throw refuse(`the spec hashes to ${hash.slice(0, 12)}…, the round announced ${specHash.slice(0, 12)}…`)
  let layout: Layout
  try {
    layout = buildLayout(parsed.data)
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
  return [...columns]
}

/** Checks a verified spec against the policy and the Announce it came with; throws ERR_POLICY to refuse. */
export function checkSpecPolicy (policy: AgentPolicy, { spec, layout }: VerifiedSpec, announce: Pick<Announce, 'vectorLength'>): void {
  if (layout.length !== announce.vectorLength) {
    throw refuse(`the spec's vector length is ${layout.length}, the round announced ${announce.vectorLength}`)
  }
  if (policy.allowedColumns !== undefined) {
    const allowed = new Set(policy.allowedColumns)
    const forbidden = columnsReadBy(spec).filter(c => !allowed.has(c))
    if (forbidden.length > 0) throw refuse(`the spec reads column(s) this agent does not share: ${forbidden.slice(0, 5).join(', ')}`)
  }
  if (policy.maxScoreBins !== undefined && spec.score.bins > policy.maxScoreBins) {
    throw refuse(`the spec asks for ${spec.score.bins} score bins, this agent allows at most ${policy.maxScoreBins}`)
  }
  if (policy.maxBucketsPerFeature !== undefined) {
    for (const f of layout.features) {
      if (f.length > policy.maxBucketsPerFeature) {
        throw refuse(`feature ${f.name} has ${f.length} buckets, this agent allows at most ${policy.maxBucketsPerFeature} per feature`)
      }
    }
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
}

/** Half-open windows [from, to) share at least one instant. */
export function windowsOverlap (a: { from: number, to: number }, b: { from: number, to: number }): boolean {
  return a.from < b.to && b.from < a.to
}
