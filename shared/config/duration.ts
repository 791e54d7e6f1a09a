/**
 * Durations as people write them in configs: "30s", "15m", "1h", "1d", also compound ("1h30m") and "500ms".
 * Only whole positive amounts; anything else is rejected with a message naming the input.
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

const PART = /(\d+)(ms|s|m|h|d|w)/g
const WHOLE = /^(?:\d+(?:ms|s|m|h|d|w))+$/

export class DurationError extends Error {
  readonly code = 'ERR_DURATION'
  constructor (input: string) {
    super(`invalid duration "${input}" (expected e.g. "30s", "15m", "1h", "1d", "1h30m")`)
    this.name = 'DurationError'
  }
}

/** Parses a duration string to milliseconds. `allowZero` permits "0s" (e.g. a schedule delay of zero). */
export function parseDuration (input: string, opts: { allowZero?: boolean } = {}): number {
  const text = input.trim()
  if (!WHOLE.test(text)) throw new DurationError(input)
  let total = 0
  for (const match of text.matchAll(PART)) total += Number(match[1]) * UNIT_MS[match[2]]
  if (!Number.isSafeInteger(total) || (total === 0 && opts.allowZero !== true)) throw new DurationError(input)
  return total
}

/** The inverse for display: 5400000 → "1h30m". */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0s'
  let rest = Math.round(ms)
  let out = ''
  for (const unit of ['d', 'h', 'm', 's', 'ms']) {
    const size = UNIT_MS[unit]
    const n = Math.floor(rest / size)
    if (n > 0) { out += `${n}${unit}`; rest -= n * size }
  }
  return out
}
