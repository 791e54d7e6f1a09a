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
 * The scheduler's windows are tumbling ([k·every, (k+1)·every)), so scheduled rounds never conflict; a manual
 * `round run --window` over an already-used window is refused by every agent that contributed to it.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { FedmonError } from '../shared/errors.js'
import { SecAggError } from '../shared/secagg/errors.js'
import { windowsOverlap, type ContributionGuard, type RoundRecord } from '../shared/secagg/policy.js'

export const LEDGER_FILE = 'contributions.json'
const LEDGER_VERSION = 1

export const LedgerEntry = z.strictObject({
  roundId: z.string().min(1).max(128),
  window: z.strictObject({ from: z.number().int(), to: z.number().int() }),
  specHash: z.string().regex(/^[0-9a-f]{64}$/),
  reference: z.boolean(),
  participants: z.array(z.string().min(1).max(128)),
  joinedAt: z.number().int(),
  /** When the masked input was released (recorded just before); null = joined only. */
  contributedAt: z.number().int().nullable()
})
export type LedgerEntry = z.infer<typeof LedgerEntry>

export const LedgerFile = z.strictObject({
  version: z.literal(LEDGER_VERSION),
  entries: z.array(LedgerEntry)
})
export type LedgerFile = z.infer<typeof LedgerFile>

/** The ledger file is unreadable or cannot be written; the agent must not contribute until this is fixed. */
export class LedgerError extends FedmonError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_LEDGER', options)
    this.name = 'LedgerError'
  }
}

const iso = (t: number): string => new Date(t).toISOString()

export class ContributionLedger implements ContributionGuard {
  readonly file: string
  private entriesList: LedgerEntry[]
  private readonly byRound = new Map<string, LedgerEntry>()

  private constructor (file: string, entries: LedgerEntry[]) {
    this.file = file
    this.entriesList = entries
    for (const e of entries) this.byRound.set(e.roundId, e)
  }

  /**
   * Opens (or starts) the ledger in `stateDir`. A corrupt or unreadable file is a LedgerError, never an
   * empty ledger: forgetting what was contributed would re-open the differencing attack.
   */
  static open (stateDir: string): ContributionLedger {
    const file = join(stateDir, LEDGER_FILE)
    if (!existsSync(file)) {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 })
      return new ContributionLedger(file, [])
    }
    let value: unknown
    try {
      value = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new LedgerError(`${file}: cannot read the contribution ledger (${(err as Error).message}); refusing to run without it`, { cause: err })
    }
    const parsed = LedgerFile.safeParse(value)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new LedgerError(`${file}: invalid contribution ledger at ${issue.path.map(String).join('.') || '(file)'}: ${issue.message}`)
    }
    return new ContributionLedger(file, parsed.data.entries)
  }

  entries (): readonly LedgerEntry[] { return this.entriesList }

  hasRound (roundId: string): boolean { return this.byRound.has(roundId) }

  /** Contributed rounds whose window overlaps `window`. */
  overlapping (window: { from: number, to: number }): LedgerEntry[] {
    return this.entriesList.filter(e => e.contributedAt !== null && windowsOverlap(e.window, window))
  }

  /** Throws SecAggError('ERR_POLICY') when the rule above refuses the round. */
  check (round: RoundRecord, allowJoined = false): void {
    const known = this.byRound.get(round.roundId)
    if (known !== undefined && !(allowJoined && known.contributedAt === null && sameRound(known, round))) {
      throw new SecAggError('ERR_POLICY', `round ${round.roundId} was already ${known.contributedAt !== null ? 'contributed to' : 'joined'} at ${iso(known.contributedAt ?? known.joinedAt)} (replayed announce?)`)
    }
    const clash = this.overlapping(round.window).find(e => e.roundId !== round.roundId)
    if (clash !== undefined) {
      throw new SecAggError('ERR_POLICY', `window ${iso(round.window.from)}..${iso(round.window.to)} overlaps ${iso(clash.window.from)}..${iso(clash.window.to)}, already contributed to in round ${clash.roundId}: the same records go into one sum only (differencing)`)
    }
  }

  admit (round: RoundRecord, now: number): void {
    this.check(round)
    this.write([...this.entriesList, { ...copy(round), joinedAt: Math.floor(now), contributedAt: null }])
  }

  contribute (round: RoundRecord, now: number): void {
    this.check(round, true)
    const entry: LedgerEntry = { ...copy(round), joinedAt: this.byRound.get(round.roundId)?.joinedAt ?? Math.floor(now), contributedAt: Math.floor(now) }
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
    const tmp = `${this.file}.${process.pid}.tmp`
    const text = JSON.stringify({ version: LEDGER_VERSION, entries } satisfies LedgerFile, null, 1) + '\n'
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
    this.entriesList = entries
    this.byRound.clear()
    for (const e of entries) this.byRound.set(e.roundId, e)
  }
}

function copy (round: RoundRecord): Omit<LedgerEntry, 'joinedAt' | 'contributedAt'> {
  return { roundId: round.roundId, window: { from: round.window.from, to: round.window.to }, specHash: round.specHash, reference: round.reference, participants: [...round.participants] }
}

function sameRound (entry: LedgerEntry, round: RoundRecord): boolean {
  return entry.window.from === round.window.from && entry.window.to === round.window.to && entry.specHash === round.specHash &&
    entry.participants.length === round.participants.length && entry.participants.every((p, i) => p === round.participants[i])
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
