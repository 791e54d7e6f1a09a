import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('coordinator')
    .description('run the coordinator daemon: roster, secure-aggregation rounds, report store, HTTP API')
    .requiredOption('--config <file>', 'coordinator config (YAML or JSON)')
    .addHelpText('after', '\nSignals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the roster (`agents`, inline or its roster file).\n\nExample:\n  $ fedmon coordinator --config coordinator.yaml')
    .action(async (opts: { config: string }) => {
      const { loadCoordinatorConfig } = await import('../../shared/config/coordinator.js')
      const { createLogger } = await import('../../shared/log.js')
      const { CoordinatorDaemon } = await import('../../coordinator/daemon.js')
      const { runDaemon } = await import('../../shared/net/run-daemon.js')
      const config = loadCoordinatorConfig(opts.config)
      const logger = createLogger('coordinator')
      const { exitPointFromEnv } = await import('../../coordinator/rounds.js')
      const daemon = new CoordinatorDaemon({ config, logger, testDumpFramesFile: process.env.FEDMON_TEST_DUMP_FRAMES, testExitAt: exitPointFromEnv(), testCompactAnnounceFrom: compactFromEnv() })
      await runDaemon(daemon, logger, (info) => {
        if (info.createdIdentity) process.stdout.write(`created identity ${config.identity}: ${info.peerId}\n`)
        process.stdout.write(`coordinator ${info.peerId} listening on ${info.listen.join(', ')}; API http://${info.api}\n`)
      })
    })
}

/** FEDMON_TEST_COMPACT_ANNOUNCE_FROM (tests): a small round uses the roster-bitmap Announce of large ones. */
function compactFromEnv (): number | undefined {
  const v = process.env.FEDMON_TEST_COMPACT_ANNOUNCE_FROM
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`FEDMON_TEST_COMPACT_ANNOUNCE_FROM must be a positive integer, got ${v}`)
  return n
}
