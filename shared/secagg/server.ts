import { performance } from 'node:perf_hooks'
import { combineSharesVerified, SHARE_BYTES, type Share } from '../crypto/shamir.js'
import { isClampedX25519PrivateKey, isLowOrderX25519PublicKey, x25519PublicKey } from '../crypto/x25519.js'
import { SecAggError } from './errors.js'
import { assertIndexSet, participantsInCanonicalOrder, RoundLayout } from './layout.js'
import { chooseCommitteeSize, chooseGraphParams, committeeQuorum, consistencyQuorum, corruptTolerance, DEFAULT_CORRUPT_FRACTION, minimumSafeThreshold } from './params.js'
import { committeeMembers } from './committee.js'
import { COMPACT_ANNOUNCE_FROM, membersBitmap, sortedRoster } from './roster-members.js'
import { PAIR_SEED_BYTES, PROTOCOL_VERSION, type AdvertiseKeys, type Announce, type Decline, type MaskedInput, type SecAggMessage, type ShareReceipt, type UnmaskShares } from './messages.js'
import { declineBytes, truncateReason } from './decline.js'
import * as transcript from './transcript.js'
import type { GraphKind, Outgoing, Participant, Sign, Verify } from './types.js'
import { computeUnmaskCorrection, unmaskExpansions, wipeUnmaskWork, type PairwiseUnmask, type UnmaskWork } from './unmask.js'

export interface ServerOptions {
  roundId: string
  coordinator: string
  sign: Sign
  verify: Verify
  /** Online roster members invited to this round. */
  participants: Participant[]
  vectorLength: number
  /** Hex sha-256 of the monitor spec. */
  specHash: string
  /** Epoch ms, [from, to). */
  window: { from: number, to: number }
  /** Largest value one agent may put in one entry: n · maxEntry must be < 2^32. */
  maxEntry: number
  minAgents: number
  threshold?: number
  /** Force the graph degree k (tests); otherwise chosen from n, dropoutRate and corruptFraction. */
  degree?: number
  dropoutRate?: number
  corruptFraction?: number
  /**
   * The size R of the federation's roster (default: the participants): C = ⌊corruptFraction · R⌋ colluders are
   * tolerated, which sets the consistency quorum and the threshold (agents check both against their own roster).
   */
  rosterSize?: number
  /**
   * The federation's roster (peer ids, the agents' own copy): from `compactAnnounceFrom` participants on, the
   * Announce names them by one bit per roster member (roster-members.ts) and each key set carries the neighbours'
   * addresses. Without it, the Announce lists every participant with its addresses.
   */
  roster?: ReadonlySet<string> | readonly string[]
  /** Participants from which a roster-bitmap Announce is sent (default COMPACT_ANNOUNCE_FROM). */
  compactAnnounceFrom?: number
  graph?: GraphKind | 'auto'
  /** Deadline per phase. */
  phaseTimeoutMs: number
  reference?: boolean
  /** A label-refresh round of the window's first round `of` at `ageMs` (the Announce carries it, signed). */
  refresh?: { ageMs: number, of: string }
  /** The monitor the round is for (the Announce carries it, signed). */
  monitor?: string
  /**
   * Consistency committee size to announce (params.CONSISTENCY_COMMITTEE_SIZE by default); everyone certifies when a
   * committee this large would not need fewer signatures (params.chooseCommitteeSize).
   */
  committeeSize?: number
  /**
   * Do not expand the masks inside receive()/tick(): once every secret is reconstructed the server waits in
   * phase 'unmask' (no deadline; further messages rejected) with pendingUnmask() returning the work, until
   * completeUnmask(correction) — e.g. `await computeUnmaskInWorkers(work)` (unmask-pool.ts) — or abort().
   * Default false: the correction is computed synchronously in the calling thread.
   */
  deferUnmask?: boolean
}

export type ServerPhase = 'created' | 'advertise' | 'share-keys' | 'masked-input' | 'consistency' | 'unmask' | 'done' | 'failed'

const DEFAULT_DROPOUT_RATE = 0.33
/** Robust reconstruction effort: t-subsets tried per secret, and in the whole round (bounds a flood of bad shares). */
const MAX_ATTEMPTS_PER_SECRET = 512
const MAX_ATTEMPTS_PER_ROUND = 50_000

type SecretKind = 'b' | 's'
/** Longest wait for missing pair seeds once the round is recoverable without them (see pairSeedGraceUntil). */
const PAIR_SEED_GRACE_MS = 1000

export type PhaseEnding = 'answered' | 'deadline' | 'unreachable'

/** A holder whose unmask share contradicts the verified reconstruction of a secret (it sent a wrong share). */
export interface InconsistentShare { holder: string, owner: string, kind: SecretKind }

/** An agent's signed refusal of the round, as received (signature hex, verifiable with the agent's peer id). */
export interface DeclineRecord { agent: string, code: string, reason: string, signature: string }

/** How many declines a failure message spells out, and how much of each reason. */
const DECLINES_IN_MESSAGE = 5
const DECLINE_REASON_IN_MESSAGE = 240

/**
 * The coordinator's side of one round (sans-IO): messages in, messages out, deadlines as `now` (ms).
 * Phases: advertise → share-keys → masked-input → consistency → unmask → done. An agent missing a
 * phase's deadline is dropped; the round fails when fewer than max(t, minAgents) agents remain.
 */
export class SecAggServer {
  readonly k: number
  readonly t: number
  readonly graph: GraphKind
  /** Participants the survivor set must hold (params.consistencyQuorum): the fewest the round finishes with. */
  readonly consistencyQuorum: number
  /** The committee that certifies the survivor set, and how many of its signatures agents need (params.committeeQuorum). */
  readonly committee: { size: number, members: ReadonlySet<number>, quorum: number }
  private readonly opts: ServerOptions
  private readonly layout: RoundLayout
  private state: ServerPhase = 'created'
  private deadline: number | null = null
  private failureInfo: { code: string, message: string } | null = null
  private resultValue: { sum: Uint32Array, included: string[], dropped: string[] } | null = null
  private readonly timings: Record<string, number> = {}
  private phaseStartedAt = 0

