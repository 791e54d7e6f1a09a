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

// Yamux windows come from local config and must match on every node: pin them here.
const YAMUX = { initialStreamWindowSize: 256 * 1024, maxStreamWindowSize: 16 * 1024 * 1024, enableKeepAlive: true, keepAliveInterval: 10_000 }

export async function createFedmonNode (opts: FedmonNodeOptions): Promise<FedmonNode> {
  const n = Math.max(opts.expectedPeers ?? 0, 16)
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(YAMUX)],
    connectionGater: opts.gater,
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
