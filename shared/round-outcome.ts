/** A round as the coordinator keeps it and serves it (`GET /v1/rounds/{id}`): what the store, the API and its clients share. */
import type { Window } from './report.js'

export type RoundKind = 'reference' | 'current'

/** What is kept of every round, finished or not. */
export interface RoundOutcome {
  id: string
  kind: RoundKind
  window: Window
  status: 'running' | 'done' | 'failed' | 'aborted'
  reportId: string | null
  invited: string[]
  included: string[]
  dropped: string[]
  failure: { code: string, message: string } | null
  /**
   * Agents that refused the round and said why (their signed Decline: signature hex over
   * shared/secagg/decline.ts declineBytes, verifiable with the agent's peer id). Absent in rounds stored
   * before declines existed.
   */
  declined?: RoundDecline[]
  startedAt: string
  finishedAt: string | null
  timings: Record<string, number> // phase name → ms
  scheduledWindowKey: string | null // set when the scheduler started it; unique, so a window never runs twice
  /** The monitor the round was for (absent in rounds stored before monitors). */
  monitor?: string
  /** A label-refresh round: its declared age and the report (first version) of the window it refreshes. */
  refresh?: { age: string, ageMs: number, of: string }
}

export interface RoundDecline { agent: string, code: string, reason: string, signature: string }
