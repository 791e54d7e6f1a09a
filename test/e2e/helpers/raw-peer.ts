/**
 * An adversarial libp2p peer for network-fault tests: a real fedmon node (`createFedmonNode`, same transport,
 * Noise and Yamux settings as the daemons) holding a given key file, with raw stream operations the honest
 * code never does — extra connections to the same peer, streams opened and left silent, partial frames,
 * writes with no reads, resets. Used in-process, or from `raw-peer-child.ts` when the test must SIGKILL it.
 */
import '../../../shared/polyfill.js'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { loadIdentity } from '../../../shared/identity.js'
import { createFedmonNode, type FedmonNode } from '../../../shared/net/node.js'
import { createAllowListGater } from '../../../shared/net/gater.js'
import { varint, writeFrame } from '../../../shared/net/framed.js'
import { createLogger } from '../../../shared/log.js'

export { varint }

/** The bytes of a frame cut after `fraction` of its body: the whole length prefix, part of the body. */
export function partialFrame (body: Uint8Array, fraction: number): Uint8Array {
  const prefix = varint(body.byteLength)
  const cut = Math.floor(body.byteLength * fraction)
  const out = new Uint8Array(prefix.byteLength + cut)
  out.set(prefix, 0)
  out.set(body.subarray(0, cut), prefix.byteLength)
  return out
}

export interface RawPeerOptions {
  /** Identity key file (`fedmon keygen` format): a roster member's key makes this peer an insider. */
  keyFile: string
  /** The target's multiaddr including /p2p/<peer id>. */
  target: string
}

export class RawPeer {
  readonly node: FedmonNode
  readonly targetAddr: Multiaddr
  readonly targetPeer: PeerId
  readonly peerId: string

  private constructor (node: FedmonNode, target: string, peerId: string) {
    this.node = node
    this.targetAddr = multiaddr(target)
    const id = this.targetAddr.getComponents().find(c => c.name === 'p2p')?.value ?? null
    if (id === null) throw new Error(`target ${target} has no /p2p/ peer id`)
    this.targetPeer = peerIdFromString(id)
    this.peerId = peerId
  }

  static async start (opts: RawPeerOptions): Promise<RawPeer> {
    const identity = loadIdentity(opts.keyFile)
    const node = await createFedmonNode({
      privateKey: identity.privateKey,
      listen: [], // dials only
      gater: createAllowListGater({ isAllowed: () => true, logger: createLogger('raw-peer', 'silent') }),
      expectedPeers: 4096, // the flooder's own connection manager must not be what limits it
      identifyOnConnect: false
    })
    await node.start()
    return new RawPeer(node, opts.target, identity.peerId)
  }

  /** The open connections to the target. */
  connections (): Connection[] {
    return this.node.getConnections(this.targetPeer)
  }

  /** Dials the target; `fresh` forces a new connection even when one is open (what a flood does). */
  async connect (opts: { fresh?: boolean, signal?: AbortSignal } = {}): Promise<Connection> {
    return await this.node.dial(this.targetAddr, { force: opts.fresh === true, signal: opts.signal ?? AbortSignal.timeout(15_000) })
  }

  /** Opens a stream on `protocol` over any open connection to the target (dialling one if needed). */
  async open (protocol: string, opts: { signal?: AbortSignal } = {}): Promise<Stream> {
    const connection = this.connections().find(c => c.status === 'open') ?? await this.connect()
    return await RawPeer.openOn(connection, protocol, opts)
  }

  /**
   * Opens a stream on `protocol` over `connection`, past the dialler's own per-protocol limit: the point is
   * to find the listener's limits.
   */
  static async openOn (connection: Connection, protocol: string, opts: { signal?: AbortSignal } = {}): Promise<Stream> {
    return await connection.newStream(protocol, { signal: opts.signal ?? AbortSignal.timeout(10_000), maxOutboundStreams: 1_000_000 })
  }

  /**
   * Starts `count` nodes holding the same key: libp2p joins concurrent dials to one peer into one, so a
   * flood of simultaneous connections needs several dialling nodes (as several processes would be).
   */
  static async startMany (count: number, opts: RawPeerOptions): Promise<RawPeer[]> {
    return await Promise.all(Array.from({ length: count }, async () => await RawPeer.start(opts)))
  }

  /** Writes a whole length-prefixed frame (as an honest sender would), not waiting for any answer. */
  async writeFrame (stream: Stream, body: Uint8Array, signal?: AbortSignal): Promise<void> {
    await writeFrame(stream, body, { signal: signal ?? AbortSignal.timeout(10_000) })
  }

  /** Writes raw bytes, ignoring backpressure (the stream's own buffer takes them). */
  sendRaw (stream: Stream, bytes: Uint8Array): void {
    stream.send(bytes)
  }

  /** Resets a stream: an abrupt end, as from a crashed peer. (A peer that never reads simply never reads.) */
  static reset (stream: Stream): void {
    stream.abort(new Error('reset by the raw peer'))
  }

  /** Closes every connection and stops the node. */
  async stop (): Promise<void> {
    await this.node.stop()
  }
}
