import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'

interface DemoCliOptions { keep: boolean, dir: string, rows: string }

export function register (program: Command): void {
  program.command('demo')
    .description('run a whole federation on this machine: keys, configs and drifting data for 5 sites, a coordinator and 5 agents on loopback, a reference and a current round, the report')
    .option('--keep', 'leave the coordinator and agents running afterwards (for fedmon report/status)', false)
    .option('--dir <dir>', 'where keys, configs, data, the store and logs go (wiped first if a previous demo is there)', '.fedmon-demo')
    .option('--rows <n>', 'prediction records per site (over two weeks)', '10000')
    .addHelpText('after', '\nExamples:\n  $ fedmon demo\n  $ fedmon demo --keep --rows 50000')
    .action(async (opts: DemoCliOptions) => {
      const rows = Number(opts.rows)
      if (!Number.isInteger(rows) || rows < 200 || rows > 5_000_000) throw new UsageError(`--rows must be an integer between 200 and 5000000, got "${opts.rows}"`)
      const { runDemo } = await import('../demo/run.js')
      const controller = new AbortController()
      const onSignal = (): void => { controller.abort() }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        await runDemo({ dir: opts.dir, rows, keep: opts.keep, signal: controller.signal })
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
