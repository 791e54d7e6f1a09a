import { counterIndex, type CounterName, type Layout } from './layout.js'
import { taskOfLayout, type TaskLayout } from './tasks/index.js'
import { cellLabelDependentEntries } from './segments.js'

/**
 * The label-dependent entries of a layout: what a label-refresh round (issue 11 §2) sums again, and nothing
 * else. A refresh re-reads the labels of the same window's records at a later cutoff; every entry whose value
 * can change when a label arrives (or changes) is in this set, every other entry is label-independent and is
 * never aggregated a second time (it was published by the window's first round).
 *
 * Label-dependent (each listed, derived from the layout, not by hand):
 * - counters: the four label classes (negative, positive, unlabeled, invalid), the confusion counts at the
 *   threshold (tp, fp, fn, tn: labeled records) and predictedPositiveUnlabeled (an unlabeled record's class);
 * - the whole score × label histogram (all three class rows: a label moves a record from the unlabeled row);
 * - the calibration counts (labeled and positive per bin);
 * - the fixed-point sums over labeled records: log loss, Brier, Σ score per calibration bin.
 * Label-independent (never refreshed): recordsInWindow, the per-site indicator sitesWithRecords (a refreshed
 * version's contributing sites are its first round's), the score validity counters, Σs and Σs² over every
 * valid score, every feature's buckets and moments.
 * test/unit/label-entries.test.ts checks the split on the real scan: the same records scanned with and without
 * their labels differ only inside this set.
 */
export const LABEL_DEPENDENT_COUNTERS: readonly CounterName[] = [
  'labelNegative', 'labelPositive', 'labelUnlabeled', 'labelInvalid', 'tp', 'fp', 'fn', 'tn', 'predictedPositiveUnlabeled'
]

/** Indexes (ascending) of the layout's label-dependent entries, for any task: the refresh round's sub-layout, in this order. */
export function labelDependentEntries (layout: TaskLayout): Uint32Array {
  const overall = taskOfLayout(layout).labelDependentEntries(layout)
  // segments (shared/stats/segments.ts): each cell's own label-dependent entries, at the cell's offset (after the
  // overall ones, so the order stays ascending); the cells' site indicators are label-independent
  const cells = cellLabelDependentEntries(layout, cell => taskOfLayout(cell).labelDependentEntries(cell))
  if (cells.length === 0) return overall
  const out = new Uint32Array(overall.length + cells.length)
  out.set(overall)
  out.set(cells, overall.length)
  return out
}

/** The binary task's label-dependent entries (shared/stats/tasks/binary.ts). */
export function binaryLabelDependentEntries (layout: Layout): Uint32Array {
  const picked: number[] = []
  for (const name of LABEL_DEPENDENT_COUNTERS) picked.push(counterIndex(layout, name))
  const range = (offset: number, length: number): void => { for (let i = 0; i < length; i++) picked.push(offset + i) }
  range(layout.score.offset, 3 * layout.score.bins)
  range(layout.calibration.countsOffset, 2 * layout.calibration.bins)
  const sums = layout.sums
  if (sums.kind === 'fixed') {
    for (const fs of [sums.logLoss, sums.brier, ...sums.calibration]) range(fs.offset, fs.limbs)
  }
  const out = Uint32Array.from(new Set(picked))
  out.sort()
  return out
}

/** The refresh sub-vector: `vector`'s entries at `entries`, in order. */
export function projectEntries (vector: Uint32Array, entries: Uint32Array): Uint32Array {
  const out = new Uint32Array(entries.length)
  for (let i = 0; i < entries.length; i++) out[i] = vector[entries[i]]
  return out
}

/** A copy of the first round's full sum with the label-dependent entries replaced by a refresh's sums. */
export function mergeEntries (base: Uint32Array, entries: Uint32Array, refreshed: Uint32Array): Uint32Array {
  if (refreshed.length !== entries.length) throw new RangeError(`refresh sum has ${refreshed.length} entries, the sub-layout ${entries.length}`)
  const out = new Uint32Array(base)
  for (let i = 0; i < entries.length; i++) out[entries[i]] = refreshed[i]
  return out
}
