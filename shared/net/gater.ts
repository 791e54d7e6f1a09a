/**
 * Roster gating. The encrypted-connection hooks run after Noise, so the peer id there is authenticated;
 * a refused peer is dropped before any protocol stream can be opened, and the refusal is logged.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Logger } from '../log.js'

export interface AllowListGaterOptions {
  /** Decides admission by peer id string; called on every connection attempt, so it sees roster changes. */
  isAllowed: (peerId: string) => boolean
  logger?: Logger
  /** Called for every refused peer (metrics, tests). */
  onRefused?: (peerId: string, direction: 'inbound' | 'outbound') => void
}

export function createAllowListGater (opts: AllowListGaterOptions): ConnectionGater {
  const refuse = (peerId: PeerId, direction: 'inbound' | 'outbound'): boolean => {
    const id = peerId.toString()
    if (opts.isAllowed(id)) return false
    opts.logger?.warn({ peer: id, direction }, 'connection refused: peer not on the roster')
    opts.onRefused?.(id, direction)
    return true
  }
  return {
    denyDialMultiaddr: () => false, // loopback/private addresses are how sites reach each other in tests
    denyDialPeer: (peerId) => refuse(peerId, 'outbound'),
    denyInboundEncryptedConnection: (peerId) => refuse(peerId, 'inbound'),
    denyOutboundEncryptedConnection: (peerId) => refuse(peerId, 'outbound'),
    denyInboundUpgradedConnection: (peerId) => refuse(peerId, 'inbound'),
    denyOutboundUpgradedConnection: (peerId) => refuse(peerId, 'outbound')
  }
}
