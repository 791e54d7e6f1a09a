import type { SecAggMessage } from './messages.js'

/** One message to hand to the network layer; `to` is a libp2p peer id string. */
export interface Outgoing { to: string, message: SecAggMessage }

/** A round participant: its libp2p peer id string (12D3Koo...) and the multiaddrs agents dial each other on. */
export interface Participant { id: string, addrs: string[] }

/** ed25519 signature with the node's libp2p identity key. */
export type Sign = (data: Uint8Array) => Uint8Array

/** ed25519 verification; the public key is taken from the peer id. */
export type Verify = (peerId: string, data: Uint8Array, sig: Uint8Array) => boolean

export type GraphKind = 'full' | 'sparse'
