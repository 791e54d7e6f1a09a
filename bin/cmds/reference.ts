import type { Command } from 'commander'
import { addApiOptions, type ApiCliOptions } from '../../shared/api-client.js'

interface ReferenceOptions extends ApiCliOptions { json: boolean }

export function register (program: Command): void {
  const reference = program.command('reference')
    .description('show or switch the reference report that drift is measured against')
    .addHelpText('after', '\nExamples:\n  $ fedmon reference show\n  $ fedmon reference set 7f3c…')

  addApiOptions(reference.command('show'))
    .description('print the current reference report id and when it was set')
    .option('--json', 'print {reportId, setAt} (or null) as JSON', false)
    .addHelpText('after', '\nExample:\n  $ fedmon reference show --api http://127.0.0.1:7600')
    .action(async (opts: ReferenceOptions) => {
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const client = clientFromOptions(opts)
      const ref = await client.getReference()
      if (opts.json) { process.stdout.write(`${JSON.stringify(ref)}\n`); return }
      if (ref === null) {
        process.stdout.write('no reference set (run a reference round: fedmon round run --window FROM..TO --reference --wait)\n')
        return
      }
      const report = await client.getReport(ref.reportId).catch(() => null)
      const window = report !== null ? `  window ${report.window.from} → ${report.window.to}` : ''
      process.stdout.write(`${ref.reportId}  set ${ref.setAt}${window}\n`)
    })

  addApiOptions(reference.command('set').argument('<id>', 'report id of a reference-capable report (e.g. from a reference round)'))
    .description('make a report the reference for drift from now on')
    .option('--json', 'print {reportId, setAt} as JSON', false)
    .addHelpText('after', '\nExample:\n  $ fedmon reference set 7f3c2a…')
    .action(async (id: string, opts: ReferenceOptions) => {
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const ref = await clientFromOptions(opts).setReference(id)
      process.stdout.write(opts.json ? `${JSON.stringify(ref)}\n` : `reference set to ${ref.reportId} at ${ref.setAt}\n`)
    })
}
