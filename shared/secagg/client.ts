import { randomBytes, type KeyObject } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { aeadOpen, aeadSeal, shareAssociatedData } from '../crypto/aead.js'
import { deriveKey } from '../crypto/hkdf.js'
import { addMaskInPlace } from '../crypto/prg.js'
import { splitSecret, SHARE_BYTES } from '../crypto/shamir.js'
import { generateX25519KeyPair, x25519PrivateKeyObject, x25519SharedSecret } from '../crypto/x25519.js'
import { committeeQuorum, consistencyQuorum, corruptTolerance, DEFAULT_CORRUPT_FRACTION, minimumSafeThreshold } from './params.js'
import { committeeMembers } from './committee.js'
import { membersOf, sortedRoster } from './roster-members.js'
import { SecAggError } from './errors.js'
import { assertIndexSet, IndexBitmap, participantsInCanonicalOrder, RoundLayout } from './layout.js'
import type { Announce, KeySet, MaskingSet, SecAggMessage, Shares, Survivors, UnmaskRequest } from './messages.js'
import { PAIR_SEED_BYTES } from './messages.js'
import * as transcript from './transcript.js'
import type { Outgoing, Participant, Sign, Verify } from './types.js'
import { checkAnnouncePolicy, checkRefreshTerms, checkSpecPolicy, hasSpecRules, includedSetOf, verifySpec, type AgentPolicy, type ContributionGuard, type RoundRecord, type VerifiedSpec } from './policy.js'
import { DECLINABLE_CODES, REFRESH_SET_MISMATCH, signDecline } from './decline.js'
import { checkDpHeadroom, DpPlanError, noiseMuPerEntry, planDp, type DpPlan } from '../dp/plan.js'
import { addSkellamNoiseEach } from '../dp/skellam.js'
import { labelDependentEntries } from '../stats/label-entries.js'
import { cryptoUniform, type UniformSource } from '../dp/random.js'

/** An Announce with its participant list (rebuilt from `members` in a large round: SecAggClient.participantsOf). */
export type FullAnnounce = Announce & { participants: Participant[] }

export type { AgentPolicy } from './policy.js'

export interface ClientOptions {
  self: string
  coordinator: string
  sign: Sign
  verify: Verify
  policy?: AgentPolicy
  /** Uniform draws for differential-privacy noise (default: node:crypto; tests pass a seeded source). */
  noiseSource?: UniformSource
  /** Cross-round memory (agent/ledger.ts): refuses replays and differencing; records contributions durably. */
  guard?: ContributionGuard
  /**
   * This agent's own copy of the federation's roster (peer ids, received out of band). A round is joined only
   * when every participant is on it, unless policy.trustCoordinatorRoster; its size R sets C = ⌊α·R⌋.
   */
  roster?: ReadonlySet<string>
}

type ClientPhase = 'announced' | 'advertised' | 'sharing' | 'receipted' | 'masking' | 'masked' | 'signed' | 'done' | 'failed'
const PHASE_ORDER: readonly ClientPhase[] = ['announced', 'advertised', 'sharing', 'receipted', 'masking', 'masked', 'signed', 'done']
/** The phase in which each coordinator message is taken (shares are buffered from the start, never early). */
const TAKEN_IN: Partial<Record<SecAggMessage['type'], ClientPhase>> = { 'key-set': 'advertised', 'masking-set': 'receipted', survivors: 'masked', 'unmask-request': 'signed' }

/** A neighbour's checked keys: share encryption both ways, and the pairwise mask seed (derived at key-set time). */
interface PeerKeys { cPk: Uint8Array, sPk: Uint8Array, sendKey: Uint8Array, receiveKey: Uint8Array, maskSeed: Uint8Array }
const NO_BYTES = new Uint8Array(0)
/** What a neighbour's entry becomes once the masked input is sent: its share and mask keys are wiped and dropped. */
const SPENT_KEYS: PeerKeys = Object.freeze({ cPk: NO_BYTES, sPk: NO_BYTES, sendKey: NO_BYTES, receiveKey: NO_BYTES, maskSeed: NO_BYTES })

/** The whole round may take at most this many phase timeouts before the agent gives up and wipes its secrets. */
const ROUND_LIFETIME_PHASES = 8

/**
 * One agent's side of one round (sans-IO). Messages in, messages out; time comes in as `now` (ms).
 * Every rejection throws SecAggError before any state changes.
 */
export class SecAggClient {
  readonly roundId: string
  readonly announce: {
    window: { from: number, to: number }, specHash: string, vectorLength: number, participants: Participant[],
    reference: boolean, threshold: number, degree: number, graph: 'full' | 'sparse', minAgents: number, maxEntry: number, phaseTimeoutMs: number,
    /** A label-refresh round (issue 11 §2): its first round and age; undefined for a first round. */
    refresh?: { ageMs: number, of: string }
  }

  private readonly opts: ClientOptions
  private readonly layout: RoundLayout
  private readonly selfIndex: number
  private readonly graphNeighbours: Set<number>
  /**
   * Participants the survivor set must hold (params.consistencyQuorum, > (n + C)/2): the fewest a round finishes
   * with, as this agent counts (its DP plan is sized for them).
   */
  readonly consistencyQuorum: number
  /** Who certifies the survivor set and how many of their signatures this agent needs (params.committeeQuorum). */
  readonly committee: { size: number, quorum: number }
  private phase: ClientPhase = 'announced'
  private failureInfo: { code: string, message: string } | null = null
  private readonly giveUpAt: number
  /** When the Announce was accepted (agent clock): a refresh's age must have been reached by then. */
  private readonly acceptedAt: number
  private sharesDeadline: number | null = null

  // secrets (wiped on finish/abort)
  private cKey: { privateKey: Uint8Array, publicKey: Uint8Array } | null
  private sKey: { privateKey: Uint8Array, publicKey: Uint8Array } | null
  private selfMaskSeed: Uint8Array | null
  private input: Uint32Array | null = null
  /** Shares this agent holds for its neighbours: owner index → b-share, s-share. */
  private readonly held = new Map<number, { b: Uint8Array, s: Uint8Array }>()
  /** Pairwise mask seeds of the masking-set neighbours, kept from masking to the unmask request (then wiped). */
  private readonly maskSeeds = new Map<number, Uint8Array>()
  private readonly pendingShares = new Map<number, Uint8Array>()

