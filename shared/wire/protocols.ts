/**
 * Protocol ids and per-exchange frame limits. One libp2p protocol per message type
 * (`/fedmon/secagg/1.0.0/<type>`), plus the two control exchanges (hello, spec).
 */
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
 * The frame limit per secagg message type: vector-carrying messages get the announced vector size plus
 * slack, key/signature messages a few KiB, set-carrying ones room for the largest roster.
 */
export function frameLimitFor (type: string, vectorLength: number | null): number {
  switch (type) {
    case 'masked-input': return vectorLength !== null ? vectorFrameLimit(vectorLength) : CONTROL_FRAME_LIMIT
    case 'advertise-keys':
    case 'shares':
    case 'consistency-signature':
      return SMALL_FRAME_LIMIT
    default: return CONTROL_FRAME_LIMIT
  }
}
