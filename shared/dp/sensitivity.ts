/**
 * How much one record can change an agent's vector (add/remove neighbouring data sets), read off the layout.
 *
 * The count entries (counters, score × label histogram, calibration counts, feature buckets) change by exactly
 * 0 or 1 per record, so their sensitivity is the number of entries one record can touch at once. The groups
 * below mirror the scan's rules (agent/scan-sql.ts): every record is in the window count, in exactly one label
 * class and exactly one score class (and flips the site's indicator when it is the window's only one); a labeled record with a valid score is in exactly one of tp/fp/fn/tn, an
 * unlabeled one predicted positive in predictedPositiveUnlabeled (never both); a valid score lands in one
 * histogram cell and, when labeled, in its calibration bin's labeled count and maybe its positive count; every
 * feature puts the record in exactly one bucket (a value bucket, missing or invalid).
 * test/property/dp-sensitivity.test.ts checks these bounds on the real scan.
 *
 * Fixed-point sums are another matter: an agent writes its TOTAL as carry-normalised 16-bit limbs, so one
 * record can change every limb of a group by up to 2^16 − 1 through carries. Such groups have no useful
 * sensitivity; they are listed in `limbSums` (a DP plan refuses them). Under privacy.dp the layout makes every
 * sum one raw entry (FixedSum.raw) whose per-record change is its `maxTerm`: those are the `sums` part, with
 * its own sensitivity — a record adds to the log-loss and Brier sums (labelled), Σs and Σs² (valid score), one
 * calibration bin's Σs (labelled), and each clipped numeric feature's Σu and Σu² (a valid value).
 */
import type { FixedSum } from '../stats/fixed-point.js'
import { fixedSumsOf, momentSumsOf, type Layout } from '../stats/layout.js'
import type { Sensitivity } from './skellam.js'
import { segmentsOf } from '../stats/segments.js'

export interface CountGroup {
  /** What the group is, for reports and errors. */
  name: string
  /** Entries one record can touch in this group, each by exactly 1. */
  touched: number
}

export interface LayoutSensitivity {
  /** The count entries and how many of them one record touches, group by group. */
  countGroups: CountGroup[]
  /** Sensitivity of the count entries together (each touched entry changes by 1: L1 = touched, L2 = √touched). */
  counts: Sensitivity
  /** The fixed-point limb groups of the layout (no bounded per-entry change; see above). */
  limbSums: FixedSum[]
  /** The raw one-entry sums (privacy.dp layouts): what one record adds at most, group by group; null without. */
  sums: { groups: Array<{ name: string, maxTerm: number }>, sensitivity: Sensitivity } | null
}

export function layoutSensitivity (layout: Layout): LayoutSensitivity {
  const own = unsegmentedSensitivity(layout)
  const segments = segmentsOf(layout)
  if (segments === null) return own
  // Segments (shared/stats/segments.ts): a record also lands in exactly one cell of each segment column, where it
  // touches that cell's entries as in any layout of the cell's spec, and may flip the cell's site indicator.
  const countGroups = [...own.countGroups]
  const sumGroups = [...(own.sums?.groups ?? [])]
  const limbSums = [...own.limbSums]
  for (const column of segments.columns) {
    const cells = segments.cells.filter(c => c.column === column.column)
    const cell = unsegmentedSensitivity(cells[0].layout as Layout) // a column's cells share one layout
    countGroups.push(...cell.countGroups.map(g => ({ name: `segment ${column.column}: ${g.name}`, touched: g.touched })), { name: `segment ${column.column}: site indicator`, touched: 1 })
    sumGroups.push(...(cell.sums?.groups ?? []).map(g => ({ name: `segment ${column.column}: ${g.name}`, maxTerm: g.maxTerm })))
    for (const c of cells) limbSums.push(...cell.limbSums.map(fs => ({ ...fs, offset: fs.offset + c.offset })))
  }
  const touched = countGroups.reduce((sum, g) => sum + g.touched, 0)
  return {
    countGroups,
    counts: { l1: touched, l2: Math.sqrt(touched) },
    limbSums,
    sums: sumGroups.length === 0 ? null : { groups: sumGroups, sensitivity: { l1: sumGroups.reduce((a, g) => a + g.maxTerm, 0), l2: Math.sqrt(sumGroups.reduce((a, g) => a + g.maxTerm ** 2, 0)) } }
  }
}

