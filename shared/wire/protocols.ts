/**
 * Protocol ids and per-exchange frame limits. One libp2p protocol per message type
 * (`/fedmon/secagg/1.0.0/<type>`), plus the two control exchanges (hello, spec).
 */
import { MAX_PARTICIPANTS, MAX_SPEC_CHARS, SHARE_BYTES, SHARE_CIPHERTEXT_BYTES } from '../secagg/messages.js'

export const SECAGG_PROTOCOL_PREFIX = '/fedmon/secagg/1.0.0/'
/** agent → coordinator on connect: the agent's listen addresses (so the coordinator can announce them). */
export const HELLO_PROTOCOL = '/fedmon/hello/1.0.0'
/** agent → coordinator request/response: the monitor spec document of the current spec hash. */
export const SPEC_PROTOCOL = '/fedmon/spec/1.0.0'

export function secaggProtocol (type: string): string {
  return `${SECAGG_PROTOCOL_PREFIX}${type}`
}

/** Frames that are not a vector are small; this bounds them (announce with 1000s of participants fits). */
export const CONTROL_FRAME_LIMIT = 8 * 1024 * 1024

/** Slack over the vector bytes for the envelope (round id, signatures, msgpack headers). */
export const VECTOR_FRAME_SLACK = 64 * 1024

/** The largest frame accepted for a message that carries a vector of `vectorLength` u32 entries. */
export function vectorFrameLimit (vectorLength: number): number {
  return vectorLength * 4 + VECTOR_FRAME_SLACK
}

/** Write-buffer high-water mark: a sender waits while more than this is queued on a stream. */
export const WRITE_HIGH_WATER_MARK = 1024 * 1024

/** Frames that carry only keys, signatures or one encrypted share pair. */
export const SMALL_FRAME_LIMIT = 16 * 1024

/**
 * A share receipt holds at most MAX_PARTICIPANTS indexes (≤ 5 msgpack bytes each) and a signature; unmask
 * shares at most one 44-byte share per neighbour, with its index. Deriving these from the schema rather than
 * using CONTROL_FRAME_LIMIT matters: every byte of an announced frame may be buffered while it arrives, so
 * the limit times the open streams is what one peer can make the receiver hold.
 */
export const RECEIPT_FRAME_LIMIT = MAX_PARTICIPANTS * 5 + 4 * 1024
export const UNMASK_SHARES_FRAME_LIMIT = MAX_PARTICIPANTS * (5 + SHARE_BYTES) + 4 * 1024

// Resource limits per remote peer. libp2p's own limits are per connection (streams per protocol) or per
// node (connections); a roster member could multiply them by opening many connections. An honest peer
// holds one connection and has a few streams in flight; these leave room for retries and reconnects.
/** Inbound connections one peer may hold at once (enforced by the gater, shared/net/gater.ts). */
export const MAX_INBOUND_CONNECTIONS_PER_PEER = 4
/** Secure-aggregation streams one peer may have in flight at once towards a node, all protocols together. */
export const MAX_INBOUND_STREAMS_PER_PEER = 16
/**
 * The same towards an agent from a peer other than its coordinator: a neighbour sends one `shares` message a
 * round (a retry may overlap the first attempt's stream while it is still being read).
 */
export const MAX_NEIGHBOUR_STREAMS_PER_PEER = 4
/** Concurrent inbound streams per secagg protocol per connection (libp2p's `maxInboundStreams`). */
export const MAX_INBOUND_STREAMS_PER_PROTOCOL = 8
/** Concurrent requests one peer may have open on one control protocol (hello, spec). */
export const MAX_CONTROL_STREAMS_PER_PEER = 4
/** Yamux streams per connection, including those still negotiating a protocol (Yamux's default is 1000). */
export const MAX_STREAMS_PER_CONNECTION = 256

/**
 * The frame limit per secagg message type: vector-carrying messages get the announced vector size plus
 * slack, key/signature messages a few KiB, set-carrying ones room for the largest roster.
 */
