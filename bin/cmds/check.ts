import type { Command } from 'commander'
import { FedmonError } from '../../shared/errors.js'
import { parseWindow } from './evaluate.js'

interface CheckOptions { config: string, window?: string, spec?: string, json?: boolean }

export function register (program: Command): void {
  program.command('check')
    .description('check an agent\'s data as it would before contributing: files, records, per-column parse results, window coverage, the vector (exit 1 on problems)')
    .requiredOption('--config <file>', 'agent config (YAML or JSON): its data source, column mapping and policy')
    .option('--window <from..to>', 'the window [FROM, TO) to check: ISO-8601 or epoch ms (default: all records)')
    .option('--spec <file>', 'the federation\'s monitor spec (default: the spec defaults — score, label, no features)')
    .option('--json', 'print the check as one JSON document')
    .addHelpText('after', '\nExample:\n  $ fedmon check --config agent.yaml --spec spec.yaml --window 2025-12-08..2025-12-15')
    .action(async (opts: CheckOptions) => {
      const window = opts.window !== undefined ? parseWindow(opts.window, '--window') : undefined
      const { loadAgentConfig } = await import('../../shared/config/agent.js')
      const { loadMonitorSpec, parseMonitorSpec } = await import('../../shared/stats/spec.js')
      const config = loadAgentConfig(opts.config)
      const spec = opts.spec !== undefined ? loadMonitorSpec(opts.spec) : parseMonitorSpec({ model: 'check' })
      const { checkLocalData } = await import('../../agent/local-check.js')
      const check = await checkLocalData({ source: config.data, spec, window, maxBadFraction: config.policy.maxBadRecordFraction ?? 1, minRecords: config.policy.minRecords })
      if (opts.json === true) process.stdout.write(`${JSON.stringify({ ok: check.problem === null, ...check }, null, 2)}\n`)
      else {
        const { renderCheck } = await import('../ui/check-view.js')
        process.stdout.write(renderCheck(check, { specGiven: opts.spec !== undefined }))
      }
      // exit 1, one line on stderr: the problem as the agent would decline with it
      if (check.problem !== null) throw new FedmonError(`the data would be declined: ${check.problem}`, 'ERR_DATA_CHECK')
    })
}
