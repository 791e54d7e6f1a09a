import { z } from 'zod'
import { SecAggError } from './errors.js'

/**
 * Every secure-aggregation protocol message, discriminated on `type`. Sets of participants travel as
 * indexes into the Announce's `participants` list (compact and canonical). Vectors are Uint32Array and
 * byte strings Uint8Array, checked by type and length only: per-element zod parsing of a 100k vector costs
 * milliseconds. Lengths that depend on the round (vector length, set sizes) are checked by the state machines.
 */

export const PROTOCOL_VERSION = 'fedmon-secagg/1'
export const MAX_PARTICIPANTS = 10_000
/** One Shamir share of a 32-byte secret: 11 field elements as little-endian u32 (see shared/crypto/shamir.ts). */
export const SHARE_BYTES = 44
/** A pairwise mask seed (HKDF output; shared/crypto/hkdf.ts deriveKey). */
export const PAIR_SEED_BYTES = 32
/** AES-256-GCM of the b-share ‖ s-share with a 16-byte tag (nonce fixed: each key encrypts one message). */
export const SHARE_CIPHERTEXT_BYTES = 2 * SHARE_BYTES + 16
/** Largest spec document an Announce may carry (the spec request answer has the same 1 MiB bound). */
export const MAX_SPEC_CHARS = 1024 * 1024

// z.custom rather than z.instanceof: the inferred type is Uint8Array<ArrayBufferLike>, which Buffers and
// msgpackr-decoded views satisfy.
const u8 = z.custom<Uint8Array>(v => v instanceof Uint8Array, { message: 'expected bytes (Uint8Array)' })
const u32 = z.custom<Uint32Array>(v => v instanceof Uint32Array, { message: 'expected a Uint32Array' })
const bytes = (length: number, what: string) =>
  u8.refine(b => b.length === length, { message: `${what} must be ${length} bytes` })
const signature = bytes(64, 'signature')
const key32 = (what: string) => bytes(32, what)
const roundId = z.string().min(1).max(128)
const index = z.number().int().min(0).max(MAX_PARTICIPANTS - 1)
const indexSet = z.array(index).max(MAX_PARTICIPANTS)

/**
 * From this many members a broadcast index set travels as a bitmap (toWire), not a list: n/8 bytes instead of
 * ~3 per member (at n = 10,000 the masking set, the survivors and the unmask request's two lists were ~80 KB of
 * every agent's download). As the roster-bitmap Announce (roster-members.ts), which also starts at 1,000, it
 * needs agents that read it; below, the list is sent as before.
 */
export const INDEX_BITMAP_FROM = 1000

/** An index set as received: a list, or a bitmap (bit i set: index i) decoded here to the ascending list. */
const broadcastIndexSet = z.union([
  indexSet,
  u8.refine(b => b.length <= Math.ceil(MAX_PARTICIPANTS / 8), 'an index bitmap longer than MAX_PARTICIPANTS bits').transform(bitsToIndexes)
])

function bitsToIndexes (bits: Uint8Array): number[] {
  const out: number[] = []
  for (let byte = 0; byte < bits.length; byte++) {
    const b = bits[byte]
    if (b === 0) continue
    for (let j = 0; j < 8; j++) if ((b & (1 << j)) !== 0) out.push(8 * byte + j)
  }
  return out
}

function indexesToBits (indexes: readonly number[]): Uint8Array {
  const max = indexes.length === 0 ? -1 : Math.max(...indexes)
  const bits = new Uint8Array(Math.ceil((max + 1) / 8))
  for (const i of indexes) bits[i >> 3] |= 1 << (i & 7)
  return bits
}

export const ParticipantSchema = z.object({
  id: z.string().min(1).max(128),
  addrs: z.array(z.string().max(512)).max(32)
})

