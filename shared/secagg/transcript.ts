import { createHash } from 'node:crypto'
import { SecAggError } from './errors.js'
import { PROTOCOL_VERSION, type Announce } from './messages.js'
import { memberCount } from './roster-members.js'

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
    a.coordinator, ...participantsPart(a), a.window.from, a.window.to, a.specHash,
    a.vectorLength, a.maxEntry, a.minAgents, a.threshold, a.degree, a.graph, a.phaseTimeoutMs, a.issuedAt, a.reference,
    // A refresh round's terms; absent, the bytes are those of every first round before refreshes existed.
    ...(a.refresh !== undefined ? ['refresh', a.refresh.ageMs, a.refresh.of] : []),
    // The round's monitor, likewise appended only when present.
    ...(a.monitor !== undefined ? ['monitor', a.monitor] : []),
    // The consistency committee's size, likewise.
    ...(a.committee !== undefined ? ['committee', a.committee] : [])
  ])
}

/**
 * What the Announce's signature binds of its participants: the digest and length of the full list, or (a large
 * round, roster-members.ts) the roster's digest, the member bitmap's SHA-256 and its member count.
 */
function participantsPart (a: Pick<Announce, 'roundId' | 'participants' | 'members'>): Array<string | number> {
  if (a.participants !== undefined) return [hex(participantsDigest(a.roundId, a.participants)), a.participants.length]
  if (a.members === undefined) throw new SecAggError('ERR_BAD_MESSAGE', 'an announce names no participants')
  return ['members', a.members.roster, hex(new Uint8Array(createHash('sha256').update(a.members.bits).digest())), memberCount(a.members.bits)]
}

/**
 * SHA-256 of the participant list (ids and addresses, in order), built in one binary buffer: the Announce's
 * signature covers this digest rather than a JSON text of the whole list (at n = 10,000 that text was ~1 MB per
 * agent). Every string is length-prefixed (u32 count of UTF-8 bytes), every addrs list count-prefixed, so the
 * encoding is injective and the digest binds the exact list (SHA-256 collision resistance).
 */
export function participantsDigest (roundId: string, participants: ReadonlyArray<{ id: string, addrs: readonly string[] }>): Uint8Array {
  let size = 4
  for (const p of participants) {
    size += 8 + 3 * p.id.length
    for (const addr of p.addrs) size += 4 + 3 * addr.length
  }
  const buffer = Buffer.allocUnsafe(size)
  let offset = 0
  const putString = (s: string): void => {
    const length = buffer.write(s, offset + 4, 'utf8')
    buffer.writeUInt32LE(length, offset)
    offset += 4 + length
  }
  buffer.writeUInt32LE(participants.length, offset); offset += 4
  for (const p of participants) {
    putString(p.id)
    buffer.writeUInt32LE(p.addrs.length, offset); offset += 4
    for (const addr of p.addrs) putString(addr)
  }
  return new Uint8Array(createHash('sha256').update(encode('participants', roundId, [])).update(buffer.subarray(0, offset)).digest())
}

/**
 * SHA-256 of a set of participant indexes (ascending, as on the wire) under a purpose tag: the u32
 * little-endian indexes after a self-delimiting JSON prefix [protocol, tag, round id, count]. Equal digests
 * mean equal sets (collision resistance), so signing the digest is as binding as signing the list — without
 * a text of the whole set per signature (at n = 10,000 a survivor set is ~35 KB of JSON).
 */
export function indexSetDigest (tag: string, roundId: string, members: readonly number[]): Uint8Array {
  // u32 encoding is injective only on integers in range (the wire schema allows nothing else; checked here too,
  // since the sans-IO state machines can be handed objects that never went through it).
  for (const i of members) {
    if (!Number.isInteger(i) || i < 0 || i > 0xffffffff) throw new SecAggError('ERR_BAD_MESSAGE', `${tag} set: ${String(i)} is not a participant index`)
  }
  const indexes = Uint32Array.from(members)
  return new Uint8Array(createHash('sha256')
    .update(encode(`${tag}-set`, roundId, [members.length]))
    .update(new Uint8Array(indexes.buffer, indexes.byteOffset, indexes.byteLength))
    .digest())
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
export const maskingSetBytes = (roundId: string, members: readonly number[]): Uint8Array =>
  encode('masking-set', roundId, [hex(indexSetDigest('masking', roundId, members))])
export const survivorsBytes = (roundId: string, members: readonly number[]): Uint8Array =>
  encode('survivors', roundId, [hex(indexSetDigest('survivors', roundId, members))])

/**
 * What every agent signs in the consistency check: the digest of the survivor set U3 it was sent (and checked
 * against its own masking set), not the list itself. Soundness is unchanged: an honest agent computes the digest
 * itself from the set it received, signs one digest per round, and a signature on H counts only for the set
 * whose digest is H — two different sets with one digest would be a SHA-256 collision. So "q signatures on
 * consistencyBytes(r, S)" still means "q participants signed S", and the quorum argument (params.consistencyQuorum)
 * holds as before. Each signature now covers ~120 bytes: verifying the quorum is O(q) small verifications.
 */
export const consistencyBytes = (roundId: string, members: readonly number[]): Uint8Array => consistencyDigestBytes(roundId, survivorSetDigest(roundId, members))
/** The survivor-set digest agents sign (indexSetDigest under the 'consistency' tag). */
export const survivorSetDigest = (roundId: string, members: readonly number[]): Uint8Array => indexSetDigest('consistency', roundId, members)
/** consistencyBytes from an already computed survivorSetDigest (the server and agents compute it once per set). */
export const consistencyDigestBytes = (roundId: string, digest: Uint8Array): Uint8Array => encode('consistency', roundId, [hex(digest)])
export const unmaskRequestBytes = (roundId: string, survivors: readonly number[], dropped: readonly number[]): Uint8Array =>
  encode('unmask-request', roundId, [hex(indexSetDigest('unmask-survivors', roundId, survivors)), hex(indexSetDigest('unmask-dropped', roundId, dropped))])
export const abortBytes = (roundId: string, code: string, reason: string): Uint8Array => encode('abort', roundId, [code, reason])
