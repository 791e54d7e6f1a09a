// Runs every compiled test file under dist/test with node:test. Usage: node test/run.mjs [unit|property|e2e ...]
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const root = new URL('../dist/test/', import.meta.url).pathname
const groups = process.argv.slice(2)
function walk (dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : (p.endsWith('.test.js') ? [p] : [])
  })
}
const files = walk(root).filter(f => groups.length === 0 || groups.some(g => f.startsWith(join(root, g))))
  .sort()
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)')
  process.exit(1)
}
// A test that waits forever must fail, not stall CI: on Node 20 --test-timeout bounds each test *file*
// (the slowest takes ~2 min on 2 cores), and --test-force-exit ends a file whose tests are done even if
// something it started still holds the event loop.
const FILE_TIMEOUT_MS = 15 * 60_000
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=2', `--test-timeout=${FILE_TIMEOUT_MS}`, '--test-force-exit', ...files], { stdio: 'inherit' })
process.exit(res.status ?? 1)
