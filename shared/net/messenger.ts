/**
 * Secure-aggregation messages over libp2p: one protocol id per message type, one stream per message
 * (dial, write one length-prefixed msgpack frame, close). Inbound frames are size-checked before
 * allocation, decoded, validated with the core's `parseSecAggMessage` and handed on with the sender's
 * authenticated peer id. A bad frame resets the stream and closes that peer's connection; the node keeps serving.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { parseSecAggMessage, toWire, type SecAggMessage } from '../secagg/messages.js'
import { encodeFrame, decodeFrame, WireError } from '../wire/codec.js'
import { secaggProtocol, MAX_INBOUND_STREAMS_PER_PEER, MAX_CONTROL_STREAMS_PER_PEER } from '../wire/protocols.js'
import { readFrame, writeFrame } from './framed.js'
import type { FedmonNode } from './node.js'
import type { Logger } from '../log.js'

export type SecAggMessageType = SecAggMessage['type']

export interface TrafficStats {
  bytesIn: number
  bytesOut: number
  framesIn: number
  framesOut: number
  rejected: number
}

export interface MessengerOptions {
  node: FedmonNode
  logger: Logger
  /** Message types this node accepts (a protocol handler is registered for each). */
  accept: readonly SecAggMessageType[]
  /** Largest frame accepted for a type, checked against the length prefix before reading the body. */
  frameLimit: (type: SecAggMessageType) => number
  /** Called with every validated message and its authenticated sender. Throwing logs and drops the message. */
  onMessage: (from: string, message: SecAggMessage) => void
  /** Test-only observation of raw inbound frames (see FEDMON_TEST_DUMP_FRAMES in the coordinator). */
  onRawFrame?: (from: string, protocol: string, frame: Uint8Array) => void
  /** Per-frame read timeout once a stream is open. */
  readTimeoutMs?: number
  /** Concurrent inbound streams allowed per protocol per connection. */
  maxStreams?: number
  /**
   * Concurrent inbound streams one peer may have in flight, all protocols and connections together; a
   * function gives each peer its own budget (an agent's coordinator more than its neighbours).
   */
  maxStreamsPerPeer?: number | ((peer: string) => number)
  /**
   * Whether `from` may send messages of `type` at all. A refused stream is reset before a byte of it is
   * read and the peer's connection closed (an agent takes coordinator messages from its coordinator only).
   */
  acceptFrom?: (type: SecAggMessageType, from: string) => boolean
  /** Which of a peer's announced addresses may go into the peer store (and so be dialled); default all. */
  filterAddrs?: (peer: string, addrs: string[]) => string[]
}

/**
 * Counts what each remote peer has in flight and refuses what is over its budget. libp2p's stream limits are
 * per connection and per protocol; this one is per peer, so more connections or more protocols do not
 * multiply what a peer can make this node buffer. Refusals are logged once per burst, not per stream.
 */
class PeerBudget {
  private readonly inFlight = new Map<string, number>()
  private readonly refused = new Map<string, number>()
  private readonly max: (peer: string) => number
  constructor (max: number | ((peer: string) => number), private readonly logger: Logger, private readonly what: string) {
    this.max = typeof max === 'number' ? () => max : max
  }

  /** Takes one slot for `peer`, or returns false (and logs the first and every 100th refusal). */
  take (peer: string, protocol: string): boolean {
    const n = this.inFlight.get(peer) ?? 0
    const max = this.max(peer)
    if (n >= max) {
      const r = (this.refused.get(peer) ?? 0) + 1
      this.refused.set(peer, r)
      if (r === 1 || r % 100 === 0) this.logger.warn({ peer, protocol, inFlight: n, max, refusedSoFar: r }, `stream refused: too many ${this.what} streams from this peer`)
      return false
    }
    this.inFlight.set(peer, n + 1)
    return true
  }

  give (peer: string): void {
    const n = (this.inFlight.get(peer) ?? 1) - 1
    if (n <= 0) {
      this.inFlight.delete(peer)
      this.refused.delete(peer)
    } else this.inFlight.set(peer, n)
  }
}

/** The one-byte frame a receiver sends back once a message is read and valid. */
const ACK = Uint8Array.from([1])

