import { formatDuration } from '../../shared/config/duration.js'
import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'

/**
 * `fedmon ledger show|reset`: the agent's contribution ledger, for its operator. `reset` is the one way to let
 * an agent contribute to windows that start before its ledger's notBefore (set when a ledger was lost and
 * started again): the operator states since when the ledger is known to be complete, and why; the reset is
 * recorded in the ledger file for good and logged. Run it with the agent stopped.
 */
export function register (program: Command): void {
  const ledger = program.command('ledger').description('inspect or reset an agent\'s contribution ledger (run with the agent stopped)')

  ledger.command('show')
    .description('print the ledger: since when it is complete, resets, and the rounds it recorded')
    .requiredOption('--config <file>', 'agent config (YAML or JSON)')
    .option('--json', 'print the ledger file as JSON', false)
    .action(async (opts: { config: string, json: boolean }) => {
      const { open } = await openLedger(opts.config)
      const l = open()
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ file: l.file, createdAt: l.createdAt, notBefore: l.notBefore, resets: l.resets, entries: l.entries() }, null, 2)}\n`)
        return
      }
      const iso = (t: number | null): string => t === null ? '—' : new Date(t).toISOString()
      process.stdout.write(`ledger     ${l.file}\ncreated    ${iso(l.createdAt)}\nnot before ${l.notBefore === null ? '— (complete history)' : iso(l.notBefore)}\n`)
      for (const r of l.resets) process.stdout.write(`reset      ${iso(r.at)}: not before ${iso(r.notBefore)} — ${r.reason}\n`)
      process.stdout.write(`rounds     ${l.entries().length} (${l.entries().filter(e => e.contributedAt !== null).length} contributed)\n`)
      // What this site has given: per ledger scope (the data source a monitor reads: monitors reading other files
      // sum the same window separately), one line per round, oldest window first.
      const scopes = new Map<string, ReturnType<typeof l.entries>>()
      for (const e of l.entries()) {
        const scope = (e as { scope?: string }).scope ?? '(every data source: recorded before monitors)'
        scopes.set(scope, [...(scopes.get(scope) ?? []), e])
      }
      for (const [scope, entries] of scopes) {
        process.stdout.write(`scope      ${scope}\n`)
        for (const e of [...entries].sort((a, b) => a.window.from - b.window.from || a.joinedAt - b.joinedAt)) {
          // Joined but never sent a masked input: it declined, dropped out, or the round failed before that.
          const state = e.contributedAt !== null ? `contributed ${iso(e.contributedAt)}` : `joined ${iso(e.joinedAt)}, not contributed (declined, dropped or failed)`
          // A refresh re-read the labels of a window contributed before, over that round's included set.
          const what = e.refresh !== undefined ? `label refresh at ${formatDuration(e.refresh.ageMs)} of round ${e.refresh.of}${e.revealedAt !== undefined ? `, revealed ${iso(e.revealedAt)}` : ', not revealed'}` : `${e.participants.length} participants${e.included !== undefined ? `, ${e.included.count} included` : ''}`
          const eps = e.epsilon !== undefined ? `  ε ${e.epsilon}` : ''
          process.stdout.write(`  ${iso(e.window.from)} .. ${iso(e.window.to)}  ${e.reference ? 'reference ' : ''}round ${e.roundId}  spec ${e.specHash.slice(0, 12)}  ${what}${eps}  ${state}\n`)
        }
      }
    })

  ledger.command('reset')
    .description('allow windows from --not-before on again after a lost ledger (recorded in the ledger and logged)')
    .requiredOption('--config <file>', 'agent config (YAML or JSON)')
    .requiredOption('--not-before <instant>', 'ISO-8601 instant from which the ledger is known complete, or "any" for no limit')
    .requiredOption('--reason <text>', 'why this is safe (e.g. the ledger was restored from a backup taken at …)')
    .action(async (opts: { config: string, notBefore: string, reason: string }) => {
      const { open, logger } = await openLedger(opts.config)
      const notBefore = opts.notBefore === 'any' ? null : Date.parse(opts.notBefore)
      if (notBefore !== null && Number.isNaN(notBefore)) throw new UsageError(`--not-before: not an ISO-8601 instant: ${opts.notBefore}`)
      if (opts.reason.trim().length < 8) throw new UsageError('--reason: say why this is safe (at least 8 characters); it is kept in the ledger')
      const l = open()
      const before = l.notBefore
      l.reset(notBefore, opts.reason.trim())
      logger.warn({ ledger: l.file, notBeforeWas: before, notBefore, reason: opts.reason.trim() }, 'contribution ledger reset by the operator: windows from notBefore on may be contributed again')
      process.stdout.write(`ledger ${l.file}: not before ${notBefore === null ? 'any window' : new Date(notBefore).toISOString()} (was ${before === null ? 'any window' : new Date(before).toISOString()})\n`)
    })
}

async function openLedger (configFile: string): Promise<{ open: () => import('../../agent/ledger.js').ContributionLedger, logger: import('../../shared/log.js').Logger }> {
  const { loadAgentConfig } = await import('../../shared/config/agent.js')
  const { ContributionLedger } = await import('../../agent/ledger.js')
  const { createLogger } = await import('../../shared/log.js')
  const config = loadAgentConfig(configFile)
  const logger = createLogger('ledger')
  return {
    logger,
    open: () => ContributionLedger.open(config.state, {
      identityFile: config.identity,
      maxRoundsPerWindow: config.policy.maxRoundsPerWindow,
      onLost: info => logger.error(info, 'no contribution ledger in the state dir, but this identity kept one: started a new ledger that refuses windows before notBefore')
    })
  }
}
