/**
 * How much one record can change an agent's vector (add/remove neighbouring data sets), read off the layout.
 *
 * The count entries (counters, histograms, calibration counts, feature buckets) change by exactly 0 or 1 per
 * record, so their sensitivity is the number of entries one record can touch at once. Each task states its own
 * groups from its layout (Task.dpSensitivity, mirroring its scan's rules); segments add each column's cell.
 * test/property/dp-sensitivity.test.ts checks these bounds on the real scan.
 *
 * Fixed-point sums are another matter: an agent writes its TOTAL as carry-normalised 16-bit limbs, so one
 * record can change every limb of a group by up to 2^16 − 1 through carries. Such groups have no useful
 * sensitivity; they are listed in `limbSums` (a DP plan refuses them). Under privacy.dp the layout makes every
 * sum one raw entry (FixedSum.raw) whose per-record change is its `maxTerm`: those are the `sums` part, with
 * its own sensitivity (the task says which sums one record can move at once).
 */
import type { FixedSum } from '../stats/fixed-point.js'
import type { Sensitivity } from './skellam.js'
import { segmentsOf } from '../stats/segments.js'
import { taskOfLayout, type TaskLayout } from '../stats/tasks/index.js'
import type { CountGroup, SumGroup } from '../stats/tasks/task.js'

export type { CountGroup, SumGroup }

export interface LayoutSensitivity {
  /** The count entries and how many of them one record touches, group by group. */
  countGroups: CountGroup[]
  /** Sensitivity of the count entries together (each touched entry changes by 1: L1 = touched, L2 = √touched). */
  counts: Sensitivity
  /** The fixed-point limb groups of the layout (no bounded per-entry change; see above). */
  limbSums: FixedSum[]
  /**
   * The raw one-entry sums (privacy.dp layouts), in groups of which one record moves at most one entry by at most
   * maxTerm (each group is its own release, shared/dp/plan.ts); `sensitivity` of all of them together. Null without.
   */
  sums: { groups: SumGroup[], sensitivity: Sensitivity } | null
}

export function layoutSensitivity (layout: TaskLayout): LayoutSensitivity {
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
    const cell = unsegmentedSensitivity(cells[0].layout) // a column's cells share one layout
    countGroups.push(...cell.countGroups.map(g => ({ name: `segment ${column.column}: ${g.name}`, touched: g.touched })), { name: `segment ${column.column}: site indicator`, touched: 1 })
    // one record is in one cell of the column: a group spans that entry in every cell
    sumGroups.push(...(cell.sums?.groups ?? []).map(g => ({ name: `segment ${column.column}: ${g.name}`, maxTerm: g.maxTerm, entries: cells.flatMap(c => g.entries.map(e => e + c.offset)) })))
    for (const c of cells) limbSums.push(...cell.limbSums.map(fs => ({ ...fs, offset: fs.offset + c.offset })))
  }
  return { countGroups, counts: countsSensitivity(countGroups), limbSums, sums: sumsSensitivity(sumGroups) }
}

function unsegmentedSensitivity (layout: TaskLayout): LayoutSensitivity {
  const task = taskOfLayout(layout)
  const own = task.dpSensitivity(layout)
  return {
    countGroups: own.countGroups,
    counts: countsSensitivity(own.countGroups),
    limbSums: task.fixedSums(layout).filter(fs => fs.raw !== true),
    sums: sumsSensitivity(own.sums)
  }
}

function countsSensitivity (groups: readonly CountGroup[]): Sensitivity {
  const touched = groups.reduce((sum, g) => sum + g.touched, 0)
  return { l1: touched, l2: Math.sqrt(touched) }
}

function sumsSensitivity (groups: SumGroup[]): LayoutSensitivity['sums'] {
  if (groups.length === 0) return null
  return { groups, sensitivity: { l1: groups.reduce((a, g) => a + g.maxTerm, 0), l2: Math.sqrt(groups.reduce((a, g) => a + g.maxTerm ** 2, 0)) } }
}

/** Per entry of the layout: 1 for a raw DP sum entry, 0 otherwise (counts). */
export function rawSumEntries (layout: TaskLayout): Uint8Array {
  const isSum = new Uint8Array(layout.length)
  for (const fs of allFixedSums(layout)) if (fs.raw === true) isSum[fs.offset] = 1
  return isSum
}

/** The indices of the layout's count entries (every entry that is not part of a fixed-point limb group). */
export function countEntries (layout: TaskLayout): Uint8Array {
  const isCount = new Uint8Array(layout.length).fill(1)
  for (const fs of allFixedSums(layout)) isCount.fill(0, fs.offset, fs.offset + fs.limbs)
  return isCount
}

/** The fixed-point sums of the layout and of each of its segment cells, at their offsets in the whole vector. */
function allFixedSums (layout: TaskLayout): FixedSum[] {
  const fixedSums = (l: TaskLayout): FixedSum[] => taskOfLayout(l).fixedSums(l)
  const cells = segmentsOf(layout)?.cells ?? []
  return [...fixedSums(layout), ...cells.flatMap(c => fixedSums(c.layout).map(fs => ({ ...fs, offset: fs.offset + c.offset })))]
}
