/**
 * Distribution distances between a reference and a current histogram over the same bins. Pure functions.
 */

/** Empty bins get this proportion before PSI's logarithm (Evidently's rule); other bins keep theirs. */
export const PSI_EMPTY_BIN_PROPORTION = 1e-4

function proportions (counts: ArrayLike<number>): number[] | null {
  let total = 0
  for (let i = 0; i < counts.length; i++) total += counts[i]
  if (total === 0) return null
  return Array.from(counts, c => c / total)
}

/** Population stability index Σ (c − r)·ln(c / r) over proportions; empty bins use PSI_EMPTY_BIN_PROPORTION. */
export function psi (reference: ArrayLike<number>, current: ArrayLike<number>): number | null {
  const r = proportions(reference); const c = proportions(current)
  if (r === null || c === null) return null
  let sum = 0
  for (let i = 0; i < r.length; i++) {
    const ri = r[i] === 0 ? PSI_EMPTY_BIN_PROPORTION : r[i]
    const ci = c[i] === 0 ? PSI_EMPTY_BIN_PROPORTION : c[i]
    sum += (ci - ri) * Math.log(ci / ri)
  }
  return sum
}

/** Jensen–Shannon distance, base 2 (in [0, 1]; as scipy.spatial.distance.jensenshannon(p, q, base=2)). */
export function jensenShannon (reference: ArrayLike<number>, current: ArrayLike<number>): number | null {
  const p = proportions(reference); const q = proportions(current)
  if (p === null || q === null) return null
  let div = 0
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2
    if (p[i] > 0) div += p[i] * Math.log2(p[i] / m)
    if (q[i] > 0) div += q[i] * Math.log2(q[i] / m)
  }
  return Math.sqrt(Math.max(0, div / 2))
}

/** Hellinger distance sqrt(1 − Σ sqrt(p·q)) in [0, 1]. */
export function hellinger (reference: ArrayLike<number>, current: ArrayLike<number>): number | null {
  const p = proportions(reference); const q = proportions(current)
  if (p === null || q === null) return null
  let bc = 0
  for (let i = 0; i < p.length; i++) bc += Math.sqrt(p[i] * q[i])
  return Math.sqrt(Math.max(0, 1 - bc))
}

/**
 * Two-sample Kolmogorov–Smirnov statistic from ordered buckets. D̂ = max over bucket boundaries of |F_r − F_c|
 * is attained by the raw data, so D̂ ≤ D; inside a bucket each CDF moves by at most its mass, so
 * D ≤ D̂ + max_b max(r_b, c_b) = upper.
 */
export function ksBounded (reference: ArrayLike<number>, current: ArrayLike<number>): { value: number | null, upper: number | null } {
  const r = proportions(reference); const c = proportions(current)
  if (r === null || c === null) return { value: null, upper: null }
  let fr = 0; let fc = 0; let d = 0; let maxMass = 0
  for (let i = 0; i < r.length; i++) {
    fr += r[i]; fc += c[i]
    d = Math.max(d, Math.abs(fr - fc))
    maxMass = Math.max(maxMass, r[i], c[i])
  }
  return { value: d, upper: Math.min(1, d + maxMass) }
}

/** Wasserstein-1 distance with each bucket's mass at its representative value (ordered, non-decreasing). */
export function wasserstein1 (reference: ArrayLike<number>, current: ArrayLike<number>, at: ArrayLike<number>): number | null {
  const r = proportions(reference); const c = proportions(current)
  if (r === null || c === null) return null
  let fr = 0; let fc = 0; let w = 0
  for (let i = 0; i < r.length - 1; i++) {
    fr += r[i]; fc += c[i]
    w += Math.abs(fr - fc) * (at[i + 1] - at[i])
  }
  return w
}

/**
 * Contiguous groups of ordered buckets holding ≈ 1/k of the reference mass each (reference quantiles snapped to
 * bucket boundaries, so re-binning both histograms is exact). Returns each group's last bucket index.
 */
export function quantileGroups (reference: ArrayLike<number>, k: number): number[] {
  let total = 0
  for (let i = 0; i < reference.length; i++) total += reference[i]
  const ends: number[] = []
  if (total === 0) return [reference.length - 1]
  let cum = 0; let q = 1
  for (let i = 0; i < reference.length && q < k; i++) {
    cum += reference[i]
    if (cum >= (q * total) / k) {
      ends.push(i)
      while (q < k && cum >= (q * total) / k) q++
    }
  }
  if (ends.length === 0 || ends[ends.length - 1] !== reference.length - 1) ends.push(reference.length - 1)
  return ends
}

/** Sums counts over the groups given by their last indices. */
export function regroup (counts: ArrayLike<number>, ends: number[]): number[] {
  const out: number[] = []
  let start = 0
  for (const end of ends) {
    let s = 0
    for (let i = start; i <= end; i++) s += counts[i]
    out.push(s)
    start = end + 1
  }
  return out
}

/** Chi-square test of homogeneity on the 2 × k table (reference, current); all-zero columns are dropped. */
export function chiSquareHomogeneity (reference: ArrayLike<number>, current: ArrayLike<number>): { statistic: number, dof: number, pValue: number } | null {
  const cols: Array<[number, number]> = []
  for (let i = 0; i < reference.length; i++) if (reference[i] + current[i] > 0) cols.push([reference[i], current[i]])
  const R = cols.reduce((a, [r]) => a + r, 0); const C = cols.reduce((a, [, c]) => a + c, 0)
  if (cols.length < 2 || R === 0 || C === 0) return null
  const total = R + C
  let stat = 0
  for (const [r, c] of cols) {
    const col = r + c
    const er = (R * col) / total; const ec = (C * col) / total
    stat += (r - er) ** 2 / er + (c - ec) ** 2 / ec
  }
  const dof = cols.length - 1
  return { statistic: stat, dof, pValue: chiSquareSurvival(stat, dof) }
}

/** P[χ²_dof ≥ x] = Q(dof/2, x/2), the regularized upper incomplete gamma function. */
export function chiSquareSurvival (x: number, dof: number): number {
  if (x <= 0) return 1
  return gammaQ(dof / 2, x / 2)
}

function logGamma (z: number): number {
  // Lanczos approximation (g = 7, n = 9), |error| < 1e-15 for z > 0.
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z)
  z -= 1
  let x = c[0]
  for (let i = 1; i < 9; i++) x += c[i] / (z + i)
  const t = z + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x)
}

/** Regularized upper incomplete gamma Q(a, x): series for x < a + 1, continued fraction otherwise. */
export function gammaQ (a: number, x: number): number {
  if (x <= 0) return 1
  const lg = logGamma(a)
  if (x < a + 1) {
    let sum = 1 / a; let term = sum
    for (let n = 1; n < 10000; n++) {
      term *= x / (a + n); sum += term
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - lg))
  }
  const tiny = 1e-300
  let b = x + 1 - a; let c = 1 / tiny; let d = 1 / b; let h = d
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b; if (Math.abs(d) < tiny) d = tiny
    c = b + an / c; if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lg) * h)
}