export function frameLimitFor (type: string, vectorLength: number | null): number {
  switch (type) {
    case 'masked-input': return vectorLength !== null ? vectorFrameLimit(vectorLength) : CONTROL_FRAME_LIMIT
    case 'advertise-keys':
    case 'shares':
    case 'consistency-signature':
    case 'decline': // a code, ≤ 1024 characters of reason (≤ 3 KiB UTF-8) and a signature
      return SMALL_FRAME_LIMIT
    case 'share-receipt': return RECEIPT_FRAME_LIMIT
    case 'unmask-shares': return UNMASK_SHARES_FRAME_LIMIT
    default: return CONTROL_FRAME_LIMIT
  }
}

/**
 * What every message carries besides its payload: the type, a round id (at most 128 UTF-16 units, so at most
 * 384 bytes of UTF-8), a signature (66 bytes with its header), field names and msgpack headers.
 */
const ENVELOPE_BYTES = 1024
/** A `shares` message: one AEAD ciphertext of a b-share and an s-share, and the envelope. */
export const SHARES_FRAME_LIMIT = SHARE_CIPHERTEXT_BYTES + ENVELOPE_BYTES
/**
 * At most this many of an agent's hello addresses are announced, and at most this many characters of them
 * together (shared/net/dial-policy.ts selectAnnouncedAddrs), so an Announce fits the agents' frame limit.
 */
export const MAX_ANNOUNCED_ADDRS = 8
export const MAX_ANNOUNCED_ADDR_CHARS = 512
/**
 * One participant of an Announce: a peer id (at most 128 characters; peer ids are ASCII), and the addresses
 * the coordinator keeps from its hello (at most MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_ADDR_CHARS ASCII characters
 * together), with their msgpack headers and field names.
 */
export const ANNOUNCE_PARTICIPANT_BYTES = 128 + MAX_ANNOUNCED_ADDR_CHARS + 3 * MAX_ANNOUNCED_ADDRS + 64
/** The Announce besides its participants: the spec (≤ 1 Mi characters, ≤ 3 bytes each in UTF-8) and the rest. */
export const ANNOUNCE_FIXED_BYTES = 3 * MAX_SPEC_CHARS + 4 * ENVELOPE_BYTES
/**
 * One entry of a key set: index, three 32-byte values, a signature, field names and headers — and, after a
 * roster-bitmap Announce, the neighbour's addresses (as an Announce participant's).
 */
const KEY_SET_ENTRY_BYTES = 5 + 3 * 34 + 66 + 48 + MAX_ANNOUNCED_ADDR_CHARS + 3 * MAX_ANNOUNCED_ADDRS + 16
/** One index of a participant set (≤ MAX_PARTICIPANTS: at most 3 bytes in msgpack; 5 for any int). */
const INDEX_BYTES = 5
/** One entry of an unmask request's signatures: index, signature, field names and a map header. */
const SIGNATURE_ENTRY_BYTES = INDEX_BYTES + 66 + 24

/**
 * The frame limit per secagg message type on an agent, for rounds of at most `maxParticipants` (the size of
 * the agent's own roster, or MAX_PARTICIPANTS when it trusts the coordinator's). Coordinator → agent types
 * are accepted from the coordinator only (agent/daemon.ts); a neighbour can send nothing but `shares`, and no
 * more than a share pair's worth. Sizes derive from the schemas in shared/secagg/messages.ts, so the largest
 * honest message of each type fits (test/unit/net-agent-limits.test.ts builds them).
 */
export function agentFrameLimitFor (type: string, maxParticipants: number): number {
  const n = Math.max(1, Math.min(maxParticipants, MAX_PARTICIPANTS))
  switch (type) {
    case 'shares': return SHARES_FRAME_LIMIT
    case 'announce': return ANNOUNCE_FIXED_BYTES + n * ANNOUNCE_PARTICIPANT_BYTES
    case 'key-set': return ENVELOPE_BYTES + n * KEY_SET_ENTRY_BYTES
    case 'masking-set':
    case 'survivors': return ENVELOPE_BYTES + n * INDEX_BYTES
    // survivors and dropped are each at most n indexes (disjoint in an honest request, but not assumed)
    case 'unmask-request': return ENVELOPE_BYTES + n * (2 * INDEX_BYTES + SIGNATURE_ENTRY_BYTES)
    case 'abort': return SMALL_FRAME_LIMIT // a code, ≤ 1024 characters of reason (≤ 3 KiB UTF-8), a signature
    default: return SMALL_FRAME_LIMIT
  }
}
