/**
 * The Skellam mechanism and its accountant (shared/dp): samplers against scipy's distributions, the RDP bound
 * against the exact Rényi divergence computed by scipy, the RDP → (ε, δ) conversion against the exact
 * analytic Gaussian mechanism (Balle & Wang 2018), calibration and composition.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { samplePoisson, logFactorial } from '../../shared/dp/poisson.js'
import { addSkellamNoise, sampleSkellam, skellamRdp, skellamTailBound } from '../../shared/dp/skellam.js'
import { RDP_ORDERS, calibrateSkellam, composedRdp, rdpToDp, releasesEpsilon } from '../../shared/dp/accountant.js'
import type { UniformSource } from '../../shared/dp/random.js'
import { cryptoUniform } from '../../shared/dp/random.js'
import { mulberry32 } from '../../shared/prng.js'
import { oracleMissing, python } from '../fixtures/stats/oracle.js'

/** A seeded 53-bit uniform source, so every run of the test draws the same samples. */
function seededUniform (seed: number): UniformSource {
  const a = mulberry32(seed)
  const b = mulberry32(seed ^ 0x5bd1e995)
  return () => (Math.floor(a() * 2 ** 27) * 2 ** 26 + Math.floor(b() * 2 ** 26)) / 2 ** 53
}

function histogram (samples: number[]): { values: number[], counts: number[] } {
  const counts = new Map<number, number>()
  for (const s of samples) counts.set(s, (counts.get(s) ?? 0) + 1)
  const values = [...counts.keys()].sort((x, y) => x - y)
  return { values, counts: values.map(v => counts.get(v) as number) }
}

// Pools the tails so every cell expects ≥ 5, then a chi-square goodness-of-fit test against the pmf.
const GOF = `
from scipy import stats
def gof(values, counts, pmf):
    n = sum(counts)
    lo, hi = min(values), max(values)
    grid = list(range(lo, hi + 1))
    obs = dict(zip(values, counts))
    exp = [pmf(k) * n for k in grid]
    exp[0] += (pmf_cdf_lo(lo)) * n
    exp[-1] += (pmf_sf_hi(hi)) * n
    cells, o, e = [], 0, 0.0
    for k, ek in zip(grid, exp):
        o += obs.get(k, 0); e += ek
        if e >= 5:
            cells.append((o, e)); o, e = 0, 0.0
    if cells and (o or e):
        last = cells.pop(); cells.append((last[0] + o, last[1] + e))
    O = [c[0] for c in cells]; E = [c[1] for c in cells]
    scale = sum(O) / sum(E)
    return float(stats.chisquare(O, [x * scale for x in E]).pvalue)
`

test('Poisson samples follow Poisson(μ) on both sides of the algorithm switch (chi-square vs scipy)', (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const uniform = seededUniform(7)
  const cases = [0.3, 2.5, 9.99, 10, 37.5, 1200].map((mu) => {
    const samples = Array.from({ length: 60_000 }, () => samplePoisson(mu, uniform))
    const mean = samples.reduce((s, x) => s + x, 0) / samples.length
    const variance = samples.reduce((s, x) => s + (x - mean) ** 2, 0) / (samples.length - 1)
    // Mean and variance both μ, to within 5 standard errors.
    assert.ok(Math.abs(mean - mu) < 5 * Math.sqrt(mu / samples.length), `mean ${mean} for μ=${mu}`)
    assert.ok(Math.abs(variance / mu - 1) < 5 * Math.sqrt(2 / samples.length) + 0.002, `variance ${variance} for μ=${mu}`)
    return { mu, ...histogram(samples) }
  })
  const pvalues = python(`${GOF}
out = []
for c in data:
    mu = c['mu']
    pmf_cdf_lo = lambda lo: stats.poisson.cdf(lo - 1, mu)
    pmf_sf_hi = lambda hi: stats.poisson.sf(hi, mu)
    out.append(gof(c['values'], c['counts'], lambda k: stats.poisson.pmf(k, mu)))
print(json.dumps(out))`, cases) as number[]
  for (const [i, p] of pvalues.entries()) assert.ok(p > 1e-3, `μ=${cases[i].mu}: chi-square p = ${p}`)
})

