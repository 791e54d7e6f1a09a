/**
 * `npm run -s bench -- dashboard [--reports N] [--repeat K]`: how long the dashboard's monitor page takes to
 * render N reports of history (default 1,000; target ≤ 1 s) in headless Chromium (Debian's, via
 * playwright-core), served by the real ApiServer + dashboard over loopback from an in-memory backend of
 * synthetic reports. Prints JSON: navigation → charts drawn (median and each run), the script's own time from
 * start to charts drawn (fetch + parse + render + draw), the /v1 bytes read, and the asset sizes.
 */
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { cpus, loadavg } from 'node:os'
import { ApiServer, type ApiBackend } from '../coordinator/api.js'
import { readDashboardAssets } from '../coordinator/dashboard.js'
import { syntheticReport, FIXTURE_SPEC } from '../test/fixtures/reports.js'
import { launchChromium } from '../test/e2e/helpers/browser.js'
import type { Report } from '../shared/report.js'
import type { RoundOutcome } from '../coordinator/contracts.js'

function backendOf (reports: Report[], rounds: RoundOutcome[]): ApiBackend {
  const newestFirst = [...reports].reverse()
  return {
    peerId: '12D3KooWbench',
    uptimeS: () => 1,
    startRound: () => { throw new Error('read-only bench') },
    getRound: id => rounds.find(r => r.id === id) ?? null,
    listRounds: ({ limit }) => rounds.slice(-limit).reverse().map(r => ({ ...r, monitor: FIXTURE_SPEC.model, counts: { invited: r.invited.length, included: r.included.length, dropped: r.dropped.length, declined: r.declined?.length ?? 0 } })),
    listReports: ({ last, kind }) => newestFirst.filter(r => kind === 'any' || r.round.kind === kind).slice(0, last),
    getReport: id => reports.find(r => r.id === id) ?? null,
    reportVersions: id => reports.filter(r => r.id === id),
    latestReport: () => newestFirst[0] ?? null,
    agents: () => [],
    status: () => ({ status: 'ok', peerId: '12D3KooWbench', specHash: reports[0].spec.hash, model: FIXTURE_SPEC.model, agents: { total: 4, online: 3 }, lastRound: rounds.at(-1) ?? null, nextScheduledRound: null, reference: { reportId: reports[0].id, setAt: reports[0].createdAt } }),
    reference: () => ({ reportId: reports[0].id, setAt: reports[0].createdAt }),
    setReference: () => { throw new Error('read-only bench') },
    metrics: async () => ({ contentType: 'text/plain', body: '' })
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { reports: { type: 'string', default: '1000' }, repeat: { type: 'string', default: '3' } } })
  const n = Number(values.reports); const repeat = Number(values.repeat)
  if (!Number.isInteger(n) || n < 2 || !Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write('usage: npm run -s bench -- dashboard [--reports N (>= 2)] [--repeat K]\n')
    process.exitCode = 2
    return
  }
  const genStart = performance.now()
  const ref = syntheticReport({ seed: 1, n: 400, index: 0, kind: 'reference', reference: null })
  const reports = [ref, ...Array.from({ length: n - 1 }, (_, i) => syntheticReport({ seed: 10 + i, n: 400, index: i + 1, shift: (i % 200) / 200, reference: { id: ref.id, seed: 1, n: 400 } }))]
  const rounds: RoundOutcome[] = reports.map((r, i) => ({
    id: r.round.id, kind: r.round.kind === 'reference' ? 'reference' : 'current', window: r.window, status: i % 50 === 49 ? 'failed' : 'done', reportId: r.id,
    invited: ['a', 'b', 'c', 'd'], included: ['a', 'b', 'c'], dropped: ['d'], failure: i % 50 === 49 ? { code: 'ERR_TOO_FEW_AGENTS', message: 'only 2 agents left after masking' } : null,
    startedAt: r.window.to, finishedAt: r.createdAt, timings: {}, scheduledWindowKey: null
  }))
  const genMs = performance.now() - genStart
  const server = new ApiServer({ backend: backendOf(reports, rounds), host: '127.0.0.1', port: 0 })
  const { port } = await server.start()
  const browser = await launchChromium()
  try {
    const runs: Array<{ totalMs: number, scriptMs: number, charts: number, apiBytes: number }> = []
    for (let i = 0; i < repeat; i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
      const t0 = Date.now()
      await page.goto(`http://127.0.0.1:${port}/monitors/${encodeURIComponent(FIXTURE_SPEC.model)}`)
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 })
      const totalMs = Date.now() - t0
      const scriptMs = Number(await page.getAttribute('body', 'data-render-ms'))
      const charts = Number(await page.getAttribute('body', 'data-charts'))
      const apiBytes = Number(await page.evaluate('performance.getEntriesByType("resource").filter(r => r.name.includes("/v1/")).reduce((n, r) => n + r.decodedBodySize, 0)'))
      runs.push({ totalMs, scriptMs, charts, apiBytes })
      await page.close()
    }
    // the report page of the newest report, for comparison
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const last = reports[reports.length - 1]
    const r0 = Date.now()
    await page.goto(`http://127.0.0.1:${port}/monitors/${encodeURIComponent(FIXTURE_SPEC.model)}/reports/${encodeURIComponent(last.id)}`)
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 })
    const reportPageMs = Date.now() - r0
    const assets = readDashboardAssets()
    const size = (s: string): { bytes: number, gzip: number } => ({ bytes: Buffer.byteLength(s), gzip: gzipSync(s).length })
    const result = {
      bench: 'dashboard',
      reports: n,
      rounds: rounds.length,
      monitorPage: {
        medianMs: median(runs.map(r => r.totalMs)),
        targetMs: 1000,
        runs,
        note: 'totalMs: navigation start to charts drawn (shell, assets, /v1 fetches, render, uPlot); scriptMs: script start to charts drawn'
      },
      reportPageMs,
      assets: { 'dashboard.js': size(assets.js), 'dashboard.css': size(assets.css) },
      reportJsonBytes: Buffer.byteLength(JSON.stringify(last)),
      generateMs: Math.round(genMs),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg1: Number(loadavg()[0].toFixed(2)) }
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  } finally {
    await browser.close()
    await server.stop()
  }
}
