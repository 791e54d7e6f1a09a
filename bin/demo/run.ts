/**
 * `fedmon demo`: a whole federation on this machine. Generates keys (with `fedmon keygen`), a monitor spec,
 * configs and private data for 5 sites; starts a coordinator and 5 agents as child processes of this CLI on
 * loopback; runs a reference round and a current round through the coordinator's HTTP API (as
 * `fedmon round run --wait` does) while most of the current week's labels are still missing (estimated
 * performance), lets the late labels arrive and runs a label-refresh round; prints the report as `fedmon report`
 * does; then stops everything.
 * With `keep`, the processes stay up (their pids are in DIR/pids) for `fedmon report`/`status` from another shell.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify as toYaml } from 'yaml'
import { FedmonError, UsageError } from '../../shared/errors.js'
import { ApiClient } from '../../shared/api-client.js'
import type { Report } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'
import { DEMO_REGRESSION_SPEC, DEMO_SITES, DEMO_SPEC, demoDpSpec, demoWindows, writeLateLabels, writeSiteBalances, writeSiteData, type DemoWindows } from './data.js'
import { progress, useColor, paint } from '../ui/format.js'
import { freePort } from '../../shared/net/free-port.js'

/** …/bin/demo/run.js → …/bin/fedmon.js in the same build output (dist/ or .build/NAME/). */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'fedmon.js')

const MARKER = '.fedmon-demo'

export interface DemoOptions {
  dir: string
  rows: number
  keep: boolean
  /** Where the report goes (stdout) and where progress goes (stderr). */
  out?: NodeJS.WritableStream
  err?: NodeJS.WriteStream
  signal?: AbortSignal
  now?: number
  /** Run the federation under distributed DP at this ε per round, and print the exact figures beside it. */
  dpEpsilon?: number
}

export interface DemoResult {
  dir: string
  api: string
  windows: DemoWindows
  reference: Report
  current: Report
  pids: number[]
}

/** Empties DIR if it is a previous demo's (or empty); refuses to touch anything else. */
function prepareDir (dir: string): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir)
    if (entries.length > 0 && !entries.includes(MARKER)) throw new UsageError(`--dir ${dir} is not empty and not a previous demo directory; choose another`)
    const pidsFile = join(dir, 'pids')
    if (existsSync(pidsFile)) {
      const alive = readFileSync(pidsFile, 'utf8').split(/\s+/).filter(Boolean).map(Number).filter(isAlive)
      if (alive.length > 0) throw new FedmonError(`a demo kept running from ${dir} is still up (pids ${alive.join(' ')}); stop it first: kill ${alive.join(' ')}`, 'ERR_DEMO_RUNNING')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  mkdirSync(join(dir, 'logs'), { recursive: true })
  writeFileSync(join(dir, MARKER), 'created by fedmon demo; safe to delete\n')
}

function isAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try { process.kill(pid, 0); return true } catch { return false }
}

async function runCliOnce (args: string[], signal?: AbortSignal): Promise<string> {
  return await new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], signal })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => {
      if (code === 0) resolveRun(stdout)
      else reject(new FedmonError(`fedmon ${args[0]} failed: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}`, 'ERR_DEMO'))
    })
  })
}

interface Managed { name: string, child: ChildProcess, logFile: string, exited: Promise<number | null> }

function startDaemon (name: string, args: string[], dir: string, detach: boolean): Managed {
  const logFile = join(dir, 'logs', `${name}.log`)
  const fd = openSync(logFile, 'a')
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: dir,
    stdio: ['ignore', fd, fd],
    detached: detach, // with --keep the daemons outlive this process
    env: { ...process.env, FEDMON_LOG_LEVEL: process.env.FEDMON_LOG_LEVEL ?? 'info' }
  })
  closeSync(fd)
  const exited = new Promise<number | null>(resolveExit => child.once('exit', code => resolveExit(code)))
  return { name, child, logFile, exited }
}

