/**
 * The agent's contribution ledger: which rounds it joined and which windows of its records it contributed
 * to a sum. A JSON file in the agent's state dir, rewritten atomically (temp file, fsync, rename); it holds
 * no secrets (round ids, windows, spec hashes, participant peer ids).
 *
 * The rule against differencing (two sums over the same records whose participant sets differ by a few
 * agents reveal those agents' vectors by subtraction):
 *   1. A round id already in the ledger is refused (a replayed Announce).
 *   2. A round whose window [from, to) overlaps the window of any round this agent contributed to is refused,
 *      whatever its participant set, spec or reference flag. There is deliberately no "same invited set"
 *      exception: the included set is fixed only at the end, by the coordinator, which can manufacture a
 *      dropout in a re-run. Each record therefore enters at most one sum.
 *   3. A contribution is recorded, durably, before the masked input leaves; if it cannot be recorded the agent
 *      does not contribute. Consequence: a round that fails after this agent sent its masked input still
 *      "uses up" the window for this agent (the coordinator may hold that masked input).
 *   4. At most `maxRoundsPerWindow` rounds (joined, contributed or not) may cover one window: whether an agent
 *      contributes can depend on its data (too few records, more than the spec's cap), so each round over a
 *      window is a probe; the bound caps how many a coordinator gets.
 *   5. The ledger knows since when it is complete (`notBefore`). A ledger lost with its state dir while the
 *      identity key survived (the anchor file beside the key says this identity had one) starts over with
 *      notBefore = now: windows that start earlier are refused, since the lost file was the only memory of
 *      what went into them. Only `fedmon ledger reset` (logged, recorded in the file) moves notBefore back.
 *   6. Label-refresh rounds (issue 11 §2) are the one way back into a contributed window: a refresh names the
 *      window's first round, which this agent contributed to and whose included set (the survivor set it signed)
 *      it recorded at the consistency step; the refresh's participants, masking set and survivor set must all be
 *      exactly that set (checked by the client against `includedSetFor`), and at each declared age at most one
 *      refresh is revealed (`recordReveal`, before any share leaves). Its vector holds only the label-dependent
 *      entries. Under privacy.dp the ε of the first round and of each revealed refresh add up per window, and
 *      `maxEpsilonPerWindow` caps the total (basic composition).
 *   7. Scopes (issue 12 §1, many monitors): the rules above hold per data source. Monitors reading different
 *      data (different records) may each sum the same window once; monitors reading the same data share one
 *      scope, since their records are the same. An entry without a scope (written before monitors) protects
 *      every scope.
 * The scheduler's windows are tumbling ([k·every, (k+1)·every)), so scheduled rounds never conflict; a manual
 * `round run --window` over an already-used window is refused by every agent that contributed to it.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, writeFileSync, writeSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { z } from 'zod'
import { FedmonError } from '../shared/errors.js'
import { SecAggError } from '../shared/secagg/errors.js'
import { windowsOverlap, type ContributionGuard, type IncludedSet, type RoundRecord } from '../shared/secagg/policy.js'
import { formatDuration } from '../shared/config/duration.js'

export const LEDGER_FILE = 'contributions.json'
const LEDGER_VERSION = 2
/** Rounds that may cover one window, by default (policy.maxRoundsPerWindow): a first try and two retries. */
export const DEFAULT_MAX_ROUNDS_PER_WINDOW = 3

