import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'

interface DemoCliOptions { keep: boolean, dir: string, rows: string, dp?: string | boolean }

export function register (program: Command): void {
  program.command('demo')
    .description('run a whole federation on this machine: keys, configs and drifting data for 5 sites, a coordinator and 5 agents on loopback, a reference and a current round, the report')
    .option('--keep', 'leave the coordinator and agents running afterwards (for fedmon report/status)', false)
    .option('--dir <dir>', 'where keys, configs, data, the store and logs go (wiped first if a previous demo is there)', '.fedmon-demo')
    .option('--rows <n>', 'prediction records per site (over two weeks)', '10000')
    .option('--dp [epsilon]', 'run under distributed differential privacy (ε per round, default 1) and print the exact figures beside the published ones')
    .addHelpText('after', '\nExamples:\n  $ fedmon demo\n  $ fedmon demo --keep --rows 50000\n  $ fedmon demo --dp 1')
    .action(async (opts: DemoCliOptions) => {
      const rows = Number(opts.rows)
      if (!Number.isInteger(rows) || rows < 200 || rows > 5_000_000) throw new UsageError(`--rows must be an integer between 200 and 5000000, got "${opts.rows}"`)
      const dpEpsilon = opts.dp === undefined || opts.dp === false ? undefined : opts.dp === true ? 1 : Number(opts.dp)
      if (dpEpsilon !== undefined && !(dpEpsilon > 0 && dpEpsilon <= 20)) throw new UsageError(`--dp must be an ε in (0, 20], got "${String(opts.dp)}"`)
      const { runDemo } = await import('../demo/run.js')
      const controller = new AbortController()
      const onSignal = (): void => { controller.abort() }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        await runDemo({ dir: opts.dir, rows, keep: opts.keep, signal: controller.signal, dpEpsilon })
      } catch (err) {
        if (!controller.signal.aborted) throw err
        // Ctrl-C: the daemons are already stopped; say so in one line and exit like a shell would (130).
        process.stderr.write('fedmon: demo interrupted; the federation is stopped\n')
        process.exitCode = 130
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    })
}
