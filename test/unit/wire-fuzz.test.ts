import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeFrame, decodeFrame, WireError } from '../../shared/wire/codec.js'
import { parseSecAggMessage } from '../../shared/secagg/messages.js'
import { SecAggError } from '../../shared/secagg/errors.js'

/** What the messenger does with every inbound frame: only typed errors may escape. */
function accept (bytes: Uint8Array): 'ok' | 'rejected' {
  try {
    parseSecAggMessage(decodeFrame(bytes))
    return 'ok'
  } catch (err) {
    if (err instanceof WireError || err instanceof SecAggError) return 'rejected'
    throw err
  }
}

test('random bytes are rejected with WireError or SecAggError, never anything else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => { accept(bytes) }), { numRuns: 3000 })
})

test('mutated valid frames are either still valid messages or rejected with a typed error', () => {
  const base = encodeFrame({ type: 'masked-input', roundId: 'round-1', vector: Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) })
  fc.assert(fc.property(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(base.length), (at, value, cut) => {
    const mutated = Uint8Array.from(base)
    mutated[at] = value
    accept(mutated)
    accept(mutated.subarray(0, cut))
  }), { numRuns: 3000 })
})

test('arbitrary JSON-like documents never crash validation', () => {
  fc.assert(fc.property(fc.anything({ maxDepth: 3 }), (value) => {
    let bytes: Uint8Array
    try { bytes = encodeFrame(value) } catch { return } // not encodable: nothing to send
    assert.ok(['ok', 'rejected'].includes(accept(bytes)))
  }), { numRuns: 1000 })
})
