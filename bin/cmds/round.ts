import type { Command } from 'commander'
import { FedmonError, UsageError } from '../../shared/errors.js'

/** Parses FROM..TO where each side is ISO-8601 or epoch ms. */
export function parseWindowArg (text: string): { from: number, to: number } {
  const parts = text.split('..')
  if (parts.length !== 2) throw new UsageError(`--window must be FROM..TO (ISO-8601 or epoch ms), got "${text}"`)
  const [from, to] = parts.map(p => /^\d+$/.test(p.trim()) ? Number(p.trim()) : Date.parse(p.trim()))
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw new UsageError(`--window: cannot parse "${text}" as FROM..TO instants`)
  if (!(from < to)) throw new UsageError('--window: FROM must be before TO')
  return { from, to }
}

interface RoundRunOptions { window: string, reference: boolean, wait: boolean, json: boolean, api: string, tokenFile?: string, timeout: string }

export function register (program: Command): void {
  const round = program.command('round').description('ask the coordinator for secure-aggregation rounds')
    .addHelpText('after', '\nExample:\n  $ fedmon round run --window 2025-12-01T00:00:00Z..2025-12-08T00:00:00Z --wait')
  round.command('run')
    .description('run a round now over a time window; prints the round id (or the report with --wait --json)')
    .requiredOption('--window <FROM..TO>', 'the window, ISO-8601 or epoch ms, [FROM, TO)')
    .option('--reference', 'a reference round: its result becomes the drift baseline', false)
    .option('--wait', 'wait until the round is done or failed', false)
    .option('--json', 'with --wait: print the finished report as JSON', false)
    .option('--api <url>', 'coordinator API', 'http://127.0.0.1:7600')
    .option('--token-file <file>', 'file holding the API bearer token')
    .option('--timeout <seconds>', 'with --wait: give up after this many seconds', '600')
    .addHelpText('after', '\nExample:\n  $ fedmon round run --window 2025-12-01T00:00:00Z..2025-12-08T00:00:00Z --reference --wait --json')
    .action(async (opts: RoundRunOptions) => {
      const window = parseWindowArg(opts.window)
      const { ApiClient } = await import('../../coordinator/api-client.js')
      const client = new ApiClient({ url: opts.api, tokenFile: opts.tokenFile })
      const { roundId } = await client.post<{ roundId: string }>('/v1/rounds', {
        window: { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() },
        reference: opts.reference
      })
      if (!opts.wait) {
        process.stdout.write(opts.json ? `${JSON.stringify({ roundId })}\n` : `${roundId}\n`)
        return
      }
      const timeoutS = Number(opts.timeout)
      if (!(timeoutS > 0)) throw new UsageError('--timeout must be a positive number of seconds')
      const deadline = Date.now() + timeoutS * 1000
      let delay = 100
      for (;;) {
        const outcome = await client.get<{ status: string, reportId: string | null, failure: { code: string, message: string } | null }>(`/v1/rounds/${encodeURIComponent(roundId)}`)
        if (outcome.status === 'done' && outcome.reportId !== null) {
          if (opts.json) {
            const report = await client.get<unknown>(`/v1/reports/${encodeURIComponent(outcome.reportId)}`)
            process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
          } else {
            process.stdout.write(`${outcome.reportId}\n`)
          }
          return
        }
        if (outcome.status === 'failed' || outcome.status === 'aborted') {
          const f = outcome.failure
          throw new FedmonError(`round ${roundId} ${outcome.status}: ${f !== null ? `${f.code}: ${f.message}` : 'no reason given'}`, f?.code ?? 'ERR_ROUND_FAILED')
        }
        if (Date.now() > deadline) throw new FedmonError(`round ${roundId} still ${outcome.status} after ${timeoutS} s`, 'ERR_TIMEOUT')
        await new Promise(resolve => setTimeout(resolve, delay))
        delay = Math.min(delay * 2, 1000)
      }
    })
}
