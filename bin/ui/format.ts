/**
 * Terminal helpers for the commands people read (report history, status, demo): colour that follows
 * the TTY and NO_COLOR, ANSI-aware tables, sparklines, a small ASCII chart, relative times and a
 * progress spinner that only draws on a TTY.
 */

/** Colour only on a TTY and when NO_COLOR is unset (https://no-color.org); FORCE_COLOR=1 forces it. */
export function useColor (stream: { isTTY?: boolean } = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true
  return stream.isTTY === true
}

export interface Paint {
  bold: (s: string) => string
  dim: (s: string) => string
  red: (s: string) => string
  green: (s: string) => string
  yellow: (s: string) => string
  cyan: (s: string) => string
}

export function paint (color: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => color ? `\u001b[${open}m${s}\u001b[${close}m` : s
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
export function visibleWidth (s: string): number {
  return [...s.replace(ANSI, '')].length
}

/** Left-aligned text columns, right-aligned where `align[i] === 'right'`; two spaces between columns. */
export function table (header: string[], rows: string[][], opts: { align?: Array<'left' | 'right'>, indent?: string, paint?: Paint } = {}): string {
  const widths = header.map((h, i) => Math.max(visibleWidth(h), ...rows.map(r => visibleWidth(r[i] ?? ''))))
  const pad = (s: string, i: number): string => {
    const gap = ' '.repeat(widths[i] - visibleWidth(s))
    return opts.align?.[i] === 'right' ? gap + s : s + gap
  }
  const line = (cells: string[]): string => (opts.indent ?? '') + cells.map((c, i) => pad(c, i)).join('  ').trimEnd()
  const head = line(header)
  return [opts.paint !== undefined ? opts.paint.bold(head) : head, ...rows.map(line)].join('\n')
}

const BARS = '▁▂▃▄▅▆▇█'

/** One character per value; nulls are blanks. A flat series draws mid-height bars. */
export function sparkline (values: Array<number | null>): string {
  const finite = values.filter((v): v is number => v !== null && Number.isFinite(v))
  if (finite.length === 0) return ' '.repeat(values.length)
  const lo = Math.min(...finite)
  const hi = Math.max(...finite)
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return ' '
    if (hi === lo) return BARS[3]
    return BARS[Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))]
  }).join('')
}

/** A small line chart: `height` rows, y-axis labels on the left, one column per value (nulls blank). */
export function asciiChart (values: Array<number | null>, opts: { height?: number, format?: (x: number) => string } = {}): string {
  const height = opts.height ?? 8
  const format = opts.format ?? ((x: number) => formatNumber(x))
  const finite = values.filter((v): v is number => v !== null && Number.isFinite(v))
  if (finite.length === 0) return '(no values)'
  let lo = Math.min(...finite)
  let hi = Math.max(...finite)
  if (hi === lo) { hi += Math.abs(hi) * 0.01 || 0.5; lo -= Math.abs(lo) * 0.01 || 0.5 }
  const rowOf = (v: number): number => Math.round(((v - lo) / (hi - lo)) * (height - 1))
  const labels = Array.from({ length: height }, (_, r) => format(lo + ((hi - lo) * r) / (height - 1)))
  const labelWidth = Math.max(...labels.map(l => l.length))
  const lines: string[] = []
  for (let r = height - 1; r >= 0; r--) {
    const cells = values.map((v) => {
      if (v === null || !Number.isFinite(v)) return ' '
      const vr = rowOf(v)
      return vr === r ? '●' : vr > r ? '│' : ' '
    })
    const label = r === height - 1 || r === 0 || r === Math.floor((height - 1) / 2) ? labels[r] : ''
    lines.push(`${label.padStart(labelWidth)} ┤${cells.join(' ')}`)
  }
  lines.push(`${' '.repeat(labelWidth)} └${'─'.repeat(Math.max(1, values.length * 2 - 1))}`)
  return lines.join('\n')
}

/** Four significant digits, no exponent for ordinary magnitudes; null → "—". */
export function formatNumber (x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—'
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString('en-US')
  const abs = Math.abs(x)
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return x.toExponential(digits - 1)
  return Number(x.toPrecision(digits)).toString()
}

/** "just now", "42s ago", "5m ago", "3h ago", "2d ago"; future instants as "in 12m". */
export function relativeTime (iso: string | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return 'never'
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  const diff = now - t
  const abs = Math.abs(diff)
  let text: string
  if (abs < 5000) return 'just now'
  if (abs < 60_000) text = `${Math.round(abs / 1000)}s`
  else if (abs < 3_600_000) text = `${Math.round(abs / 60_000)}m`
  else if (abs < 86_400_000) text = `${Math.round(abs / 3_600_000)}h`
  else text = `${Math.round(abs / 86_400_000)}d`
  return diff >= 0 ? `${text} ago` : `in ${text}`
}

/** "2026-01-02 00:15Z" — compact UTC for tables. */
export function shortTime (iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—'
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  return new Date(t).toISOString().replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, 'Z')
}

/** "12D3KooWAbCd…wXyZ" */
export function shortId (id: string, keep = 8): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep + 4)}…${id.slice(-keep / 2)}`
}

export interface Progress {
  update: (text: string) => void
  done: (text?: string) => void
}

/** A one-line spinner on stderr when it is a TTY; silent otherwise (logs and pipes stay clean). Reusable after done(). */
export function progress (stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true) return { update () {}, done () {} }
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  let i = 0
  let text = ''
  let started = 0
  let timer: NodeJS.Timeout | null = null
  const draw = (): void => {
    const secs = ((Date.now() - started) / 1000).toFixed(1)
    stream.write(`\r\u001b[2K${frames[i++ % frames.length]} ${text} ${secs}s`)
  }
  return {
    update (t) {
      text = t
      if (timer === null) {
        started = Date.now()
        timer = setInterval(draw, 100)
        timer.unref()
      }
      draw()
    },
    done (t) {
      if (timer !== null) {
        clearInterval(timer)
        timer = null
        stream.write('\r\u001b[2K')
      }
      if (t !== undefined) stream.write(`${t}\n`)
    }
  }
}
