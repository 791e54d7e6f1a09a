import { parseDuration } from '../../shared/config/duration.js'
import type { Command } from 'commander'
import { FedmonError, UsageError } from '../../shared/errors.js'
import { addApiOptions, type ApiCliOptions } from '../../shared/api-client.js'
import type { RoundDecline, RoundOutcome } from '../../coordinator/contracts.js'
import type { ApiClient } from '../../shared/api-client.js'

/** Parses FROM..TO where each side is ISO-8601 or epoch ms. */
export function parseWindowArg (text: string): { from: number, to: number } {
  const parts = text.split('..')
  if (parts.length !== 2) throw new UsageError(`--window must be FROM..TO (ISO-8601 or epoch ms), got "${text}"`)
  const [from, to] = parts.map(p => /^\d+$/.test(p.trim()) ? Number(p.trim()) : Date.parse(p.trim()))
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw new UsageError(`--window: cannot parse "${text}" as FROM..TO instants`)
  if (!(from < to)) throw new UsageError('--window: FROM must be before TO')
  return { from, to }
}

/** One line per agent that declined the round, for stderr. Reasons come from agents: printable text only. */
export function declineLines (roundId: string, declined: readonly RoundDecline[]): string[] {
  // eslint-disable-next-line no-control-regex
  const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  return declined.map(d => `fedmon: round ${roundId}: agent ${printable(d.agent)} declined: ${printable(d.code)} ${printable(d.reason)}`)
}

interface RoundRunOptions extends ApiCliOptions { window: string, reference: boolean, refresh?: string, wait: boolean, json: boolean, timeout: string, monitor?: string }
interface RoundListOptions extends ApiCliOptions { failed: boolean, monitor?: string, json: boolean, last: string }

/** How long `round run` waits for more declines once a round failed: quiet this long, at most SETTLE_MAX_MS. */
const DECLINES_QUIET_MS = 1500
const DECLINES_SETTLE_MAX_MS = 10_000

/**
 * A round fails at the first decline that puts its quorum out of reach, so the outcome first seen holds the
 * declines in by then (often 1 when every agent declines). The others are recorded as they arrive: poll until
 * every invited agent has declined, or no new decline came for a moment.
 */
export async function settleDeclines (client: Pick<ApiClient, 'getRound'>, outcome: RoundOutcome, opts: { quietMs?: number, maxMs?: number, signal?: AbortSignal } = {}): Promise<RoundOutcome> {
  const quietMs = opts.quietMs ?? DECLINES_QUIET_MS
  const deadline = Date.now() + (opts.maxMs ?? DECLINES_SETTLE_MAX_MS)
  let current = outcome
  let count = current.declined?.length ?? 0
  if (count === 0) return current
  let quietSince = Date.now()
  while (count < current.invited.length && Date.now() - quietSince < quietMs && Date.now() < deadline && opts.signal?.aborted !== true) {
    await new Promise(resolve => setTimeout(resolve, 200))
    current = await client.getRound(current.id, { signal: opts.signal })
    const now = current.declined?.length ?? 0
    if (now !== count) { count = now; quietSince = Date.now() }
  }
  return current
}

/** The failure line with the declines counted as they stand now (the stored message counts those in at failure time). */
export function failureMessage (failure: { code: string, message: string } | null, declined: readonly RoundDecline[]): string {
  if (failure === null) return 'no reason given'
  // eslint-disable-next-line no-control-regex
  const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  const base = failure.message.replace(/; \d+ declined: [\s\S]*$/, '')
  if (declined.length === 0) return `${failure.code}: ${base}`
  const listed = declined.slice(0, 5).map(d => `${printable(d.agent)} ${printable(d.code)} ${printable(d.reason).slice(0, 240)}`)
  const more = declined.length > 5 ? `; and ${declined.length - 5} more` : ''
  return `${failure.code}: ${base}; ${declined.length} declined: ${listed.join('; ')}${more}`
}