function logTail (file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

async function stopDaemons (daemons: Managed[], graceMs = 10_000): Promise<void> {
  await Promise.all(daemons.map(async (d) => {
    if (d.child.exitCode !== null || d.child.signalCode !== null) return
    d.child.kill('SIGTERM')
    const timer = setTimeout(() => d.child.kill('SIGKILL'), graceMs)
    await d.exited
    clearTimeout(timer)
  }))
}

async function waitUntil<T> (what: string, timeoutMs: number, probe: () => Promise<T | null>, opts: { signal?: AbortSignal, watch?: Managed[] } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    if (opts.signal?.aborted === true) throw new FedmonError('interrupted', 'ERR_ABORTED')
    for (const d of opts.watch ?? []) {
      if (d.child.exitCode !== null) throw new FedmonError(`${d.name} exited with code ${d.child.exitCode} (log: ${d.logFile}): ${logTail(d.logFile, 1)}`, 'ERR_DEMO')
    }
    try {
      const v = await probe()
      if (v !== null) return v
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) throw new FedmonError(`timed out waiting for ${what}${last !== '' ? ` (${last})` : ''}`, 'ERR_DEMO_TIMEOUT')
    await new Promise(r => setTimeout(r, 150))
  }
}

export async function runDemo (opts: DemoOptions): Promise<DemoResult> {
  const out = opts.out ?? process.stdout
  const err = opts.err ?? process.stderr
  const p = paint(useColor(err))
  const step = (text: string): void => { err.write(`${p.green('✓')} ${text}\n`) }
  const dir = resolve(opts.dir)
  const windows = demoWindows(opts.now)
  const started = Date.now()
  prepareDir(dir)

  // 1. Identities, via `fedmon keygen` like an operator would.
  const names = ['coordinator', ...DEMO_SITES]
  mkdirSync(join(dir, 'keys'), { recursive: true })
  const spin = progress(err)
  spin.update('generating keys')
  const ids: Record<string, string> = {}
  await Promise.all(names.map(async (name) => {
    const stdout = await runCliOnce(['keygen', '--out', join(dir, 'keys', `${name}.key`), '--json'], opts.signal)
    ids[name] = (JSON.parse(stdout) as { peerId: string }).peerId
  }))
  spin.done()
  step(`identities for the coordinator and ${DEMO_SITES.length} sites (${shown(join(dir, 'keys'))})`)

  // 2. Private data per site.
  spin.update('writing site data')
  let records = 0
  for (let i = 0; i < DEMO_SITES.length; i++) records += (await writeSiteData(dir, i, opts.rows, windows, undefined, { lateLabels: true })).records
  // A second monitor (a regression model) at the same sites, except under --dp (which sets the credit model's
  // published figures beside the exact ones, one monitor at a time).
  const second = opts.dpEpsilon === undefined
  let balances = 0
  if (second) for (let i = 0; i < DEMO_SITES.length; i++) balances += await writeSiteBalances(dir, i, opts.rows, windows)
  spin.done()
  step(`${records.toLocaleString('en-US')} prediction records over two weeks at ${DEMO_SITES.length} sites (JSONL, one file per day; the current week's labels arrive late, in label files joined by prediction id)`)
  if (second) step(`${balances.toLocaleString('en-US')} balance forecasts of a second model, ${DEMO_REGRESSION_SPEC.model} (regression), at the same sites`)

  // 3. Spec and configs.
  const [p2pPort, apiPort] = [await freePort(), await freePort()]
  const api = `http://127.0.0.1:${apiPort}`
  const spec = opts.dpEpsilon !== undefined ? demoDpSpec(opts.dpEpsilon) : DEMO_SPEC
  writeFileSync(join(dir, 'spec.yaml'), toYaml(spec))
  if (second) writeFileSync(join(dir, 'balance-spec.yaml'), toYaml(DEMO_REGRESSION_SPEC))
  const creditAlerts = [
    { metric: 'performance.auc.value', below: 0.75 },
    { metric: 'performance.auc.value', dropFromReference: 0.05 },
    { metric: 'drift.*.psi', above: 0.25 },
    { metric: 'performance.auc.value', below: 0.7, segments: '*' }
  ]
  // The federation's roster: one file that the coordinator and every site read (shared out of band in a
  // real deployment), so no site joins a round with peers the coordinator alone vouches for.
  writeFileSync(join(dir, 'roster.yaml'), toYaml({ agents: DEMO_SITES.map(s => ({ id: ids[s], name: s })) }))
  writeFileSync(join(dir, 'coordinator.yaml'), toYaml({
    identity: 'keys/coordinator.key',
    listen: [`/ip4/127.0.0.1/tcp/${p2pPort}`],
    agents: 'roster.yaml',
    ...(second
      ? {
          monitors: [
            { name: 'credit', spec: 'spec.yaml', alerts: creditAlerts },
            { name: 'balance', spec: 'balance-spec.yaml', alerts: [{ metric: 'performance.bias.value', below: -250 }, { metric: 'performance.mae.value', above: 1000 }] }
          ]
        }
      : { spec: 'spec.yaml', alerts: creditAlerts }),
    store: 'coordinator.db',
    api: { listen: `127.0.0.1:${apiPort}` },
    privacy: { minAgents: 3 },
    // A stuck phase fails the round in 15 s rather than the default 30 s: the demo promises to finish within a minute.
    round: { phaseTimeoutMs: 15_000 }
  }))
  const coordinatorAddr = `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${ids.coordinator}`
  for (const site of DEMO_SITES) {
    writeFileSync(join(dir, `${site}.yaml`), toYaml({
      identity: `keys/${site}.key`,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      coordinator: coordinatorAddr,
      ...(second
        ? {
            monitors: [
              { name: 'credit', data: { path: `data/${site}/*.jsonl`, format: 'jsonl', labels: { path: `labels/${site}/*.jsonl` } } },
              { name: 'balance', data: { path: `balances/${site}/*.jsonl`, format: 'jsonl' } }
            ]
          }
        : { data: { path: `data/${site}/*.jsonl`, format: 'jsonl', labels: { path: `labels/${site}/*.jsonl` } } }),
      state: `state/${site}`,
      federation: { roster: 'roster.yaml' }
    }))
  }
  step(`${second ? 'two monitors (credit: spec.yaml, balance: balance-spec.yaml)' : 'monitor spec'}, roster, coordinator and agent configs (roster.yaml, coordinator.yaml, site-*.yaml)`)

  // 4. Daemons.
  const daemons: Managed[] = []
  const onAbort = (): void => { void stopDaemons(daemons, 2000) }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  let kept = false
  try {
    const client = new ApiClient({ baseUrl: api, timeoutMs: 10_000 })
    spin.update('starting the coordinator')
    daemons.push(startDaemon('coordinator', ['coordinator', '--config', 'coordinator.yaml'], dir, opts.keep))
    // Our own coordinator answering, not another process that holds the port.
    await waitUntil('the coordinator API', 30_000, async () => {
      const health = await client.health()
      return health.status === 'ok' && health.peerId === ids.coordinator ? true : null
    }, { signal: opts.signal, watch: daemons })
    for (const site of DEMO_SITES) daemons.push(startDaemon(site, ['agent', '--config', `${site}.yaml`], dir, opts.keep))
    await waitUntil(`${DEMO_SITES.length} agents online`, 45_000, async () => {
      const agents = await client.agents()
      const online = agents.filter(a => a.online).length
      spin.update(`agents online ${online}/${DEMO_SITES.length}`)
      return online === DEMO_SITES.length ? true : null
    }, { signal: opts.signal, watch: daemons })
    spin.done()
    step(`coordinator and ${DEMO_SITES.length} agents running on loopback (API ${api}, dashboard ${api}/, logs in ${shown(join(dir, 'logs'))})`)

    // 5. Rounds: the reference week, then the current week.
    const credit = second ? 'credit' : undefined
    const reference = await runRound(client, windows.reference, true, 'reference round', err, opts.signal, daemons, undefined, credit)
    step(`reference round: ${reference.samples.count.toLocaleString('en-US')} records from ${reference.agents.included.length} sites, AUC ${fmt(reference.performance.auc.value)}`)
    const first = await runRound(client, windows.current, false, 'current round', err, opts.signal, daemons, undefined, credit)
    const estimated = (first.performance.estimated as { auc?: number | null } | undefined)?.auc ?? null
    step(`current round: ${first.samples.count.toLocaleString('en-US')} records, ${pct(first.labels?.coverage)} labelled so far: AUC estimated ${fmt(estimated)} (CBPE), realised ${fmt(first.performance.auc.value)} on the labelled part`)

    // 6. Late labels: they arrive in the day after the week closed; a label-refresh round re-reads only them.
    let late = 0
    for (let i = 0; i < DEMO_SITES.length; i++) late += writeLateLabels(dir, i, opts.rows, windows)
    const current = await runRound(client, windows.current, false, 'label refresh at 1d', err, opts.signal, daemons, '1d', credit)
    const realised = current.performance.auc.value
    // CBPE assumes the score still means what it meant in the reference week (covariate shift only): say whether it held.
    const verdict = typeof realised === 'number' && typeof estimated === 'number'
      ? Math.abs(realised - estimated) <= 0.02 ? 'the estimate held' : `the estimate (${fmt(estimated)}) missed this week's concept drift, which only labels show`
      : 'no estimate to compare'
    step(`${late.toLocaleString('en-US')} late labels arrived; label refresh at 1d: ${pct(current.labels?.coverage)} labelled, realised AUC ${fmt(realised)}; ${verdict}; ${current.alerts.length} alert${current.alerts.length === 1 ? '' : 's'} (${((Date.now() - started) / 1000).toFixed(1)} s so far)`)
    if (second) {
      // The second monitor: its own reference and current rounds over its own data, at the same agents.
      const balanceReference = await runRound(client, windows.reference, true, 'balance: reference round', err, opts.signal, daemons, undefined, 'balance')
      const balance = await runRound(client, windows.current, false, 'balance: current round', err, opts.signal, daemons, undefined, 'balance')
      const perf = (r: Report, key: string): number | null => ((r.performance as Record<string, { value?: number | null } | undefined>)[key]?.value ?? null)
      const money = (x: number | null): string => typeof x === 'number' ? x.toFixed(0) : '—'
      step(`monitor balance (${DEMO_REGRESSION_SPEC.model}, regression): ${balance.samples.count.toLocaleString('en-US')} records, MAE ${money(perf(balance, 'mae'))} (reference week ${money(perf(balanceReference, 'mae'))}), bias ${money(perf(balance, 'bias'))}, R² ${fmt(perf(balance, 'r2'))}; ${balance.alerts.length} alert${balance.alerts.length === 1 ? '' : 's'}`)
    }
    err.write('\n')

    // 7. The report (its latest version), exactly as `fedmon report` prints it.
    const { renderReport } = await import('../../shared/stats/render.js')
    out.write(`${renderReport(current, { color: useColor(out as NodeJS.WriteStream) }).replace(/\n+$/, '')}\n`)
    if (opts.dpEpsilon !== undefined) out.write(`\n${await exactBeside(dir, windows, current, opts.signal)}`)

    const pids = daemons.map(d => d.child.pid).filter((x): x is number => x !== undefined)
    if (opts.keep) {
      writeFileSync(join(dir, 'pids'), `${pids.join('\n')}\n`)
      for (const d of daemons) d.child.unref()
      kept = true
      const cli = `node ${shown(CLI_PATH)}`
      const pidsFile = shown(join(dir, 'pids'))
      err.write([
        '',
        p.bold('The federation keeps running. Open the dashboard:'),
        `  ${api}/`,
        p.bold('or, from another shell:'),
        `  ${cli} report${second ? ' --monitor credit' : ''} --api ${api}`,
        `  ${cli} report history --metric auc${second ? ' --monitor credit' : ''} --api ${api}`,
        ...(second ? [`  ${cli} report --monitor balance --api ${api}`] : []),
        `  ${cli} status --api ${api}`,
        `  ${cli} report latest --versions${second ? ' --monitor credit' : ''} --api ${api}`,
        `  ${cli} round run${second ? ' --monitor credit' : ''} --window ${new Date(windows.current.from).toISOString()}..${new Date(windows.current.to).toISOString()} --refresh 7d --wait --api ${api}   (refused: not due yet)`,
        `  curl -s ${api}/metrics | grep ^fedmon_`,
        `Stop it with: kill $(cat ${pidsFile})`,
        ''
      ].join('\n'))
    } else {
      spin.update('stopping')
    }
    return { dir, api, windows, reference, current, pids }
  } catch (e) {
    spin.done()
    throw e
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
    if (!kept) {
      await stopDaemons(daemons)
      if (!opts.keep) {
        spin.done()
        if (daemons.length > 0) step(`stopped the federation in ${((Date.now() - started) / 1000).toFixed(1)} s; configs, data and logs are in ${shown(dir)}`)
      }
    }
  }
}