  private readonly adverts = new Map<number, { cPk: Uint8Array, sPk: Uint8Array, bCommit: Uint8Array, signature: Uint8Array }>()
  private u1: number[] = []
  private readonly receipts = new Map<number, number[]>()
  private u2: number[] = []
  private sum: Uint32Array | null = null
  private readonly maskedFrom = new Set<number>()
  private u3: number[] = []
  private readonly consistencySignatures = new Map<number, Uint8Array>()
  private u4: number[] = []
  private dropped: number[] = []
  /**
   * Membership of U1..U4 and the dropped set, for O(1) checks per message: the server does O(1) work per
   * message besides the message's own size (O(k) sets), and O(n·k) per phase end — never O(n) per message.
   */
  private inU1 = new Set<number>()
  private inU2 = new Set<number>()
  private inU3 = new Set<number>()
  private inU4 = new Set<number>()
  private droppedSet = new Set<number>()
  /** consistencyBytes of U3, computed once when U3 is fixed (every consistency signature covers it). */
  private consistencySigned: Uint8Array | null = null
  /** Phase scan position: members before it have answered or declined (both final within the phase). */
  private settledUpTo = 0
  /** Survivors whose self-mask seed has t shares (with droppedReady: canReconstruct() in O(1)). */
  private bWithT = 0
  /**
   * Dropped agents whose pairwise masks can be removed: every surviving neighbour sent its pair seed, or t
   * holders sent s-shares of the agent's s-key (rebuilt, then one X25519 per neighbour whose seed is missing).
   */
  private readonly droppedReady = new Set<number>()
  /** Dropped agent → surviving neighbour → their pairwise mask seed (views into shareBuffers). */
  private readonly pairSeeds = new Map<number, Map<number, Uint8Array>>()
  /** Dropped agent → how many surviving neighbours it has (the pair seeds that can come). */
  private readonly pairSeedsNeeded = new Map<number, number>()
  /** Dropped agents with every pair seed in. */
  private seedsComplete = 0
  /**
   * Once every secret is recoverable but some pair seeds are still missing, the coordinator waits this long
   * for them (a seed saves an s-key rebuild and an X25519 agreement) before falling back on the s-keys.
   */
  private pairSeedGraceUntil: number | null = null
  private readonly unmaskFrom = new Set<number>()
  private readonly bShares = new Map<number, Share[]>()
  private readonly sShares = new Map<number, Share[]>()
  /** The buffers every held share is a view of (one per unmask-shares message): what wipe() zeroes. */
  private shareBuffers: Uint8Array[] = []
  private pending: { work: UnmaskWork, since: number } | null = null
  /** Secrets rebuilt and checked against their commitment (b: SHA-256 in the advert; s: the advertised key). */
  private readonly verifiedB = new Map<number, Uint8Array>()
  private readonly verifiedS = new Map<number, Uint8Array>()
  /** Share count at the last failed attempt per secret (`b:3`): retried only when new shares arrive. */
  private readonly failedAt = new Map<string, number>()
  private readonly holderOfX = new Map<number, number>()
  private readonly badHolders = new Set<number>()
  private readonly inconsistent: InconsistentShare[] = []
  /** Participants that declined (signed), in arrival order: they left the round like a dropout at that phase. */
  private readonly declines = new Map<number, { code: string, reason: string, signature: Uint8Array }>()
  /** Participants whose connection closed and has not come back (disconnected()): not waited for. */
  private readonly offline = new Set<number>()
  private readonly endings: Record<string, PhaseEnding> = {}
  private reconstructAttempts = 0
  private expansions: number | null = null
  private keyAgreements: number | null = null
  private reconstructMs = 0

  constructor (opts: ServerOptions) {
    this.opts = opts
    const n = opts.participants.length
    if (!Number.isInteger(opts.vectorLength) || opts.vectorLength < 1) throw new SecAggError('ERR_BAD_PARAMS', `vectorLength must be a positive integer, got ${opts.vectorLength}`)
    if (!/^[0-9a-f]{64}$/.test(opts.specHash)) throw new SecAggError('ERR_BAD_PARAMS', 'specHash must be 64 lowercase hex digits')
    if (!Number.isInteger(opts.minAgents) || opts.minAgents < 1) throw new SecAggError('ERR_BAD_PARAMS', `minAgents must be a positive integer, got ${opts.minAgents}`)
    if (!Number.isInteger(opts.phaseTimeoutMs) || opts.phaseTimeoutMs < 1) throw new SecAggError('ERR_BAD_PARAMS', 'phaseTimeoutMs must be a positive integer')
    if (!Number.isInteger(opts.maxEntry) || opts.maxEntry < 1) throw new SecAggError('ERR_BAD_PARAMS', `maxEntry must be a positive integer, got ${opts.maxEntry}`)
    if (!(opts.window.to > opts.window.from)) throw new SecAggError('ERR_BAD_PARAMS', 'window must satisfy from < to')
    if (n * opts.maxEntry >= 2 ** 32) {
      throw new SecAggError('ERR_OVERFLOW', `${n} agents × max entry ${opts.maxEntry} = ${n * opts.maxEntry} does not fit in 2^32: the sum could wrap`)
    }
    if (n < opts.minAgents) throw new SecAggError('ERR_TOO_FEW_SURVIVORS', `${n} participants is fewer than minAgents ${opts.minAgents}`)
    if (!participantsInCanonicalOrder(opts.participants)) throw new SecAggError('ERR_BAD_PARAMS', 'participants must be sorted by peer id (agents refuse any other order)')
    const rosterSize = opts.rosterSize ?? n
    if (!Number.isInteger(rosterSize) || rosterSize < n) throw new SecAggError('ERR_BAD_PARAMS', `rosterSize must be an integer >= the ${n} participants, got ${opts.rosterSize}`)
    const corrupt = corruptTolerance(opts.corruptFraction ?? DEFAULT_CORRUPT_FRACTION, rosterSize)
    this.consistencyQuorum = consistencyQuorum(n, corrupt)
    if (this.consistencyQuorum > n) throw new SecAggError('ERR_TOO_FEW_SURVIVORS', `${n} participants cannot outvote ${corrupt} tolerated colluders (consistency quorum ${this.consistencyQuorum})`)
    const committeeSize = chooseCommitteeSize(n, corrupt, opts.committeeSize)
    this.committee = { size: committeeSize, members: committeeMembers(n, committeeSize, opts.roundId), quorum: committeeQuorum(n, corrupt, committeeSize) }
    const dropoutRate = opts.dropoutRate ?? DEFAULT_DROPOUT_RATE
    const params = chooseGraphParams({
      n, graph: opts.graph ?? 'auto', threshold: opts.threshold, degree: opts.degree, dropoutRate,
      // The colluders' share of this round: C of the n invited (more than α when part of the roster is offline).
      corruptFraction: Math.min(corrupt / n, 0.9 - dropoutRate)
    })
    const lowest = minimumSafeThreshold(params.graph, n, params.k, corrupt)
    if (params.t < lowest) throw new SecAggError('ERR_BAD_PARAMS', `threshold ${params.t} is below ${lowest}, the lowest the agents accept against ${corrupt} colluders (${params.graph} graph, k = ${params.k}, n = ${n})`)
    this.k = params.k
    this.t = params.t
    this.graph = params.graph
    this.layout = new RoundLayout({
      roundId: opts.roundId, participants: opts.participants, graph: params.graph, k: params.k, t: params.t,
      vectorLength: opts.vectorLength, specHash: opts.specHash
    })
  }

  get status (): 'running' | 'done' | 'failed' {
    return this.state === 'done' ? 'done' : this.state === 'failed' ? 'failed' : 'running'
  }

  get phase (): string { return this.state }