export const LedgerEntry = z.strictObject({
  roundId: z.string().min(1).max(128),
  window: z.strictObject({ from: z.number().int(), to: z.number().int() }),
  specHash: z.string().regex(/^[0-9a-f]{64}$/),
  reference: z.boolean(),
  participants: z.array(z.string().min(1).max(128)),
  joinedAt: z.number().int(),
  /** When the masked input was released (recorded just before); null = joined only. */
  contributedAt: z.number().int().nullable(),
  /** A first round's included set (the survivor set this agent signed), recorded at the consistency step. */
  included: z.strictObject({ count: z.number().int().positive(), digest: z.string().regex(/^[0-9a-f]{64}$/), at: z.number().int() }).optional(),
  /** A label-refresh round: its first round and age. */
  refresh: z.strictObject({ ageMs: z.number().int().positive(), of: z.string().min(1).max(128) }).optional(),
  /** A refresh round: when this agent revealed its unmask shares (recorded just before). */
  revealedAt: z.number().int().optional(),
  /** The spec's privacy.dp ε for this round (the per-window budget). */
  epsilon: z.number().positive().optional(),
  /** The data source the round read (ledgerScopeOf); absent in entries from before monitors: then every scope. */
  scope: z.string().min(1).max(4096).optional()
})
export type LedgerEntry = z.infer<typeof LedgerEntry>

/** An operator's `fedmon ledger reset`: kept in the file for good, so the reset itself is never silent. */
export const LedgerReset = z.strictObject({ at: z.number().int(), notBefore: z.number().int().nullable(), reason: z.string().max(1024) })
export type LedgerReset = z.infer<typeof LedgerReset>

export const LedgerFile = z.strictObject({
  version: z.literal(LEDGER_VERSION),
  /** Random id, also written to the anchor beside the identity key: ties this file to that identity. */
  ledgerId: z.string().regex(/^[0-9a-f]{32}$/),
  createdAt: z.number().int(),
  /** Windows starting before this instant are refused (null: the ledger holds this identity's whole history). */
  notBefore: z.number().int().nullable(),
  resets: z.array(LedgerReset),
  entries: z.array(LedgerEntry)
})
export type LedgerFile = z.infer<typeof LedgerFile>

/** Version 1 files (before notBefore existed) are read and upgraded on the next write. */
const LedgerFileV1 = z.strictObject({ version: z.literal(1), entries: z.array(LedgerEntry) })

/** The anchor beside the identity key: which ledger this identity keeps (nothing secret). */
const Anchor = z.object({ ledgerId: z.string().regex(/^[0-9a-f]{32}$/), createdAt: z.number().int(), ledger: z.string() })

export interface LedgerOpenOptions {
  /**
   * The identity key's file: the anchor `<key>.ledger.json` beside it records that this identity keeps a ledger,
   * so a state dir lost while the key survives is noticed. Absent: no anchor (a new ledger trusts it is the first).
   */
  identityFile?: string
  /** policy.maxRoundsPerWindow (default DEFAULT_MAX_ROUNDS_PER_WINDOW). */
  maxRoundsPerWindow?: number
  /** policy.maxEpsilonPerWindow: the privacy.dp budget of one window over its first round and refreshes. */
  maxEpsilonPerWindow?: number
  now?: number
  /** Told when a lost ledger is replaced (the daemon logs it at error level). */
  onLost?: (info: { file: string, anchor: string, notBefore: number }) => void
}

/** The ledger file is unreadable or cannot be written; the agent must not contribute until this is fixed. */
export class LedgerError extends FedmonError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_LEDGER', options)
    this.name = 'LedgerError'
  }
}

const iso = (t: number): string => new Date(t).toISOString()

/**
 * The ledger scope of a data source: the records it reads, named by the canonical location of its prediction
 * files (symlinks resolved in the part of the path before any glob character) and its format. Two monitors
 * whose data resolves to the same scope read the same records and share the ledger's rules.
 */
export function ledgerScopeOf (source: { path: string, format?: string }): string {
  const abs = resolve(source.path)
  const glob = abs.search(/[*?[\]{}]/)
  const fixed = glob < 0 ? abs : dirname(abs.slice(0, glob + 1))
  let real = fixed
  try { real = realpathSync(fixed) } catch { /* not there yet: the path as written */ }
  const rest = abs.slice(fixed.length)
  return `${source.format ?? 'auto'}:${real}${rest}`
}

