import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair, privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ed25519 as nobleEd25519 } from '@noble/curves/ed25519.js'
import { ed25519Sign, ed25519Verify, signerFromPrivateKey, verifyPeerSignature } from '../../shared/crypto/ed25519.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'
  }
]

test('RFC 8032 §7.1 test vectors 1 and 2', () => {
  for (const v of RFC8032) {
    assert.equal(toHex(ed25519Sign(hex(v.seed), hex(v.msg))), v.sig)
    assert.ok(ed25519Verify(hex(v.pub), hex(v.msg), hex(v.sig)))
    const tampered = hex(v.sig); tampered[0] ^= 1
    assert.equal(ed25519Verify(hex(v.pub), hex(v.msg), tampered), false)
  }
})

test('a libp2p identity key signs; its peer id verifies — interoperable with libp2p and noble', async () => {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const sign = signerFromPrivateKey(key)
  const data = new TextEncoder().encode('fedmon round r-1')
  const ours = sign(data)
  assert.ok(await key.publicKey.verify(data, ours), 'libp2p verifies our signature')
  assert.ok(nobleEd25519.verify(ours, data, key.publicKey.raw), 'noble verifies our signature')
  const theirs = await key.sign(data)
  assert.ok(verifyPeerSignature(id, data, theirs), 'we verify libp2p\'s signature')
  assert.ok(verifyPeerSignature(id, data, ours))
  assert.equal(verifyPeerSignature(id, new TextEncoder().encode('other'), ours), false)
  const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  assert.equal(verifyPeerSignature(other, data, ours), false)
})

test('RFC 8032 key as a libp2p key: raw = seed ‖ public', () => {
  const v = RFC8032[1]
  const key = privateKeyFromRaw(new Uint8Array([...hex(v.seed), ...hex(v.pub)]))
  assert.equal(toHex(signerFromPrivateKey(key)(hex(v.msg))), v.sig)
  assert.ok(verifyPeerSignature(peerIdFromPrivateKey(key).toString(), hex(v.msg), hex(v.sig)))
})

test('malformed peer ids and signatures verify as false, never throw', () => {
  const data = new Uint8Array(3)
  assert.equal(verifyPeerSignature('not-a-peer-id', data, new Uint8Array(64)), false)
  assert.equal(verifyPeerSignature('', data, new Uint8Array(64)), false)
  assert.equal(verifyPeerSignature('12D3KooWGRUVh4dxWzXhBA7yKx1w7Nn4AqSVAWbtsPD3ASr9AGzN', data, new Uint8Array(10)), false)
})
