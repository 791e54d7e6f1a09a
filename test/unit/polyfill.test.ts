import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'

test('Promise.withResolvers exists after the polyfill and behaves', async () => {
  const { promise, resolve } = Promise.withResolvers<number>()
  resolve(7)
  assert.equal(await promise, 7)
})
