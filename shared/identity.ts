/**
 * Node identities: a libp2p Ed25519 private key in protobuf encoding (68 bytes, mode 0600) per daemon.
 * The same key signs secure-aggregation messages; signatures go through node:crypto (≈15× noble's speed).
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PrivateKey } from '@libp2p/interface'
import { FedmonError } from './errors.js'

export class IdentityError extends FedmonError {
  constructor (message: string, code = 'ERR_IDENTITY') {
    super(message, code)
    this.name = 'IdentityError'
  }
}

export interface Identity {
  privateKey: Ed25519PrivateKey
  peerId: string
}

function toIdentity (privateKey: Ed25519PrivateKey): Identity {
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
}

/** Generates a fresh Ed25519 identity. */
export async function generateIdentity (): Promise<Identity> {
  return toIdentity(await generateKeyPair('Ed25519'))
}

/** Writes the key in libp2p protobuf encoding, mode 0600; refuses to overwrite unless `force`. */
export function writeIdentity (file: string, identity: Identity, opts: { force?: boolean } = {}): void {
  if (existsSync(file) && opts.force !== true) throw new IdentityError(`${file}: already exists (use --force to overwrite)`, 'ERR_EXISTS')
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, privateKeyToProtobuf(identity.privateKey), { mode: 0o600 })
  chmodSync(file, 0o600) // mode in writeFileSync is ignored when the file already existed
}

/** Reads a key written by `writeIdentity` / `fedmon keygen`. */
export function loadIdentity (file: string): Identity {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(file)
  } catch (err) {
    throw new IdentityError(`${file}: cannot read identity key (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new IdentityError(`${file}: not a libp2p private key (${(err as Error).message})`)
  }
  if (key.type !== 'Ed25519') throw new IdentityError(`${file}: identity key must be Ed25519, found ${key.type}`)
  return toIdentity(key)
}

/** Loads the identity, creating it first if the file is missing (`created` tells the caller to print the id). */
export async function loadOrCreateIdentity (file: string): Promise<Identity & { created: boolean }> {
  if (existsSync(file)) return { ...loadIdentity(file), created: false }
  const identity = await generateIdentity()
  writeIdentity(file, identity)
  return { ...identity, created: true }
}

// PKCS#8 / SPKI DER prefixes for raw Ed25519 keys (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])

function concat (a: Uint8Array, b: Uint8Array): Buffer {
  return Buffer.concat([a, b])
}

/** A synchronous ed25519 signer over the identity key (signatures verify with the peer id's public key). */
export function createSigner (privateKey: Ed25519PrivateKey): (data: Uint8Array) => Uint8Array {
  const seed = privateKey.raw.subarray(0, 32) // raw is seed ‖ public
  const key = createPrivateKey({ key: concat(PKCS8_PREFIX, seed), format: 'der', type: 'pkcs8' })
  return (data) => new Uint8Array(nodeSign(null, data, key))
}

/** A verifier taking the public key from an Ed25519 peer id string; unknown/invalid ids verify false. */
export function createVerifier (): (peerId: string, data: Uint8Array, sig: Uint8Array) => boolean {
  const cache = new Map<string, KeyObject | null>()
  const keyFor = (peerId: string): KeyObject | null => {
    let key = cache.get(peerId)
    if (key !== undefined) return key
    key = null
    try {
      const pub = peerIdFromString(peerId).publicKey
      if (pub?.type === 'Ed25519') key = createPublicKey({ key: concat(SPKI_PREFIX, pub.raw), format: 'der', type: 'spki' })
    } catch { /* not a peer id: stays null */ }
    if (cache.size > 10_000) cache.clear()
    cache.set(peerId, key)
    return key
  }
  return (peerId, data, sig) => {
    const key = keyFor(peerId)
    if (key === null || sig.length !== 64) return false
    try {
      return nodeVerify(null, data, key, sig)
    } catch {
      return false
    }
  }
}

/** True when `s` parses as a libp2p peer id. */
export function isPeerIdString (s: string): boolean {
  try {
    peerIdFromString(s)
    return true
  } catch {
    return false
  }
}
