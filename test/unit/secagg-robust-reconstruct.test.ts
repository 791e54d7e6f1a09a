import '../../shared/polyfill.js'
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { combineSharesVerified, ShamirError, splitSecret, type Share } from '../../shared/crypto/shamir.js'
import { generateX25519KeyPair, isClampedX25519PrivateKey, x25519PublicKey } from '../../shared/crypto/x25519.js'
import { createIdentities, simulateRound, type Identity } from '../../shared/secagg/simulate.js'
import { selfMaskCommitment } from '../../shared/secagg/transcript.js'

/**
 * Robust reconstruction (findings H7-1 / H7-2): secrets are accepted only when they match a commitment, wrong
 * shares are searched around and named, and the commitment travels signed in the key advert.
 */

const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i])

function sharesOf (secret: Uint8Array, t: number, n: number): Share[] {
  const xs = Array.from({ length: n }, (_, i) => 1000 + 7 * i)
  return splitSecret(secret, t, xs).map((share, i) => ({ x: xs[i], share }))
}

test('combineSharesVerified: e wrong shares among m ≥ t + e are found and named, the secret is exact', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 4 }), fc.nat(),
    (secret, t, errors, extra, pick) => {
      const n = t + errors + extra
      const shares = sharesOf(secret, t, n)
      const bad = new Set<number>()
      for (let k = 0; bad.size < errors; k++) bad.add((pick + k) % n)
      for (const i of bad) shares[i].share[4 * ((pick + i) % 11)] ^= 1 + (i % 200) // one field element off
      const outcome = combineSharesVerified(shares, t, s => equal(s, secret), { maxAttempts: 100_000 })
      assert.ok(outcome.ok, 'found')
      assert.deepEqual(outcome.secret, secret)
      if (outcome.attempts > 1) {
        assert.deepEqual(new Set(outcome.inconsistentXs), new Set([...bad].map(i => shares[i].x)))
      }
    }), { numRuns: 150 })
})

test('combineSharesVerified: one wrong share costs at most t + 1 attempts, wherever it is', () => {
  const secret = new Uint8Array(randomBytes(32))
  const t = 10
  for (let badIndex = 0; badIndex <= t; badIndex++) {
    const shares = sharesOf(secret, t, t + 1)
    shares[badIndex].share[0] ^= 0x5a
    const outcome = combineSharesVerified(shares, t, s => equal(s, secret))
    assert.ok(outcome.ok)
    assert.ok(outcome.attempts <= t + 1, `${outcome.attempts} attempts`)
    assert.deepEqual(outcome.inconsistentXs, badIndex < t ? [shares[badIndex].x] : [])
  }
})

test('combineSharesVerified: clean shares verify at the first attempt; too few good shares or the cap give ok: false', () => {
  const secret = new Uint8Array(randomBytes(32))
  const clean = combineSharesVerified(sharesOf(secret, 5, 9), 5, s => equal(s, secret))
  assert.ok(clean.ok)
  assert.equal(clean.attempts, 1)
  assert.deepEqual(clean.inconsistentXs, [])

  const exact = sharesOf(secret, 5, 5)
  exact[2].share[0] ^= 1
  const none = combineSharesVerified(exact, 5, s => equal(s, secret))
  assert.deepEqual(none, { ok: false, attempts: 1, exhausted: true })

  const many = sharesOf(secret, 8, 20)
  for (const i of [0, 1, 2, 3, 4, 5]) many[i].share[0] ^= 1
  const capped = combineSharesVerified(many, 8, s => equal(s, secret), { maxAttempts: 40 })
  assert.deepEqual(capped, { ok: false, attempts: 40, exhausted: false })

  // A malformed share (element outside the field) is set aside and named.
  const malformed = sharesOf(secret, 3, 5)
  malformed[0].share.fill(0xff)
  const outcome = combineSharesVerified(malformed, 3, s => equal(s, secret))
  assert.ok(outcome.ok)
  assert.deepEqual(outcome.inconsistentXs, [malformed[0].x])

  assert.throws(() => combineSharesVerified(exact.slice(0, 4), 5, () => true), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_TOO_FEW')
  assert.throws(() => combineSharesVerified([exact[0], exact[0]], 2, () => true), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_DUPLICATE_X')
})

test('a key rebuilt with only its clamped bits wrong has the same public key: not canonical, so nobody is blamed', () => {
  const { privateKey, publicKey } = generateX25519KeyPair()
  assert.ok(isClampedX25519PrivateKey(privateKey))
  const twin = privateKey.slice()
  twin[0] |= 3
  assert.deepEqual(x25519PublicKey(twin), publicKey)
  assert.ok(!isClampedX25519PrivateKey(twin))
  const shares = sharesOf(twin, 3, 5)
  shares[4].share[8] ^= 1 // a wrong share outside the subset that verifies
  const outcome = combineSharesVerified(shares, 3, s => equal(x25519PublicKey(s), publicKey), { canonical: isClampedX25519PrivateKey })
  assert.ok(outcome.ok)
  assert.deepEqual(outcome.inconsistentXs, [])
})

test('selfMaskCommitment binds the seed, the round and the agent', () => {
  const seed = new Uint8Array(randomBytes(32))
  const c = selfMaskCommitment('r1', 'agent-a', seed)
  assert.equal(c.length, 32)
  assert.deepEqual(selfMaskCommitment('r1', 'agent-a', seed.slice()), c)
  assert.notDeepEqual(selfMaskCommitment('r2', 'agent-a', seed), c)
  assert.notDeepEqual(selfMaskCommitment('r1', 'agent-b', seed), c)
  const other = seed.slice(); other[31] ^= 1
  assert.notDeepEqual(selfMaskCommitment('r1', 'agent-a', other), c)
  assert.throws(() => selfMaskCommitment('r1', 'agent-a', new Uint8Array(31)), TypeError)
})

let ids: { coordinator: Identity, agents: Identity[] }
before(async () => { ids = await createIdentities(8, 202) })

test('the commitment is signed: a swapped bCommit in an advert or a key-set is refused (ERR_BAD_SIGNATURE)', async () => {
  const advert = await simulateRound({
    agents: 8, dim: 32, identities: ids, seed: 301, graph: 'full', threshold: 4, maxEntry: 100,
    intercept: d => d.message.type === 'advertise-keys' && d.from === ids.agents[3].id
      ? [{ ...d, message: { ...d.message, bCommit: new Uint8Array(32).fill(9) } }]
      : [d]
  })
  assert.equal(advert.status, 'done', advert.failure?.message)
  assert.ok(advert.correct)
  assert.ok(advert.rejected.some(r => r.at === 'coordinator' && r.code === 'ERR_BAD_SIGNATURE'))
  assert.ok(!advert.result!.included.includes(ids.agents[3].id), 'agent 3 excluded')

  const keySet = await simulateRound({
    agents: 8, dim: 32, identities: ids, seed: 302, graph: 'full', threshold: 4, maxEntry: 100,
    intercept: d => d.message.type === 'key-set' && d.to === ids.agents[5].id
      ? [{ ...d, message: { ...d.message, keys: d.message.keys.map((k, i) => i === 0 ? { ...k, bCommit: new Uint8Array(32) } : k) } }]
      : [d]
  })
  assert.ok(keySet.rejected.some(r => r.at === ids.agents[5].id && r.code === 'ERR_BAD_SIGNATURE'), JSON.stringify(keySet.rejected))
  assert.ok(keySet.status === 'failed' || keySet.correct)
})