export const Announce = z.object({
  type: z.literal('announce'),
  roundId,
  protocol: z.literal(PROTOCOL_VERSION),
  coordinator: z.string().min(1).max(128),
  /** Every participant with its addresses, sorted by peer id — or, in a large round, `members` instead. */
  participants: z.array(ParticipantSchema).min(1).max(MAX_PARTICIPANTS).optional(),
  /**
   * A large round's participants as one bit per member of the federation's roster (sorted by peer id), with the
   * roster's SHA-256 (roster-members.ts): an agent holding that roster rebuilds the list; addresses come with
   * each agent's key set. Signed.
   */
  members: z.object({ roster: z.string().regex(/^[0-9a-f]{64}$/), bits: u8.refine(b => b.length >= 1 && b.length <= Math.ceil(MAX_PARTICIPANTS / 8) * 4, 'members.bits: 1 to 4·MAX_PARTICIPANTS/8 bytes') }).optional(),
  window: z.object({ from: z.number().int(), to: z.number().int() }),
  specHash: z.string().regex(/^[0-9a-f]{64}$/, 'specHash must be 64 lowercase hex digits'),
  vectorLength: z.number().int().min(1).max(2 ** 28),
  maxEntry: z.number().int().min(1).max(2 ** 32 - 1),
  minAgents: z.number().int().min(1),
  threshold: z.number().int().min(1),
  degree: z.number().int().min(1),
  graph: z.enum(['full', 'sparse']),
  phaseTimeoutMs: z.number().int().min(1),
  issuedAt: z.number().int(),
  reference: z.boolean(),
  /**
   * A label-refresh round (issue 11 §2): the window's first round `of`, refreshed at `ageMs` after the window's
   * end. The vector is then the spec's label-dependent sub-layout (shared/stats/label-entries.ts), and an agent
   * reveals only when the survivors are exactly the included set it recorded in that first round. Signed.
   */
  refresh: z.object({ ageMs: z.number().int().positive(), of: roundId }).optional(),
  /**
   * The monitor the round is for (issue 12 §1: many monitors per deployment): the agent reads that monitor's
   * data under its policy and ledger scope. Signed; absent in rounds of coordinators from before monitors.
   */
  monitor: z.string().min(1).max(64).optional(),
  /**
   * Size of the round's consistency committee (params.committeeQuorum, committee.ts): only its members'
   * signatures certify the survivor set. Signed; absent: everyone certifies (rounds of up to 700 participants,
   * and coordinators from before committees).
   */
  committee: z.number().int().min(1).max(MAX_PARTICIPANTS).optional(),
  signature,
  /**
   * Optional: the monitor spec as canonical JSON, so the agent can check it against its policy before
   * joining. Not covered by the signature: the agent checks that it hashes to the signed specHash.
   */
  spec: z.string().min(2).max(MAX_SPEC_CHARS).optional()
})
export type Announce = z.infer<typeof Announce>

export const AdvertiseKeys = z.object({
  type: z.literal('advertise-keys'),
  roundId,
  cPk: key32('cPk'),
  sPk: key32('sPk'),
  /**
   * The agent's commitment to its self-mask seed b_u (transcript.selfMaskCommitment), signed with the keys:
   * the coordinator accepts a reconstructed b_u only when it matches, so a holder's wrong b-share is caught.
   */
  bCommit: key32('bCommit'),
  signature
})
export type AdvertiseKeys = z.infer<typeof AdvertiseKeys>

export const KeySet = z.object({
  type: z.literal('key-set'),
  roundId,
  /** The AdvertiseKeys of the recipient's neighbours that advertised, each still signed by its agent. */
  keys: z.array(z.object({
    index, cPk: key32('cPk'), sPk: key32('sPk'), bCommit: key32('bCommit'), signature,
    /** The neighbour's addresses, when the Announce named participants by `members` (unsigned: Noise proves the peer id on dial). */
    addrs: z.array(z.string().max(512)).max(32).optional()
  })).max(MAX_PARTICIPANTS)
})
export type KeySet = z.infer<typeof KeySet>

export const Shares = z.object({
  type: z.literal('shares'),
  roundId,
  ciphertext: bytes(SHARE_CIPHERTEXT_BYTES, 'ciphertext')
})
export type Shares = z.infer<typeof Shares>

export const ShareReceipt = z.object({
  type: z.literal('share-receipt'),
  roundId,
  /** Neighbours whose shares this agent holds (decrypted and authenticated). */
  holds: indexSet,
  signature
})
export type ShareReceipt = z.infer<typeof ShareReceipt>

export const MaskingSet = z.object({
  type: z.literal('masking-set'),
  roundId,
  /** U2: agents whose shares are held by at least t of their U2 neighbours; agents mask only with these. */
  members: broadcastIndexSet,
  signature
})
export type MaskingSet = z.infer<typeof MaskingSet>

export const MaskedInput = z.object({
  type: z.literal('masked-input'),
  roundId,
  vector: u32
})
export type MaskedInput = z.infer<typeof MaskedInput>

export const Survivors = z.object({
  type: z.literal('survivors'),
  roundId,
  /** U3: agents whose masked input the coordinator holds; each agent signs this set. */
  members: broadcastIndexSet,
  signature
})
export type Survivors = z.infer<typeof Survivors>

export const ConsistencySignature = z.object({
  type: z.literal('consistency-signature'),
  roundId,
  signature
})
export type ConsistencySignature = z.infer<typeof ConsistencySignature>

export const UnmaskRequest = z.object({
  type: z.literal('unmask-request'),
  roundId,
  survivors: broadcastIndexSet,
  dropped: broadcastIndexSet,
  /** Agents' signatures over the survivor set (at least t must verify). */
  signatures: z.array(z.object({ index, signature })).max(MAX_PARTICIPANTS),
  signature
})
export type UnmaskRequest = z.infer<typeof UnmaskRequest>

