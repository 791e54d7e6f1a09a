import { createHash } from 'node:crypto'
import { PROTOCOL_VERSION, type Announce } from './messages.js'

/**
 * The exact bytes each signature covers: a JSON array of [protocol, purpose tag, round id, fields...] built
 * field by field (never from a decoded object, whose key order an attacker controls), byte strings as hex.
 * The tag makes a signature for one purpose useless for any other.
 */

const encoder = new TextEncoder()
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function encode (tag: string, roundId: string, fields: unknown[]): Uint8Array {
  return encoder.encode(JSON.stringify([PROTOCOL_VERSION, tag, roundId, ...fields]))
}

export function announceBytes (a: Omit<Announce, 'signature' | 'type'>): Uint8Array {
  return encode('announce', a.roundId, [
    a.coordinator, a.participants.map(p => [p.id, p.addrs]), a.window.from, a.window.to, a.specHash,
    a.vectorLength, a.maxEntry, a.minAgents, a.threshold, a.degree, a.graph, a.phaseTimeoutMs, a.issuedAt, a.reference
  ])
}

/**
 * What an agent signs when it advertises its keys. `bCommit` (its self-mask commitment) is part of every real
 * advert; without it the bytes differ, so an advert signed with a commitment never verifies without it.
 */
export const advertBytes = (roundId: string, cPk: Uint8Array, sPk: Uint8Array, bCommit?: Uint8Array): Uint8Array =>
  encode('advertise-keys', roundId, bCommit === undefined ? [hex(cPk), hex(sPk)] : [hex(cPk), hex(sPk), hex(bCommit)])

/**
 * The commitment to a self-mask seed b_u: SHA-256(JSON [protocol, 'self-mask-commitment', round id, agent id] ‖ b_u).
 * The JSON prefix is self-delimiting and b_u is 32 uniform bytes, so the commitment binds and hides; the round
 * and agent ids keep one agent's commitment from standing for another agent or round.
 */
export function selfMaskCommitment (roundId: string, agentId: string, seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('self-mask seed must be 32 bytes')
  return new Uint8Array(createHash('sha256').update(encode('self-mask-commitment', roundId, [agentId])).update(seed).digest())
}
export const receiptBytes = (roundId: string, holds: readonly number[]): Uint8Array => encode('share-receipt', roundId, [holds])
export const maskingSetBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('masking-set', roundId, [members])
export const survivorsBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('survivors', roundId, [members])
/** What every agent signs in the consistency check: the survivor set U3. */
export const consistencyBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('consistency', roundId, [members])
export const unmaskRequestBytes = (roundId: string, survivors: readonly number[], dropped: readonly number[]): Uint8Array =>
  encode('unmask-request', roundId, [survivors, dropped])
export const abortBytes = (roundId: string, code: string, reason: string): Uint8Array => encode('abort', roundId, [code, reason])
