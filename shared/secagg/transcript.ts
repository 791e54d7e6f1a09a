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

export const advertBytes = (roundId: string, cPk: Uint8Array, sPk: Uint8Array): Uint8Array => encode('advertise-keys', roundId, [hex(cPk), hex(sPk)])
export const receiptBytes = (roundId: string, holds: readonly number[]): Uint8Array => encode('share-receipt', roundId, [holds])
export const maskingSetBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('masking-set', roundId, [members])
export const survivorsBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('survivors', roundId, [members])
/** What every agent signs in the consistency check: the survivor set U3. */
export const consistencyBytes = (roundId: string, members: readonly number[]): Uint8Array => encode('consistency', roundId, [members])
export const unmaskRequestBytes = (roundId: string, survivors: readonly number[], dropped: readonly number[]): Uint8Array =>
  encode('unmask-request', roundId, [survivors, dropped])
export const abortBytes = (roundId: string, code: string, reason: string): Uint8Array => encode('abort', roundId, [code, reason])