  /** Signed Announce to every participant. */
  start (now: number): Outgoing[] {
    if (this.state !== 'created') throw new SecAggError('ERR_WRONG_PHASE', `start() in phase ${this.state}`)
    const body: Omit<Announce, 'signature' | 'type'> = {
      roundId: this.opts.roundId,
      protocol: PROTOCOL_VERSION,
      coordinator: this.opts.coordinator,
      ...this.participantsPart(),
      window: { from: this.opts.window.from, to: this.opts.window.to },
      specHash: this.opts.specHash,
      vectorLength: this.opts.vectorLength,
      maxEntry: this.opts.maxEntry,
      minAgents: this.opts.minAgents,
      threshold: this.t,
      degree: this.k,
      graph: this.graph,
      phaseTimeoutMs: this.opts.phaseTimeoutMs,
      issuedAt: Math.floor(now),
      reference: this.opts.reference ?? false,
      ...(this.opts.refresh !== undefined ? { refresh: { ageMs: this.opts.refresh.ageMs, of: this.opts.refresh.of } } : {}),
      ...(this.opts.monitor !== undefined ? { monitor: this.opts.monitor } : {}),
      ...(this.committee.size < this.layout.n ? { committee: this.committee.size } : {})
    }
    const message: Announce = { type: 'announce', ...body, signature: this.opts.sign(transcript.announceBytes(body)) }
    this.enter('advertise', now)
    return this.opts.participants.map(p => ({ to: p.id, message }))
  }

  receive (from: string, message: SecAggMessage, now: number): Outgoing[] {
    if (message.roundId !== this.opts.roundId) throw new SecAggError('ERR_WRONG_ROUND', `message for round ${message.roundId}, this is ${this.opts.roundId}`)
    // A decline is recorded even once the round has ended (the operator still learns why the agent left).
    if (message.type === 'decline') return this.onDecline(from, message, now)
    if (this.status !== 'running') throw new SecAggError('ERR_WRONG_PHASE', `round is ${this.status}`)
    if (this.pending !== null) throw new SecAggError('ERR_WRONG_PHASE', 'unmask shares are complete; the sum is being computed')
    const index = this.layout.indexOf(from)
    if (index === undefined) throw new SecAggError('ERR_UNKNOWN_SENDER', `${from} is not a participant of round ${this.opts.roundId}`)
    if (this.declines.has(index)) throw new SecAggError('ERR_WRONG_PHASE', `${from} declined round ${this.opts.roundId}: it has left the round`)
    switch (message.type) {
      case 'advertise-keys': this.onAdvertise(index, message); break
      case 'share-receipt': this.onReceipt(index, message); break
      case 'masked-input': this.onMaskedInput(index, message); break
      case 'consistency-signature': this.onConsistencySignature(index, message.signature); break
      case 'unmask-shares': this.onUnmaskShares(index, message); break
      default: throw new SecAggError('ERR_WRONG_PHASE', `the coordinator does not accept ${message.type}`)
    }
    return this.advanceIfComplete(now)
  }

  tick (now: number): Outgoing[] {
    if (this.status !== 'running' || this.deadline === null || now < this.deadline) return []
    if (this.state === 'unmask' && this.pairSeedGraceUntil !== null && now >= this.pairSeedGraceUntil && this.canReconstruct()) {
      return this.endPhase(now, 'answered') // the wait for pair seeds is over: the s-keys stand in for the missing ones
    }
    return this.endPhase(now, 'deadline')
  }

  /**
   * All of `peer`'s connections to the coordinator closed (the daemon's libp2p `peer:disconnect`): it is not
   * waited for any more. Like a decline, but unsigned, so it is simply a dropout: before its masked input it
   * leaves the round (left out of U1/U2 at the end of the phase even if its message for it came in); once its
   * masked input is in it stays a survivor (U3, its masks removed as usual) but nobody waits for its consistency
   * signature or unmask shares. A phase ends as soon as every live member has answered; when the live members
   * can no longer reach max(t, minAgents, consistency quorum) (or t shares of a secret to rebuild), the round
   * fails now. Messages it still sends while the phase is open are taken (a connection can come back); see
   * reconnected(). No effect for a non-participant or once the round has ended.
   */
  disconnected (peer: string, now: number): Outgoing[] {
    const index = this.layout.indexOf(peer)
    if (index === undefined || this.status !== 'running' || this.state === 'created' || this.pending !== null) return []
    if (this.offline.has(index)) return []
    this.offline.add(index)
    return this.reassess(now)
  }

  /** `peer` has a connection again: it is waited for again from now on (what it missed stays missed). */
  reconnected (peer: string): void {
    const index = this.layout.indexOf(peer)
    if (index !== undefined) this.offline.delete(index)
  }

  /**
   * How each phase ended so far: `answered` (every member still expected answered, declined or disconnected,
   * or the secrets were all rebuilt), `deadline`, or `unreachable` (failed early: too few left to finish).
   */
  phaseEndings (): Record<string, PhaseEnding> { return { ...this.endings } }

  /** With `deferUnmask`: the mask expansions still to do (secrets included), or null. Do not mutate it. */
  pendingUnmask (): UnmaskWork | null { return this.pending?.work ?? null }

  /**
   * With `deferUnmask`: finishes the round with the correction computed for pendingUnmask() (by
   * computeUnmaskInWorkers or computeUnmaskCorrection). Returns no messages (like the synchronous path).
   */
  completeUnmask (correction: Uint32Array, now: number): Outgoing[] {
    if (this.pending === null || this.status !== 'running') throw new SecAggError('ERR_WRONG_PHASE', `completeUnmask() with no pending unmask (phase ${this.state})`)
    if (!(correction instanceof Uint32Array) || correction.length !== this.opts.vectorLength) {
      throw new SecAggError('ERR_BAD_LENGTH', `correction must be a Uint32Array of ${this.opts.vectorLength} entries`)
    }
    const { work, since } = this.pending
    this.pending = null
    wipeUnmaskWork(work)
    const sum = this.sum ?? new Uint32Array(this.opts.vectorLength)
    this.sum = null
    for (let i = 0; i < sum.length; i++) sum[i] += correction[i]
    return this.finishUnmask(sum, performance.now() - since, now)
  }

  nextDeadline (): number | null {
    return this.status === 'running' ? this.deadline : null
  }

  /** Fails the round; returns signed Abort messages for the agents still in it (sending them is optional). */
  abort (code: string, message: string): Outgoing[] {
    if (this.status !== 'running') return []
    return this.fail(code, message, null)
  }

  result (): { sum: Uint32Array, included: string[], dropped: string[] } | null { return this.resultValue }

  failure (): { code: string, message: string } | null { return this.failureInfo }

  /**
   * Unmask shares found wrong so far: each contradicts the reconstruction that matched the owner's signed
   * commitment (a malicious or faulty holder; the daemon logs them). Available after the round ends too.
   */
  inconsistentShares (): InconsistentShare[] { return this.inconsistent.map(s => ({ ...s })) }

  /** The agents that declined the round, in arrival order (kept after the round ends). */
  declined (): DeclineRecord[] {
    return [...this.declines].map(([i, d]) => ({ agent: this.layout.idOf(i), code: d.code, reason: d.reason, signature: Buffer.from(d.signature).toString('hex') }))
  }

  /** Mask expansions of m words the unmasking needed (survivors' self masks + dropped × surviving neighbours), once known. */
  get unmaskExpansionCount (): number | null { return this.expansions }
  /** X25519 agreements in the server's unmasking: pairs whose seed its surviving end did not send. */
  get unmaskKeyAgreementCount (): number | null { return this.keyAgreements }

