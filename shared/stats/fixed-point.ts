/**
 * Fixed-point sums split into limbs. A per-agent sum S (a non-negative integer: Σ round(value · 2^scaleBits))
 * is written as `limbs` entries of LIMB_BITS bits each (little-endian), so one agent contributes at most
 * 2^16 − 1 per entry and the sum over up to 2^16 agents never wraps a u32 entry.
 */
export const LIMB_BITS = 16
export const LIMB_MAX = (1 << LIMB_BITS) - 1

/**
 * Precision of the legacy loss / score sums (a spec without `score.sums`): every per-record term is rounded to a
 * multiple of 2^-24. A spec's `score.sums.precisionBits` replaces it.
 */
export const LOSS_SCALE_BITS = 24
/** Precision of the legacy feature moments (a numeric feature without `moments`): Σx, Σx² terms rounded to 2^-16. */
export const MOMENT_SCALE_BITS = 16

export interface FixedSum {
  offset: number
  limbs: number
  /** Each per-record term is round(term · 2^scaleBits). */
  scaleBits: number
  /**
   * The largest integer one record adds to the sum (its term, scaled and rounded): the sum's sensitivity to one
   * record, which a differential-privacy noise scale needs. Exact below 2^53; the legacy moment squares exceed
   * it (about 2^96) and are given rounded up.
   */
  maxTerm: number
  /**
   * One entry holding the whole per-agent sum, no limbs (only under privacy.dp): limbs carry, so one record could
   * move every limb by up to 2^16 − 1 and no noise scale would cover it; a raw entry moves by at most `maxTerm`.
   * The price: the entry holds up to maxRecords · maxTerm per agent, which bounds the agents a round may sum
   * (layout.maxEntry).
   */
  raw?: boolean
}

/** The largest scaled term of a sum whose unscaled terms are at most `maxTerm`. */
export function maxScaledTerm (maxTerm: number, scaleBits: number): bigint {
  return BigInt(Math.ceil(maxTerm * 2 ** scaleBits))
}

/** Limbs needed for a sum of up to `maxRecords` terms, each at most `maxTerm` (unscaled). */
export function limbsFor (maxRecords: number, maxTerm: number, scaleBits: number): number {
  const maxSum = maxScaledTerm(maxTerm, scaleBits) * BigInt(maxRecords)
  return Math.max(1, Math.ceil(maxSum.toString(2).length / LIMB_BITS))
}

/** Writes the non-negative integer `sum` into `vector` at `fs` as little-endian 16-bit limbs. */
export function writeLimbs (vector: Uint32Array, fs: FixedSum, sum: bigint): void {
  if (sum < 0n) throw new RangeError('fixed-point sum must be non-negative')
  if (fs.raw === true) {
    if (sum > 0xffffffffn) throw new RangeError('fixed-point sum does not fit its entry')
    vector[fs.offset] = Number(sum)
    return
  }
  let rest = sum
  for (let i = 0; i < fs.limbs; i++) {
    vector[fs.offset + i] = Number(rest & BigInt(LIMB_MAX))
    rest >>= BigInt(LIMB_BITS)
  }
  if (rest !== 0n) throw new RangeError('fixed-point sum does not fit its limbs')
}

/** Reads a (summed) limb group back as the real value Σ terms (i.e. divided by 2^scaleBits). */
export function readFixedSum (vector: Uint32Array, fs: FixedSum): number {
  const total = readFixedSumExact(vector, fs)
  // Split to keep precision: integer part of total / 2^scaleBits plus the remainder.
  const scale = 1n << BigInt(fs.scaleBits)
  return Number(total / scale) + Number(total % scale) / Number(scale)
}

/** The exact integer a (summed) limb group stands for: Σ limb_i · 2^(16·i). Summed limbs may exceed 16 bits. */
export function readFixedSumExact (vector: Uint32Array, fs: FixedSum): bigint {
  if (fs.raw === true) return BigInt(vector[fs.offset])
  let total = 0n
  for (let i = fs.limbs - 1; i >= 0; i--) total = (total << BigInt(LIMB_BITS)) + BigInt(vector[fs.offset + i])
  return total
}