test('noise summed over agents is exactly Skellam(Σμ) (chi-square vs scipy), and it wraps mod 2^32', (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const uniform = seededUniform(11)
  const perAgent = [3.2, 3.2, 7.5, 12, 0.4] // a sum with both samplers in it
  const samples = Array.from({ length: 60_000 }, () => perAgent.reduce((s, mu) => s + sampleSkellam(mu, uniform), 0))
  const total = perAgent.reduce((s, x) => s + x, 0)
  const p = python(`${GOF}
mu = data['mu']
pmf_cdf_lo = lambda lo: stats.skellam.cdf(lo - 1, mu, mu)
pmf_sf_hi = lambda hi: stats.skellam.sf(hi, mu, mu)
print(json.dumps(gof(data['values'], data['counts'], lambda k: stats.skellam.pmf(k, mu, mu))))`, { mu: total, ...histogram(samples) }) as number
  assert.ok(p > 1e-3, `chi-square p = ${p}`)
  // Modular: the sum of noisy vectors decodes (as signed 32-bit) to the exact sum plus the summed noise.
  const exact = Uint32Array.from([0, 1, 5, 1000])
  const noisy = addSkellamNoise(Uint32Array.from(exact), 20, seededUniform(3))
  for (let i = 0; i < exact.length; i++) assert.ok(Math.abs((noisy[i] | 0) - exact[i]) < 60, `entry ${i}: ${noisy[i] | 0}`)
  assert.ok([...addSkellamNoise(new Uint32Array(200), 20, seededUniform(5))].some(v => v > 2 ** 31), 'negative draws wrap mod 2^32')
})

test('the Skellam RDP bound is above the exact Rényi divergence, and close to it (scipy)', (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const cases: Array<{ mu: number, shift: number, alpha: number }> = []
  for (const mu of [1, 5, 50, 500]) for (const shift of [1, 2]) for (const alpha of [2, 4, 8, 32]) cases.push({ mu, shift, alpha })
  // D_α(Sk(μ)+Δ ‖ Sk(μ)) = log Σ_k p(k−Δ)^α p(k)^(1−α) / (α − 1), in log space over the bulk of the support.
  const exact = python(`
from scipy import stats
from scipy.special import logsumexp
out = []
for c in data:
    mu, d, a = c['mu'], c['shift'], c['alpha']
    span = int(60 + 40 * (2 * mu) ** 0.5 + 4 * a * d)
    k = np.arange(-span, span + 1)
    lp = stats.skellam.logpmf(k - d, mu, mu)
    lq = stats.skellam.logpmf(k, mu, mu)
    ok = np.isfinite(lp) & np.isfinite(lq)
    out.append(float(logsumexp(a * lp[ok] + (1 - a) * lq[ok]) / (a - 1)))
print(json.dumps(out))`, cases) as number[]
  for (const [i, c] of cases.entries()) {
    // One record moving one entry by Δ: L1 = L2 = Δ.
    const bound = skellamRdp(c.alpha, c.mu, { l1: c.shift, l2: c.shift })
    assert.ok(bound >= exact[i] * (1 - 1e-9), `μ=${c.mu} Δ=${c.shift} α=${c.alpha}: bound ${bound} < exact ${exact[i]}`)
    // Tight where it matters (noise large against the shift, α·Δ²/μ ≤ 1 — where the ε-optimal orders are at
    // the noise DP needs): within 25 %. At high orders with little noise it is loose but still valid.
    if (c.alpha * c.shift ** 2 / c.mu <= 1) assert.ok(bound <= exact[i] * 1.25 + 1e-6, `μ=${c.mu} Δ=${c.shift} α=${c.alpha}: bound ${bound} ≫ exact ${exact[i]}`)
  }
})