  /** Protocol time per phase (ms, from `now`), plus `unmaskComputeMs`: wall-clock time of the final unmasking. */
  phaseTimings (): Record<string, number> { return { ...this.timings } }

  // ---- message handlers: validate everything, then mutate ----

  private expectPhase (what: string, phase: ServerPhase): void {
    if (this.state !== phase) throw new SecAggError('ERR_WRONG_PHASE', `${what} is not expected in phase ${this.state}`)
  }

  private onAdvertise (index: number, message: AdvertiseKeys): void {
    this.expectPhase('advertise-keys', 'advertise')
    if (this.adverts.has(index)) throw new SecAggError('ERR_DUPLICATE', `second advertise-keys from participant ${index}`)
    if (!this.opts.verify(this.layout.idOf(index), transcript.advertBytes(this.opts.roundId, message.cPk, message.sPk, message.bCommit), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', `advertise-keys of ${this.layout.idOf(index)} does not verify`)
    }
    // Checked here too (the agents check again): a low-order key would make its owner unusable as a neighbour.
    if (isLowOrderX25519PublicKey(message.cPk) || isLowOrderX25519PublicKey(message.sPk)) {
      throw new SecAggError('ERR_BAD_MESSAGE', `advertise-keys of ${this.layout.idOf(index)} has a low-order key`)
    }
    this.adverts.set(index, { cPk: message.cPk, sPk: message.sPk, bCommit: message.bCommit, signature: message.signature })
  }

  private onReceipt (index: number, message: ShareReceipt): void {
    this.expectPhase('share-receipt', 'share-keys')
    if (!this.inU1.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `participant ${index} did not advertise keys`)
    if (this.receipts.has(index)) throw new SecAggError('ERR_DUPLICATE', `second share-receipt from participant ${index}`)
    assertIndexSet(message.holds, this.layout.n, 'share-receipt holds')
    for (const v of message.holds) {
      if (!this.layout.graph.areNeighbours(index, v) || !this.adverts.has(v)) {
        throw new SecAggError('ERR_CONSISTENCY', `share-receipt claims shares of ${v}, not an advertising neighbour`)
      }
    }
    if (!this.opts.verify(this.layout.idOf(index), transcript.receiptBytes(this.opts.roundId, message.holds), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', `share-receipt of ${this.layout.idOf(index)} does not verify`)
    }
    this.receipts.set(index, [...message.holds])
  }

  private onMaskedInput (index: number, message: MaskedInput): void {
    this.expectPhase('masked-input', 'masked-input')
    if (!this.inU2.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `participant ${index} is not in the masking set`)
    if (this.maskedFrom.has(index)) throw new SecAggError('ERR_DUPLICATE', `second masked-input from participant ${index}`)
    if (message.vector.length !== this.opts.vectorLength) {
      throw new SecAggError('ERR_BAD_LENGTH', `masked-input has ${message.vector.length} entries, expected ${this.opts.vectorLength}`)
    }
    // Accumulate at once: the server never keeps individual masked vectors.
    const sum = this.sum ??= new Uint32Array(this.opts.vectorLength)
    const y = message.vector
    for (let i = 0; i < y.length; i++) sum[i] += y[i]
    this.maskedFrom.add(index)
  }

  private onConsistencySignature (index: number, signature: Uint8Array): void {
    this.expectPhase('consistency-signature', 'consistency')
    if (!this.inU3.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `participant ${index} is not a survivor`)
    if (this.consistencySignatures.has(index)) throw new SecAggError('ERR_DUPLICATE', `second consistency-signature from participant ${index}`)
    if (!this.opts.verify(this.layout.idOf(index), this.consistencySigned!, signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', `consistency signature of ${this.layout.idOf(index)} does not verify`)
    }
    this.consistencySignatures.set(index, signature)
  }

  /**
   * A participant's signed Decline: it leaves the round exactly as if it had dropped out in the current phase
   * (its advert or receipt is forgotten, it is simply absent from the masked inputs), so the survivor sets,
   * the never-both rule and the thresholds work as for any dropout. Refused once its masked input is in: from
   * then on its data is in the sum and its masks must be removed, so it cannot leave. When the agents still
   * able to finish are fewer than max(t, minAgents), the round fails now rather than at the phase deadline.
   */
  private onDecline (from: string, message: Decline, now: number): Outgoing[] {
    const index = this.layout.indexOf(from)
    if (index === undefined) throw new SecAggError('ERR_UNKNOWN_SENDER', `${from} is not a participant of round ${this.opts.roundId}`)
    if (this.declines.has(index)) throw new SecAggError('ERR_DUPLICATE', `second decline from participant ${index}`)
    if (this.maskedFrom.has(index) || this.inU3.has(index)) {
      throw new SecAggError('ERR_WRONG_PHASE', `${from} declined after its masked input was received: it cannot leave the round now`)
    }
    if (!this.opts.verify(from, declineBytes(this.opts.roundId, from, message.code, message.reason), message.signature)) {
      throw new SecAggError('ERR_BAD_SIGNATURE', `decline of ${from} does not verify`)
    }
    this.declines.set(index, { code: message.code, reason: message.reason, signature: message.signature })
    if (this.status !== 'running' || this.pending !== null) return [] // recorded only: the round has moved past it
    if (this.state === 'advertise') this.adverts.delete(index)
    if (this.state === 'share-keys') this.receipts.delete(index)
    return this.reassess(now)
  }

  /**
   * After a participant left (declined or disconnected): fail now when the round can no longer finish, else
   * end the phase if nobody else is expected.
   */
  private reassess (now: number): Outgoing[] {
    const reachable = this.stillReachable()
    if (reachable !== null && reachable.count < reachable.need) {
      this.endings[this.state] = 'unreachable'
      return this.fail('ERR_TOO_FEW_SURVIVORS', `${reachable.what}: at most ${reachable.count} ${reachable.unit ?? 'agents'} can still take part, need at least ${reachable.needWhat ?? `max(t, minAgents, consistency quorum) = ${this.quorum}`}${this.offlineSummary()}${this.declinesSummary()}`, now)
    }
    return this.advanceIfComplete(now)
  }

  /** Declined, or disconnected (and not back): not waited for. */
  private gone (i: number): boolean {
    return this.declines.has(i) || this.offline.has(i)
  }

  /**
   * How many agents can still take the round to its end from the current phase, counting only those still
   * there (not declined, not disconnected) plus, where it counts, those that already answered. The consistency
   * quorum needs live signers: an agent whose masked input is in but whose connection closed signs nothing.
   */
  private stillReachable (): { what: string, count: number, need: number, unit?: string, needWhat?: string } | null {
    const need = this.quorum
    const live = (set: readonly number[]): number => set.filter(i => !this.gone(i)).length
    switch (this.state) {
      case 'advertise': return { what: 'advertised keys', count: this.layout.n - this.declines.size - this.count(this.offline, i => !this.declines.has(i)), need }
      case 'share-keys': return { what: 'masking set', count: live(this.u1), need }
      case 'masked-input': return { what: 'masked inputs', count: live(this.u2), need }
      case 'consistency': return { what: 'consistency signatures', count: this.u3.filter(i => this.consistencySignatures.has(i) || !this.offline.has(i)).length, need }
      case 'unmask': {
        // Every secret to rebuild needs t shares: those received plus those its live holders may still send.
        const mayCome = new Map<number, number>()
        for (const h of this.u4) {
          if (this.unmaskFrom.has(h) || this.offline.has(h)) continue
          for (const owner of this.receipts.get(h) ?? []) mayCome.set(owner, (mayCome.get(owner) ?? 0) + 1)
        }
        // A dropped agent whose every surviving neighbour sent (or may still send) its pair seed needs no s-key.
        const seedsMayComplete = (v: number): boolean => {
          const got = this.pairSeeds.get(v)
          for (const w of this.layout.graph.neighbours(v)) {
            if (!this.inU3.has(w) || got?.has(w) === true) continue
            if (!this.inU4.has(w) || this.unmaskFrom.has(w) || this.offline.has(w)) return false
          }
          return true
        }
        const short = [...this.u3.map(v => ({ kind: 'b' as const, owner: v })), ...this.dropped.filter(v => !seedsMayComplete(v)).map(v => ({ kind: 's' as const, owner: v }))]
          .map(({ kind, owner }) => ({ owner, count: ((kind === 'b' ? this.bShares : this.sShares).get(owner)?.length ?? 0) + (mayCome.get(owner) ?? 0) }))
          .filter(x => x.count < this.t)
        if (short.length === 0) return null
        const worst = short.reduce((a, b) => b.count < a.count ? b : a)
        return { what: `unmask: too few shares can still come for ${short.length} agents (e.g. ${this.layout.idOf(worst.owner)})`, count: worst.count, need: this.t, unit: 'shares', needWhat: `t = ${this.t}` }
      }
      default: return null
    }
  }

  /** Holders of `owner`'s shares (per their signed receipts) that signed the survivor set, have not answered and are still connected. */
  private pendingHolders (owner: number): number[] {
    return this.u4.filter(h => !this.unmaskFrom.has(h) && !this.offline.has(h) && (this.receipts.get(h)?.includes(owner) ?? false))
  }

  /** `; 2 disconnected: <agent>, <agent>` for failure messages, or ''. */
  private offlineSummary (): string {
    if (this.offline.size === 0) return ''
    const listed = [...this.offline].slice(0, DECLINES_IN_MESSAGE).map(i => this.layout.idOf(i))
    const more = this.offline.size > DECLINES_IN_MESSAGE ? ` and ${this.offline.size - DECLINES_IN_MESSAGE} more` : ''
    return `; ${this.offline.size} disconnected: ${listed.join(', ')}${more}`
  }

  private count (set: Iterable<number>, where: (i: number) => boolean): number {
    let n = 0
    for (const i of set) if (where(i)) n++
    return n
  }

  /** `; 3 declined: <agent> ERR_POLICY <reason>; …` for failure messages, or '' when nobody declined. */
  private declinesSummary (): string {
    if (this.declines.size === 0) return ''
    const listed = [...this.declines].slice(0, DECLINES_IN_MESSAGE).map(([i, d]) => `${this.layout.idOf(i)} ${d.code} ${truncateReason(d.reason, DECLINE_REASON_IN_MESSAGE)}`)
    const more = this.declines.size > DECLINES_IN_MESSAGE ? `; and ${this.declines.size - DECLINES_IN_MESSAGE} more` : ''
    return `; ${this.declines.size} declined: ${listed.join('; ')}${more}`
  }

  private onUnmaskShares (index: number, message: UnmaskShares): void {
    this.expectPhase('unmask-shares', 'unmask')
    if (!this.inU4.has(index)) throw new SecAggError('ERR_UNKNOWN_SENDER', `participant ${index} did not sign the survivor set`)
    if (this.unmaskFrom.has(index)) throw new SecAggError('ERR_DUPLICATE', `second unmask-shares from participant ${index}`)
    assertIndexSet(message.bOwners, this.layout.n, 'bOwners', this.inU3)
    assertIndexSet(message.sOwners, this.layout.n, 'sOwners', this.droppedSet)
    const pairOwners = message.pairOwners ?? []
    const pairBytes = message.pairSeeds ?? new Uint8Array(0)
    assertIndexSet(pairOwners, this.layout.n, 'pairOwners', this.droppedSet)
    for (const owner of [...message.bOwners, ...message.sOwners, ...pairOwners]) {
      if (!this.layout.graph.areNeighbours(index, owner)) throw new SecAggError('ERR_CONSISTENCY', `participant ${index} cannot hold shares of ${owner}`)
    }
    // (The wire schema checks this too; the sans-IO server can be handed objects that never went through it.)
    if (!(message.bShares instanceof Uint8Array) || !(message.sShares instanceof Uint8Array) || !(pairBytes instanceof Uint8Array) ||
      message.bShares.length !== message.bOwners.length * SHARE_BYTES || message.sShares.length !== message.sOwners.length * SHARE_BYTES ||
      pairBytes.length !== pairOwners.length * PAIR_SEED_BYTES) {
      throw new SecAggError('ERR_BAD_LENGTH', `unmask-shares of participant ${index}: share bytes do not match ${SHARE_BYTES} (pair seeds: ${PAIR_SEED_BYTES}) per listed owner`)
    }
    const x = this.layout.shareX(index)
    this.holderOfX.set(x, index)
    // One private copy per message (wiped with the round), each share a view of it: O(1) allocations per
    // message rather than one per share (~k per message, n·k in the phase).
    const bBytes = message.bOwners.length * SHARE_BYTES
    const sBytes = message.sOwners.length * SHARE_BYTES
    const copy = new Uint8Array(bBytes + sBytes + pairBytes.length)
    copy.set(message.bShares.subarray(0, bBytes), 0)
    copy.set(message.sShares.subarray(0, sBytes), bBytes)
    copy.set(pairBytes, bBytes + sBytes)
    this.shareBuffers.push(copy)
    const add = (into: Map<number, Share[]>, owners: number[], from: number, kind: SecretKind): void => {
      for (let i = 0; i < owners.length; i++) {
        const owner = owners[i]
        let list = into.get(owner)
        if (list === undefined) into.set(owner, list = [])
        list.push({ x, share: copy.subarray(from + i * SHARE_BYTES, from + (i + 1) * SHARE_BYTES) })
        if (list.length === this.t) {
          if (kind === 'b') this.bWithT++
          else this.droppedReady.add(owner)
        }
      }
    }
    add(this.bShares, message.bOwners, 0, 'b')
    add(this.sShares, message.sOwners, bBytes, 's')
    for (let i = 0; i < pairOwners.length; i++) {
      const owner = pairOwners[i]
      let seeds = this.pairSeeds.get(owner)
      if (seeds === undefined) this.pairSeeds.set(owner, seeds = new Map())
      const from = bBytes + sBytes + i * PAIR_SEED_BYTES
      seeds.set(index, copy.subarray(from, from + PAIR_SEED_BYTES))
      if (seeds.size === this.pairSeedsNeeded.get(owner)) {
        this.seedsComplete++
        this.droppedReady.add(owner)
      }
    }
    this.unmaskFrom.add(index)
  }

  // ---- phase transitions ----

  private advanceIfComplete (now: number): Outgoing[] {
    // Members before settledUpTo answered or declined (final for the phase), so each message costs O(1)
    // amortised; from the first member that is merely offline (it may come back) on, the rest is scanned.
    const all = (list: readonly number[], answered: (i: number) => boolean, away: (i: number) => boolean): boolean => {
      let c = this.settledUpTo
      while (c < list.length && (answered(list[c]) || this.declines.has(list[c]))) c++
      this.settledUpTo = c
      for (let i = c; i < list.length; i++) if (!answered(list[i]) && !away(list[i])) return false
      return true
    }
    const gone = (i: number): boolean => this.gone(i)
    const offline = (i: number): boolean => this.offline.has(i)
    switch (this.state) {
      // Declined and disconnected agents are not waited for (a decliner's advert/receipt is forgotten).
      case 'advertise': return this.adverts.size + this.declines.size + this.count(this.offline, i => !this.adverts.has(i) && !this.declines.has(i)) === this.layout.n ? this.endPhase(now, 'answered') : []
      case 'share-keys': return all(this.u1, i => this.receipts.has(i), gone) ? this.endPhase(now, 'answered') : []
      case 'masked-input': return all(this.u2, i => this.maskedFrom.has(i), gone) ? this.endPhase(now, 'answered') : []
      // Survivors cannot decline (their data is in the sum); a disconnected one will not sign.
      case 'consistency': return all(this.u3, i => this.consistencySignatures.has(i), offline) ? this.endPhase(now, 'answered') : []
      // Finish as soon as every secret is rebuilt and verified: late responders are not needed. A secret that
      // does not verify yet (a wrong share among those held) waits for more live holders until the deadline.
      case 'unmask': {
        if (all(this.u4, i => this.unmaskFrom.has(i), offline)) return this.endPhase(now, 'answered')
        if (!this.canReconstruct()) return []
        if (this.seedsComplete < this.dropped.length) {
          // Recoverable already, but cheaper with the pair seeds still on their way: wait a little for them.
          this.pairSeedGraceUntil ??= now + Math.min(PAIR_SEED_GRACE_MS, this.opts.phaseTimeoutMs / 10)
          if (now < this.pairSeedGraceUntil) {
            this.deadline = Math.min(this.deadline ?? Infinity, this.pairSeedGraceUntil)
            return []
          }
        }
        const unverified = this.reconstructAll()
        return unverified.length === 0 || unverified.every(u => !this.moreSharesMayCome(u.owner)) ? this.endPhase(now, 'answered') : []
      }
      default: return []
    }
  }

  private endPhase (now: number, by: PhaseEnding): Outgoing[] {
    if (this.state !== 'created' && this.state !== 'done' && this.state !== 'failed') this.endings[this.state] = by
    switch (this.state) {
      case 'advertise': return this.endAdvertise(now)
      case 'share-keys': return this.endShareKeys(now)
      case 'masked-input': return this.endMaskedInput(now)
      case 'consistency': return this.endConsistency(now)
      case 'unmask': return this.endUnmask(now)
      default: return []
    }
  }

  private enter (phase: ServerPhase, now: number): void {
    if (this.state !== 'created') this.timings[this.state] = now - this.phaseStartedAt
    this.state = phase
    this.phaseStartedAt = now
    this.settledUpTo = 0
    this.deadline = phase === 'done' || phase === 'failed' ? null : now + this.opts.phaseTimeoutMs
  }

  /** Whether this round's Announce names its participants by a roster bitmap (compactAnnounceFrom). */
  private get compact (): boolean {
    return this.opts.roster !== undefined && this.layout.n >= (this.opts.compactAnnounceFrom ?? COMPACT_ANNOUNCE_FROM)
  }

  private participantsPart (): Pick<Announce, 'participants' | 'members'> {
    if (!this.compact) return { participants: this.opts.participants.map(p => ({ id: p.id, addrs: [...p.addrs] })) }
    const roster = sortedRoster(this.opts.roster!)
    return { members: { roster: roster.digest, bits: membersBitmap(roster, this.opts.participants.map(p => p.id)) } }
  }

  /** The fewest agents with which the round can still finish: t, minAgents and the consistency quorum. */
  private get quorum (): number { return Math.max(this.t, this.opts.minAgents, this.consistencyQuorum) }
  /** The fewest agents this round can unmask with (what DP noise is sized for: shared/dp/plan.ts). */
  get minSurvivors (): number { return this.quorum }

  private tooFew (what: string, count: number, now: number, need?: number): Outgoing[] {
    const needText = need !== undefined ? `the committee's quorum ${need}` : `max(t, minAgents, consistency quorum) = ${this.quorum}`
    return this.fail('ERR_TOO_FEW_SURVIVORS', `${what}: ${count} agents, need at least ${needText}${this.offlineSummary()}${this.declinesSummary()}`, now)
  }

  private endAdvertise (now: number): Outgoing[] {
    // An agent whose connection closed is left out even if its advert came in: its neighbours would otherwise
    // wait for its shares, and it could not receive theirs.
    this.u1 = [...this.adverts.keys()].filter(i => !this.offline.has(i)).sort((a, b) => a - b)
    if (this.u1.length < this.quorum) return this.tooFew('advertised keys', this.u1.length, now)
    const inU1 = this.inU1 = new Set(this.u1)
    // An agent shares its secrets only with at least t neighbours in U1 (else it fails): say so now when too
    // few can, rather than wait for receipts that will not come.
    const sharers = this.u1.filter(u => this.count(this.layout.graph.neighbours(u), v => inU1.has(v)) >= this.t).length
    if (sharers < this.quorum) {
      return this.fail('ERR_TOO_FEW_SURVIVORS', `advertised keys: ${this.u1.length} agents, but only ${sharers} of them have t = ${this.t} neighbours among them to share their secrets with, need at least max(t, minAgents, consistency quorum) = ${this.quorum}${this.offlineSummary()}${this.declinesSummary()}`, now)
    }
    const out: Outgoing[] = []
    for (const u of this.u1) {
      // A roster-bitmap Announce named no addresses: each agent learns its neighbours' here.
      const keys = this.layout.graph.neighbours(u).filter(v => inU1.has(v)).map(v => ({ index: v, ...this.adverts.get(v)!, ...(this.compact ? { addrs: [...this.opts.participants[v].addrs] } : {}) }))
      out.push({ to: this.layout.idOf(u), message: { type: 'key-set', roundId: this.opts.roundId, keys } })
    }
    this.enter('share-keys', now)
    return out
  }

  /**
   * U2: agents that sent a receipt and whose shares are held by at least t neighbours in U2 — iterated to a
   * fixpoint, since removing one agent can push its holders' owners below t.
   */
  private endShareKeys (now: number): Outgoing[] {
    // A disconnected agent leaves before masking (as if it had sent no receipt): no pairwise mask with it, so
    // its s-key is never needed; the fixpoint below then also drops the owners it left short of t holders.
    const members = new Set([...this.receipts.keys()].filter(i => !this.offline.has(i)))
    const withReceipts = members.size
    const holders = new Map<number, number[]>() // owner → holders that received its shares
    for (const [holder, owners] of this.receipts) {
      for (const owner of owners) {
        const list = holders.get(owner) ?? []
        list.push(holder)
        holders.set(owner, list)
      }
    }
    for (let changed = true; changed;) {
      changed = false
      for (const v of members) {
        const live = (holders.get(v) ?? []).filter(h => members.has(h)).length
        if (live < this.t) { members.delete(v); changed = true }
      }
    }
    this.u2 = [...members].sort((a, b) => a - b)
    this.inU2 = new Set(this.u2)
    if (this.u2.length < this.quorum) {
      const why = this.u2.length < withReceipts ? ` (${withReceipts} connected agents sent receipts; only these keep their shares with t = ${this.t} of them)` : ''
      return this.tooFew(`masking set${why}`, this.u2.length, now)
    }
    const signature = this.opts.sign(transcript.maskingSetBytes(this.opts.roundId, this.u2))
    const message: SecAggMessage = { type: 'masking-set', roundId: this.opts.roundId, members: this.u2, signature }
    this.enter('masked-input', now)
    return this.u2.map(u => ({ to: this.layout.idOf(u), message }))
  }

  private endMaskedInput (now: number): Outgoing[] {
    this.u3 = [...this.maskedFrom].sort((a, b) => a - b)
    if (this.u3.length < this.quorum) return this.tooFew('masked inputs', this.u3.length, now)
    const survivors = this.inU3 = new Set(this.u3)
    // An agent signs the survivor set only if it keeps t surviving neighbours (else its pairwise masks could be
    // stripped): when too few can, say so now rather than fail later on "0 consistency signatures".
    // A survivor whose connection closed signs nothing either.
    const signers = this.u3.filter(u => !this.offline.has(u) && this.layout.graph.neighbours(u).filter(v => survivors.has(v)).length >= this.t).length
    if (signers < this.quorum) {
      return this.fail('ERR_TOO_FEW_SURVIVORS', `masked inputs: ${this.u3.length} agents, but only ${signers} of them keep t = ${this.t} surviving neighbours and are still connected (the others refuse or cannot sign), need at least max(t, minAgents, consistency quorum) = ${this.quorum}${this.offlineSummary()}${this.declinesSummary()}`, now)
    }
    const committeeSigners = this.u3.filter(u => this.committee.members.has(u) && !this.offline.has(u)).length
    if (committeeSigners < this.committee.quorum) {
      return this.fail('ERR_TOO_FEW_SURVIVORS', `masked inputs: only ${committeeSigners} of the round's ${this.committee.members.size} committee members survived and are still connected, need ${this.committee.quorum} to certify the survivor set${this.offlineSummary()}${this.declinesSummary()}`, now)
    }
    this.dropped = this.u2.filter(u => !survivors.has(u))
    this.droppedSet = new Set(this.dropped)
    for (const v of this.dropped) {
      let needed = 0
      for (const w of this.layout.graph.neighbours(v)) if (survivors.has(w)) needed++
      this.pairSeedsNeeded.set(v, needed)
      if (needed === 0) { this.seedsComplete++; this.droppedReady.add(v) } // no mask of v is in the sum
    }
    this.consistencySigned = transcript.consistencyBytes(this.opts.roundId, this.u3)
    const signature = this.opts.sign(transcript.survivorsBytes(this.opts.roundId, this.u3))
    const message: SecAggMessage = { type: 'survivors', roundId: this.opts.roundId, members: this.u3, signature }
    this.enter('consistency', now)
    return this.u3.map(u => ({ to: this.layout.idOf(u), message }))
  }

  private endConsistency (now: number): Outgoing[] {
    this.u4 = [...this.consistencySignatures.keys()].sort((a, b) => a - b)
    this.inU4 = new Set(this.u4)
    if (this.u4.length < this.quorum) return this.tooFew('consistency signatures', this.u4.length, now)
    // Exactly the committee's quorum of signatures (each already verified here): an agent needs q of them on its
    // set, no more; the rest would only add ~70 bytes per signer to every agent's download (n = 10,000: 404).
    const certifying = this.u4.filter(i => this.committee.members.has(i))
    if (certifying.length < this.committee.quorum) return this.tooFew('consistency signatures of committee members', certifying.length, now, this.committee.quorum)
    const signatures = certifying.slice(0, this.committee.quorum).map(index => ({ index, signature: this.consistencySignatures.get(index)! }))
    const signature = this.opts.sign(transcript.unmaskRequestBytes(this.opts.roundId, this.u3, this.dropped))
    const message: SecAggMessage = { type: 'unmask-request', roundId: this.opts.roundId, survivors: this.u3, dropped: this.dropped, signatures, signature }
    this.enter('unmask', now)
    return this.u4.map(u => ({ to: this.layout.idOf(u), message }))
  }

  private canReconstruct (): boolean {
    return this.bWithT === this.u3.length && this.droppedReady.size === this.dropped.length
  }

  /** Whether every surviving neighbour of dropped agent `v` sent its pair seed (no s-key needed for v). */
  private seedsCompleteFor (v: number): boolean {
    return (this.pairSeeds.get(v)?.size ?? 0) === this.pairSeedsNeeded.get(v)
  }

  private endUnmask (now: number): Outgoing[] {
    if (!this.canReconstruct()) {
      const missing = [...this.u3.filter(v => (this.bShares.get(v)?.length ?? 0) < this.t), ...this.dropped.filter(v => !this.droppedReady.has(v))]
      return this.tooFew(`unmask: too few shares for ${missing.length} agents (e.g. ${this.layout.idOf(missing[0])})`, this.unmaskFrom.size, now)
    }
    const unverified = this.reconstructAll()
    if (unverified.length > 0) return this.fail('ERR_RECONSTRUCT', this.unverifiedReason(unverified), now)
    // Reconstruction (possibly spread over several messages) counts in the unmask compute time.
    const started = performance.now() - this.reconstructMs
    const work = this.unmaskWork()
    if (this.opts.deferUnmask === true) {
      this.pending = { work, since: started }
      this.deadline = null
      return []
    }
    let correction: Uint32Array
    try {
      correction = computeUnmaskCorrection(work)
    } catch (err) {
      // e.g. a survivor advertised a low-order s-key: its pairwise seed cannot be derived.
      return this.fail('ERR_RECONSTRUCT', (err as Error).message, now)
    } finally {
      wipeUnmaskWork(work)
    }
    const sum = this.sum ?? new Uint32Array(this.opts.vectorLength)
    this.sum = null
    for (let i = 0; i < sum.length; i++) sum[i] += correction[i]
    correction.fill(0)
    return this.finishUnmask(sum, performance.now() - started, now)
  }

  private finishUnmask (sum: Uint32Array, computeMs: number, now: number): Outgoing[] {
    this.timings.unmaskComputeMs = computeMs
    // Of which: rebuilding and checking the secrets from their shares (the rest is key agreement + PRG).
    this.timings.unmaskReconstructMs = this.reconstructMs
    const included = new Set(this.u3)
    this.resultValue = {
      sum,
      included: this.u3.map(i => this.layout.idOf(i)),
      dropped: this.opts.participants.filter((_, i) => !included.has(i)).map(p => p.id)
    }
    this.enter('done', now)
    this.wipe()
    return []
  }

  /**
   * Lists the masks to remove with the verified secrets (moved into the work, which the caller wipes): every
   * self mask of the survivors and every pairwise mask between a dropped agent and a survivor.
   */
  private unmaskWork (): UnmaskWork {
    const work: UnmaskWork = { vectorLength: this.opts.vectorLength, keyContext: this.layout.keyContext, seeds: [], pairwise: [] }
    for (const v of this.u3) work.seeds.push({ seed: this.verifiedB.get(v)!, sign: -1 })
    const survivors = this.inU3
    for (const v of this.dropped) {
      const seeds = this.pairSeeds.get(v)
      const peers: PairwiseUnmask['peers'] = []
      for (const w of this.layout.graph.neighbours(v)) {
        if (!survivors.has(w)) continue
        // y_w carries +PRG(s_wv) when w < v and −PRG(s_wv) otherwise; remove it.
        const sign = w < v ? -1 as const : 1 as const
        const seed = seeds?.get(w)
        // A copy: the work is wiped by its consumer, the views by this round's wipe().
        if (seed !== undefined) work.seeds.push({ seed: seed.slice(), sign })
        else peers.push({ id: this.layout.idOf(w), publicKey: this.adverts.get(w)!.sPk, sign })
      }
      if (peers.length > 0) work.pairwise.push({ id: this.layout.idOf(v), secretKey: this.verifiedS.get(v)!, peers })
    }
    this.verifiedB.clear()
    this.verifiedS.clear()
    this.expansions = unmaskExpansions(work)
    this.keyAgreements = work.pairwise.reduce((n, job) => n + job.peers.length, 0)
    return work
  }

  /**
   * Rebuilds every secret not yet verified that has at least t shares and new shares since its last failed
   * attempt; returns the ones still unverified. b_u must hash to the signed commitment in u's advert; a dropped
   * agent's s-key must give its signed, advertised public key.
   */
  private reconstructAll (): Array<{ kind: SecretKind, owner: number }> {
    const started = performance.now()
    const unverified: Array<{ kind: SecretKind, owner: number }> = []
    for (const v of this.u3) if (!this.verifiedB.has(v) && !this.reconstruct('b', v)) unverified.push({ kind: 'b', owner: v })
    for (const v of this.dropped) if (!this.verifiedS.has(v) && !this.seedsCompleteFor(v) && !this.reconstruct('s', v)) unverified.push({ kind: 's', owner: v })
    this.reconstructMs += performance.now() - started
    return unverified
  }

  private reconstruct (kind: SecretKind, owner: number): boolean {
    const shares = (kind === 'b' ? this.bShares : this.sShares).get(owner) ?? []
    const key = `${kind}:${owner}`
    if (shares.length < this.t || this.failedAt.get(key) === shares.length) return false
    const budget = Math.min(MAX_ATTEMPTS_PER_SECRET, MAX_ATTEMPTS_PER_ROUND - this.reconstructAttempts)
    if (budget <= 0) return false
    // Holders already caught with a wrong share go last: one bad holder costs a search once, not per secret.
    const ordered = this.badHolders.size === 0
      ? [...shares].sort((a, b) => a.x - b.x)
      : [...shares].sort((a, b) => Number(this.badHolders.has(this.holderOfX.get(a.x)!)) - Number(this.badHolders.has(this.holderOfX.get(b.x)!)) || a.x - b.x)
    const advert = this.adverts.get(owner)!
    const ownerId = this.layout.idOf(owner)
    const accept = kind === 'b'
      ? (secret: Uint8Array) => equalBytes(transcript.selfMaskCommitment(this.opts.roundId, ownerId, secret), advert.bCommit)
      : (secret: Uint8Array) => equalBytes(x25519PublicKey(secret), advert.sPk)
    const outcome = combineSharesVerified(ordered, this.t, accept, {
      maxAttempts: budget,
      // X25519 ignores the clamped bits: only a key in clamped form (as honest agents make them) pins the polynomial.
      canonical: kind === 's' ? isClampedX25519PrivateKey : undefined
    })
    this.reconstructAttempts += outcome.attempts
    if (!outcome.ok) {
      this.failedAt.set(key, shares.length)
      return false
    }
    ;(kind === 'b' ? this.verifiedB : this.verifiedS).set(owner, outcome.secret)
    for (const x of outcome.inconsistentXs) {
      const holder = this.holderOfX.get(x)!
      this.badHolders.add(holder)
      this.inconsistent.push({ holder: this.layout.idOf(holder), owner: ownerId, kind })
    }
    return true
  }

  /** Whether a connected holder of `owner`'s shares (per its signed receipt) signed the survivor set and has not answered yet. */
  private moreSharesMayCome (owner: number): boolean {
    return this.pendingHolders(owner).length > 0
  }

  private unverifiedReason (unverified: Array<{ kind: SecretKind, owner: number }>): string {
    const names = unverified.slice(0, 5).map(u => `the ${u.kind === 'b' ? 'self-mask seed' : 's-key'} of ${this.layout.idOf(u.owner)} (${(u.kind === 'b' ? this.bShares : this.sShares).get(u.owner)?.length ?? 0} shares)`)
    const more = unverified.length > 5 ? ` and ${unverified.length - 5} more` : ''
    const suspects = [...this.badHolders].map(h => this.layout.idOf(h))
    const cap = this.reconstructAttempts >= MAX_ATTEMPTS_PER_ROUND ? `; reconstruction budget of ${MAX_ATTEMPTS_PER_ROUND} attempts spent` : ''
    return `no combination of the shares received matches the signed commitment for ${unverified.length} secret(s): ${names.join(', ')}${more}` +
      `${suspects.length > 0 ? `; holders caught sending wrong shares: ${suspects.join(', ')}` : ''}${cap}`
  }

  private fail (code: string, message: string, now: number | null): Outgoing[] {
    const recipients = this.liveAgents()
    if (now !== null && this.state !== 'created') this.timings[this.state] = now - this.phaseStartedAt
    this.state = 'failed'
    this.deadline = null
    this.failureInfo = { code, message }
    this.wipe()
    const reason = message.slice(0, 1024)
    const abort: SecAggMessage = {
      type: 'abort', roundId: this.opts.roundId, code: code.slice(0, 64), reason,
      signature: this.opts.sign(transcript.abortBytes(this.opts.roundId, code.slice(0, 64), reason))
    }
    return recipients.map(i => ({ to: this.layout.idOf(i), message: abort }))
  }

  /** Agents that may still hold round state: everyone who has taken part so far. */
  private liveAgents (): number[] {
    if (this.u1.length === 0) return [...this.adverts.keys()].sort((a, b) => a - b)
    return this.u1
  }

  private wipe (): void {
    if (this.pending !== null) wipeUnmaskWork(this.pending.work)
    this.pending = null
    this.sum?.fill(0)
    this.sum = null
    for (const buffer of this.shareBuffers) buffer.fill(0)
    this.shareBuffers = []
    this.bShares.clear()
    this.sShares.clear()
    this.pairSeeds.clear()
    for (const secret of [...this.verifiedB.values(), ...this.verifiedS.values()]) secret.fill(0)
    this.verifiedB.clear()
    this.verifiedS.clear()
  }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}
