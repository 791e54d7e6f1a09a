import { SecAggError } from './errors.js'
import type { GraphKind } from './types.js'

/**
 * Neighbour-graph degree k and Shamir threshold t from the number of agents n, the expected dropout rate δ
 * and the corrupt fraction α (SecAgg+, Bell et al. 2020; Google's graph parameter finder targets).
 *
 * Sparse graph: the smallest even k for which some t satisfies, with a union bound over the n agents,
 *   security  n · P[Binomial(k, α) ≥ t]     ≤ 2^-80  (no agent has t corrupt neighbours), and
 *   liveness  n · P[Binomial(k, 1 − δ) < t] ≤ 2^-20  (every agent keeps t live neighbours);
 * t is the smallest such value. At α = 5 %, δ = 33 % this gives (k, t) = (76, 26) → (108, 43) at n = 300,
 * (112, 44) at n = 1,000 and (122, 47) at n = 10^4; below n ≈ 200 only the full graph meets it.
 * Why 2^-80 where Google's finder targets 2^-40: the graph is derived from the round id, which the coordinator
 * picks, so a malicious coordinator can evaluate candidate graphs offline (~10 µs each at n = 1000) and keep
 * one that surrounds a victim with its colluders. 2^40 evaluations (about 127 CPU-days) then still succeed with
 * probability at most 2^-40. (At 2^-40 the parameters were (80, 27) at n = 1000, Google's (72, 24).)
 * Participants are sorted by peer id (agents refuse any other order), so the list order cannot place anyone.
 * Full graph (used when no sparse k < n − 1 exists): k = n − 1 and t = ⌊(1 + α)k/2⌋ + 1, a majority that
 * keeps a server with αn colluders from splitting the agents into two groups that each reach t.
 */

export interface GraphParams { graph: GraphKind, k: number, t: number }

function logChoose (n: number, r: number): number {
  let s = 0
  for (let i = 1; i <= r; i++) s += Math.log((n - r + i) / i)
  return s
}

/** P[Binomial(k, p) >= t], summed directly in log space (k is at most a few hundred here). */
export function binomialTailAtLeast (k: number, p: number, t: number): number {
  if (t <= 0) return 1
  if (p <= 0) return 0
  if (p >= 1) return t <= k ? 1 : 0
  let s = 0
  for (let i = t; i <= k; i++) s += Math.exp(logChoose(k, i) + i * Math.log(p) + (k - i) * Math.log1p(-p))
  return Math.min(1, s)
}

/** Per-graph security target (see above: 2^-40 after 2^40 offline graph evaluations by the coordinator). */
export const GRAPH_SECURITY = 2 ** -80
const FAILURE = 2 ** -20

export function sparseParams (n: number, dropoutRate: number, corruptFraction: number): { k: number, t: number } | null {
  for (let k = 2; k < n - 1; k += 2) {
    for (let t = 1; t <= k; t++) {
      if (n * binomialTailAtLeast(k, corruptFraction, t) > GRAPH_SECURITY) continue
      if (n * (1 - binomialTailAtLeast(k, 1 - dropoutRate, t)) > FAILURE) break // larger t only fails more
      return { k, t }
    }
  }
  return null
}

export function fullThreshold (n: number, corruptFraction: number): number {
  const k = n - 1
  return Math.max(1, Math.min(k, Math.floor((1 + corruptFraction) * k / 2) + 1))
}

