import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'

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

interface EvaluateOptions { spec: string, data: string, window: string, referenceWindow?: string, format?: 'jsonl' | 'csv' | 'parquet', json?: boolean, color?: boolean }

export function register (program: Command): void {
  program.command('evaluate')
    .description('compute the monitoring report on local files, exactly as the federation would (layout → scan → sum of one → metrics)')
    .requiredOption('--spec <file>', 'monitor spec (YAML or JSON)')
    .requiredOption('--data <glob>', 'prediction logs: .jsonl/.ndjson, .csv or .parquet files (a glob)')
    .requiredOption('--window <from..to>', 'current window [FROM, TO): ISO-8601 or epoch ms')
    .option('--reference-window <from..to>', 'reference window for drift')
    .option('--format <format>', 'data format when the extension does not say (jsonl, csv, parquet)')
    .option('--json', 'print the report as one JSON document')
    .option('--no-color', 'no ANSI colours in the table')
    .addHelpText('after', '\nExample:\n  $ fedmon evaluate --spec spec.yaml --data "logs/*.jsonl" --window 2025-12-08..2025-12-15 --reference-window 2025-12-01..2025-12-08')
    .action(async (opts: EvaluateOptions) => {
      const window = parseWindow(opts.window, '--window')
      const referenceWindow = opts.referenceWindow !== undefined ? parseWindow(opts.referenceWindow, '--reference-window') : null
      if (opts.format !== undefined && !['jsonl', 'csv', 'parquet'].includes(opts.format)) throw new UsageError(`--format: expected jsonl, csv or parquet, got "${opts.format}"`)
      const { evaluateLocal } = await import('../../shared/stats/evaluate.js')
      const { scanWindowDetailed } = await import('../../agent/scan.js')
      const report = await evaluateLocal({
        specFile: opts.spec,
        source: { path: opts.data, ...(opts.format !== undefined ? { format: opts.format } : {}) },
        window,
        referenceWindow,
        scan: scanWindowDetailed
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