test('RDP → (ε, δ): valid and tight against the exact analytic Gaussian mechanism (Balle & Wang 2018)', (t) => {
  const why = oracleMissing()
  if (why !== null) { t.skip(why); return }
  const cases = [{ sigma: 1, delta: 1e-5 }, { sigma: 4, delta: 1e-6 }, { sigma: 20, delta: 1e-6 }, { sigma: 0.8, delta: 1e-3 }]
  const ours = cases.map(c => rdpToDp(RDP_ORDERS.map(a => a / (2 * c.sigma ** 2)), c.delta).epsilon)
  // Exact ε of the Gaussian mechanism with sensitivity 1: the root of δ(ε) = Φ(1/2σ − εσ) − e^ε Φ(−1/2σ − εσ).
  const exact = python(`
from scipy import stats, optimize
out = []
for c in data:
    s, d = c['sigma'], c['delta']
    f = lambda e: stats.norm.cdf(0.5 / s - e * s) - np.exp(e) * stats.norm.cdf(-0.5 / s - e * s) - d
    out.append(float(optimize.brentq(f, 0, 100)))
print(json.dumps(out))`, cases) as number[]
  for (const [i, c] of cases.entries()) {
    assert.ok(ours[i] >= exact[i], `σ=${c.sigma}: ${ours[i]} below the exact ${exact[i]} (the conversion would be unsound)`)
    assert.ok(ours[i] <= exact[i] * 1.35, `σ=${c.sigma}: ${ours[i]} far above the exact ${exact[i]}`)
  }
})

test('calibration finds the smallest μ for (ε, δ); refresh releases compose and need more noise', () => {
  const sensitivity = { l1: 4, l2: 2 }
  for (const epsilon of [0.1, 0.5, 1, 4]) {
    const mu = calibrateSkellam({ epsilon, delta: 1e-6 }, sensitivity)
    assert.ok(releasesEpsilon([{ mu, sensitivity }], 1e-6) <= epsilon + 1e-9)
    assert.ok(releasesEpsilon([{ mu: mu * 0.99, sensitivity }], 1e-6) > epsilon, `μ=${mu} is not the smallest for ε=${epsilon}`)
  }
  // Less ε, more noise.
  assert.ok(calibrateSkellam({ epsilon: 0.1, delta: 1e-6 }, sensitivity) > 50 * calibrateSkellam({ epsilon: 1, delta: 1e-6 }, sensitivity))
  // Composition: RDP adds, so two identical releases spend more than one and less than twice the ε.
  const one = { mu: 100, sensitivity }
  const curve1 = composedRdp([one])
  const curve2 = composedRdp([one, one])
  curve2.forEach((v, i) => assert.ok(Math.abs(v - 2 * curve1[i]) < 1e-12))
  const e1 = releasesEpsilon([one], 1e-6)
  const e2 = releasesEpsilon([one, one], 1e-6)
  assert.ok(e2 > e1 && e2 < 2 * e1, `${e1} → ${e2}`)
  // A refresh after a release of ε = 0.5 within a window budget of 1 needs more noise than a fresh ε = 1 release.
  const first = { mu: calibrateSkellam({ epsilon: 0.5, delta: 1e-6 }, sensitivity), sensitivity }
  assert.ok(calibrateSkellam({ epsilon: 1, delta: 1e-6 }, sensitivity, [first]) > calibrateSkellam({ epsilon: 1, delta: 1e-6 }, sensitivity))
  assert.throws(() => calibrateSkellam({ epsilon: 0.4, delta: 1e-6 }, sensitivity, [first]), /already spend/)
})

test('the tail bound holds: no entry of many noisy vectors exceeds it', () => {
  const uniform = seededUniform(99)
  for (const mu of [2, 40, 900]) {
    const bound = skellamTailBound(mu, 1000, 1e-3)
    let max = 0
    for (let r = 0; r < 100; r++) for (let i = 0; i < 1000; i++) max = Math.max(max, Math.abs(sampleSkellam(mu, uniform)))
    assert.ok(max < bound, `μ=${mu}: |noise| reached ${max}, bound ${bound}`)
    assert.ok(bound < 12 * Math.sqrt(2 * mu) + 20, `μ=${mu}: bound ${bound} is loose`)
  }
})

test('log-factorial is exact on the table and continuous into Stirling; the crypto source is uniform', () => {
  let exact = 0
  for (let k = 2; k <= 1023; k++) exact += Math.log(k)
  assert.ok(Math.abs(logFactorial(1023) - exact) < 1e-9)
  assert.ok(Math.abs(logFactorial(1024) - (exact + Math.log(1024))) < 1e-9)
  const u = cryptoUniform()
  let sum = 0
  for (let i = 0; i < 100_000; i++) { const x = u(); assert.ok(x >= 0 && x < 1); sum += x }
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.01)
})
