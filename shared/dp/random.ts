/**
 * Uniform doubles for noise sampling. Noise that protects records must be unpredictable to everyone else, so
 * the default source is node:crypto (buffered: one syscall per 8 192 draws); tests pass a seeded source.
 */
import { randomFillSync } from 'node:crypto'

/** Returns a uniform double in [0, 1) with 53 random bits. */
export type UniformSource = () => number

const WORDS = 16_384 // two 32-bit words per draw

/** A cryptographically secure uniform source (53-bit doubles from node:crypto). */
export function cryptoUniform (): UniformSource {
  const words = new Uint32Array(WORDS)
  let next = WORDS
  return () => {
    if (next === WORDS) {
      randomFillSync(words)
      next = 0
    }
    const hi = words[next++] >>> 5 // 27 bits
    const lo = words[next++] >>> 6 // 26 bits
    return (hi * 67_108_864 + lo) / 9_007_199_254_740_992
  }
}
