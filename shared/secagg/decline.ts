import { MAX_DECLINE_REASON_CHARS, PROTOCOL_VERSION, type Decline } from './messages.js'
import type { Sign } from './types.js'

/**
 * A Decline: the signed note an agent sends the coordinator when it refuses a round, so the operator learns
 * why the round lacks agents instead of seeing silence. Only refusals decided by the agent's own rules are
 * declined (policy, contribution ledger, spec check, overflow); never after its masked input has left.
 */

/** Refusal codes an agent explains to the coordinator. Other failures (timeouts, aborts) are not declines. */
export const DECLINABLE_CODES: ReadonlySet<string> = new Set(['ERR_POLICY', 'ERR_OVERFLOW', 'ERR_BAD_MESSAGE', 'ERR_REFRESH_SET_MISMATCH'])
/**
 * The one refusal an agent still declines after its masked input left: a label-refresh round whose masking or
 * survivor set is not the included set it recorded in the window's first round. It signs nothing and reveals no
 * share, so the masked input it sent can never be unmasked; the decline tells the operator why.
 */
export const REFRESH_SET_MISMATCH = 'ERR_REFRESH_SET_MISMATCH'

const encoder = new TextEncoder()

/**
 * The bytes an agent signs for a Decline: the transcript encoding (a JSON array built field by field, with
 * the protocol and a purpose tag of its own), binding the round, the declining agent, the code and the reason.
 */
export function declineBytes (roundId: string, agentId: string, code: string, reason: string): Uint8Array {
  return encoder.encode(JSON.stringify([PROTOCOL_VERSION, 'decline', roundId, agentId, code, reason]))
}

/** `text` cut to at most `max` characters, an ellipsis marking the cut. */
export function truncateReason (text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** A reason fit for the wire: control characters become spaces, cut to MAX_DECLINE_REASON_CHARS, never empty. */
export function declineReason (text: string): string {
  // eslint-disable-next-line no-control-regex
  const printable = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim()
  return printable.length > 0 ? truncateReason(printable, MAX_DECLINE_REASON_CHARS) : 'no reason given'
}

/** Builds and signs a Decline of `roundId` by `agentId` (the signer's own peer id). */
export function signDecline (sign: Sign, roundId: string, agentId: string, code: string, reason: string): Decline {
  const text = declineReason(reason)
  return { type: 'decline', roundId, code, reason: text, signature: sign(declineBytes(roundId, agentId, code, text)) }
}