/**
 * Under --dp: the same figures computed exactly on the pooled files of all sites (what no one in a real
 * federation can see), beside the published noisy ones with their 95 % error bars.
 */
async function exactBeside (dir: string, windows: DemoWindows, dpReport: Report, signal?: AbortSignal): Promise<string> {
  const { evaluateLocal } = await import('../../shared/stats/evaluate.js')
  const { scanWindowDetailed } = await import('../../agent/scan.js')
  const exact = await evaluateLocal({
    specFile: join(dir, 'spec.yaml'),
    source: { path: join(dir, 'data', '*', '*.jsonl'), format: 'jsonl', labels: { path: join(dir, 'labels', '*', '*.jsonl') } },
    window: windows.current,
    referenceWindow: windows.reference,
    scan: scanWindowDetailed,
    signal
  })
  const dp = dpReport.privacy.dp as { epsilon: number, delta: number, countError95: number }
  const perf = dpReport.performance as Record<string, unknown> & { noise95?: Record<string, number | null> }
  const rows: string[][] = [['figure', 'exact (pooled files)', `published (ε = ${dp.epsilon}, δ = ${dp.delta})`]]
  const n = (x: unknown, d = 4): string => typeof x === 'number' ? x.toFixed(d) : '—'
  const auc = dpReport.performance.auc
  rows.push(['AUC', n(exact.performance.auc.value), `${n(auc.value)}  [${n(auc.lower)}, ${n(auc.upper)}] 95 % CI`])
  for (const key of ['pr_auc', 'precision', 'recall', 'accuracy']) {
    rows.push([key, n((exact.performance as Record<string, unknown>)[key]), `${n(perf[key])}  ±${n(perf.noise95?.[key] ?? null, 4)}`])
  }
  rows.push(['records', exact.samples.count.toLocaleString('en-US'), `${dpReport.samples.count.toLocaleString('en-US')}  ±${Math.ceil(dp.countError95)}`])
  for (const [name, f] of Object.entries(dpReport.drift.features)) {
    const e = (f.noise95 as { psi?: number | null } | undefined)?.psi ?? null
    rows.push([`PSI ${name}`, n(exact.drift.features[name]?.psi ?? null), `${n(f.psi)}  ±${n(e, 4)}`])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  const lines = rows.map(r => r.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd())
  return `Exact vs differentially private (the exact column is computed here from all sites' files — no one sees it in a real federation)\n${lines.map(l => `  ${l}`).join('\n')}\n`
}

/** A path as the user should type it: relative to the cwd when inside it, absolute otherwise. */
function shown (p: string): string {
  const rel = relative(process.cwd(), p)
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel
}

function fmt (x: number | null | undefined): string {
  return typeof x === 'number' ? x.toFixed(3) : '—'
}

function pct (x: number | null | undefined): string {
  return typeof x === 'number' ? `${Math.round(x * 100)} %` : '—'
}

async function runRound (client: ApiClient, window: { from: number, to: number }, reference: boolean, label: string, err: NodeJS.WriteStream, signal: AbortSignal | undefined, daemons: Managed[], refresh?: string, monitor?: string): Promise<Report> {
  const spin = progress(err)
  spin.update(`${label}: starting`)
  try {
    const roundId = await client.startRound({ window, reference, ...(refresh !== undefined ? { refresh } : {}), ...(monitor !== undefined ? { monitor } : {}) }, { signal })
    const round: RoundOutcome = await client.waitForRound(roundId, {
      signal,
      intervalMs: 150,
      onProgress: (r) => {
        const phase = Object.keys(r.timings ?? {}).pop()
        spin.update(`${label} ${roundId.slice(0, 8)}: ${r.status}${phase !== undefined ? ` (${phase})` : ''}`)
        for (const d of daemons) {
          if (d.name === 'coordinator' && d.child.exitCode !== null) throw new FedmonError(`the coordinator exited during the ${label} (log: ${d.logFile})`, 'ERR_DEMO')
        }
      }
    })
    if (round.status !== 'done' || round.reportId === null) {
      throw new FedmonError(`${label} ${round.status}: ${round.failure !== null ? `${round.failure.code}: ${round.failure.message}` : 'no reason given'} (logs in ${dirname(daemons[0]?.logFile ?? '.')})`, round.failure?.code ?? 'ERR_ROUND_FAILED')
    }
    return await client.getReport(round.reportId, { signal })
  } finally {
    spin.done()
  }
}
