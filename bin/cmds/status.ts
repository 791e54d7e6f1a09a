import type { Command } from 'commander'
import { addApiOptions, type ApiCliOptions } from '../../shared/api-client.js'

interface StatusOptions extends ApiCliOptions { json: boolean, monitor?: string }

export function register (program: Command): void {
  addApiOptions(program.command('status'))
    .description('coordinator health, agents on the roster (online, last seen, last round included), last and next round, reference; every monitor with its last and next round')
    .option('--json', 'print the status, agents and health as one JSON object', false)
    .option('--monitor <name>', 'the status lines of this monitor (default: the first); the monitors table lists them all')
    .addHelpText('after', '\nExample:\n  $ fedmon status --api http://127.0.0.1:7600')
    .action(async (opts: StatusOptions) => {
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const { renderStatus } = await import('../ui/status-view.js')
      const { useColor } = await import('../ui/format.js')
      const client = clientFromOptions(opts)
      const [health, status, agents] = await Promise.all([client.health(), client.status({ ...(opts.monitor !== undefined ? { monitor: opts.monitor } : {}) }), client.agents()])
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ health, ...status, agents: { ...status.agents, roster: agents } }, null, 2)}\n`)
        return
      }
      process.stdout.write(`${renderStatus({ api: client.baseUrl, health, status, agents }, { color: useColor() })}\n`)
    })
}
