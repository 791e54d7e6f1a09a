import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { combineShares, FIELD_PRIME, ShamirError, splitSecret, type Share } from '../../shared/crypto/shamir.js'

/** n distinct holder xs in [1, 10,000] and a threshold t <= n. */
const layout = fc.integer({ min: 1, max: 40 }).chain(n => fc.record({
  xs: fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: n, maxLength: n }),
  t: fc.integer({ min: 1, max: n }),
  secret: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  pickSeed: fc.integer()
}))

function pick<T> (items: T[], count: number, seed: number): T[] {
  const copy = [...items]
  let s = seed >>> 0
  for (let i = copy.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const j = s % (i + 1);
    [copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy.slice(0, count)
}

test('any t of the n shares reconstruct the secret exactly', () => {
  fc.assert(fc.property(layout, ({ xs, t, secret, pickSeed }) => {
    const shares: Share[] = splitSecret(secret, t, xs).map((share, i) => ({ x: xs[i], share }))
    assert.deepEqual(combineShares(pick(shares, t, pickSeed), t), secret)
  }), { numRuns: 150 })
})

test('t − 1 shares do not reconstruct: refused at threshold t, and interpolating them gives something else', () => {
  fc.assert(fc.property(layout.filter(l => l.t >= 2), ({ xs, t, secret, pickSeed }) => {
    const shares: Share[] = splitSecret(secret, t, xs).map((share, i) => ({ x: xs[i], share }))
    const few = pick(shares, t - 1, pickSeed)
    assert.throws(() => combineShares(few, t), (err: unknown) => err instanceof ShamirError && err.code === 'ERR_SHAMIR_TOO_FEW')
    let guess: Uint8Array | null = null
    try { guess = combineShares(few, t - 1) } catch (err) { assert.ok(err instanceof ShamirError) }
    assert.ok(guess === null || Buffer.compare(guess, secret) !== 0)
  }), { numRuns: 150 })
})

test('zero, duplicate and out-of-field x are rejected', () => {
  const secret = new Uint8Array(32).fill(1)
  assert.throws(() => splitSecret(secret, 2, [1, 0, 3]), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_X')
  assert.throws(() => splitSecret(secret, 2, [1, 2, 2]), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_DUPLICATE_X')
  assert.throws(() => splitSecret(secret, 2, [1, FIELD_PRIME]), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_X')
  const shares = splitSecret(secret, 2, [1, 2, 3])
  assert.throws(() => combineShares([{ x: 1, share: shares[0] }, { x: 1, share: shares[1] }], 2), (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_DUPLICATE_X')
  assert.throws(() => combineShares([{ x: 0, share: shares[0] }, { x: 2, share: shares[1] }], 2), ShamirError)
  assert.throws(() => splitSecret(secret, 4, [1, 2, 3]), ShamirError)
  assert.throws(() => splitSecret(new Uint8Array(31), 1, [1]), ShamirError)
})

test('a corrupted share is detected (chunks out of range) instead of silently giving a wrong secret', () => {
  // Each interpolated chunk lands in range with probability ~2^-2, so a share corrupted in every chunk
  // escapes detection with probability ~2^-30.
  for (let i = 0; i < 50; i++) {
    const secret = new Uint8Array(32).map((_, j) => (i * 31 + j) & 0xff)
    const shares = splitSecret(secret, 3, [1, 2, 3])
    const bad = new Uint8Array(shares[1])
    const view = new DataView(bad.buffer)
    for (let c = 0; c < 11; c++) view.setUint32(4 * c, (view.getUint32(4 * c, true) + ((i * 11 + c + 1) * 2_654_435_761) % FIELD_PRIME) % FIELD_PRIME, true)
    assert.throws(() => combineShares([{ x: 1, share: shares[0] }, { x: 2, share: bad }, { x: 3, share: shares[2] }], 3),
      (e: unknown) => e instanceof ShamirError && e.code === 'ERR_SHAMIR_INCONSISTENT')
  }
})

test('supports 10,000 holders', () => {
  const xs = Array.from({ length: 10_000 }, (_, i) => i + 1)
  const secret = new Uint8Array(32).fill(0xab)
  const shares = splitSecret(secret, 30, xs)
  const chosen = [9999, 5000, 1, 42, 777, 8000, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]
  assert.deepEqual(combineShares(chosen.map(i => ({ x: xs[i], share: shares[i] })), 30), secret)
})