/** An entry counts in `scope` (undefined: the whole ledger) when it has that scope or none. */
function inScope (entry: LedgerEntry, scope: string | undefined): boolean {
  return scope === undefined || entry.scope === undefined || entry.scope === scope
}

export class ContributionLedger implements ContributionGuard {
  readonly file: string
  private entriesList: LedgerEntry[]
  private readonly byRound = new Map<string, LedgerEntry>()
  private header: Omit<LedgerFile, 'version' | 'entries'>
  private readonly maxRoundsPerWindow: number
  private maxEpsilonPerWindow: number | undefined

  private constructor (file: string, header: Omit<LedgerFile, 'version' | 'entries'>, entries: LedgerEntry[], maxRoundsPerWindow: number) {
    this.file = file
    this.header = header
    this.entriesList = entries
    this.maxRoundsPerWindow = maxRoundsPerWindow
    for (const e of entries) this.byRound.set(e.roundId, e)
  }

  /** Windows starting before this are refused (null: none). */
  get notBefore (): number | null { return this.header.notBefore }

  get createdAt (): number { return this.header.createdAt }

  get ledgerId (): string { return this.header.ledgerId }

  get resets (): readonly LedgerReset[] { return this.header.resets }

  /**
   * The operator's explicit override after a lost ledger: windows from `notBefore` on (null: any) may be
   * contributed again. Recorded in the file with the time and reason; the caller logs it.
   */
  reset (notBefore: number | null, reason: string, now = Date.now()): void {
    const resets = [...this.header.resets, { at: Math.floor(now), notBefore, reason: reason.slice(0, 1024) }]
    this.writeFile({ ...this.header, notBefore, resets }, this.entriesList)
  }

