import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'
import { TsUnit, TS_UNITS, type DataSource } from '../../shared/stats/data-source.js'
import type { JoinedLabels } from '../../shared/stats/evaluate.js'

/** Parses one instant: epoch milliseconds or ISO-8601. */
export function parseInstant (text: string, what: string): number {
  const t = text.trim()
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t)
  const ms = Date.parse(t)
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(ms)) throw new UsageError(`${what}: "${text}" is neither epoch milliseconds nor ISO-8601`)
  return ms
}

/** Parses FROM..TO into [from, to) epoch milliseconds. */
export function parseWindow (text: string, what: string): { from: number, to: number } {
  const parts = text.split('..')
  if (parts.length !== 2) throw new UsageError(`${what}: expected FROM..TO, got "${text}"`)
  const from = parseInstant(parts[0], what)
  const to = parseInstant(parts[1], what)
  if (!(from < to)) throw new UsageError(`${what}: FROM must be before TO`)
  return { from, to }
}

interface EvaluateOptions { spec: string, data?: string, labels?: string, config?: string, window: string, referenceWindow?: string, format?: 'jsonl' | 'csv' | 'parquet', tsUnit?: string, json?: boolean, color?: boolean }

export function register (program: Command): void {
  program.command('evaluate')
    .description('compute the monitoring report on local files, exactly as the federation would (layout → scan → sum of one → metrics)')
    .requiredOption('--spec <file>', 'monitor spec (YAML or JSON)')
    .option('--data <glob>', 'prediction logs: .jsonl/.ndjson, .csv or .parquet files (a glob)')
    .option('--labels <glob>', 'labels kept apart from the logs (.jsonl, .csv or .parquet; columns id, label, ts), joined to the predictions by id: the latest ts per id wins (with --data; an agent config says data.labels)')
    .option('--config <file>', 'an agent config: use its data source, label source and column mapping (instead of --data)')
    .requiredOption('--window <from..to>', 'current window [FROM, TO): ISO-8601 or epoch ms')
    .option('--reference-window <from..to>', 'reference window for drift')
    .option('--format <format>', 'data format when the extension does not say (jsonl, csv, parquet)')
    .option('--ts-unit <unit>', 'unit of numeric timestamps: auto (by magnitude), s, ms, us or ns', 'auto')
    .option('--json', 'print the report as one JSON document')
    .option('--no-color', 'no ANSI colours in the table')
    .addHelpText('after', '\nExample:\n  $ fedmon evaluate --spec spec.yaml --data "logs/*.jsonl" --window 2025-12-08..2025-12-15 --reference-window 2025-12-01..2025-12-08\n  $ fedmon evaluate --spec spec.yaml --config agent.yaml --window 2025-12-08..2025-12-15\n  $ fedmon evaluate --spec spec.yaml --data "logs/*.jsonl" --labels "labels/*.csv" --window 2025-12-08..2025-12-15')
    .action(async (opts: EvaluateOptions) => {
      const window = parseWindow(opts.window, '--window')
      const referenceWindow = opts.referenceWindow !== undefined ? parseWindow(opts.referenceWindow, '--reference-window') : null
      const source = await sourceOf(opts)
      const { evaluateLocal } = await import('../../shared/stats/evaluate.js')
      const { scanWindowDetailed } = await import('../../agent/scan.js')
      const report = await evaluateLocal({
        specFile: opts.spec,
        source,
        window,
        referenceWindow,
        scan: scanWindowDetailed,
        onLabels: (labels, recordsInWindow) => { process.stderr.write(labelsLine(labels, recordsInWindow)) }
      })
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n')
        return
      }
      const { renderReport } = await import('../../shared/stats/render.js')
      const color = opts.color !== false && process.stdout.isTTY === true && process.env.NO_COLOR === undefined
      process.stdout.write(renderReport(report, { color }))
    })
}

/** One line for the operator (stderr) on the label join: what a round's agent would log. */
function labelsLine (l: JoinedLabels, recordsInWindow: number): string {
  if (l.files.length === 0) return 'labels: no label file matches yet: only the logs\' own labels count\n'
  return `labels: ${l.records} label record${l.records === 1 ? '' : 's'} in ${l.files.length} file${l.files.length === 1 ? '' : 's'}, ${l.ids} id${l.ids === 1 ? '' : 's'} ` +
    `(${l.duplicateIds} with several records: latest ts won), joined to ${l.joined} of the window's ${recordsInWindow} predictions` +
    `${l.predictionsWithoutId > 0 ? ` (${l.predictionsWithoutId} without an id)` : ''}; ${l.unknownIds} unknown ids (no prediction has them)\n`
}

/** The data source: --config's (path, format, column mapping), or one made of --data, --format and --ts-unit. */
async function sourceOf (opts: EvaluateOptions): Promise<DataSource> {
  if ((opts.data === undefined) === (opts.config === undefined)) throw new UsageError('give either --data <glob> or --config <agent config>')
  if (opts.config !== undefined) {
    if (opts.format !== undefined || opts.tsUnit !== 'auto') throw new UsageError('--format and --ts-unit go with --data; with --config, the agent config\'s data section says them')
    if (opts.labels !== undefined) throw new UsageError('--labels goes with --data; with --config, the agent config\'s data.labels says where the labels are')
    const { loadAgentConfig } = await import('../../shared/config/agent.js')
    return loadAgentConfig(opts.config).data
  }
  if (opts.format !== undefined && !['jsonl', 'csv', 'parquet'].includes(opts.format)) throw new UsageError(`--format: expected jsonl, csv or parquet, got "${opts.format}"`)
  const tsUnit = TsUnit.safeParse(opts.tsUnit)
  if (!tsUnit.success) throw new UsageError(`--ts-unit: expected one of ${TS_UNITS.join(', ')}, got "${String(opts.tsUnit)}"`)
  return {
    path: opts.data as string,
    ...(opts.format !== undefined ? { format: opts.format } : {}),
    ...(tsUnit.data !== 'auto' ? { columns: { tsUnit: tsUnit.data } } : {}),
    ...(opts.labels !== undefined ? { labels: { path: opts.labels } } : {})
  }
}
