/** The text of `fedmon status`. Pure, so tests can check it without a coordinator. */
import type { AgentInfo, HealthResponse, StatusResponse } from '../../shared/api-client.js'
import { paint, relativeTime, shortId, shortTime, table } from './format.js'
import { paintStatus, reasonText } from './round-list-view.js'

export function renderStatus (input: { api: string, health: HealthResponse, status: StatusResponse, agents: AgentInfo[] }, opts: { color: boolean, now?: number }): string {
  const p = paint(opts.color)
  const now = opts.now ?? Date.now()
  const { health, status, agents } = input
  const lines: string[] = []
  const up = health.uptimeS !== undefined ? ` (up ${formatUptime(health.uptimeS)})` : ''
  const ok = health.status === 'ok' && status.status === 'ok'
  lines.push(`${p.bold('coordinator')}  ${status.peerId ?? health.peerId ?? '?'}  ${ok ? p.green('ok') : p.red(status.status)}${up}`)
  lines.push(`${p.bold('api')}          ${input.api}`)
  if (status.model !== undefined) lines.push(`${p.bold('model')}        ${status.model}${status.specHash !== undefined ? p.dim(`  spec ${status.specHash.slice(0, 12)}`) : ''}`)
  const online = status.agents.online
  const total = status.agents.total
  const onlineText = `${online}/${total} online`
  lines.push(`${p.bold('agents')}       ${online === total ? p.green(onlineText) : online === 0 ? p.red(onlineText) : p.yellow(onlineText)}`)
  if (agents.length > 0) {
    const rows = agents.map(a => [
      shortId(a.peerId, 10),
      a.online ? p.green('online') : p.red('offline'),
      relativeTime(a.lastSeen, now),
      a.lastIncludedRound ?? '—'
    ])
    lines.push(table(['PEER', 'STATE', 'LAST SEEN', 'LAST ROUND INCLUDED'], rows, { indent: '  ', paint: p }))
  }
  const last = status.lastRound ?? null
  if (last === null) {
    lines.push(`${p.bold('last round')}   none yet`)
  } else {
    const state = last.status === 'done' ? p.green(last.status) : last.status === 'running' ? p.yellow(last.status) : p.red(last.status)
    const window = last.window !== undefined ? `${shortTime(last.window.from)} → ${shortTime(last.window.to)}` : ''
    const counts = Array.isArray(last.included) ? `${last.included.length} included, ${last.dropped?.length ?? 0} dropped` : ''
    const dur = last.finishedAt != null && last.startedAt !== undefined ? `${((Date.parse(last.finishedAt) - Date.parse(last.startedAt)) / 1000).toFixed(1)} s` : ''
    const detail = [last.kind, state, [window, counts, dur].filter(s => s !== '').join(', ')].filter(s => s !== undefined && s !== '').join('  ')
    lines.push(`${p.bold('last round')}   ${last.id}  ${detail}`)
    if (last.failure != null) lines.push(`             ${p.red(`${last.failure.code}: ${last.failure.message}`)}`)
    if (last.reportId != null) lines.push(`             report ${last.reportId}  (fedmon report ${last.reportId})`)
  }
  const failures = status.recentFailures ?? []
  if (failures.length > 0) {
    lines.push(`${p.bold('failures')}     ${p.red(`${failures.length} recent`)}  (fedmon round list --failed)`)
    const rows = failures.map(f => [
      `${shortTime(f.window.from)} → ${shortTime(f.window.to)}`,
      paintStatus(p, f.status),
      f.id ?? (f.scheduledWindowKey !== null ? 'scheduled' : '—'),
      `${f.counts.included}/${f.counts.dropped}/${f.counts.declined}`,
      reasonText(f, 100)
    ])
    lines.push(table(['WINDOW', 'STATE', 'ROUND', 'INC/DROP/DECL', 'REASON'], rows, { indent: '  ', paint: p }))
  }
  const next = status.nextScheduledRound ?? null
  lines.push(`${p.bold('next round')}   ${next === null ? 'manual only (no schedule configured)' : `${shortTime(next)} (${relativeTime(next, now)})`}`)
  const ref = status.reference ?? null
  lines.push(`${p.bold('reference')}    ${ref === null ? p.yellow('none — drift needs one: fedmon round run --reference --wait') : `${ref.reportId} (set ${relativeTime(ref.setAt, now)})`}`)
  // Several monitors: the lines above are the first one's (or --monitor's); the table has every monitor.
  const monitors = status.monitors ?? []
  if (monitors.length > 1) {
    lines.push(`${p.bold('monitors')}     ${monitors.length}  (lines above: ${status.monitor ?? monitors[0].name}; fedmon status --monitor NAME, fedmon report --monitor NAME)`)
    const rows = monitors.map((m) => {
      const last = m.lastRound
      const lastText = last === null ? '—' : `${paintStatus(p, last.status)} ${shortTime(last.window.from)} → ${shortTime(last.window.to)} (${relativeTime(last.finishedAt ?? last.startedAt, now)})`
      return [
        m.name,
        m.model,
        m.schedule === null ? 'manual' : `every ${m.schedule.every}`,
        m.running !== null ? p.yellow('running') : lastText,
        m.nextScheduledRound === null ? '—' : `${shortTime(m.nextScheduledRound)} (${relativeTime(m.nextScheduledRound, now)})`,
        m.reference === null ? p.yellow('none') : shortId(m.reference.reportId, 18)
      ]
    })
    lines.push(table(['MONITOR', 'MODEL', 'SCHEDULE', 'LAST ROUND', 'NEXT ROUND', 'REFERENCE'], rows, { indent: '  ', paint: p }))
  }
  return lines.join('\n')
}

function formatUptime (s: number): string {
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`
}
