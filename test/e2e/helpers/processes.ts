/**
 * E2E helpers: the built CLI located relative to this file (works from dist/ and .build/NAME/), free ports,
 * child processes in their own process groups (so a kill takes their children too), HTTP polling.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../../shared/net/free-port.js'
export { freePort }

/** …/test/e2e/helpers/processes.js → …/bin/fedmon.js in the same build output. */
export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'fedmon.js')

export interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs `fedmon ARGS` to completion. */
export async function runCli (args: string[], opts: { env?: Record<string, string>, cwd?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, FEDMON_LOG_LEVEL: 'warn', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 120_000)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

export interface Daemon {
  name: string
  child: ChildProcess
  logFile: string
  /** Resolves with the exit code/signal once the process ends. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** The log so far (stdout + stderr: pino JSON lines and the CLI's own lines). */
  log: () => string
}

const daemons = new Set<Daemon>()

/** Starts `fedmon ARGS` as a long-running child in its own process group, logging to `logFile`. */
export function spawnDaemon (name: string, args: string[], opts: { logFile: string, env?: Record<string, string>, nodeArgs?: string[] }): Daemon {
  // The child writes straight into the log file: a pipe through this process would make the daemon's
  // synchronous log writes wait on the test's event loop.
  const fd = openSync(opts.logFile, 'a')
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], {
    env: { ...process.env, FEDMON_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', fd, fd],
    detached: true // own process group: killProcessGroup reaches any grandchildren
  })
  closeSync(fd)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => { daemons.delete(daemon); resolve({ code, signal }) })
  })
  const daemon: Daemon = {
    name,
    child,
    logFile: opts.logFile,
    exited,
    log: () => { try { return readFileSync(opts.logFile, 'utf8') } catch { return '' } }
  }
  daemons.add(daemon)
  return daemon
}

/** Sends `signal` to the daemon's whole process group (no-op when already gone). */
export function killProcessGroup (daemon: Daemon, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (daemon.child.pid === undefined || daemon.child.exitCode !== null || daemon.child.signalCode !== null) return
  try { process.kill(-daemon.child.pid, signal) } catch { /* already gone */ }
}

/** Stops a daemon: SIGTERM, then SIGKILL after `graceMs`. Resolves with how it exited. */
export async function stopDaemon (daemon: Daemon, graceMs = 10_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  killProcessGroup(daemon, 'SIGTERM')
  const timer = setTimeout(() => { killProcessGroup(daemon, 'SIGKILL') }, graceMs)
  const result = await daemon.exited
  clearTimeout(timer)
  return result
}

/**
 * The daemon's exit, expected within `timeoutMs` (e.g. a test hook that should kill it): on a timeout the
 * daemon is SIGKILLed and this throws, so a test fails instead of hanging.
 */
export async function exitWithin (daemon: Daemon, timeoutMs: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      killProcessGroup(daemon, 'SIGKILL')
      reject(new Error(`${daemon.name} did not exit within ${timeoutMs} ms (killed now; see ${daemon.logFile})`))
    }, timeoutMs)
  })
  try {
    return await Promise.race([daemon.exited, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** For `after()` hooks: SIGKILL every daemon these helpers started that is still running. */
export async function killAllDaemons (): Promise<void> {
  const all = [...daemons]
  for (const d of all) killProcessGroup(d, 'SIGKILL')
  await Promise.all(all.map(async d => await d.exited))
}

/** A live process's resident memory (VmRSS from /proc, Linux) in MiB, one decimal. */
export function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Math.round(Number(m[1]) / 102.4) / 10
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `cond` until it returns a truthy value (returned) or the deadline passes (throws naming `what`). */
export async function waitFor<T> (what: string, cond: () => Promise<T | null | undefined | false> | T | null | undefined | false, opts: { timeoutMs?: number, intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  let lastError: unknown
  for (;;) {
    try {
      const value = await cond()
      if (value !== null && value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError !== undefined ? ` (last error: ${(lastError as Error).message})` : ''}`)
    await sleep(opts.intervalMs ?? 200)
  }
}

/** GET/POST JSON; resolves with status and parsed body (null when not JSON). */
export async function httpJson (url: string, opts: { method?: string, body?: unknown, token?: string } = {}): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = {}
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined, signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let body: unknown = null
  try { body = JSON.parse(text) } catch { body = text }
  return { status: res.status, body }
}

/** Waits until GET {api}/healthz answers 200. */
export async function waitForHealthz (api: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${api}/healthz`, async () => (await httpJson(`${api}/healthz`)).status === 200, { timeoutMs })
}