  /**
   * Opens (or starts) the ledger in `stateDir`. A corrupt or unreadable file is a LedgerError, never an
   * empty ledger: forgetting what was contributed would re-open the differencing attack.
   */
  static open (stateDir: string, opts: LedgerOpenOptions = {}): ContributionLedger {
    const file = join(stateDir, LEDGER_FILE)
    const now = Math.floor(opts.now ?? Date.now())
    const maxRounds = opts.maxRoundsPerWindow ?? DEFAULT_MAX_ROUNDS_PER_WINDOW
    const anchorFile = opts.identityFile !== undefined ? `${opts.identityFile}.ledger.json` : null
    const anchor = anchorFile !== null ? readAnchor(anchorFile) : null
    if (!existsSync(file)) {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 })
      // This identity kept a ledger before, and it is gone: what went into earlier windows is unknown.
      const notBefore = anchor !== null ? now : null
      const ledger = new ContributionLedger(file, { ledgerId: randomBytes(16).toString('hex'), createdAt: now, notBefore, resets: [] }, [], maxRounds)
      ledger.writeFile(ledger.header, [])
      if (anchor !== null) opts.onLost?.({ file, anchor: anchorFile!, notBefore: now })
      if (anchorFile !== null) writeAnchor(anchorFile, ledger)
      ledger.maxEpsilonPerWindow = opts.maxEpsilonPerWindow
      return ledger
    }
    let value: unknown
    try {
      value = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new LedgerError(`${file}: cannot read the contribution ledger (${(err as Error).message}); refusing to run without it`, { cause: err })
    }
    const isV1 = typeof value === 'object' && value !== null && (value as { version?: unknown }).version === 1
    const v1 = isV1 ? LedgerFileV1.safeParse(value) : null
    let ledger: ContributionLedger
    if (v1 !== null && !v1.success) {
      const issue = v1.error.issues[0]
      throw new LedgerError(`${file}: invalid contribution ledger at ${issue.path.map(String).join('.') || '(file)'}: ${issue.message}`)
    }
    if (v1?.success === true) {
      // Written before notBefore existed: its history is whole (nothing says otherwise); upgraded on disk now.
      const createdAt = Math.min(now, ...v1.data.entries.map(e => e.joinedAt))
      ledger = new ContributionLedger(file, { ledgerId: randomBytes(16).toString('hex'), createdAt, notBefore: null, resets: [] }, v1.data.entries, maxRounds)
      ledger.writeFile(ledger.header, ledger.entriesList)
    } else {
      const parsed = LedgerFile.safeParse(value)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        throw new LedgerError(`${file}: invalid contribution ledger at ${issue.path.map(String).join('.') || '(file)'}: ${issue.message}`)
      }
      const { version: _version, entries, ...header } = parsed.data
      ledger = new ContributionLedger(file, header, entries, maxRounds)
    }
    ledger.maxEpsilonPerWindow = opts.maxEpsilonPerWindow
    if (anchorFile !== null) {
      if (anchor === null) writeAnchor(anchorFile, ledger)
      else if (anchor.ledgerId !== ledger.header.ledgerId) {
        throw new LedgerError(`${file}: this is not the contribution ledger of this identity (${anchorFile} names ledger ${anchor.ledgerId}, created ${iso(anchor.createdAt)} at ${anchor.ledger}): restore that file, or run \`fedmon ledger reset\` to accept this one`)
      }
    }
    return ledger
  }

  entries (): readonly LedgerEntry[] { return this.entriesList }

  hasRound (roundId: string): boolean { return this.byRound.has(roundId) }

  /**
   * The guard for the rounds of one data source (ledgerScopeOf): its windows are checked against the entries of
   * that scope and the unscoped ones, and its entries are recorded with the scope. Rule 4's cap and the DP
   * budget may differ per monitor (its policy).
   */
  forScope (scope: string, opts: { maxRoundsPerWindow?: number, maxEpsilonPerWindow?: number } = {}): ContributionGuard {
    const limits = { maxRoundsPerWindow: opts.maxRoundsPerWindow ?? this.maxRoundsPerWindow, maxEpsilonPerWindow: opts.maxEpsilonPerWindow ?? this.maxEpsilonPerWindow }
    return {
      admit: (round, now) => { this.admit(round, now, scope, limits) },
      contribute: (round, now) => { this.contribute(round, now, scope, limits) },
      recordIncluded: (round, included, now) => { this.recordIncluded(round, included, now) },
      recordReveal: (round, now) => { this.recordReveal(round, now, scope, limits) },
      includedSetFor: round => this.includedSetFor(round, scope)
    }
  }

  /** Contributed first rounds whose window overlaps `window` (refreshes re-read a window they do not add to), in `scope`. */
  overlapping (window: { from: number, to: number }, scope?: string): LedgerEntry[] {
    return this.entriesList.filter(e => e.contributedAt !== null && e.refresh === undefined && inScope(e, scope) && windowsOverlap(e.window, window))
  }

  /** First rounds recorded (joined or contributed) whose window overlaps `window`, in `scope`. */
  roundsCovering (window: { from: number, to: number }, scope?: string): LedgerEntry[] {
    return this.entriesList.filter(e => e.refresh === undefined && inScope(e, scope) && windowsOverlap(e.window, window))
  }

  /** Throws SecAggError('ERR_POLICY') when the rules above refuse the round (in `scope`: undefined = the whole ledger). */
  check (round: RoundRecord, allowJoined = false, scope?: string, limits?: ScopeLimits): void {
    const notBefore = this.header.notBefore
    if (notBefore !== null && round.window.from < notBefore) {
      throw new SecAggError('ERR_POLICY', `window ${iso(round.window.from)}..${iso(round.window.to)} starts before ${iso(notBefore)}, when this agent's contribution ledger was started again after the previous one was lost: what went into earlier windows is unknown (an operator may allow them with \`fedmon ledger reset\`)`)
    }
    const known = this.byRound.get(round.roundId)
    if (known !== undefined && !(allowJoined && known.contributedAt === null && sameRound(known, round))) {
      throw new SecAggError('ERR_POLICY', `round ${round.roundId} was already ${known.contributedAt !== null ? 'contributed to' : 'joined'} at ${iso(known.contributedAt ?? known.joinedAt)} (replayed announce?)`)
    }
    if (round.refresh !== undefined) { this.checkRefresh(round, scope, limits); return }
    const clash = this.overlapping(round.window, scope).find(e => e.roundId !== round.roundId)
    if (clash !== undefined) {
      throw new SecAggError('ERR_POLICY', `window ${iso(round.window.from)}..${iso(round.window.to)} overlaps ${iso(clash.window.from)}..${iso(clash.window.to)}, already contributed to in round ${clash.roundId}: the same records go into one sum only (differencing)`)
    }
  }

  /**
   * The first round a refresh names: contributed by this agent, over exactly this window and spec, with its
   * included set recorded. Throws ERR_REFRESH_SET_MISMATCH otherwise (this agent has nothing to refresh).
   */
  firstRoundOf (round: RoundRecord, scope?: string): LedgerEntry & { included: NonNullable<LedgerEntry['included']> } {
    const of = round.refresh?.of
    const first = of !== undefined ? this.byRound.get(of) : undefined
    const window = `${iso(round.window.from)}..${iso(round.window.to)}`
    if (first === undefined || first.refresh !== undefined || first.contributedAt === null || (first.scope !== undefined && scope !== undefined && first.scope !== scope)) {
      throw new SecAggError('ERR_REFRESH_SET_MISMATCH', `this agent did not contribute to round ${of ?? '?'} over window ${window}: nothing to refresh`)
    }
    if (first.window.from !== round.window.from || first.window.to !== round.window.to || first.specHash !== round.specHash) {
      throw new SecAggError('ERR_REFRESH_SET_MISMATCH', `round ${of} covered ${iso(first.window.from)}..${iso(first.window.to)} with spec ${first.specHash.slice(0, 12)}…, not window ${window} with spec ${round.specHash.slice(0, 12)}…`)
    }
    if (first.included === undefined) {
      throw new SecAggError('ERR_REFRESH_SET_MISMATCH', `round ${of} over window ${window} has no included set recorded (this agent did not sign its survivor set): nothing to refresh`)
    }
    return first as LedgerEntry & { included: NonNullable<LedgerEntry['included']> }
  }

  includedSetFor (round: RoundRecord, scope?: string): IncludedSet {
    const { included } = this.firstRoundOf(round, scope)
    return { count: included.count, digest: included.digest }
  }

  /** Refresh rounds of `of` recorded at `ageMs` that revealed their shares. */
  private revealedRefreshes (of: string, ageMs?: number): LedgerEntry[] {
    return this.entriesList.filter(e => e.refresh?.of === of && e.revealedAt !== undefined && (ageMs === undefined || e.refresh.ageMs === ageMs))
  }

  private checkRefresh (round: RoundRecord, scope?: string, limits?: ScopeLimits): void {
    const first = this.firstRoundOf(round, scope)
    const { ageMs, of } = round.refresh!
    const done = this.revealedRefreshes(of, ageMs)
    if (done.length > 0) {
      throw new SecAggError('ERR_POLICY', `window ${iso(round.window.from)}..${iso(round.window.to)} was already refreshed at ${formatDuration(ageMs)} (round ${done[0].roundId}, revealed ${iso(done[0].revealedAt!)}): one refresh per declared age`)
    }
    const cap = limits?.maxEpsilonPerWindow ?? this.maxEpsilonPerWindow
    if (cap !== undefined && round.epsilon !== undefined) {
      const spent = (first.epsilon ?? 0) + this.revealedRefreshes(of).reduce((sum, e) => sum + (e.epsilon ?? 0), 0)
      if (spent + round.epsilon > cap + 1e-12) {
        throw new SecAggError('ERR_POLICY', `a refresh at ε = ${round.epsilon} would bring window ${iso(round.window.from)}..${iso(round.window.to)} to ε = ${+(spent + round.epsilon).toFixed(6)}, above this agent's policy.maxEpsilonPerWindow ${cap} (already spent ${+spent.toFixed(6)})`)
      }
    }
  }

  /** First round, consistency step: the included set this agent is about to sign, recorded durably first. */
  recordIncluded (round: RoundRecord, included: IncludedSet, now: number): void {
    const entry = this.byRound.get(round.roundId)
    if (entry === undefined || entry.contributedAt === null || entry.refresh !== undefined) {
      throw new SecAggError('ERR_POLICY', `round ${round.roundId} has no recorded contribution to attach its included set to`)
    }
    if (entry.included !== undefined) {
      if (entry.included.digest === included.digest) return
      throw new SecAggError('ERR_POLICY', `round ${round.roundId} already recorded another included set (${entry.included.count} sites): one survivor set per round`)
    }
    this.write(this.entriesList.map(e => e === entry ? { ...e, included: { count: included.count, digest: included.digest, at: Math.floor(now) } } : e))
  }

  /** A refresh round, right before its shares leave: first reveal at its age, recorded durably. */
  recordReveal (round: RoundRecord, now: number, scope?: string, limits?: ScopeLimits): void {
    const entry = this.byRound.get(round.roundId)
    if (entry === undefined || entry.refresh === undefined || entry.contributedAt === null) {
      throw new SecAggError('ERR_POLICY', `round ${round.roundId} is not a refresh this agent contributed to`)
    }
    if (entry.revealedAt !== undefined) return
    this.checkRefresh(round, scope, limits)
    this.write(this.entriesList.map(e => e === entry ? { ...e, revealedAt: Math.floor(now) } : e))
  }

  admit (round: RoundRecord, now: number, scope?: string, limits?: ScopeLimits): void {
    this.check(round, false, scope, limits)
    if (round.refresh !== undefined) {
      this.write([...this.entriesList, { ...copy(round, scope), joinedAt: Math.floor(now), contributedAt: null }])
      return
    }
    const covering = this.roundsCovering(round.window, scope)
    const maxRounds = limits?.maxRoundsPerWindow ?? this.maxRoundsPerWindow
    if (covering.length >= maxRounds) {
      throw new SecAggError('ERR_POLICY', `${covering.length} rounds already covered window ${iso(round.window.from)}..${iso(round.window.to)} (e.g. ${covering.slice(-3).map(e => e.roundId).join(', ')}), this agent joins at most ${maxRounds} (policy.maxRoundsPerWindow): each round over a window is a probe of its data`)
    }
    this.write([...this.entriesList, { ...copy(round, scope), joinedAt: Math.floor(now), contributedAt: null }])
  }

  contribute (round: RoundRecord, now: number, scope?: string, limits?: ScopeLimits): void {
    this.check(round, true, scope, limits)
    const cap = limits?.maxEpsilonPerWindow ?? this.maxEpsilonPerWindow
    if (cap !== undefined && round.refresh === undefined && round.epsilon !== undefined && round.epsilon > cap) {
      throw new SecAggError('ERR_POLICY', `the round's ε = ${round.epsilon} is above this agent's policy.maxEpsilonPerWindow ${cap}`)
    }
    const entry: LedgerEntry = { ...copy(round, scope), joinedAt: this.byRound.get(round.roundId)?.joinedAt ?? Math.floor(now), contributedAt: Math.floor(now) }
    this.write([...this.entriesList.filter(e => e.roundId !== round.roundId), entry])
  }

  /**
   * Forgets entries whose window ended before `before` (e.g. now − policy.maxWindowAgeMs: windows that old
   * are refused by the policy anyway). Never prune more: a forgotten window could be summed again.
   */
  prune (before: number): number {
    const kept = this.entriesList.filter(e => e.window.to >= before)
    const removed = this.entriesList.length - kept.length
    if (removed > 0) this.write(kept)
    return removed
  }

  private write (entries: LedgerEntry[]): void {
    this.writeFile(this.header, entries)
  }

  private writeFile (header: Omit<LedgerFile, 'version' | 'entries'>, entries: LedgerEntry[]): void {
    const tmp = `${this.file}.${process.pid}.tmp`
    const text = JSON.stringify({ version: LEDGER_VERSION, ...header, entries } satisfies LedgerFile, null, 1) + '\n'
    try {
      const fd = openSync(tmp, 'w', 0o600)
      try {
        writeSync(fd, text)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(tmp, this.file)
      syncDirectory(dirname(this.file))
    } catch (err) {
      throw new LedgerError(`${this.file}: cannot write the contribution ledger: ${(err as Error).message}`, { cause: err })
    }
    // Only once the file holds it does the in-memory view change.
    this.header = header
    this.entriesList = entries
    this.byRound.clear()
    for (const e of entries) this.byRound.set(e.roundId, e)
  }
}

