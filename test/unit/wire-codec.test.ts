import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeFrame, decodeFrame, WireError } from '../../shared/wire/codec.js'
import { frameLimitFor, vectorFrameLimit, secaggProtocol, SMALL_FRAME_LIMIT } from '../../shared/wire/protocols.js'
import { parseSecAggMessage, SHARE_CIPHERTEXT_BYTES } from '../../shared/secagg/messages.js'

test('a masked-input frame round-trips its Uint32Array exactly and validates', () => {
  const vector = new Uint32Array(50_000)
  for (let i = 0; i < vector.length; i++) vector[i] = (i * 2654435761) >>> 0
  const frame = encodeFrame({ type: 'masked-input', roundId: 'r1', vector })
  assert.ok(frame.byteLength <= vectorFrameLimit(vector.length))
  const message = parseSecAggMessage(decodeFrame(frame))
  assert.equal(message.type, 'masked-input')
  assert.ok(message.type === 'masked-input' && message.vector instanceof Uint32Array)
  assert.deepEqual(message.type === 'masked-input' ? Array.from(message.vector.subarray(0, 5)) : [], Array.from(vector.subarray(0, 5)))
  assert.equal(message.type === 'masked-input' ? message.vector.length : 0, vector.length)
})

test('byte strings round-trip as Uint8Array', () => {
  const ciphertext = new Uint8Array(SHARE_CIPHERTEXT_BYTES).fill(7)
  const message = parseSecAggMessage(decodeFrame(encodeFrame({ type: 'shares', roundId: 'r', ciphertext })))
  assert.ok(message.type === 'shares' && message.ciphertext instanceof Uint8Array && message.ciphertext.length === SHARE_CIPHERTEXT_BYTES)
})

test('garbage and trailing bytes are refused with WireError', () => {
  assert.throws(() => decodeFrame(Uint8Array.from([0x92, 0x01])), (err: unknown) => err instanceof WireError && err.code === 'ERR_BAD_FRAME')
  const two = new Uint8Array([...encodeFrame({ a: 1 }), ...encodeFrame({ b: 2 })])
  assert.throws(() => decodeFrame(two), WireError)
  assert.throws(() => decodeFrame(new Uint8Array(0)), WireError)
})

test('a well-formed frame of the wrong shape fails schema validation', () => {
  assert.throws(() => parseSecAggMessage(decodeFrame(encodeFrame({ type: 'masked-input', roundId: 'r', vector: [1, 2, 3] }))), /masked-input|vector/)
  assert.throws(() => parseSecAggMessage(decodeFrame(encodeFrame({ type: 'nope', roundId: 'r' }))))
})

test('frame limits: vector frames sized from the vector length, key frames small', () => {
  assert.equal(frameLimitFor('masked-input', 1000), vectorFrameLimit(1000))
  assert.ok(vectorFrameLimit(1000) >= 4000)
  assert.equal(frameLimitFor('shares', 1000), SMALL_FRAME_LIMIT)
  assert.equal(secaggProtocol('shares'), '/fedmon/secagg/1.0.0/shares')
})
