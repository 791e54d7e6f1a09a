/**
 * Reading a noisy sum. Noise is added mod 2^32, so a summed count entry is the exact count plus a signed noise
 * draw: read it as a signed 32-bit integer (the plan's headroom check keeps it in range) and clamp at zero —
 * a count cannot be negative, and post-processing never costs privacy.
 */
export function clampedCounts (sum: Uint32Array): Uint32Array {
  const out = new Uint32Array(sum.length)
  for (let i = 0; i < sum.length; i++) {
    const signed = sum[i] | 0
    out[i] = signed > 0 ? signed : 0
  }
  return out
}

/** The summed entries as signed integers (exact count plus noise; may be negative where counts are small). */
export function signedCounts (sum: Uint32Array): Int32Array {
  return new Int32Array(sum.buffer.slice(sum.byteOffset, sum.byteOffset + sum.byteLength))
}