  private peerKeys = new Map<number, PeerKeys>()
  /** U2 and U3 as bitmaps (n/8 bytes each), not copies of the lists: O(k) state per agent besides these bits. */
  private maskingSet: IndexBitmap | null = null
  private survivorSet: IndexBitmap | null = null
  /** consistencyBytes of the survivor set this agent signed (its digest, computed once). */
  private consistencySigned: Uint8Array | null = null
  private readonly revealed = new Map<number, 'b' | 's'>()
  /** Neighbours' addresses from the key set (a roster-bitmap Announce names none): peer id → addresses. */
  private readonly learntAddrs = new Map<string, string[]>()
  private lastMaskMs: number | null = null
  private lastDpPlan: DpPlan | null = null
  private verifiedSpec: VerifiedSpec | null = null
  /** Once the masked input has left, this agent can no longer leave the round: no Decline after that. */
  private maskedInputSent = false
  /** This agent's own refusal of the round (spec check, policy, ledger), as opposed to failures and aborts. */
  private refusal: { code: string, message: string } | null = null
  private declineSent = false

  private constructor (opts: ClientOptions, announce: FullAnnounce, now: number, consistency: { quorum: number, committee: { size: number, quorum: number } }) {
    this.opts = opts
    this.consistencyQuorum = consistency.quorum
    this.committee = consistency.committee
    this.roundId = announce.roundId
    this.announce = {
      window: announce.window, specHash: announce.specHash, vectorLength: announce.vectorLength,
      participants: announce.participants, reference: announce.reference, threshold: announce.threshold,
      degree: announce.degree, graph: announce.graph, minAgents: announce.minAgents, maxEntry: announce.maxEntry,
      phaseTimeoutMs: announce.phaseTimeoutMs,
      ...(announce.refresh !== undefined ? { refresh: { ageMs: announce.refresh.ageMs, of: announce.refresh.of } } : {})
    }
    this.layout = new RoundLayout({
      roundId: announce.roundId, participants: announce.participants, graph: announce.graph, k: announce.degree,
      t: announce.threshold, vectorLength: announce.vectorLength, specHash: announce.specHash
    })
    const self = this.layout.indexOf(opts.self)
    if (self === undefined) throw new SecAggError('ERR_POLICY', 'this agent is not among the round participants')
    this.selfIndex = self
    this.graphNeighbours = new Set(this.layout.graph.neighbours(self))
    this.layout.releaseGraph() // O(k) per agent from here: only its own neighbours are needed
    this.giveUpAt = now + ROUND_LIFETIME_PHASES * announce.phaseTimeoutMs
    this.acceptedAt = now
    // Fresh keys and self-mask seed every round.
    this.cKey = generateX25519KeyPair()
    this.sKey = generateX25519KeyPair()
    this.selfMaskSeed = new Uint8Array(randomBytes(32))
  }

