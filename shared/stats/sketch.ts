/**
 * DDSketch-style logarithmic buckets (Masson et al., VLDB 2019) in a fixed, spec-defined index range, so
 * sketches from different sites merge by adding counts and need no min/max (which would leak a site's extremes).
 *
 * A magnitude a ∈ [min, max] goes to bucket i = ceil(log_γ a), γ = (1+α)/(1−α): bucket i holds (γ^(i−1), γ^i],
 * and its representative 2γ^i/(γ+1) is within relative error α of every value in it.
 *
 * Ordered value buckets (index → values):
 *   0                 v < −max                (negative overflow)
 *   1 .. K            −γ^i ≤ v < −γ^(i−1)     for i = iMax down to iMin (most negative first)
 *   K+1               −min < v < 0            (negative underflow)
 *   K+2               v = 0
 *   K+3               0 < v < min             (positive underflow)
 *   K+4 .. 2K+3       γ^(i−1) < v ≤ γ^i       for i = iMin .. iMax
 *   2K+4              v > max                 (positive overflow)
 */
export interface SketchMapping {
  alpha: number
  gamma: number
  lnGamma: number
  min: number
  max: number
  iMin: number
  iMax: number
  /** K: log buckets per sign. */
  perSign: number
  valueBuckets: number
  zeroIndex: number
  /** Bucket index of a finite value (the same rule as the SQL in agent/scan-sql.ts). */
  indexOf: (v: number) => number
  buckets: () => { lower: number[], upper: number[], representative: number[] }
  /**
   * The valueBuckets − 1 cut points between consecutive buckets, in order: bucket k+1 starts where the value
   * passes cut k (`inclusive`: the cut value itself is still below, i.e. the cut is "v ≤ at", else "v < at").
   * indexOf(v) = the number of cuts v has passed. What the agent's policy counts as resolution on a column.
   */
  cuts: () => Array<{ at: number, inclusive: boolean }>
}

export function sketchMapping (alpha: number, min: number, max: number): SketchMapping {
  const gamma = (1 + alpha) / (1 - alpha)
  const lnGamma = Math.log(gamma)
  const iMin = Math.ceil(Math.log(min) / lnGamma)
  const iMax = Math.ceil(Math.log(max) / lnGamma)
  const perSign = iMax - iMin + 1
  const valueBuckets = 2 * perSign + 5
  const zeroIndex = perSign + 2
  const logIndex = (a: number): number => Math.min(Math.max(Math.ceil(Math.log(a) / lnGamma), iMin), iMax)
  const indexOf = (v: number): number => {
    if (v === 0) return zeroIndex
    const a = Math.abs(v)
    if (v > 0) {
      if (a < min) return zeroIndex + 1
      if (a > max) return valueBuckets - 1
      return zeroIndex + 2 + logIndex(a) - iMin
    }
    if (a < min) return zeroIndex - 1
    if (a > max) return 0
    return 1 + iMax - logIndex(a)
  }
  const buckets = (): { lower: number[], upper: number[], representative: number[] } => {
    const lower: number[] = []
    const upper: number[] = []
    const representative: number[] = []
    const bound = (i: number): number => Math.min(Math.max(gamma ** i, min), max)
    const push = (lo: number, hi: number, rep: number): void => { lower.push(lo); upper.push(hi); representative.push(rep) }
    push(-Infinity, -max, -max)
    for (let i = iMax; i >= iMin; i--) push(-bound(i), -bound(i - 1), -Math.min(Math.max(2 * gamma ** i / (gamma + 1), min), max))
    push(-min, 0, -min / 2)
    push(0, 0, 0)
    push(0, min, min / 2)
    for (let i = iMin; i <= iMax; i++) push(bound(i - 1), bound(i), Math.min(Math.max(2 * gamma ** i / (gamma + 1), min), max))
    push(max, Infinity, max)
    return { lower, upper, representative }
  }
  const cuts = (): Array<{ at: number, inclusive: boolean }> => {
    const out: Array<{ at: number, inclusive: boolean }> = [{ at: -max, inclusive: false }] // negative overflow | log buckets
    for (let j = iMax - 1; j >= iMin; j--) out.push({ at: -(gamma ** j), inclusive: false }) // [−γ^i, −γ^(i−1)) | next
    out.push({ at: -min, inclusive: true }, { at: 0, inclusive: false }, { at: 0, inclusive: true }, { at: min, inclusive: false })
    for (let j = iMin; j < iMax; j++) out.push({ at: gamma ** j, inclusive: true }) // (γ^(i−1), γ^i] | next
    out.push({ at: max, inclusive: true }) // log buckets | positive overflow
    return out
  }
  return { alpha, gamma, lnGamma, min, max, iMin, iMax, perSign, valueBuckets, zeroIndex, indexOf, buckets, cuts }
}