function readAnchor (file: string): z.infer<typeof Anchor> | null {
  if (!existsSync(file)) return null
  let value: unknown
  try {
    value = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new LedgerError(`${file}: cannot read the ledger anchor beside the identity key (${(err as Error).message})`, { cause: err })
  }
  const parsed = Anchor.safeParse(value)
  if (!parsed.success) throw new LedgerError(`${file}: not a ledger anchor (${parsed.error.issues[0].message})`)
  return parsed.data
}

/** A key directory the agent cannot write to stops it (LedgerError): without the anchor a lost ledger goes unnoticed. */
function writeAnchor (file: string, ledger: ContributionLedger): void {
  const text = JSON.stringify({ ledgerId: ledger.ledgerId, createdAt: ledger.createdAt, ledger: ledger.file }) + '\n'
  try {
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, text, { mode: 0o600 })
    renameSync(tmp, file)
  } catch (err) {
    throw new LedgerError(`${file}: cannot write the ledger anchor beside the identity key (${(err as Error).message}); without it a lost state dir would go unnoticed`, { cause: err })
  }
}

/** A monitor's own limits within its scope (its policy): rule 4's cap and the per-window ε budget. */
interface ScopeLimits { maxRoundsPerWindow?: number, maxEpsilonPerWindow?: number }

