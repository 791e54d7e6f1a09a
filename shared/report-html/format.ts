/** Number formats shared by every page and by the tests that read the pages back. */

/** A metric: fixed `digits` decimals, `—` when absent, exponent for tiny non-zero values (as the terminal). */
export function num (x: unknown, digits = 4): string {
  if (typeof x !== 'number' || Number.isNaN(x)) return '—'
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞'
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1)
  return x.toFixed(digits)
}

/** A count with thousands separators. */
export function int (x: unknown): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US') : '—'
}

/** A share in percent with one decimal. */
export function pct (part: number, total: number): string {
  return total > 0 ? `${(100 * part / total).toFixed(1)} %` : '—'
}

/** An ISO instant shortened for tables: "2025-12-08 00:00Z". */
export function when (iso: string | null | undefined): string {
  if (typeof iso !== 'string' || iso === '') return '—'
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso)
  return m === null ? iso : `${m[1]} ${m[2]}Z`
}

/** A dotted path into an object (the report's metric paths). */
export function pathValue (obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}