  /**
   * Validates the coordinator's signed Announce (signature, policy incl. window rules, participants incl. self,
   * minAgents, overflow, the carried spec if any) and asks the guard (contribution ledger) to admit the round;
   * throws to refuse, before anything is sent (the fresh round keys of a refused round are wiped).
   */
  static fromAnnounce (opts: ClientOptions, from: string, announce: SecAggMessage, now: number): SecAggClient {
    if (announce.type !== 'announce') throw new SecAggError('ERR_WRONG_PHASE', `expected announce, got ${announce.type}`)
    if (from !== opts.coordinator || announce.coordinator !== opts.coordinator) {
      throw new SecAggError('ERR_UNKNOWN_SENDER', `announce from ${from} (claims coordinator ${announce.coordinator}), expected ${opts.coordinator}`)
    }
    if (!opts.verify(opts.coordinator, transcript.announceBytes(announce), announce.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', 'announce signature does not verify with the coordinator key')
    }
    return SecAggClient.fromFullAnnounce(opts, { ...announce, participants: SecAggClient.participantsOf(opts, announce) }, now)
  }

  /** The neighbours' addresses the key set brought (empty when the Announce listed them): for dialing them. */
  neighbourAddresses (): Array<{ id: string, addrs: string[] }> {
    return [...this.learntAddrs].map(([id, addrs]) => ({ id, addrs }))
  }

  /**
   * The round's participants: the Announce's list, or (a large round) the members its bitmap names on this
   * agent's own roster (roster-members.ts), which must be the coordinator's (the digest says). ERR_POLICY when
   * this agent cannot tell; ERR_BAD_MESSAGE when the Announce names none, both, or a bitmap that does not fit.
   */
  static participantsOf (opts: Pick<ClientOptions, 'roster'>, announce: Announce): Participant[] {
    if (announce.participants !== undefined) {
      if (announce.members !== undefined) throw new SecAggError('ERR_BAD_MESSAGE', 'an announce names its participants twice (list and members)')
      return announce.participants
    }
    if (announce.members === undefined) throw new SecAggError('ERR_BAD_MESSAGE', 'an announce names no participants')
    const roster = opts.roster
    if (roster === undefined || roster.size === 0) {
      throw new SecAggError('ERR_POLICY', 'the round names its participants by the federation\'s roster, and this agent has no roster of its own (federation.roster)')
    }
    const own = sortedRoster(roster)
    if (own.digest !== announce.members.roster) {
      throw new SecAggError('ERR_POLICY', `the round names its participants by a roster (sha256 ${announce.members.roster.slice(0, 12)}…) other than this agent's (${own.ids.length} members, sha256 ${own.digest.slice(0, 12)}…): install the federation's current roster (federation.roster)`)
    }
    try {
      return membersOf(own, announce.members.bits)
    } catch (err) {
      throw new SecAggError('ERR_BAD_MESSAGE', `announce members: ${(err as Error).message}`)
    }
  }

  private static fromFullAnnounce (opts: ClientOptions, announce: FullAnnounce, now: number): SecAggClient {
    const policy = opts.policy ?? {}
    const n = announce.participants.length
    if (!announce.participants.some(p => p.id === opts.self)) throw new SecAggError('ERR_POLICY', 'this agent is not among the round participants')
    const consistency = SecAggClient.checkFederation(opts, announce)
    checkAnnouncePolicy(policy, announce, now)
    // The spec document may ride along (unsigned: the signed spec hash binds it); verified before anything else.
    const verified = announce.spec !== undefined ? verifySpec(announce.spec, announce.specHash) : null
    if (verified !== null) SecAggClient.checkSpec(policy, verified, announce, now)
    if (announce.refresh !== undefined) SecAggClient.checkRefreshSet(opts, announce)
    if (n * announce.maxEntry >= 2 ** 32) {
      throw new SecAggError('ERR_OVERFLOW', `${n} agents × max entry ${announce.maxEntry} does not fit in 2^32`)
    }
    let client: SecAggClient
    try {
      client = new SecAggClient(opts, announce, now, consistency)
    } catch (err) {
      if (err instanceof SecAggError) throw new SecAggError('ERR_POLICY', `refusing round layout: ${err.message}`, { cause: err })
      throw err
    }
    client.verifiedSpec = verified
    if (opts.guard !== undefined) {
      try {
        opts.guard.admit(client.roundRecord(), now)
      } catch (err) {
        client.wipe()
        throw SecAggClient.asRefusal(err, 'the contribution ledger')
      }
    }
    return client
  }

  /**
   * Who is in the round and how safe its parameters are, by this agent's own knowledge (issue 10):
   * - every participant is on the agent's own roster (received out of band), so a coordinator cannot fill a
   *   round with identities of its own making — unless policy.trustCoordinatorRoster opts out;
   * - C = ⌊α·R⌋ colluders tolerated (α = policy.maxCorruptFraction, R = roster size), the threshold t is high
   *   enough that C colluders never hold t shares of one agent's secrets (params.minimumSafeThreshold), and the
   *   consistency quorum q = ⌊(n + C)/2⌋ + 1 is reachable. Returns q, and the committee that certifies the
   *   survivor set with its quorum (params.committeeQuorum). Throws ERR_POLICY to refuse.
   */
  private static checkFederation (opts: ClientOptions, announce: FullAnnounce): { quorum: number, committee: { size: number, quorum: number } } {
    const policy = opts.policy ?? {}
    const n = announce.participants.length
    if (!participantsInCanonicalOrder(announce.participants)) {
      // Indexes place agents in the neighbour graph: a coordinator free to order the list could surround a victim.
      throw new SecAggError('ERR_POLICY', 'the participants are not sorted by peer id: their order would let the coordinator place agents in the neighbour graph')
    }
    const trust = policy.trustCoordinatorRoster === true
    if (!trust) {
      const roster = opts.roster
      if (roster === undefined || roster.size === 0) {
        throw new SecAggError('ERR_POLICY', 'this agent has no roster of its own (federation.roster) and policy.trustCoordinatorRoster is not set: it cannot tell real sites from identities the coordinator made up')
      }
      const strangers = announce.participants.filter(p => !roster.has(p.id))
      if (strangers.length > 0) {
        throw new SecAggError('ERR_POLICY', `${strangers.length} of ${n} participants are not on this agent's roster (e.g. ${strangers.slice(0, 3).map(p => p.id).join(', ')}): not joining a round with unknown sites`)
      }
      if (roster.has(announce.coordinator)) throw new SecAggError('ERR_POLICY', 'the coordinator is on the agents\' roster: it could take part as a site')
    }
    const rosterSize = trust ? n : opts.roster!.size
    const alpha = policy.maxCorruptFraction ?? DEFAULT_CORRUPT_FRACTION
    const corrupt = corruptTolerance(alpha, rosterSize)
    const quorum = consistencyQuorum(n, corrupt)
    if (quorum > n) throw new SecAggError('ERR_POLICY', `${n} participants cannot outvote the ${corrupt} colluders this agent tolerates (consistency quorum ${quorum})`)
    const lowest = minimumSafeThreshold(announce.graph, n, announce.degree, corrupt)
    if (announce.threshold < lowest) {
      throw new SecAggError('ERR_POLICY', `threshold ${announce.threshold} is below ${lowest}, the lowest that keeps ${corrupt} colluders (${alpha} of a roster of ${rosterSize}) from holding t shares of one agent (${announce.graph} graph, k = ${announce.degree}, n = ${n})`)
    }
    // The announced committee (signed); any size is safe: the quorum follows from it and this agent's own C.
    const size = Math.min(n, announce.committee ?? n)
    const committee = { size, quorum: committeeQuorum(n, corrupt, size) }
    if (committee.quorum > size) throw new SecAggError('ERR_POLICY', `a consistency committee of ${size} cannot outvote the colluders this agent tolerates among them (quorum ${committee.quorum})`)
    return { quorum, committee }
  }

  /**
   * The round's spec against the policy and the Announce: the policy's spec rules, and the announced max entry
   * is at least the layout's, so an honest vector never exceeds it (a lower one would make this agent's
   * participation depend on its data — a count oracle for the coordinator).
   */
  private static checkSpec (policy: AgentPolicy, verified: VerifiedSpec, announce: Pick<Announce, 'vectorLength' | 'maxEntry' | 'window' | 'refresh'>, now: number): void {
    checkSpecPolicy(policy, verified, announce)
    checkRefreshTerms(verified.spec, announce, now)
    if (announce.maxEntry < verified.layout.maxEntry) {
      throw new SecAggError('ERR_POLICY', `the round's max entry ${announce.maxEntry} is below the spec layout's ${verified.layout.maxEntry}: refusing a bound that would make contributing depend on the data`)
    }
  }

  /**
   * A label-refresh round is joined only over exactly the included set this agent recorded (at the consistency
   * step) in the window's first round: the participants must be that set, no more and no fewer. Without a
   * ledger that keeps included sets there is nothing to hold the coordinator to: refused.
   */
  private static checkRefreshSet (opts: ClientOptions, announce: FullAnnounce): void {
    const guard = opts.guard
    if (guard?.includedSetFor === undefined || guard.recordReveal === undefined) {
      throw new SecAggError('ERR_REFRESH_SET_MISMATCH', 'a label-refresh round needs this agent\'s contribution ledger (which records each window\'s included set), and it has none')
    }
    const round: RoundRecord = {
      roundId: announce.roundId, window: { ...announce.window }, specHash: announce.specHash, reference: announce.reference,
      participants: announce.participants.map(p => p.id), ...(announce.refresh !== undefined ? { refresh: { ...announce.refresh } } : {})
    }
    const recorded = guard.includedSetFor(round) // throws ERR_REFRESH_SET_MISMATCH when this agent has none
    const announced = includedSetOf(round.participants)
    if (announced.digest !== recorded.digest) {
      throw new SecAggError('ERR_REFRESH_SET_MISMATCH', `the refresh's ${announced.count} participants are not the ${recorded.count} sites included in the window's first round ${announce.refresh!.of}: a refresh is unmasked only over exactly that set`)
    }
  }

  /**
   * The signed Decline for an Announce that fromAnnounce refused with `err`, or null when there is nobody to
   * tell: the Announce is not the coordinator's own (wrong sender or signature), this agent is not invited,
   * or the refusal is not one of the agent's rules (DECLINABLE_CODES). Nothing of the round was sent before.
   */
  static declineAnnounce (opts: ClientOptions, from: string, announce: SecAggMessage, err: unknown): Outgoing | null {
    const code = (err as { code?: unknown })?.code
    if (typeof code !== 'string' || !DECLINABLE_CODES.has(code)) return null
    if (announce.type !== 'announce' || from !== opts.coordinator || announce.coordinator !== opts.coordinator) return null
    let participants: Participant[] | null = null
    try {
      participants = SecAggClient.participantsOf(opts, announce)
    } catch (e) {
      // A roster other than the coordinator's: the Announce was sent to this agent, which says why it stays out
      // (the operator reads it in the round's declines); a malformed one gets no answer.
      if ((e as { code?: unknown }).code !== 'ERR_POLICY') return null
    }
    if (participants !== null && !participants.some(p => p.id === opts.self)) return null
    if (!opts.verify(opts.coordinator, transcript.announceBytes(announce), announce.signature)) return null
    const reason = err instanceof Error ? err.message : String(err)
    return { to: opts.coordinator, message: signDecline(opts.sign, announce.roundId, opts.self, code, reason) }
  }

  /**
   * Once this round failed by one of the agent's own refusals (policy, ledger, spec check) before the masked
   * input left: the signed Decline telling the coordinator why, once. Null otherwise — in particular after the
   * masked input was sent, when leaving is no longer possible (the coordinator would refuse it too).
   */
  declineNotice (): Outgoing | null {
    const refusal = this.refusal
    if (this.phase !== 'failed' || refusal === null || this.declineSent) return null
    // After the masked input left, only a refresh set mismatch is declined: the agent signed and revealed nothing.
    if (this.maskedInputSent && refusal.code !== REFRESH_SET_MISMATCH) return null
    if (!DECLINABLE_CODES.has(refusal.code)) return null
    this.declineSent = true
    return this.toCoordinator(signDecline(this.opts.sign, this.roundId, this.opts.self, refusal.code, refusal.message))
  }

  /**
   * Hands the round's monitor spec to the agent (when the Announce did not carry it): verified against the
   * announced hash, then against the policy. A refusal fails the round (secrets wiped) and throws ERR_POLICY.
   * When the policy has spec rules, no masked input leaves before a spec passed this check.
   */
  provideSpec (document: unknown): VerifiedSpec {
    if (this.verifiedSpec !== null) return this.verifiedSpec
    if (this.status !== 'running') throw new SecAggError('ERR_WRONG_PHASE', `round is ${this.status}`)
    try {
      const verified = verifySpec(document, this.announce.specHash)
      SecAggClient.checkSpec(this.opts.policy ?? {}, verified, this.announce, this.acceptedAt)
      this.verifiedSpec = verified
      return verified
    } catch (err) {
      const refusal = SecAggClient.asRefusal(err, 'the spec check')
      this.refuse(refusal.code, refusal.message)
      throw refusal
    }
  }

  /** The verified monitor spec of this round, once known (from the Announce or provideSpec). */
  get spec (): VerifiedSpec | null { return this.verifiedSpec }

  /** What the contribution ledger records of this round (nothing secret). */
  roundRecord (): RoundRecord {
    const a = this.announce
    const epsilon = this.verifiedSpec?.spec.privacy?.dp?.epsilon
    return {
      roundId: this.roundId, window: { ...a.window }, specHash: a.specHash, reference: a.reference, participants: a.participants.map(p => p.id),
      ...(a.refresh !== undefined ? { refresh: { ...a.refresh } } : {}),
      ...(epsilon !== undefined ? { epsilon } : {})
    }
  }

  /** True for a label-refresh round (the vector is the label-dependent sub-layout). */
  get isRefresh (): boolean { return this.announce.refresh !== undefined }

  private static asRefusal (err: unknown, what: string): SecAggError {
    if (err instanceof SecAggError) return err
    return new SecAggError('ERR_POLICY', `${what} failed, not contributing: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  get status (): 'running' | 'done' | 'failed' {
    return this.phase === 'done' ? 'done' : this.phase === 'failed' ? 'failed' : 'running'
  }

  /** The protocol step this agent is at (for logs). */
  get currentPhase (): string { return this.phase }

  failure (): { code: string, message: string } | null { return this.failureInfo }

  /** Milliseconds this agent spent computing its masked vector (key agreement + PRG expansion), once done. */
  get maskMs (): number | null { return this.lastMaskMs }
  /** The noise this agent added (spec privacy.dp), once its masked input is sent; null without DP. */
  get dpPlan (): DpPlan | null { return this.lastDpPlan }

  /** The neighbours this agent sends agent->agent messages to (so the network layer may dial them ahead of time). */
  neighbours (): string[] {
    return [...this.graphNeighbours].map(i => this.layout.idOf(i))
  }

  /**
   * True when `message` belongs to a later phase of this round than the current one, so it is worth keeping
   * until then (streams are independent: a KeySet can overtake the agent's own progress). A message for an
   * earlier phase never becomes acceptable.
   */
  isEarly (message: SecAggMessage): boolean {
    const takenIn = TAKEN_IN[message.type]
    if (takenIn === undefined || this.status !== 'running' || message.roundId !== this.roundId) return false
    return PHASE_ORDER.indexOf(this.phase) < PHASE_ORDER.indexOf(takenIn)
  }

  /**
   * Leaves the round because this agent's data cannot be given as announced (more records in the window than
   * the spec's cap, an entry above the max entry). Whether that happens depends on the data, so the window is
   * first recorded as used in the ledger: a coordinator probing the record count with narrower and narrower
   * rounds over one window learns one bit, once. Then the round fails with a declinable refusal (declineNotice).
   */
  withdraw (message: string, now: number): void {
    if (this.status !== 'running' || this.maskedInputSent) return
    let reason = `${message}: window used up, not contributing`
    try {
      this.opts.guard?.contribute(this.roundRecord(), now)
    } catch (err) {
      reason = `${message}; recording the window as used failed too (${(err as Error).message})`
    }
    this.refuse('ERR_OVERFLOW', reason)
  }

  /** The signed AdvertiseKeys to the coordinator. */
  start (now: number): Outgoing[] {
    if (this.phase !== 'announced') throw new SecAggError('ERR_WRONG_PHASE', `start() in phase ${this.phase}`)
    if (this.expired(now)) return []
    const cPk = this.cKey!.publicKey
    const sPk = this.sKey!.publicKey
    // Binds b_u before any share of it leaves, so the coordinator can verify the b_u it rebuilds from shares.
    const bCommit = transcript.selfMaskCommitment(this.roundId, this.opts.self, this.selfMaskSeed!)
    const signature = this.opts.sign(transcript.advertBytes(this.roundId, cPk, sPk, bCommit))
    this.phase = 'advertised'
    return [this.toCoordinator({ type: 'advertise-keys', roundId: this.roundId, cPk, sPk, bCommit, signature })]
  }

  /**
   * The agent's local vector (and, for policy.minRecords, how many of its records fall in the window); returns
   * the MaskedInput when the masking set is already known. A window with fewer records than policy.minRecords
   * is refused here (ERR_POLICY, declinable), before anything is recorded in the ledger.
   */
  setInput (x: Uint32Array, now: number, info: { records?: number, problem?: string | null } = {}): Outgoing[] {
    if (!(x instanceof Uint32Array) || x.length !== this.layout.vectorLength) {
      throw new SecAggError('ERR_BAD_LENGTH', `input must be a Uint32Array of length ${this.layout.vectorLength}`)
    }
    if (this.input !== null) throw new SecAggError('ERR_DUPLICATE', 'input already set')
    if (this.status !== 'running') throw new SecAggError('ERR_WRONG_PHASE', `round is ${this.status}`)
    // Refusals by the site's own rules: the round fails (declinable), nothing is recorded in the ledger.
    if (typeof info.problem === 'string') {
      // The site's data for this window is unusable as mapped (agent/data-check.ts).
      this.refuseAndThrow(`this agent's data for the window is unusable, not contributing: ${info.problem}`)
    }
    const minRecords = this.opts.policy?.minRecords
    if (minRecords !== undefined && minRecords > 0 && !(info.records !== undefined && info.records >= minRecords)) {
      this.refuseAndThrow(info.records === undefined
        ? `policy.minRecords is ${minRecords} and the record count of the window is unknown: not contributing`
        // The reason leaves the site (signed decline): it says the count is short, never what it is.
        : `the window holds fewer of this agent's records than its minimum ${minRecords}: not contributing`)
    }
    const max = this.announce.maxEntry
    for (let i = 0; i < x.length; i++) {
      if (x[i] > max) {
        this.withdraw(`input entry ${i} = ${x[i]} exceeds the round's max entry ${max}`, now)
        throw new SecAggError('ERR_OVERFLOW', this.failureInfo!.message)
      }
    }
    this.input = new Uint32Array(x)
    if (this.expired(now)) return []
    return this.phase === 'masking' ? this.sendMaskedInput(now) : []
  }

  receive (from: string, message: SecAggMessage, now: number): Outgoing[] {
    if (message.roundId !== this.roundId) throw new SecAggError('ERR_WRONG_ROUND', `message for round ${message.roundId}, this is ${this.roundId}`)
    if (this.status !== 'running') throw new SecAggError('ERR_WRONG_PHASE', `round is ${this.status}`)
    if (message.type === 'shares') return this.onShares(from, message, now)
    if (from !== this.opts.coordinator) throw new SecAggError('ERR_UNKNOWN_SENDER', `${message.type} must come from the coordinator, not ${from}`)
    if (this.expired(now)) return []
    switch (message.type) {
      case 'key-set': return this.onKeySet(message, now)
      case 'masking-set': return this.onMaskingSet(message, now)
      case 'survivors': return this.onSurvivors(message, now)
      case 'unmask-request': return this.onUnmaskRequest(message, now)
      case 'abort': {
        if (!this.opts.verify(this.opts.coordinator, transcript.abortBytes(this.roundId, message.code, message.reason), message.signature)) {
          throw new SecAggError('ERR_BAD_SIGNATURE', 'abort signature does not verify')
        }
        this.fail(message.code, `coordinator aborted the round: ${message.reason}`)
        return []
      }
      default: throw new SecAggError('ERR_WRONG_PHASE', `an agent does not accept ${message.type}`)
    }
  }

  tick (now: number): Outgoing[] {
    if (this.status !== 'running') return []
    if (this.expired(now)) return []
    if (this.phase === 'sharing' && this.sharesDeadline !== null && now >= this.sharesDeadline) return this.sendReceipt()
    return []
  }

  nextDeadline (): number | null {
    if (this.status !== 'running') return null
    return this.phase === 'sharing' && this.sharesDeadline !== null ? Math.min(this.sharesDeadline, this.giveUpAt) : this.giveUpAt
  }

  /** Gives up on the round and wipes every secret. */
  abort (): void {
    if (this.status === 'running') this.fail('ERR_ABORTED', 'aborted locally')
  }

  // ---- phases ----

  private onKeySet (message: KeySet, now: number): Outgoing[] {
    this.expectPhase('key-set', 'advertised')
    const t = this.layout.t
    const seen = new Set<number>()
    const accepted: Array<{ index: number, keys: PeerKeys }> = []
    const cPrivate = x25519PrivateKeyObject(this.cKey!.privateKey)
    const sPrivate = x25519PrivateKeyObject(this.sKey!.privateKey)
    for (const entry of message.keys) {
      if (entry.index === this.selfIndex || !this.graphNeighbours.has(entry.index)) {
        throw new SecAggError('ERR_UNKNOWN_SENDER', `key-set lists participant ${entry.index}, not a neighbour`)
      }
      if (seen.has(entry.index)) throw new SecAggError('ERR_DUPLICATE', `key-set lists participant ${entry.index} twice`)
      seen.add(entry.index)
      const id = this.layout.idOf(entry.index)
      if (entry.addrs !== undefined && entry.addrs.length > 0) this.learntAddrs.set(id, [...entry.addrs])
      if (!this.opts.verify(id, transcript.advertBytes(this.roundId, entry.cPk, entry.sPk, entry.bCommit), entry.signature)) {
        throw new SecAggError('ERR_BAD_SIGNATURE', `advertised keys of ${id} do not verify`)
      }
      // Both keys are checked here, before anything is recorded: a low-order s-key found only while masking
      // (after the ledger recorded the contribution) would let any roster member use up its neighbours' windows.
      let shared: Uint8Array
      let maskShared: Uint8Array
      try {
        shared = x25519SharedSecret(cPrivate, entry.cPk)
        maskShared = x25519SharedSecret(sPrivate, entry.sPk)
      } catch {
        continue // a low-order key: this neighbour is left out (no shares, no pairwise mask)
      }
      const ctx = this.layout.keyContext
      accepted.push({
        index: entry.index,
        keys: {
          cPk: entry.cPk, sPk: entry.sPk,
          sendKey: deriveKey(shared, 'share-encryption', ctx, this.opts.self, id),
          receiveKey: deriveKey(shared, 'share-encryption', ctx, id, this.opts.self),
          maskSeed: deriveKey(maskShared, 'pairwise-mask', ctx, this.opts.self, id)
        }
      })
      shared.fill(0); maskShared.fill(0)
    }
    if (accepted.length < t) {
      this.fail('ERR_TOO_FEW_SURVIVORS', `only ${accepted.length} neighbours advertised keys, threshold is ${t}`)
      return []
    }
    this.peerKeys = new Map(accepted.map(a => [a.index, a.keys]))
    const holders = accepted.map(a => a.index)
    const xs = holders.map(i => this.layout.shareX(i))
    const bShares = splitSecret(this.selfMaskSeed!, t, xs)
    const sShares = splitSecret(this.sKey!.privateKey, t, xs)
    const out: Outgoing[] = []
    holders.forEach((index, h) => {
      const id = this.layout.idOf(index)
      const plaintext = new Uint8Array(2 * SHARE_BYTES)
      plaintext.set(bShares[h], 0)
      plaintext.set(sShares[h], SHARE_BYTES)
      const ciphertext = aeadSeal(this.peerKeys.get(index)!.sendKey, plaintext, shareAssociatedData(this.roundId, this.opts.self, id))
      plaintext.fill(0); bShares[h].fill(0); sShares[h].fill(0)
      out.push({ to: id, message: { type: 'shares', roundId: this.roundId, ciphertext } })
    })
    this.phase = 'sharing'
    this.sharesDeadline = now + Math.floor(this.announce.phaseTimeoutMs / 2)
    // Shares that arrived before our key-set.
    for (const [index, ciphertext] of this.pendingShares) {
      if (this.peerKeys.has(index)) {
        try { this.acceptShares(index, ciphertext) } catch { /* a bad early share is simply not held */ }
      }
    }
    this.pendingShares.clear()
    if (this.held.size === this.peerKeys.size) out.push(...this.sendReceipt())
    return out
  }

  private onShares (from: string, message: Shares, now: number): Outgoing[] {
    const index = this.layout.indexOf(from)
    if (index === undefined || !this.graphNeighbours.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `shares from ${from}, not a neighbour`)
    if (this.expired(now)) return []
    if (this.phase === 'announced' || this.phase === 'advertised') {
      if (this.pendingShares.has(index)) throw new SecAggError('ERR_DUPLICATE', `second shares message from ${from}`)
      this.pendingShares.set(index, message.ciphertext)
      return []
    }
    if (this.phase !== 'sharing') throw new SecAggError('ERR_WRONG_PHASE', `shares from ${from} arrived after the receipt was sent`)
    if (!this.peerKeys.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `shares from ${from}, which did not advertise keys`)
    if (this.held.has(index)) throw new SecAggError('ERR_DUPLICATE', `second shares message from ${from}`)
    this.acceptShares(index, message.ciphertext)
    return this.held.size === this.peerKeys.size ? this.sendReceipt() : []
  }

  private acceptShares (index: number, ciphertext: Uint8Array): void {
    const id = this.layout.idOf(index)
    let plaintext: Uint8Array
    try {
      plaintext = aeadOpen(this.peerKeys.get(index)!.receiveKey, ciphertext, shareAssociatedData(this.roundId, id, this.opts.self))
    } catch (err) {
      throw new SecAggError('ERR_BAD_CIPHERTEXT', `shares from ${id} do not authenticate`, { cause: err })
    }
    if (plaintext.length !== 2 * SHARE_BYTES) throw new SecAggError('ERR_BAD_LENGTH', `shares from ${id} have the wrong length`)
    this.held.set(index, { b: plaintext.slice(0, SHARE_BYTES), s: plaintext.slice(SHARE_BYTES) })
    plaintext.fill(0)
  }

  private sendReceipt (): Outgoing[] {
    const holds = [...this.held.keys()].sort((a, b) => a - b)
    const signature = this.opts.sign(transcript.receiptBytes(this.roundId, holds))
    this.phase = 'receipted'
    this.sharesDeadline = null
    return [this.toCoordinator({ type: 'share-receipt', roundId: this.roundId, holds, signature })]
  }

  private onMaskingSet (message: MaskingSet, now: number): Outgoing[] {
    this.expectPhase('masking-set', 'receipted')
    if (!this.opts.verify(this.opts.coordinator, transcript.maskingSetBytes(this.roundId, message.members), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', 'masking-set signature does not verify')
    }
    assertIndexSet(message.members, this.layout.n, 'masking-set')
    const members = new IndexBitmap(this.layout.n, message.members)
    if (!members.has(this.selfIndex)) throw new SecAggError('ERR_CONSISTENCY', 'masking set does not include this agent')
    for (const v of this.graphNeighbours) {
      if (members.has(v) && !this.peerKeys.has(v)) throw new SecAggError('ERR_CONSISTENCY', `masking set includes neighbour ${v}, which never advertised keys to us`)
    }
    const maskingNeighbours = [...this.peerKeys.keys()].filter(v => members.has(v)).length
    if (message.members.length < Math.max(this.layout.t, this.announce.minAgents) || maskingNeighbours < this.layout.t) {
      this.fail('ERR_TOO_FEW_SURVIVORS', `masking set too small (${message.members.length} agents, ${maskingNeighbours} neighbours; threshold ${this.layout.t})`)
      return []
    }
    if (this.isRefresh && message.members.length !== this.layout.n) {
      // The participants are the recorded included set (checkRefreshSet): all of them must mask, or none.
      this.refuse(REFRESH_SET_MISMATCH, `the refresh's masking set has ${message.members.length} of the ${this.layout.n} sites included in the window's first round: a refresh is unmasked only over exactly that set, not contributing`)
      return []
    }
    this.maskingSet = members
    this.phase = 'masking'
    return this.input !== null ? this.sendMaskedInput(now) : []
  }

  private sendMaskedInput (now: number): Outgoing[] {
    // Last gate before this agent's data leaves (masked, but unmaskable from here on): fail closed.
    if (this.verifiedSpec === null && this.isRefresh) {
      this.refuseAndThrow('a label refresh needs the spec (its declared ages), and no spec was provided to check: not contributing')
    }
    if (this.verifiedSpec === null && hasSpecRules(this.opts.policy ?? {})) {
      this.refuseAndThrow('the policy restricts the spec, and no spec was provided to check: not contributing')
    }
    const dp = this.planNoise()
    if (this.opts.guard !== undefined) {
      try {
        this.opts.guard.contribute(this.roundRecord(), now)
      } catch (err) {
        const refusal = SecAggClient.asRefusal(err, 'recording the contribution')
        this.refuse(refusal.code, refusal.message)
        throw refusal
      }
    }
    const started = performance.now()
    const members = this.maskingSet!
    const y = this.input!
    this.input = null
    // Noise before masks: the sum carries every survivor's noise, no party sees a less noisy figure.
    if (dp !== null) {
      // Counts and (raw, clipped) sums take their own parameters; a refresh noises its sub-layout's entries.
      const layout = this.verifiedSpec!.layout
      const mus = noiseMuPerEntry(layout, dp)
      addSkellamNoiseEach(y, this.isRefresh ? projectNoise(mus, labelDependentEntries(layout)) : mus, this.opts.noiseSource ?? cryptoUniform())
      this.lastDpPlan = dp
    }
    addMaskInPlace(y, this.selfMaskSeed!, 1)
    for (const [v, keys] of this.peerKeys) {
      if (members.has(v)) addMaskInPlace(y, keys.maskSeed, this.selfIndex < v ? 1 : -1)
    }
    this.lastMaskMs = performance.now() - started
    // The share keys (receipt sent: no more shares are taken) are spent: wipe them now rather than at the end of
    // the round (shorter-lived secrets; O(k) fewer buffers per agent while it waits). The masking set's seeds
    // stay until the unmask request: a dropped neighbour's seed is revealed then (onUnmaskRequest).
    for (const [v, keys] of this.peerKeys) {
      // a masking-set neighbour's seed moves to maskSeeds (wiped with the round); every other key is wiped now
      if (members.has(v)) this.maskSeeds.set(v, keys.maskSeed)
      else keys.maskSeed.fill(0)
      keys.sendKey.fill(0); keys.receiveKey.fill(0)
      this.peerKeys.set(v, SPENT_KEYS)
    }
    this.phase = 'masked'
    this.maskedInputSent = true
    return [this.toCoordinator({ type: 'masked-input', roundId: this.roundId, vector: y })]
  }

  /**
   * The spec's privacy.dp as noise for this agent: sized so the fewest agents this round can unmask with —
   * max(t, minAgents, consistency quorum), the server's own floor — carry the whole target between them.
   */
  private planNoise (): DpPlan | null {
    const dp = this.verifiedSpec?.spec.privacy?.dp
    if (dp === undefined || this.verifiedSpec === null) return null
    try {
      const layout = this.verifiedSpec.layout
      const plan = planDp(layout, dp, Math.max(this.layout.t, this.announce.minAgents, this.consistencyQuorum))
      checkDpHeadroom(layout, plan, this.layout.n)
      return plan
    } catch (err) {
      if (!(err instanceof DpPlanError)) throw err
      this.refuseAndThrow(`cannot add the differential-privacy noise the spec asks for: ${err.message}`)
    }
  }

  private onSurvivors (message: Survivors, now: number): Outgoing[] {
    this.expectPhase('survivors', 'masked')
    if (!this.opts.verify(this.opts.coordinator, transcript.survivorsBytes(this.roundId, message.members), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', 'survivors signature does not verify')
    }
    const masking = this.maskingSet!
    assertIndexSet(message.members, this.layout.n, 'survivors', masking)
    const survivors = new IndexBitmap(this.layout.n, message.members)
    if (!survivors.has(this.selfIndex)) throw new SecAggError('ERR_CONSISTENCY', 'survivor set does not include this agent')
    const liveNeighbours = [...this.peerKeys.keys()].filter(v => masking.has(v) && survivors.has(v)).length
    if (message.members.length < Math.max(this.layout.t, this.announce.minAgents, this.consistencyQuorum) || liveNeighbours < this.layout.t) {
      // Fewer than t surviving neighbours would let the server strip this agent's pairwise masks; fewer than
      // the consistency quorum can never be unmasked (onUnmaskRequest).
      this.fail('ERR_TOO_FEW_SURVIVORS', `survivor set too small (${message.members.length} agents, ${liveNeighbours} neighbours; threshold ${this.layout.t}, consistency quorum ${this.consistencyQuorum})`)
      return []
    }
    if (this.isRefresh && message.members.length !== this.layout.n) {
      // The differencing rule of refresh rounds: unmasked with exactly the first round's included set. Nothing is
      // signed, so no share of this agent is ever revealed and its masked input stays masked.
      this.refuse(REFRESH_SET_MISMATCH, `the refresh's survivor set has ${message.members.length} of the ${this.layout.n} sites included in the window's first round: a refresh is unmasked only over exactly that set, nothing revealed`)
      return []
    }
    if (!this.isRefresh && this.opts.guard?.recordIncluded !== undefined) {
      // The window's included set, recorded before this agent signs it: a refresh is later held to exactly it.
      try {
        this.opts.guard.recordIncluded(this.roundRecord(), includedSetOf(message.members.map(i => this.layout.idOf(i))), now)
      } catch (err) {
        this.fail('ERR_POLICY', `cannot record the round's included set, not signing it: ${(err as Error).message}`)
        return []
      }
    }
    this.survivorSet = survivors
    this.phase = 'signed'
    // The digest of the set just checked: what this agent signs, and what it counts signatures on later.
    this.consistencySigned = transcript.consistencyBytes(this.roundId, message.members)
    const signature = this.opts.sign(this.consistencySigned)
    return [this.toCoordinator({ type: 'consistency-signature', roundId: this.roundId, signature })]
  }

  private onUnmaskRequest (message: UnmaskRequest, now: number): Outgoing[] {
    this.expectPhase('unmask-request', 'signed')
    if (!this.opts.verify(this.opts.coordinator, transcript.unmaskRequestBytes(this.roundId, message.survivors, message.dropped), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', 'unmask-request signature does not verify')
    }
    assertIndexSet(message.dropped, this.layout.n, 'dropped')
    const survivors = this.survivorSet!
    // Never both: the request must not ask for the s-share of an agent whose b-share it also asks for.
    for (const v of message.dropped) {
      if (survivors.has(v)) throw new SecAggError('ERR_NEVER_BOTH', `unmask-request lists participant ${v} as both survivor and dropped`)
    }
    if (!survivors.equalsList(message.survivors)) {
      throw new SecAggError('ERR_CONSISTENCY', 'unmask-request survivor set differs from the one this agent signed')
    }
    const masking = this.maskingSet!
    for (const v of message.dropped) {
      if (!masking.has(v)) throw new SecAggError('ERR_CONSISTENCY', `dropped participant ${v} was not in the masking set`)
    }
    // The consistency certificate (params.committeeQuorum): a quorum of the round's committee — everyone up
    // to 700 participants, with q = ⌊(n + C)/2⌋ + 1 — signed this very set. Honest members sign one set per round,
    // so no other survivor set can gather a quorum of the committee: whatever this agent reveals, every other
    // honest agent that reveals anything does so under the same set — a victim is alive for all of them or
    // dropped for all of them, never both (the split-view attack, issue 10).
    //
    // Cost: at most q checks of signatures over the 110-byte digest message (consistencyBytes), q × ~70 bytes
    // downloaded: q ≤ 404 at any n with α = 5 % (n = 10,000: 404, where everyone's quorum would be 5,251).
    const signed = this.consistencySigned!
    const committee = committeeMembers(this.layout.n, this.committee.size, this.roundId)
    const signers = new Set<number>()
    for (const { index, signature } of message.signatures) {
      if (signers.size >= this.committee.quorum) break
      if (!survivors.has(index) || !committee.has(index) || signers.has(index)) continue
      if (this.opts.verify(this.layout.idOf(index), signed, signature)) signers.add(index)
    }
    if (signers.size < this.committee.quorum) {
      throw new SecAggError('ERR_CONSISTENCY', `only ${signers.size} valid signatures of the round's committee on the survivor set, need ${this.committee.quorum} of its ${Math.min(this.committee.size, this.layout.n)} members`)
    }
    if (this.isRefresh) {
      // One revealed refresh per declared age (the ledger records it before any share leaves).
      try {
        this.opts.guard!.recordReveal!(this.roundRecord(), now)
      } catch (err) {
        const refusal = SecAggClient.asRefusal(err, 'recording the refresh')
        this.fail(refusal.code, refusal.message)
        throw refusal
      }
    }
    const dropped = new Set(message.dropped)
    const reveal: Array<[number, 'b' | 's']> = []
    for (const owner of [...this.held.keys()].sort((a, b) => a - b)) {
      const kind = survivors.has(owner) ? 'b' : dropped.has(owner) ? 's' : null
      if (kind === null) continue
      const before = this.revealed.get(owner)
      if (before !== undefined && before !== kind) throw new SecAggError('ERR_NEVER_BOTH', `already revealed the ${before}-share of participant ${owner}`)
      reveal.push([owner, kind])
    }
    const bOwners = reveal.filter(([, k]) => k === 'b').map(([o]) => o)
    const sOwners = reveal.filter(([, k]) => k === 's').map(([o]) => o)
    const bShares = new Uint8Array(bOwners.length * SHARE_BYTES)
    const sShares = new Uint8Array(sOwners.length * SHARE_BYTES)
    bOwners.forEach((o, i) => bShares.set(this.held.get(o)!.b, i * SHARE_BYTES))
    sOwners.forEach((o, i) => sShares.set(this.held.get(o)!.s, i * SHARE_BYTES))
    // The pairwise seed this agent shares with each dropped neighbour it masked with: the coordinator removes that
    // mask from this agent's input with it. Same rule and no more than the s-share of that neighbour reveals
    // (its s-key gives every seed of it), and far cheaper for the coordinator than rebuilding the key and
    // running one X25519 per surviving neighbour.
    const pairOwners = message.dropped.filter(v => this.maskSeeds.has(v)) // ascending, as `dropped` (checked)
    for (const v of pairOwners) {
      const before = this.revealed.get(v)
      if (before !== undefined && before !== 's') throw new SecAggError('ERR_NEVER_BOTH', `already revealed the ${before}-share of participant ${v}`)
    }
    const pairSeeds = new Uint8Array(pairOwners.length * PAIR_SEED_BYTES)
    pairOwners.forEach((v, i) => pairSeeds.set(this.maskSeeds.get(v)!, i * PAIR_SEED_BYTES))
    for (const [owner, kind] of reveal) this.revealed.set(owner, kind)
    for (const v of pairOwners) this.revealed.set(v, 's')
    const out = [this.toCoordinator({ type: 'unmask-shares', roundId: this.roundId, bOwners, bShares, sOwners, sShares, pairOwners, pairSeeds })]
    this.phase = 'done'
    this.wipe()
    return out
  }

  // ---- helpers ----

  private expectPhase (what: string, phase: ClientPhase): void {
    if (this.phase !== phase) throw new SecAggError('ERR_WRONG_PHASE', `${what} is not expected in phase ${this.phase}`)
  }

  private expired (now: number): boolean {
    if (now < this.giveUpAt) return false
    this.fail('ERR_TIMEOUT', 'round lifetime exceeded')
    return true
  }

  /** refuse('ERR_POLICY', message), then throw it. */
  private refuseAndThrow (message: string): never {
    this.refuse('ERR_POLICY', message)
    throw new SecAggError('ERR_POLICY', message)
  }

  /** Fails the round by this agent's own rules (declineNotice may then explain it to the coordinator). */
  private refuse (code: string, message: string): void {
    this.refusal = { code, message }
    this.fail(code, message)
  }

  private fail (code: string, message: string): void {
    this.phase = 'failed'
    this.failureInfo = { code, message }
    this.wipe()
  }

  private toCoordinator (message: SecAggMessage): Outgoing {
    return { to: this.opts.coordinator, message }
  }

  private wipe (): void {
    this.cKey?.privateKey.fill(0)
    this.sKey?.privateKey.fill(0)
    this.selfMaskSeed?.fill(0)
    this.input?.fill(0)
    for (const { b, s } of this.held.values()) { b.fill(0); s.fill(0) }
    for (const keys of this.peerKeys.values()) { keys.sendKey.fill(0); keys.receiveKey.fill(0); keys.maskSeed.fill(0) }
    for (const seed of this.maskSeeds.values()) seed.fill(0)
    this.maskSeeds.clear()
    this.cKey = null
    this.sKey = null
    this.selfMaskSeed = null
    this.input = null
    this.held.clear()
    this.pendingShares.clear()
  }
}

export type { KeyObject }

/** The noise parameters of a refresh's sub-vector: the full layout's at the sub-layout's entries. */
function projectNoise (mus: Float64Array, entries: Uint32Array): Float64Array {
  const out = new Float64Array(entries.length)
  for (let i = 0; i < entries.length; i++) out[i] = mus[entries[i]]
  return out
}