function unsegmentedSensitivity (layout: Layout): LayoutSensitivity {
  const countGroups: CountGroup[] = [
    // recordsInWindow, one label class, one score class, tp/fp/fn/tn or predictedPositiveUnlabeled, and the
    // site's indicator sitesWithRecords, which the window's first record flips 0 ↔ 1.
    { name: 'counters', touched: 5 },
    { name: 'score histogram', touched: 1 },
    // Labeled count of the bin, and its positive count when the label is positive.
    ...(layout.calibration.bins > 0 ? [{ name: 'calibration counts', touched: 2 }] : []),
    ...layout.features.map(f => ({ name: `feature ${f.name}`, touched: 1 }))
  ]
  const touched = countGroups.reduce((sum, g) => sum + g.touched, 0)
  const all = fixedSumsOf(layout)
  return { countGroups, counts: { l1: touched, l2: Math.sqrt(touched) }, limbSums: all.filter(fs => fs.raw !== true), sums: rawSumsSensitivity(layout) }
}

/** The raw sums one record can move at once, each by at most its maxTerm (see the header). */
function rawSumsSensitivity (layout: Layout): LayoutSensitivity['sums'] {
  const groups: Array<{ name: string, maxTerm: number }> = []
  const s = layout.sums
  if (s.kind === 'fixed' && s.logLoss.raw === true) {
    groups.push({ name: 'log loss', maxTerm: s.logLoss.maxTerm }, { name: 'Brier', maxTerm: s.brier.maxTerm },
      { name: 'score sum', maxTerm: s.scoreSum.maxTerm }, { name: 'score sum of squares', maxTerm: s.scoreSumSquares.maxTerm },
      { name: 'calibration score sum (one bin)', maxTerm: Math.max(0, ...s.calibration.map(c => c.maxTerm)) })
  }
  for (const f of layout.features) {
    if (f.type !== 'numeric') continue
    for (const [i, fs] of momentSumsOf(f.moments).entries()) {
      if (fs.raw === true) groups.push({ name: `feature ${f.name} ${i === 0 ? 'sum' : 'sum of squares'}`, maxTerm: fs.maxTerm })
    }
  }
  if (groups.length === 0) return null
  return { groups, sensitivity: { l1: groups.reduce((a, g) => a + g.maxTerm, 0), l2: Math.sqrt(groups.reduce((a, g) => a + g.maxTerm ** 2, 0)) } }
}

/** Per entry of the layout: 1 for a raw DP sum entry, 0 otherwise (counts). */
export function rawSumEntries (layout: Layout): Uint8Array {
  const isSum = new Uint8Array(layout.length)
  for (const fs of allFixedSums(layout)) if (fs.raw === true) isSum[fs.offset] = 1
  return isSum
}

/** The indices of the layout's count entries (every entry that is not part of a fixed-point limb group). */
export function countEntries (layout: Layout): Uint8Array {
  const isCount = new Uint8Array(layout.length).fill(1)
  for (const fs of allFixedSums(layout)) isCount.fill(0, fs.offset, fs.offset + fs.limbs)
  return isCount
}

/** The fixed-point sums of the layout and of each of its segment cells, at their offsets in the whole vector. */
function allFixedSums (layout: Layout): FixedSum[] {
  const cells = segmentsOf(layout)?.cells ?? []
  return [...fixedSumsOf(layout), ...cells.flatMap(c => fixedSumsOf(c.layout as Layout).map(fs => ({ ...fs, offset: fs.offset + c.offset })))]
}