export class SecAggMessenger {
  readonly stats: TrafficStats = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, rejected: 0 }
  private readonly opts: MessengerOptions
  private started = false
  private readonly knownAddrs = new Map<string, string>()
  /** Refused senders (acceptFrom) → refusals since their first: logged once, then every 100th. */
  private readonly wrongSenders = new Map<string, number>()

  constructor (opts: MessengerOptions) {
    this.opts = opts
  }

  async start (): Promise<void> {
    const maxStreams = this.opts.maxStreams ?? 256
    const budget = new PeerBudget(this.opts.maxStreamsPerPeer ?? MAX_INBOUND_STREAMS_PER_PEER, this.opts.logger, 'secagg')
    for (const type of this.opts.accept) {
      const protocol = secaggProtocol(type)
      await this.opts.node.handle(protocol, async (stream, connection) => {
        const from = connection.remotePeer.toString()
        if (this.opts.acceptFrom !== undefined && !this.opts.acceptFrom(type, from)) {
          this.refuseSender(from, protocol, stream, connection)
          return
        }
        if (!budget.take(from, protocol)) {
          this.stats.rejected++
          stream.abort(new WireError('too many streams from this peer', 'ERR_TOO_MANY_STREAMS'))
          return
        }
        try {
          await this.receive(type, protocol, stream, connection)
        } finally {
          budget.give(from)
        }
      }, { maxInboundStreams: maxStreams, maxOutboundStreams: maxStreams })
    }
    this.started = true
  }

  /** A peer opened a protocol it may not send on: reset unread, connection closed, logged once per burst. */
  private refuseSender (from: string, protocol: string, stream: Stream, connection: Connection): void {
    this.stats.rejected++
    const n = (this.wrongSenders.get(from) ?? 0) + 1
    if (this.wrongSenders.size > 10_000) this.wrongSenders.clear()
    this.wrongSenders.set(from, n)
    if (n === 1 || n % 100 === 0) this.opts.logger.warn({ peer: from, protocol, refusedSoFar: n }, 'stream refused: this peer may not send this message type; peer disconnected')
    const err = new WireError(`${protocol} is not accepted from ${from}`, 'ERR_WRONG_SENDER')
    stream.abort(err)
    connection.abort(err)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    for (const type of this.opts.accept) await this.opts.node.unhandle(secaggProtocol(type)).catch(() => {})
  }

  /**
   * Sends one message to `to`. `addrs` (multiaddrs without /p2p), those `filterAddrs` allows, are added to
   * the peer store first, so agents can reach neighbours they have never met.
   */
  async send (to: string, message: SecAggMessage, opts: { signal?: AbortSignal, addrs?: string[], attempts?: number, attemptTimeoutMs?: number } = {}): Promise<void> {
    const peer = peerIdFromString(to)
    if (opts.addrs !== undefined && opts.addrs.length > 0 && this.opts.node.getConnections(peer).length === 0) {
      const key = opts.addrs.join(' ')
      if (this.knownAddrs.get(to) !== key) { // peer-store writes are not free: once per address set
        const allowed = this.opts.filterAddrs !== undefined ? this.opts.filterAddrs(to, opts.addrs) : opts.addrs
        const multiaddrs = allowed.flatMap((a) => {
          try { return [multiaddr(a)] } catch { return [] }
        })
        if (multiaddrs.length > 0) await this.opts.node.peerStore.merge(peer, { multiaddrs })
        if (this.knownAddrs.size > 10_000) this.knownAddrs.clear()
        this.knownAddrs.set(to, key)
      }
    }
    const frame = encodeFrame(toWire(message))
    const protocol = secaggProtocol(message.type)
    const attempts = Math.max(1, opts.attempts ?? 2)
    for (let attempt = 1; ; attempt++) {
      const attemptSignal = opts.attemptTimeoutMs !== undefined
        ? (opts.signal !== undefined ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.attemptTimeoutMs)]) : AbortSignal.timeout(opts.attemptTimeoutMs))
        : opts.signal
      try {
        await this.sendOnce(peer, protocol, frame, attemptSignal)
        return
      } catch (err) {
        if (opts.signal?.aborted === true || attempt >= attempts) throw err
        // A dial refused a moment too early, a stream reset, a missing acknowledgement: try again.
        await new Promise(resolve => setTimeout(resolve, 100 * attempt))
      }
    }
  }

  private async sendOnce (peer: ReturnType<typeof peerIdFromString>, protocol: string, frame: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
    const stream = await this.opts.node.dialProtocol(peer, protocol, { signal })
    try {
      await writeFrame(stream, frame, { signal })
      // The receiver acknowledges once it has the whole frame and it validated: only then is it delivered
      // (a closed write end only means the bytes left this process).
      const ack = await readFrame(stream, { maxLength: 16, signal })
      if (ack.length !== 1 || ack[0] !== ACK[0]) throw new WireError('bad acknowledgement', 'ERR_BAD_ACK')
      await stream.close({ signal })
      this.stats.bytesOut += frame.byteLength
      this.stats.framesOut++
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  private async receive (type: SecAggMessageType, protocol: string, stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    let frame: Uint8Array
    let message: SecAggMessage
    try {
      frame = await readFrame(stream, { maxLength: this.opts.frameLimit(type), signal: AbortSignal.timeout(this.opts.readTimeoutMs ?? 30_000) })
      this.stats.bytesIn += frame.byteLength
      this.opts.onRawFrame?.(from, protocol, frame)
      message = parseSecAggMessage(decodeFrame(frame))
      if (message.type !== type) throw new WireError(`a ${message.type} message on the ${type} protocol`, 'ERR_WRONG_PROTOCOL')
    } catch (err) {
      this.reject(from, protocol, err, stream, connection)
      return
    }
    this.stats.framesIn++
    // Hand the message on first (the ack is not on the protocol's critical path), then acknowledge.
    try {
      this.opts.onMessage(from, message)
    } catch (err) {
      // A state machine refusing a well-formed message (wrong round, duplicate...) is not a transport fault.
      this.opts.logger.warn({ peer: from, type, code: (err as { code?: string }).code, err: (err as Error).message }, 'message refused')
    }
    try {
      await writeFrame(stream, ACK, { signal: AbortSignal.timeout(5_000) })
      await stream.close({ signal: AbortSignal.timeout(5_000) })
    } catch {
      stream.abort(new WireError('cannot acknowledge', 'ERR_ACK'))
    }
  }

  private reject (from: string, protocol: string, err: unknown, stream: Stream, connection: Connection): void {
    const e = err as Error & { code?: string }
    if (e.code === 'ERR_READ' || e.code === 'ERR_TIMEOUT') {
      // The sender went away or gave up (stream reset, too slow): not a protocol violation. (An early EOF
      // is: honest senders write whole frames, and lpStream reports a read-buffer overflow as EOF too.)
      this.opts.logger.info({ peer: from, protocol, code: e.code, err: e.message }, 'incomplete frame: stream dropped')
      stream.abort(e)
      return
    }
    this.stats.rejected++
    this.opts.logger.warn({ peer: from, protocol, code: e.code, err: e.message }, 'bad frame: stream reset, peer disconnected')
    stream.abort(e instanceof Error ? e : new Error(String(e)))
    // A peer that sends garbage loses its connection; a roster member may reconnect and try again.
    connection.abort(new WireError(`bad frame from ${from}`, e.code ?? 'ERR_BAD_FRAME'))
  }
}

/** Sends a one-shot control frame (hello) on `protocol`. */
export async function sendControl (node: FedmonNode, to: string, protocol: string, value: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const stream = await node.dialProtocol(peerIdFromString(to), protocol, { signal: opts.signal })
  try {
    await writeFrame(stream, encodeFrame(value), { signal: opts.signal })
    await stream.close({ signal: opts.signal })
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** Request/response on `protocol`: one frame each way. */
export async function requestControl (node: FedmonNode, to: string, protocol: string, value: unknown, opts: { signal?: AbortSignal, maxLength: number }): Promise<unknown> {
  const stream = await node.dialProtocol(peerIdFromString(to), protocol, { signal: opts.signal })
  try {
    await writeFrame(stream, encodeFrame(value), { signal: opts.signal })
    const response = decodeFrame(await readFrame(stream, { maxLength: opts.maxLength, signal: opts.signal }))
    await stream.close({ signal: opts.signal })
    return response
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/**
 * Serves a control protocol: reads one frame, passes it (decoded) to `handle`, writes the answer if any.
 * The whole exchange, writing the answer included, must end within `timeoutMs`: a peer that stops reading
 * holds at most its answer, for at most that long, on at most `maxStreamsPerPeer` streams.
 */
export async function handleControl (node: FedmonNode, protocol: string, opts: {
  logger: Logger
  maxLength: number
  timeoutMs?: number
  /** Concurrent requests per connection (libp2p's `maxInboundStreams`), default 8. */
  maxStreams?: number
  /** Concurrent requests per peer over all its connections, default MAX_CONTROL_STREAMS_PER_PEER. */
  maxStreamsPerPeer?: number
  /** `connection` is the request's: its `remoteAddr` is where the peer connected from. */
  handle: (from: string, value: unknown, connection: Connection) => Promise<unknown | undefined> | unknown | undefined
}): Promise<void> {
  const budget = new PeerBudget(opts.maxStreamsPerPeer ?? MAX_CONTROL_STREAMS_PER_PEER, opts.logger, protocol)
  const maxStreams = opts.maxStreams ?? 8
  await node.handle(protocol, async (stream, connection) => {
    const from = connection.remotePeer.toString()
    if (!budget.take(from, protocol)) {
      stream.abort(new WireError('too many requests from this peer', 'ERR_TOO_MANY_STREAMS'))
      return
    }
    const signal = AbortSignal.timeout(opts.timeoutMs ?? 30_000)
    try {
      const value = decodeFrame(await readFrame(stream, { maxLength: opts.maxLength, signal }))
      const answer = await opts.handle(from, value, connection)
      if (answer !== undefined) await writeFrame(stream, encodeFrame(answer), { signal })
      await stream.close({ signal })
    } catch (err) {
      const e = err as Error & { code?: string }
      // (a timeout's DOMException has a numeric `code`: log its name instead)
      opts.logger.warn({ peer: from, protocol, code: typeof e.code === 'string' ? e.code : e.name, err: e.message }, 'control request refused')
      stream.abort(e)
      if (e instanceof WireError && e.code !== 'ERR_TIMEOUT' && e.code !== 'ERR_READ') connection.abort(e)
    } finally {
      budget.give(from)
    }
  }, { maxInboundStreams: maxStreams, maxOutboundStreams: maxStreams })
}
