import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('agent')
    .description('run a site agent: scans local prediction logs and takes part in secure-aggregation rounds')
    .requiredOption('--config <file>', 'agent config (YAML or JSON)')
    .addHelpText('after', '\nSignals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the roster file (federation.roster).\n\nExample:\n  $ fedmon agent --config site-a.yaml')
    .action(async (opts: { config: string }) => {
      const { loadAgentConfig } = await import('../../shared/config/agent.js')
      const { createLogger } = await import('../../shared/log.js')
      const { AgentDaemon } = await import('../../agent/daemon.js')
      const { runDaemon } = await import('../../shared/net/run-daemon.js')
      const config = loadAgentConfig(opts.config)
      const logger = createLogger('agent')
      const daemon = new AgentDaemon({
        config,
        logger,
        // Test-only / bench-only hooks, never set in production configs.
        testExitAfter: process.env.FEDMON_TEST_EXIT_AFTER || undefined,
        testStallAfter: process.env.FEDMON_TEST_STALL_AFTER || undefined,
        benchSyntheticInput: process.env.FEDMON_BENCH_SYNTHETIC === '1'
      })
      await runDaemon(daemon, logger, (info) => {
        if (info.createdIdentity) process.stdout.write(`created identity ${config.identity}: ${info.peerId}\n`)
        process.stdout.write(`agent ${info.peerId} listening on ${info.listen.join(', ')}\n`)
      })
    })
}