export const UnmaskShares = z.object({
  type: z.literal('unmask-shares'),
  roundId,
  bOwners: indexSet,
  bShares: u8,
  sOwners: indexSet,
  sShares: u8,
  /**
   * The pairwise mask seeds this agent shares with its dropped neighbours (the ones it masked with), 32 bytes
   * each: what the coordinator would otherwise get from rebuilding each dropped agent's s-key and one X25519
   * agreement per surviving neighbour (the bulk of the unmasking CPU at n = 10,000). Revealed under the same
   * rule as s-shares (dropped in the signed survivor set, consistency quorum checked), and no more than an
   * s-key reveals. Absent from agents predating it: the coordinator then rebuilds the s-key.
   */
  pairOwners: indexSet.optional(),
  pairSeeds: u8.optional()
}).refine(m => m.bShares.length === m.bOwners.length * SHARE_BYTES && m.sShares.length === m.sOwners.length * SHARE_BYTES,
  { message: `share bytes must be ${SHARE_BYTES} per owner` })
  .refine(m => (m.pairSeeds?.length ?? 0) === (m.pairOwners?.length ?? 0) * PAIR_SEED_BYTES,
    { message: `pair seeds must be ${PAIR_SEED_BYTES} bytes per owner` })
export type UnmaskShares = z.infer<typeof UnmaskShares>

export const Abort = z.object({
  type: z.literal('abort'),
  roundId,
  code: z.string().max(64),
  reason: z.string().max(1024),
  signature
})
export type Abort = z.infer<typeof Abort>

/** Longest reason a Decline may carry: the agent's own refusal message, cut to this length before signing. */
export const MAX_DECLINE_REASON_CHARS = 1024

/**
 * Agent → coordinator: this agent leaves the round before contributing, and why (the refusal it logs:
 * policy, ledger, spec check). Signed with the agent's identity key over (round, agent, code, reason)
 * (decline.ts), so the coordinator cannot forge one and another agent cannot speak for it; the reason is
 * printable text only, since operators read it in a terminal.
 */
export const Decline = z.object({
  type: z.literal('decline'),
  roundId,
  code: z.string().regex(/^ERR_[A-Z0-9_]{1,60}$/, 'code must look like ERR_SOMETHING'),
  // eslint-disable-next-line no-control-regex
  reason: z.string().min(1).max(MAX_DECLINE_REASON_CHARS).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'reason must be printable text'),
  signature
})
export type Decline = z.infer<typeof Decline>

export const SecAggMessage = z.discriminatedUnion('type', [
  Announce, AdvertiseKeys, KeySet, Shares, ShareReceipt, MaskingSet, MaskedInput, Survivors,
  ConsistencySignature, UnmaskRequest, UnmaskShares, Abort, Decline
])
export type SecAggMessage = z.infer<typeof SecAggMessage>
export type SecAggMessageType = SecAggMessage['type']

/** Which direction each message type travels; the network layer picks the libp2p protocol id from it. */
export const MESSAGE_ROUTES: Record<SecAggMessageType, 'coordinator->agent' | 'agent->coordinator' | 'agent->agent'> = {
  announce: 'coordinator->agent',
  'advertise-keys': 'agent->coordinator',
  'key-set': 'coordinator->agent',
  shares: 'agent->agent',
  'share-receipt': 'agent->coordinator',
  'masking-set': 'coordinator->agent',
  'masked-input': 'agent->coordinator',
  survivors: 'coordinator->agent',
  'consistency-signature': 'agent->coordinator',
  'unmask-request': 'coordinator->agent',
  'unmask-shares': 'agent->coordinator',
  abort: 'coordinator->agent',
  decline: 'agent->coordinator'
}

/** Validates an untrusted decoded frame; throws SecAggError('ERR_BAD_MESSAGE') naming the field at fault. */
/**
 * The document a message is sent as: the coordinator's broadcast index sets of INDEX_BITMAP_FROM members or
 * more as bitmaps (parseSecAggMessage reads both forms back to the same ascending list, so signatures over the
 * lists are unchanged). Every other message as it is.
 */
export function toWire (message: SecAggMessage): unknown {
  const big = (set: readonly number[]): boolean => set.length >= INDEX_BITMAP_FROM
  switch (message.type) {
    case 'masking-set':
    case 'survivors':
      return big(message.members) ? { ...message, members: indexesToBits(message.members) } : message
    case 'unmask-request':
      return big(message.survivors) || big(message.dropped)
        ? { ...message, survivors: indexesToBits(message.survivors), dropped: indexesToBits(message.dropped) }
        : message
    default:
      return message
  }
}

export function parseSecAggMessage (value: unknown): SecAggMessage {
  const parsed = SecAggMessage.safeParse(value)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const where = issue.path.length > 0 ? issue.path.map(p => String(p)).join('.') : '(message)'
  const type = typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
    ? (value as { type: string }).type.slice(0, 40)
    : '?'
  throw new SecAggError('ERR_BAD_MESSAGE', `bad secagg message (type ${type}): ${where}: ${issue.message}`)
}
