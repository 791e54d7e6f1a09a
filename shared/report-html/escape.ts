/**
 * Escaping for the HTML the report pages are made of. Every name that comes from a spec, a config or a report
 * (feature names, categories, monitor names, alert messages, peer ids) is attacker-controlled text as far as a
 * page is concerned: it goes through `esc` (text and quoted attributes) or `jsonForScript` (data blocks).
 */
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text safe in element content and in double- or single-quoted attribute values. */
export function esc (value: unknown): string {
  return String(value).replace(/[&<>"']/g, c => HTML_ESCAPES[c])
}

/**
 * JSON to embed in `<script type="application/json">`: `<`, `>` and `&` as \u escapes, so no text in the data
 * can close the element or open a comment; U+2028/2029 escaped too (they end a line in older JS parsers).
 */
export function jsonForScript (value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
}

/** Script or style text to inline in a standalone page: a literal `</script` or `</style` would end the element. */
export function inlineSafe (code: string, element: 'script' | 'style'): string {
  return code.replace(new RegExp(`</(${element})`, 'gi'), '<\\/$1')
}

/** A path segment for a link (monitor names and report ids in URLs). */
export function urlSegment (s: string): string {
  return encodeURIComponent(s)
}