function copy (round: RoundRecord, scope?: string): Omit<LedgerEntry, 'joinedAt' | 'contributedAt'> {
  return {
    ...(scope !== undefined ? { scope } : {}),
    roundId: round.roundId, window: { from: round.window.from, to: round.window.to }, specHash: round.specHash, reference: round.reference,
    // A refresh's participants are its first round's included set (recorded there as a digest): not kept again.
    participants: round.refresh !== undefined ? [] : [...round.participants],
    ...(round.refresh !== undefined ? { refresh: { ageMs: round.refresh.ageMs, of: round.refresh.of } } : {}),
    ...(round.epsilon !== undefined ? { epsilon: round.epsilon } : {})
  }
}

function sameRound (entry: LedgerEntry, round: RoundRecord): boolean {
  if (entry.window.from !== round.window.from || entry.window.to !== round.window.to || entry.specHash !== round.specHash) return false
  if (round.refresh !== undefined) return entry.refresh?.of === round.refresh.of && entry.refresh.ageMs === round.refresh.ageMs
  return entry.refresh === undefined && entry.participants.length === round.participants.length && entry.participants.every((p, i) => p === round.participants[i])
}

/** Makes the rename itself durable (best effort: some filesystems refuse fsync on a directory). */
function syncDirectory (dir: string): void {
  let fd: number | null = null
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch { /* not supported here */ } finally {
    if (fd !== null) closeSync(fd)
  }
}