export function chooseGraphParams (opts: { n: number, dropoutRate: number, corruptFraction: number, graph: GraphKind | 'auto', threshold?: number, degree?: number }): GraphParams {
  const { n, dropoutRate, corruptFraction } = opts
  if (!Number.isInteger(n) || n < 2) throw new SecAggError('ERR_BAD_PARAMS', `a round needs at least 2 participants, got ${n}`)
  if (!(dropoutRate >= 0 && dropoutRate < 1) || !(corruptFraction >= 0 && corruptFraction < 1) || dropoutRate + corruptFraction > 0.9) {
    throw new SecAggError('ERR_BAD_PARAMS', `need 0 <= dropoutRate, corruptFraction and dropoutRate + corruptFraction <= 0.9 (got ${dropoutRate}, ${corruptFraction})`)
  }
  let graph: GraphKind
  let k: number
  let t: number
  if (opts.degree !== undefined) {
    if (!Number.isInteger(opts.degree) || opts.degree < 1) throw new SecAggError('ERR_BAD_PARAMS', `degree must be a positive integer, got ${opts.degree}`)
    const even = opts.degree + (opts.degree % 2)
    graph = opts.graph === 'full' || even >= n - 1 ? 'full' : 'sparse'
    k = graph === 'full' ? n - 1 : even
    t = graph === 'full' ? fullThreshold(n, corruptFraction) : Math.max(1, Math.min(k, Math.ceil(k / 3)))
  } else {
    const sparse = opts.graph === 'full' ? null : sparseParams(n, dropoutRate, corruptFraction)
    if (opts.graph === 'sparse' && sparse === null) {
      // Too few agents for a sparse graph with these guarantees: the full graph is the sparse graph's limit.
      graph = 'full'
    } else {
      graph = sparse === null ? 'full' : 'sparse'
    }
    k = sparse === null ? n - 1 : sparse.k
    t = sparse === null ? fullThreshold(n, corruptFraction) : sparse.t
  }
  if (opts.threshold !== undefined) {
    if (!Number.isInteger(opts.threshold) || opts.threshold < 1 || opts.threshold > k) {
      throw new SecAggError('ERR_BAD_PARAMS', `threshold must be an integer in [1, ${k}] (k = ${k}), got ${opts.threshold}`)
    }
    t = opts.threshold
  }
  return { graph, k, t }
}

// ---- what an agent requires of a round against a malicious coordinator (issue 10, design §3) ----

/** The corrupt fraction α tolerated when neither the coordinator's config nor the agent's policy says (Google's α). */
export const DEFAULT_CORRUPT_FRACTION = 0.05

/**
 * C: how many participants may collude with the coordinator, from the fraction α of the federation the agent
 * tolerates and the size R of its own roster (never the coordinator's participant list, which a coordinator
 * could shrink to raise the colluders' share).
 */
export function corruptTolerance (corruptFraction: number, rosterSize: number): number {
  return Math.floor(corruptFraction * rosterSize + 1e-9)
}

/**
 * The consistency quorum q = ⌊(n + C)/2⌋ + 1: an agent reveals unmask shares only when q participants signed
 * the very survivor set it signed. Why it stops split views: an honest agent signs one survivor set per round,
 * so two different sets with q signers each need 2q − C > n honest signatures — more honest agents than the
 * round has. Hence every honest agent that reveals anything saw the same survivor set, each victim is either
 * alive (b-shares) or dropped (s-key shares) for all of them, and the coordinator's only other source of
 * shares, its ≤ C colluders, stays below t (minimumSafeThreshold). The same holds for any graph and any t.
 * Liveness: a round now needs q survivors that sign, i.e. it survives at most n − q dropouts overall
 * (⌈(n − C)/2⌉ − 1: 474 of 1000 at C = 50), on top of each agent keeping t live neighbours.
 */
export function consistencyQuorum (n: number, corrupt: number): number {
  return Math.floor((n + corrupt) / 2) + 1
}

/**
 * Committee size of the consistency check that coordinators announce by default (issue 15 §2): at most this
 * many participants' signatures certify a survivor set, however many take part. Sized for the design point
 * α = 5 % colluders, δ = 1/3 dropouts: the committee's colluder bound c (2^-80, as the graph's) gives a quorum
 * q = ⌊(700 + c)/2⌋ + 1 = 404 that its live members miss with probability 3·10^-7 < 2^-20 (650: 1.7·10^-6).
 */
