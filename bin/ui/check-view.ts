/** The table `fedmon check` prints (agent/local-check.ts). */
import type { LocalCheck } from '../../agent/local-check.js'
import { table } from './format.js'

const iso = (t: number | null | undefined): string => (t === null || t === undefined ? '—' : new Date(t).toISOString())

export function renderCheck (c: LocalCheck, opts: { specGiven: boolean }): string {
  const out: string[] = []
  out.push(`data       ${c.data.path} (${c.data.format ?? 'unknown format'}, ${c.data.files.length} file${c.data.files.length === 1 ? '' : 's'})`)
  out.push(`window     ${c.window === 'all' ? 'all records (no --window)' : `${iso(c.window.from)} .. ${iso(c.window.to)}`}`)
  out.push(`records    ${c.records.total} in the files, ${c.records.inWindow} in the window, ${c.records.withoutTimestamp} without a usable ts` +
    (c.records.malformedRows > 0 ? ` (${c.records.malformedRows} malformed CSV row${c.records.malformedRows === 1 ? '' : 's'})` : ''))
  const t = c.timestamps
  if (t !== null) out.push(`coverage   first usable ts ${iso(t.first)}, last ${iso(t.last)}; ${c.records.inWindow} record${c.records.inWindow === 1 ? '' : 's'} in the window`)
  const units = Object.entries(c.tsUnits).map(([u, n]) => `${n} as epoch ${u}`).join(', ')
  out.push(`ts unit    ${c.tsUnit}${units !== '' ? ` (window's numeric ts read: ${units})` : ''}`)
  const l = c.labels
  if (l !== null) {
    const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`
    out.push(`labels     ${l.path} (${l.format ?? 'unknown format'}, ${plural(l.files.length, 'file')}): ${plural(l.records, 'label record')}, ${plural(l.ids, 'id')}` +
      ` (${l.duplicateIds} with several records: latest ts wins), ${plural(l.unknownIds, 'unknown id')}` +
      (l.withoutId + l.withoutLabel > 0 ? `; ignored: ${l.withoutId} without an id, ${l.withoutLabel} with an empty label` : ''))
    out.push(`joined     ${l.joined} of the window's ${c.records.inWindow} predictions${l.joinedShare !== null ? ` (${Math.round(100 * l.joinedShare)} %)` : ''} got a label by id` +
      `; ${l.predictionsWithoutId} ha${l.predictionsWithoutId === 1 ? 's' : 've'} no id (column \`${l.idColumn}\`)`)
  }
  out.push('')
  out.push(table(['role', 'column', 'over', 'usable', 'missing', 'bad'],
    c.columns.map(col => [col.role, col.column, col.over === 'source' ? 'all records' : 'window', String(col.usable), String(col.missing), String(col.bad)]),
    { align: ['left', 'left', 'left', 'right', 'right', 'right'] }).trimEnd())
  out.push('')
  const features = c.vector.features.map(f => `${f.name} (${f.type}, ${f.buckets} buckets)`).join(', ')
  out.push(`vector     ${c.vector.length} entries, spec ${c.vector.specHash.slice(0, 12)}${opts.specGiven ? '' : ' (spec defaults: pass --spec for the federation\'s)'}: ${c.vector.scoreBins !== null ? `${c.vector.scoreBins} score bins, ` : ''}${c.vector.calibrationBins !== null ? `${c.vector.calibrationBins} calibration bins, ` : ''}features: ${features !== '' ? features : 'none'}`)
  for (const w of c.warnings) out.push(`warning    ${w}`)
  out.push(c.problem === null ? 'ok         an agent would contribute this window' : `PROBLEM    ${c.problem}`)
  return out.join('\n') + '\n'
}
