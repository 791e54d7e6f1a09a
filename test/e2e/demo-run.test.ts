// `fedmon demo` itself, shortened with --rows: it must exit 0 with the report on stdout and leave nothing
// running; with --keep the federation stays up for `fedmon status` until we kill it.
import '../../shared/polyfill.js'
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from './helpers/processes.js'

const root = mkdtempSync(join(tmpdir(), 'fedmon-demo-test-'))
const kept: number[] = []

after(() => {
  for (const pid of kept) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  rmSync(root, { recursive: true, force: true })
})

function apiOf (stderr: string): string {
  const m = /API (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)
  assert.ok(m !== null, `the demo names its API: ${stderr}`)
  return m[1]
}

async function reachable (api: string): Promise<boolean> {
  try {
    return (await fetch(`${api}/healthz`, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

// The two runs are independent (own dirs, free ports) and mostly wait on processes: run them side by side.
describe('fedmon demo', { concurrency: 3 }, () => {
  test('fedmon demo runs a reference and a current round, prints the report, stops everything, exits 0', async () => {
    const dir = join(root, 'run')
    const r = await runCli(['demo', '--dir', dir, '--rows', '1000'], { timeoutMs: 120_000, env: { NO_COLOR: '1' } })
    assert.equal(r.code, 0, `demo failed:\n${r.stderr}`)
    assert.match(r.stdout, /credit-default-v3/)
    assert.match(r.stdout, /AUC/)
    assert.match(r.stdout, /income/)
    assert.match(r.stderr, /reference round: 2,500 records from 5 sites/)
    assert.match(r.stderr, /current round: 2,500 records, \d+ % labelled so far: AUC estimated \d\.\d{3} \(CBPE\)/)
    assert.match(r.stderr, /late labels arrived; label refresh at 1d: 9\d % labelled, realised AUC \d\.\d{3}/)
    assert.match(r.stdout, /version    2: label refresh at 1d/)
    assert.match(r.stderr, /stopped the federation/)
    assert.doesNotMatch(r.stderr, /\n\s+at /)
    assert.equal(await reachable(apiOf(r.stderr)), false, 'the coordinator is gone')
    for (const f of ['coordinator.yaml', 'spec.yaml', 'site-a.yaml', 'keys/site-e.key', 'logs/coordinator.log']) assert.ok(existsSync(join(dir, f)), f)
  })

  test('fedmon demo --dp: agents add their own noise, the report states ε, δ and error bars beside the exact figures', async () => {
    const dir = join(root, 'dp')
    const r = await runCli(['demo', '--dp', '1', '--dir', dir, '--rows', '2000'], { timeoutMs: 120_000, env: { NO_COLOR: '1' } })
    assert.equal(r.code, 0, `demo failed:\n${r.stderr}`)
    assert.match(r.stdout, /differential privacy \(ε = 1, δ = 0\.000001 per round; noise σ [\d.]+ per count, ±\d+ at 95 %\)/)
    assert.match(r.stdout, /AUC \(ROC\) +\d\.\d{4} +\[\d\.\d{4}, \d\.\d{4}\] \(95 % CI\)/)
    assert.match(r.stdout, /records in window +[\d,]+ ±\d+/)
    // The exact figures (pooled files) beside the published ones: the exact AUC lies well inside the published
    // interval (doubled here, so noise alone makes this fail with negligible probability).
    const m = /\n  AUC +(\d\.\d+) +(\d\.\d+) +\[(\d\.\d+), (\d\.\d+)\] 95 % CI/.exec(r.stdout)
    assert.ok(m !== null, r.stdout)
    const [exact, lower, upper] = [Number(m[1]), Number(m[3]), Number(m[4])]
    const width = upper - lower
    assert.ok(exact >= lower - width && exact <= upper + width, `exact ${exact} far outside [${lower}, ${upper}]`)
    assert.match(r.stdout, /records +5,000 +[\d,]+ +±\d+/)
    assert.match(readFileSync(join(dir, 'spec.yaml'), 'utf8'), /privacy:\n\s+dp:\n\s+epsilon: 1/)
  })

  test('fedmon demo --keep leaves the federation running for fedmon status', async () => {
    const dir = join(root, 'keep')
    const r = await runCli(['demo', '--keep', '--dir', dir, '--rows', '800'], { timeoutMs: 120_000, env: { NO_COLOR: '1' } })
    const pids = existsSync(join(dir, 'pids')) ? readFileSync(join(dir, 'pids'), 'utf8').split(/\s+/).filter(Boolean).map(Number) : []
    kept.push(...pids)
    assert.equal(r.code, 0, `demo failed:\n${r.stderr}`)
    assert.equal(pids.length, 6)
    const api = apiOf(r.stderr)
    assert.match(r.stderr, new RegExp(`status --api ${api.replace(/[.]/g, '\\.')}`))
    const status = await runCli(['status', '--api', api], { env: { NO_COLOR: '1' } })
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout, /agents\s+5\/5 online/)
    // The dashboard is named and served on the API port.
    assert.match(r.stderr, new RegExp(`Open the dashboard:\\n  ${api.replace(/[.]/g, '\\.')}/\\n`))
    const page = await fetch(`${api}/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    // A second demo in the same directory refuses while the first is up.
    const again = await runCli(['demo', '--dir', dir, '--rows', '800'], { timeoutMs: 30_000 })
    assert.equal(again.code, 1)
    assert.match(again.stderr, /still up/)
    for (const pid of pids) process.kill(pid, 'SIGTERM')
  })
})
