/** The text of `fedmon round list`. Pure, so tests can check it without a coordinator. */
import type { RoundListEntry } from '../../shared/round-list.js'
import { paint, shortTime, table, type Paint } from './format.js'

/** A status word in its colour: done green, running/retrying yellow, failed/aborted/missed red. */
export function paintStatus (p: Paint, status: string): string {
  if (status === 'done') return p.green(status)
  if (status === 'running' || status === 'retrying') return p.yellow(status)
  return p.red(status)
}

/** One-line reason: code and message, control characters blanked, cut at `max` characters. */
export function reasonText (entry: Pick<RoundListEntry, 'failure' | 'status' | 'nextAttemptAt'>, max = 120): string {
  const f = entry.failure
  if (f === null || f === undefined) return ''
  // eslint-disable-next-line no-control-regex
  const text = `${f.code}: ${f.message}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
  const cut = text.length > max ? `${text.slice(0, max - 1)}…` : text
  return entry.status === 'retrying' && entry.nextAttemptAt != null ? `${cut} (next try ${shortTime(entry.nextAttemptAt)})` : cut
}

export function renderRoundList (entries: readonly RoundListEntry[], opts: { color: boolean, failed?: boolean, monitor?: string }): string {
  const p = paint(opts.color)
  if (entries.length === 0) {
    const what = opts.failed === true ? 'no failed, retrying or missed rounds' : 'no rounds yet'
    return opts.monitor !== undefined ? `${what} for monitor ${opts.monitor}` : what
  }
  const rows = entries.map(e => [
    `${shortTime(e.window.from)} → ${shortTime(e.window.to)}`,
    e.monitor,
    e.kind + (isRefresh(e.refresh) ? ` (refresh ${e.refresh.age})` : '') + (e.scheduledWindowKey !== null ? ' (scheduled)' : ''),
    paintStatus(p, e.status),
    e.id ?? '—',
    String(e.counts.included),
    String(e.counts.dropped),
    String(e.counts.declined),
    reasonText(e)
  ])
  return table(['WINDOW', 'MONITOR', 'KIND', 'STATE', 'ROUND', 'INCLUDED', 'DROPPED', 'DECLINED', 'REASON'], rows, { align: ['left', 'left', 'left', 'left', 'left', 'right', 'right', 'right', 'left'], paint: p })
}

/** A label-refresh round's entry carries its declared age (coordinator/contracts.ts RoundOutcome.refresh). */
function isRefresh (x: unknown): x is { age: string } {
  return typeof x === 'object' && x !== null && typeof (x as { age?: unknown }).age === 'string'
}
