/**
 * Interfaces between the coordinator's parts, so each can be built and tested alone:
 * store (SQLite), scheduler, alerts, metrics, the round runner (libp2p + secagg server) and the HTTP API.
 */
import type { Report, Alert } from '../shared/report.js'

// The round record every client reads lives in shared/ (shared/api-client.ts uses it; design §8 layering).
export type { RoundKind, RoundOutcome, RoundDecline } from '../shared/round-outcome.js'
import type { RoundKind, RoundOutcome } from '../shared/round-outcome.js'

/** What a finished round commits together with its report (one transaction: all of it or none). */
export interface ReportCommitExtras {
  /** A reference round's summed vector: stored and made the current reference. */
  reference?: { specHash: string, vector: Uint32Array }
  /** Agents whose data is in the report (their last included round). */
  included?: string[]
  /** The round's summed vector, kept (not made the reference) so a label refresh can rebuild the report. */
  sum?: { specHash: string, vector: Uint32Array }
}

export interface AgentSeen { peerId: string, lastSeen: string | null, lastIncludedRound: string | null }

/** coordinator/store.ts implements this over better-sqlite3 (WAL, versioned migrations). */
export interface ReportStore {
  saveRound (round: RoundOutcome): void // insert or update by id
  getRound (id: string): RoundOutcome | null
  listRounds (opts?: { last?: number }): RoundOutcome[]
  /**
   * Saves a finished report and marks its round done — with `extras` (reference vector made current, the
   * included agents) — in one transaction, so a crash leaves either all of it or none.
   */
  saveReport (report: Report, round: RoundOutcome, extras?: ReportCommitExtras): void
  getReport (id: string): Report | null
  latestReport (opts?: { kind?: RoundKind | 'any' }): Report | null
  listReports (opts?: { last?: number, kind?: RoundKind | 'any' }): Report[] // newest last
  /** The baseline: the raw summed vector of a reference round (needed to compute drift), stored by saveReport. */
  getReferenceVector (reportId: string): { specHash: string, vector: Uint32Array } | null
  setCurrentReference (reportId: string): void
  currentReference (): { reportId: string, setAt: string } | null
  hasScheduledWindow (key: string): boolean
  touchAgent (peerId: string, at: string): void
  agents (): AgentSeen[]
  close (): void
}

export interface AlertRule {
  metric: string // dotted path into the report, `*` matches one level (e.g. drift.features.*.psi)
  below?: number
  above?: number
  dropFromReference?: number
  minSamples?: number
  /** Evaluate on one segment cell (`{region: north}`) or on every published cell (`"*"`) instead of the overall figures. */
  segment?: Record<string, string>
  segments?: '*'
}

/** coordinator/alerts.ts: pure evaluation; webhooks are delivered in the background (retried, never blocking). */
export interface AlertEvaluator {
  evaluate (report: Report, reference: Report | null): Alert[]
}

export interface ScheduleConfig { every: string, delay: string } // durations like "1h", "15m"
