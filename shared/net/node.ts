/**
 * The one libp2p node factory (the only `createLibp2p` call in fedmon): TCP + Noise + Yamux + identify + ping,
 * a roster gater, and connection-manager limits raised for a coordinator with hundreds of agents
 * (the defaults let ~5 of 100 simultaneous loopback dials through). No @libp2p/pnet (aborts bulk streams).
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { ConnectionGater, Ed25519PrivateKey } from '@libp2p/interface'
import { MAX_STREAMS_PER_CONNECTION } from '../wire/protocols.js'

export interface FedmonNodeOptions {
  privateKey: Ed25519PrivateKey
  listen: string[]
  gater: ConnectionGater
  /** Peers this node expects to hold connections with (roster size); sizes the connection manager. */
  expectedPeers?: number
  dialTimeoutMs?: number
  /**
   * Run identify on every new connection (default true). Agents turn it off: neighbour addresses come
   * signed-over in the Announce, and 19+ identify exchanges per round cost CPU a 2-core host feels.
   * The identify service still answers peers that ask.
   */
  identifyOnConnect?: boolean
}

export type FedmonNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>> }>

// Yamux windows come from local config and must match on every node: pin them here. (Yamux 8 reads them
// from `streamOptions`; at the top level they were ignored, and the defaults, equal today, applied.)
// Streams per connection are capped well below Yamux's 1000: with the per-peer connection cap of the gater
// this bounds the streams, even those still negotiating a protocol, that one peer can hold open here.
const YAMUX = {
  streamOptions: { initialStreamWindowSize: 256 * 1024, maxStreamWindowSize: 16 * 1024 * 1024 },
  maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
  enableKeepAlive: true,
  keepAliveInterval: 10_000
}

export async function createFedmonNode (opts: FedmonNodeOptions): Promise<FedmonNode> {
  const n = Math.max(opts.expectedPeers ?? 0, 16)
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(YAMUX)],
    connectionGater: opts.gater,
    // libp2p pings every connection every 10 s and aborts it when a ping takes longer than an adaptive
    // timeout (5 s at first). A busy host (50 agents on 2 cores in the soak; a site's agent next to a
    // training job) then loses its coordinator and neighbours mid-round. Peers that really vanish are still
    // found within a minute or so; a clean close is seen at once.
    connectionMonitor: { pingInterval: 30_000, pingTimeout: { minTimeout: 30_000, maxTimeout: 120_000 }, abortConnectionOnPingFailure: true },
    connectionManager: {
      maxConnections: n + 100,
      maxIncomingPendingConnections: n + 10,
      inboundConnectionThreshold: n * 10,
      maxParallelDials: Math.max(100, n),
      dialTimeout: opts.dialTimeoutMs ?? 10_000
    },
    services: {
      identify: identify({ runOnConnectionOpen: opts.identifyOnConnect ?? true }),
      ping: ping()
    },
    start: false
  })
  return node as unknown as FedmonNode
}
