// Webhook deliveries (issue 14): signed with HMAC-SHA256 over the exact body (X-Fedmon-Signature-256, as GitHub's
// X-Hub-Signature-256) when the webhook has a secret, a `resolved` notification when an alert stops firing, and
// a generic send(payload) for other events. Verified by a real HTTP server on loopback.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAlertEvaluator, WebhookNotifier, loadWebhookTargets, WEBHOOK_SIGNATURE_HEADER } from '../../coordinator/alerts.js'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'
import { ConfigError } from '../../shared/errors.js'
import { makeReport } from './product-fixtures.js'

const quiet = { info () {}, warn () {}, error () {} }
const SECRET = 'a-webhook-secret-of-some-length'
const dir = mkdtempSync(join(tmpdir(), 'fedmon-webhooks-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

interface Delivery { raw: Buffer, body: any, headers: IncomingMessage['headers'] }

async function receiver (): Promise<{ url: string, got: Delivery[], close: () => Promise<void> }> {
  const got: Delivery[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      got.push({ raw, body: JSON.parse(raw.toString('utf8')), headers: req.headers })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hook`, got, close: async () => await new Promise<void>(resolve => server.close(() => resolve())) }
}

/** What a receiver does: recompute the HMAC over the raw body and compare in constant time. */
function verify (secret: string, raw: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`)
  const given = Buffer.from(header)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

test('a webhook with a secret gets X-Fedmon-Signature-256 = sha256=HMAC(secret, body); one without gets none', async (t) => {
  const signed = await receiver()
  const plain = await receiver()
  t.after(signed.close)
  t.after(plain.close)
  const notifier = new WebhookNotifier({ targets: [{ url: signed.url, secret: SECRET }, { url: plain.url }], logger: quiet })
  const report = makeReport({ id: 'rep-1', auc: 0.6 })
  notifier.notify(report, createAlertEvaluator([{ metric: 'auc', below: 0.7 }]).evaluate(report, null))
  await notifier.drain()
  assert.equal(WEBHOOK_SIGNATURE_HEADER, 'x-fedmon-signature-256')
  assert.equal(signed.got.length, 1)
  const d = signed.got[0]
  assert.ok(verify(SECRET, d.raw, d.headers[WEBHOOK_SIGNATURE_HEADER]), `signature ${String(d.headers[WEBHOOK_SIGNATURE_HEADER])} verifies`)
  assert.ok(!verify('another-secret-of-some-length', d.raw, d.headers[WEBHOOK_SIGNATURE_HEADER]), 'another secret does not verify')
  assert.equal(d.headers['x-fedmon-event'], 'fedmon.alerts')
  assert.match(String(d.headers['x-fedmon-delivery']), /^[0-9a-f-]{36}$/)
  assert.equal(plain.got.length, 1)
  assert.equal(plain.got[0].headers[WEBHOOK_SIGNATURE_HEADER], undefined)
  await notifier.stop()
})

test('an alert that stops firing sends one `resolved` notification; a still-firing one does not resolve', async (t) => {
  const rx = await receiver()
  t.after(rx.close)
  const notifier = new WebhookNotifier({ targets: [{ url: rx.url, secret: SECRET }], logger: quiet })
  const evaluator = createAlertEvaluator([{ metric: 'auc', below: 0.7 }, { metric: 'drift.*.psi', above: 0.25 }])
  const deliver = async (report: ReturnType<typeof makeReport>): Promise<void> => {
    notifier.notify(report, evaluator.evaluate(report, null))
    await notifier.drain()
  }
  await deliver(makeReport({ id: 'r1', auc: 0.6, psi: { income: 0.3 } })) // both fire
  await deliver(makeReport({ id: 'r2', auc: 0.8, psi: { income: 0.3 } })) // auc resolves, drift still fires
  await deliver(makeReport({ id: 'r3', auc: 0.8, psi: { income: 0.1 } })) // drift resolves
  await deliver(makeReport({ id: 'r4', auc: 0.8, psi: { income: 0.1 } })) // nothing fired, nothing to resolve
  assert.deepEqual(rx.got.map(d => d.body.type), ['fedmon.alerts', 'fedmon.alerts', 'fedmon.alerts.resolved', 'fedmon.alerts.resolved'])
  const resolvedAuc = rx.got[2].body
  assert.equal(resolvedAuc.report.id, 'r2')
  assert.deepEqual(resolvedAuc.resolved.map((a: { metric: string }) => a.metric), ['performance.auc.value'])
  assert.equal(resolvedAuc.resolved[0].rule, 'auc below 0.7')
  assert.equal(resolvedAuc.resolved[0].value, 0.8)
  assert.match(resolvedAuc.text, /resolved/)
  assert.deepEqual(rx.got[3].body.resolved.map((a: { metric: string }) => a.metric), ['drift.features.income.psi'])
  for (const d of rx.got) assert.ok(verify(SECRET, d.raw, d.headers[WEBHOOK_SIGNATURE_HEADER]))
  await notifier.stop()
})

test('send(payload): any event, signed the same way (e.g. a scheduled round that failed)', async (t) => {
  const rx = await receiver()
  t.after(rx.close)
  const notifier = new WebhookNotifier({ targets: [{ url: rx.url, secret: SECRET }], logger: quiet })
  notifier.send({ type: 'fedmon.test', text: 'hello', extra: { n: 1 } })
  await notifier.drain()
  assert.deepEqual(rx.got[0].body, { type: 'fedmon.test', text: 'hello', extra: { n: 1 } })
  assert.equal(rx.got[0].headers['x-fedmon-event'], 'fedmon.test')
  assert.ok(verify(SECRET, rx.got[0].raw, rx.got[0].headers[WEBHOOK_SIGNATURE_HEADER]))
  await notifier.stop()
})

test('config: a webhook is a URL or { url, secretFile | secretEnv }; the secret stays out of the YAML', () => {
  writeFileSync(join(dir, 'hook.secret'), `${SECRET}\n`)
  writeFileSync(join(dir, 'short.secret'), 'short\n')
  const base = { identity: './id.key', agents: ['12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'], spec: './spec.yaml', store: './store.db' }
  const configFile = (name: string, webhooks: unknown): string => {
    const file = join(dir, name)
    writeFileSync(file, JSON.stringify({ ...base, webhooks }))
    return file
  }
  const good = configFile('good.json', ['http://127.0.0.1:1/a', { url: 'http://127.0.0.1:1/b', secretFile: 'hook.secret' }, { url: 'http://127.0.0.1:1/c', secretEnv: 'FEDMON_TEST_HOOK' }])
  const config = loadCoordinatorConfig(good)
  const targets = loadWebhookTargets(config.file, config.webhooks, { FEDMON_TEST_HOOK: 'from-the-environment-16+' })
  assert.deepEqual(targets, [{ url: 'http://127.0.0.1:1/a' }, { url: 'http://127.0.0.1:1/b', secret: SECRET }, { url: 'http://127.0.0.1:1/c', secret: 'from-the-environment-16+' }])
  const fails = (webhooks: unknown, env: Record<string, string>, field: string, message: RegExp): void => {
    const file = configFile('bad.json', webhooks)
    assert.throws(() => loadWebhookTargets(file, loadCoordinatorConfig(file).webhooks, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.field, field)
      assert.match(err.message, message)
      return true
    })
  }
  fails([{ url: 'http://127.0.0.1:1/c', secretEnv: 'FEDMON_TEST_UNSET' }], {}, 'webhooks[0].secretEnv', /FEDMON_TEST_UNSET is not set/)
  fails([{ url: 'http://127.0.0.1:1/c', secretFile: 'missing.secret' }], {}, 'webhooks[0].secretFile', /file not found/)
  fails([{ url: 'http://127.0.0.1:1/c', secretFile: 'short.secret' }], {}, 'webhooks[0].secretFile', /at least 16 characters/)
  const both = configFile('both.json', [{ url: 'http://127.0.0.1:1/c', secretFile: 'hook.secret', secretEnv: 'X' }])
  assert.throws(() => loadCoordinatorConfig(both), /webhooks\[0\].*one of secretFile, secretEnv/)
})