export function register (program: Command): void {
  const round = program.command('round').description('ask the coordinator for secure-aggregation rounds')
    .addHelpText('after', '\nExample:\n  $ fedmon round run --window 2025-12-01T00:00:00Z..2025-12-08T00:00:00Z --wait')
  addApiOptions(round.command('run'))
    .description('run a round now over a time window; prints the round id (or the report with --wait --json)')
    .requiredOption('--window <FROM..TO>', 'the window, ISO-8601 or epoch ms, [FROM, TO)')
    .option('--reference', 'a reference round: its result becomes the drift baseline', false)
    .option('--refresh <age>', 'a label refresh of the window\'s report at this declared age (the spec\'s labels.refreshAfter, e.g. 30d): re-reads only the labels, over exactly the window\'s first included set')
    .option('--monitor <name>', 'the monitor to run the round for (required when the coordinator runs several)')
    .option('--wait', 'wait until the round is done or failed; prints the report id', false)
    .option('--json', 'with --wait: print the finished report as JSON', false)
    .option('--timeout <seconds>', 'with --wait: give up after this many seconds', '600')
    .addHelpText('after', '\nExamples:\n  $ fedmon round run --window 2025-12-01T00:00:00Z..2025-12-08T00:00:00Z --reference --wait --json\n  $ fedmon round run --window 2025-12-01T00:00:00Z..2025-12-08T00:00:00Z --refresh 30d --wait')
    .action(async (opts: RoundRunOptions) => {
      const window = parseWindowArg(opts.window)
      const timeoutS = Number(opts.timeout)
      if (opts.wait && !(timeoutS > 0)) throw new UsageError('--timeout must be a positive number of seconds')
      if (opts.refresh !== undefined) {
        if (opts.reference) throw new UsageError('--refresh re-reads the labels of a window\'s existing report (of either kind): it takes no --reference')
        try { parseDuration(opts.refresh) } catch { throw new UsageError(`--refresh must be a declared age such as 7d or 30d, got "${opts.refresh}"`) }
      }
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const client = clientFromOptions(opts)
      const roundId = await client.startRound({ window, reference: opts.reference, ...(opts.refresh !== undefined ? { refresh: opts.refresh } : {}), ...(opts.monitor !== undefined ? { monitor: opts.monitor } : {}) })
      if (!opts.wait) {
        process.stdout.write(opts.json ? `${JSON.stringify({ roundId })}\n` : `${roundId}\n`)
        return
      }
      const { progress } = await import('../ui/format.js')
      const spin = progress()
      const timeout = AbortSignal.timeout(timeoutS * 1000)
      let outcome
      try {
        spin.update(`round ${roundId}: starting`)
        outcome = await client.waitForRound(roundId, {
          signal: timeout,
          onProgress: (r) => {
            const phase = Object.keys(r.timings ?? {}).filter(k => !k.endsWith('Ms') && k !== 'total').pop()
            spin.update(`round ${roundId}: ${r.status}${phase !== undefined ? ` (${phase} done)` : ''}`)
          }
        })
      } catch (err) {
        if (timeout.aborted) throw new FedmonError(`round ${roundId} still running after ${timeoutS} s`, 'ERR_TIMEOUT')
        throw err
      } finally {
        spin.done()
      }
      if (outcome.status !== 'done' || outcome.reportId === null) outcome = await settleDeclines(client, outcome, { signal: timeout })
      const declined: RoundDecline[] = Array.isArray(outcome.declined) ? outcome.declined : []
      if (outcome.status !== 'done' || outcome.reportId === null) {
        const f = outcome.failure
        // --json: the outcome (with every agent's decline) on stdout for scripts; the one error line on stderr.
        if (opts.json) process.stdout.write(`${JSON.stringify(failedRoundJson(outcome, declined), null, 2)}\n`)
        else for (const line of declineLines(roundId, declined)) process.stderr.write(`${line}\n`)
        throw new FedmonError(`round ${roundId} ${outcome.status}: ${failureMessage(f, declined)}`, f?.code ?? 'ERR_ROUND_FAILED')
      }
      // The round finished without some agents that said why: tell the operator (stdout keeps the report).
      for (const line of declineLines(roundId, declined)) process.stderr.write(`${line}\n`)
      if (opts.json) {
        const report = await client.getReport(outcome.reportId)
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      } else {
        process.stdout.write(`${outcome.reportId}\n`)
      }
    })

  addApiOptions(round.command('list'))
    .description('rounds and scheduled windows, newest last: window, state, reason, agents included/dropped/declined')
    .option('--failed', 'only failed, aborted, retrying and missed ones', false)
    .option('--monitor <name>', 'only this monitor\'s')
    .option('--last <n>', 'how many (newest)', '20')
    .option('--json', 'print the list as JSON', false)
    .addHelpText('after', '\nExample:\n  $ fedmon round list --failed')
    .action(async (opts: RoundListOptions) => {
      const last = Number(opts.last)
      if (!Number.isInteger(last) || last < 1 || last > 10_000) throw new UsageError(`--last must be an integer in 1..10000, got "${opts.last}"`)
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const client = clientFromOptions(opts)
      const rounds = await client.listRounds({ last, failed: opts.failed, monitor: opts.monitor })
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ rounds }, null, 2)}\n`)
        return
      }
      const { renderRoundList } = await import('../ui/round-list-view.js')
      const { useColor } = await import('../ui/format.js')
      process.stdout.write(`${renderRoundList(rounds, { color: useColor(), failed: opts.failed, monitor: opts.monitor })}\n`)
    })
}

/** What `round run --wait --json` prints for a round that produced no report. */
function failedRoundJson (outcome: RoundOutcome, declined: RoundDecline[]): Record<string, unknown> {
  return {
    roundId: outcome.id,
    status: outcome.status,
    failure: outcome.failure,
    window: outcome.window,
    invited: outcome.invited,
    dropped: outcome.dropped,
    declined
  }
}
