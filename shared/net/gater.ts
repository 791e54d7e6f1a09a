/**
 * Roster gating. The encrypted-connection hooks run after Noise, so the peer id there is authenticated;
 * a refused peer is dropped before any protocol stream can be opened, and the refusal is logged.
 *
 * Admission alone does not bound what an admitted peer costs: libp2p accepts any number of connections from
 * one peer id (up to the node-wide `maxConnections`), and every stream limit is per connection. So the gater
 * also caps the inbound connections one peer may hold at once (counted from admission to the socket's
 * close, so simultaneous dials are counted too): a roster key that floods connections keeps a few, and the
 * node's other slots stay free for the rest of the roster.
 */
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../log.js'
import { MAX_INBOUND_CONNECTIONS_PER_PEER } from '../wire/protocols.js'

export interface AllowListGaterOptions {
  /** Decides admission by peer id string; called on every connection attempt, so it sees roster changes. */
  isAllowed: (peerId: string) => boolean
  logger?: Logger
  /** Called for every refused peer (metrics, tests). */
  onRefused?: (peerId: string, direction: 'inbound' | 'outbound') => void
  /**
   * Called when an outbound connection finished its encrypted handshake (the remote's peer id is proven) and
   * this side admits it. An agent learns from it that a dial reached the real coordinator, so a connection
   * that then closes at once was refused by the coordinator: the only refusal libp2p lets it see.
   */
  onOutboundEncrypted?: (peerId: string) => void
  /** Inbound connections one peer may hold at once (default MAX_INBOUND_CONNECTIONS_PER_PEER). */
  maxInboundConnectionsPerPeer?: number
  /**
   * Whether this node may dial `addr` (after DNS/dnsaddr resolution, with /p2p appended). The last word on
   * every outbound dial, whichever way the address reached the peer store (Announce, identify); default all.
   */
  allowDial?: (addr: Multiaddr) => boolean
}

export function createAllowListGater (opts: AllowListGaterOptions): ConnectionGater {
  const maxPerPeer = opts.maxInboundConnectionsPerPeer ?? MAX_INBOUND_CONNECTIONS_PER_PEER
  const inbound = new Map<string, Set<MultiaddrConnection>>()
  /** Refusals over the cap per peer since its last log line: a flood must not flood the log too. */
  const overCap = new Map<string, number>()

  const refuse = (peerId: PeerId, direction: 'inbound' | 'outbound'): boolean => {
    const id = peerId.toString()
    if (opts.isAllowed(id)) return false
    opts.logger?.warn({ peer: id, direction }, 'connection refused: peer not on the roster')
    opts.onRefused?.(id, direction)
    return true
  }

  const admitInbound = (peerId: PeerId, maConn: MultiaddrConnection | undefined): boolean => {
    if (refuse(peerId, 'inbound')) return true
    if (maConn === undefined) return false
    const id = peerId.toString()
    const held = inbound.get(id) ?? new Set<MultiaddrConnection>()
    if (held.has(maConn)) return false // the same connection at a later stage of the upgrade
    if (held.size >= maxPerPeer) {
      const n = (overCap.get(id) ?? 0) + 1
      overCap.set(id, n)
      if (n === 1 || n % 100 === 0) opts.logger?.warn({ peer: id, held: held.size, max: maxPerPeer, refusedSoFar: n }, 'connection refused: too many connections from this peer')
      return true
    }
    held.add(maConn)
    inbound.set(id, held)
    maConn.addEventListener('close', () => {
      held.delete(maConn)
      if (held.size === 0 && inbound.get(id) === held) inbound.delete(id)
    }, { once: true })
    if (maConn.status !== 'open') held.delete(maConn) // closed before the listener was in place
    return false
  }

  /** Addresses refused so far (logged once each; forgotten in bulk so a flood of addresses cannot grow it). */
  const refusedDials = new Set<string>()
  const denyDial = (addr: Multiaddr): boolean => {
    if (opts.allowDial === undefined || opts.allowDial(addr)) return false
    const key = addr.toString()
    if (!refusedDials.has(key)) {
      if (refusedDials.size >= 1000) refusedDials.clear()
      refusedDials.add(key)
      opts.logger?.warn({ addr: key }, 'dial refused: address not allowed by the network policy')
    }
    return true
  }

  return {
    denyDialMultiaddr: denyDial,
    denyDialPeer: (peerId) => refuse(peerId, 'outbound'),
    denyInboundEncryptedConnection: (peerId, maConn) => admitInbound(peerId, maConn),
    denyOutboundEncryptedConnection: (peerId) => {
      if (refuse(peerId, 'outbound')) return true
      opts.onOutboundEncrypted?.(peerId.toString())
      return false
    },
    denyInboundUpgradedConnection: (peerId, maConn) => admitInbound(peerId, maConn),
    denyOutboundUpgradedConnection: (peerId) => refuse(peerId, 'outbound')
  }
}