export const CONSISTENCY_COMMITTEE_SIZE = 700

/**
 * How many signatures of a round's consistency committee of `size` members (committee.ts; everyone when size ≥ n)
 * certify a survivor set (issue 15 §2: with everyone, the certificate grows with n).
 * Everyone: ⌊(n + C)/2⌋ + 1 (consistencyQuorum). A committee of s < n drawn from the round id: ⌊(s + c)/2⌋ + 1,
 * where c bounds the colluders among the committee: P[Binomial(s, C/n) > c] ≤ 2^-80 (the hypergeometric draw's
 * tail is below the binomial's, Hoeffding 1963; 2^-80 because the coordinator picks the round id and may try 2^40
 * of them, as for the graph). Why it still stops split views: an honest member signs one survivor set per round,
 * so two sets certified by q members each need 2(q − c) > s − c honest members — more than the committee has.
 * Safe for any size: an agent computes q from the announced size and its own C, and refuses when q > s. The
 * survivor set itself must still hold consistencyQuorum(n, C) participants (each agent checks its size), so
 * liveness and the DP plan's fewest survivors are as with everyone; only the signatures are fewer.
 */
export function committeeQuorum (n: number, corrupt: number, size: number): number {
  if (size >= n) return consistencyQuorum(n, corrupt)
  const key = `${n}|${corrupt}|${size}`
  let quorum = committeeQuorums.get(key)
  if (quorum === undefined) {
    const p = Math.min(1, corrupt / n)
    let c = Math.min(corrupt, size)
    for (let candidate = 0; candidate < c; candidate++) {
      if (binomialTailAtLeast(size, p, candidate + 1) <= GRAPH_SECURITY) { c = candidate; break }
    }
    quorum = Math.floor((size + c) / 2) + 1
    if (committeeQuorums.size > 1024) committeeQuorums.clear()
    committeeQuorums.set(key, quorum)
  }
  return quorum
}
const committeeQuorums = new Map<string, number>()

/** The committee size a coordinator announces: `preferred` when that needs fewer signatures than everyone, else n. */
export function chooseCommitteeSize (n: number, corrupt: number, preferred = CONSISTENCY_COMMITTEE_SIZE): number {
  if (!Number.isInteger(preferred) || preferred < 1) throw new SecAggError('ERR_BAD_PARAMS', `committee size must be a positive integer, got ${preferred}`)
  return preferred < n && committeeQuorum(n, corrupt, preferred) < consistencyQuorum(n, corrupt) ? preferred : n
}

/**
 * The smallest Shamir threshold an agent accepts for a round's graph, so that C colluding participants cannot
 * hold t shares of one agent's secrets: full graph t > C; sparse graph n · P[Binomial(k, C/n) ≥ t] ≤ 2^-80
 * (the colluders are C of the n participants placed by the graph's random permutation: the number among one
 * agent's k neighbours is hypergeometric, whose upper tail the binomial's bounds — Hoeffding 1963).
 */
export function minimumSafeThreshold (graph: GraphKind, n: number, k: number, corrupt: number): number {
  if (graph === 'full' || corrupt === 0) return Math.min(corrupt + 1, Math.max(1, k))
  const key = `${n}|${k}|${corrupt}`
  let t = safeThresholds.get(key)
  if (t === undefined) {
    const alpha = Math.min(1, corrupt / n)
    t = corrupt + 1 // C colluders never hold more than C shares, whatever the graph
    for (let candidate = 1; candidate <= Math.min(k, corrupt); candidate++) {
      if (n * binomialTailAtLeast(k, alpha, candidate) <= GRAPH_SECURITY) { t = candidate; break }
    }
    if (t > k) t = k + 1 // no threshold is safe: the agent refuses
    if (safeThresholds.size > 1024) safeThresholds.clear()
    safeThresholds.set(key, t)
  }
  return t
}
const safeThresholds = new Map<string, number>()
