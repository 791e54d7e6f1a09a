import type { Command } from 'commander'
import { UsageError, FedmonError } from '../../shared/errors.js'
import { addApiOptions, type ApiCliOptions } from '../../shared/api-client.js'
import type { Report } from '../../shared/report.js'
import type { SegmentReport } from '../../shared/stats/segments.js'

interface ReportOptions extends ApiCliOptions { json: boolean, html?: string, versions: boolean, monitor?: string, segment?: string }
interface HistoryOptions extends ApiCliOptions { json: boolean, metric: string, last: string, kind: string, monitor?: string, segment?: string }

export function register (program: Command): void {
  const report = addApiOptions(program.command('report').argument('[id]', 'report id, or "latest"', 'latest'))
    .description('print a report: header, performance, drift per feature, data quality, alerts')
    .option('--json', 'print the report object (design §5) as JSON', false)
    .option('--html <file>', 'write the report page as one self-contained HTML file (charts and data inline, no network when opened)')
    .option('--versions', 'list the versions of the report\'s window: its first round, then one per label refresh (age, labels, AUC)', false)
    .option('--monitor <name>', 'with "latest" and history: that monitor\'s reports (a deployment with several monitors; fedmon status lists them)')
    .option('--segment <column=value>', 'one segment cell of the report (spec.segments), e.g. region=north: its full performance section (with history: that cell\'s metric)')
    .addHelpText('after', '\nExamples:\n  $ fedmon report\n  $ fedmon report latest --segment region=north\n  $ fedmon report 7f3c2a… --json\n  $ fedmon report latest --versions\n  $ fedmon report latest --html report.html\n  $ fedmon report history --metric auc --last 30\n  $ fedmon report --monitor fraud\n  $ fedmon report history --monitor fraud --metric auc')
    .action(async (id: string, opts: ReportOptions) => {
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const client = clientFromOptions(opts)
      if (opts.versions) {
        const versions = await client.reportVersions(id === 'latest' && opts.monitor !== undefined ? (await client.latestReport({ monitor: opts.monitor })).id : id)
        if (opts.json) { process.stdout.write(`${JSON.stringify({ versions }, null, 2)}\n`); return }
        const { renderVersions } = await import('../ui/versions-view.js')
        process.stdout.write(`${renderVersions(versions)}\n`)
        return
      }
      const r = await client.getReport(id, { ...(opts.monitor !== undefined ? { monitor: opts.monitor } : {}) })
      if (opts.segment !== undefined) {
        const { cellReport } = await import('../../shared/stats/segments.js')
        const cell = await segmentOf(r, opts.segment)
        if (opts.json) { process.stdout.write(`${JSON.stringify(cell, null, 2)}\n`); return }
        if (cell.suppressed) { process.stdout.write(`segment ${opts.segment} of report ${r.id} is suppressed: ${cell.reason}\n`); return }
        const { renderReport } = await import('../../shared/stats/render.js')
        const { useColor } = await import('../ui/format.js')
        process.stdout.write(`segment ${opts.segment} (${cell.sites} sites with records in it)\n${renderReport(cellReport(r, cell), { color: useColor() }).replace(/\n+$/, '')}\n`)
        return
      }
      if (opts.html !== undefined) {
        const { writeStandaloneReport } = await import('../../coordinator/dashboard.js')
        const bytes = writeStandaloneReport(r, opts.html)
        process.stderr.write(`wrote ${opts.html} (${bytes.toLocaleString('en-US')} bytes, report ${r.id})\n`)
        if (!opts.json) return
      }
      if (opts.json) { process.stdout.write(`${JSON.stringify(r, null, 2)}\n`); return }
      const { renderReport } = await import('../../shared/stats/render.js')
      const { useColor } = await import('../ui/format.js')
      process.stdout.write(`${renderReport(r, { color: useColor() }).replace(/\n+$/, '')}\n`)
    })

  // --api, --token-file and --json are the parent's options (commander hands them to `report` wherever they
  // appear on the line), so history reads them through optsWithGlobals() and shows them in its help.
  report.command('history')
    .configureHelp({ showGlobalOptions: true })
    .description('one metric over the last reports: a table, a sparkline and a chart')
    .option('--metric <name>', 'dotted path into the report, or a short name (auc, pr_auc, log_loss, brier, ece, drift.<feature>.psi)', 'performance.auc.value')
    .option('--last <n>', 'how many reports', '30')
    .option('--kind <kind>', 'current, reference or any', 'any')
    .addHelpText('after', '\nWith --json it prints {metric, points: [...]}.\n\nExamples:\n  $ fedmon report history --metric auc --last 14\n  $ fedmon report history --metric drift.income.psi --json\n  $ fedmon report history --monitor fraud --metric auc')
    .action(async (_local: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<HistoryOptions>()
      const last = Number(opts.last)
      if (!Number.isInteger(last) || last < 1 || last > 10_000) throw new UsageError(`--last must be an integer between 1 and 10000, got "${opts.last}"`)
      if (opts.kind !== 'current' && opts.kind !== 'reference' && opts.kind !== 'any') throw new UsageError(`--kind must be current, reference or any, got "${opts.kind}"`)
      const { clientFromOptions } = await import('../../shared/api-client.js')
      const { historyPoints, renderHistory, canonicalMetric, HISTORY_METRIC_HINT } = await import('../ui/history-view.js')
      const { useColor } = await import('../ui/format.js')
      let metric: string
      try {
        metric = canonicalMetric(opts.metric)
      } catch {
        throw new UsageError(`--metric: cannot read "${opts.metric}"`)
      }
      if (metric.includes('*')) throw new UsageError(`--metric names one metric; "${opts.metric}" has a wildcard (e.g. use drift.age.psi)`)
      const reports = await clientFromOptions(opts).listReports({ last, kind: opts.kind, ...(opts.monitor !== undefined ? { monitor: opts.monitor } : {}) })
      let views = reports
      if (opts.segment !== undefined) {
        // the cell's figures per report; a report where the cell is suppressed (or absent) is a point without a value
        const { cellReport, findSegment, parseCellLabel } = await import('../../shared/stats/segments.js')
        const wanted = parseCellLabel(opts.segment)
        if (wanted === null) throw new UsageError(`--segment must be column=value (e.g. region=north), got "${opts.segment}"`)
        views = reports.map(r => {
          const s = findSegment(r, wanted)
          return s !== undefined && !s.suppressed ? cellReport(r, s) : { ...r, performance: {} as typeof r.performance, drift: { reference: null, features: {}, score: null }, segments: undefined }
        })
      }
      const points = historyPoints(views, opts.metric)
      if (reports.length > 0 && points.every(x => x.value === null)) {
        const where = opts.segment !== undefined ? ` in segment ${opts.segment} (a suppressed cell has no figures)` : ''
        throw new FedmonError(`no report has a numeric value for ${metric}${where} (${HISTORY_METRIC_HINT})`, 'ERR_UNKNOWN_METRIC')
      }
      if (opts.json) { process.stdout.write(`${JSON.stringify({ metric, ...(opts.segment !== undefined ? { segment: opts.segment } : {}), points }, null, 2)}\n`); return }
      process.stdout.write(`${renderHistory(points, opts.metric, { color: useColor() })}\n`)
    })
}

/** The report's cell named by --segment (column=value), or a UsageError listing its cells. */
async function segmentOf (report: Report, text: string): Promise<SegmentReport> {
  const { cellLabel, findSegment, parseCellLabel } = await import('../../shared/stats/segments.js')
  const wanted = parseCellLabel(text)
  if (wanted === null) throw new UsageError(`--segment must be column=value (e.g. region=north), got "${text}"`)
  if (report.segments === undefined) throw new UsageError(`report ${report.id} has no segments (its spec has no segments)`)
  const found = findSegment(report, wanted)
  if (found === undefined) throw new UsageError(`report ${report.id} has no segment ${text}; its cells: ${report.segments.map(s => cellLabel(s.cell)).join(', ')}`)
  return found
}
