import '../shared/polyfill.js'
import { parseArgs } from 'node:util'
import { availableParallelism, loadavg } from 'node:os'
import { createCipheriv, randomBytes } from 'node:crypto'
import { Packr } from 'msgpackr'
import { simulateRound } from '../shared/secagg/simulate.js'
import { chooseGraphParams } from '../shared/secagg/params.js'
import { PAIR_SEED_BYTES, PROTOCOL_VERSION, SHARE_BYTES, SHARE_CIPHERTEXT_BYTES, type SecAggMessage } from '../shared/secagg/messages.js'
import { generateX25519KeyPair, x25519PrivateKeyObject, x25519PublicKeyObject, x25519SharedSecret } from '../shared/crypto/x25519.js'
import { computeUnmaskCorrection, unmaskExpansions, type UnmaskWork } from '../shared/secagg/unmask.js'
import { computeUnmaskInWorkers } from '../shared/secagg/unmask-pool.js'

/**
 * `npm run -s bench -- secagg --agents N --dim M --dropout D --graph full|sparse|auto [--json] [--expansion-only]`
 * Simulates one whole round in this process (every agent masks for real; dropouts happen after ShareKeys,
 * the costly case for the coordinator) and prints the figures. `expansion` = bytes one agent sends in the
 * round ÷ 4·m, from exact msgpackr encodings (the wire codec). With --expansion-only the round is not run:
 * every message one agent sends at (N, M) is built at its real size and encoded.
 * With --unmask-only only the coordinator's final unmasking is timed, on synthetic work of the size a round
 * of (N, M, D) produces (survivors' self masks + dropped × surviving neighbours pairwise masks, from the pair
 * seeds the survivors send; with --key-agreement from rebuilt s-keys instead: real X25519 + HKDF + PRG), in this thread and on --workers W threads (default: cores), checking both give the same sum.
 * The full simulation unmasks on --workers W threads (server `deferUnmask` + computeUnmaskInWorkers, the
 * way a coordinator should run it; default: one per core), or in the calling thread with --workers 0.
 */

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const round2 = (x: number): number => Math.round(x * 100) / 100
const round4 = (x: number): number => Math.round(x * 10_000) / 10_000

/**
 * Synthetic unmask work with the shape of a real round: every survivor's self mask, every dropped agent × its
 * surviving neighbours. With `pairSeeds` (what the server does when the survivors send their pair seeds) the
 * pairwise masks are plain seeds; without, each needs the dropped agent's s-key and one X25519 (the fallback).
 */
export function syntheticUnmaskWork (n: number, m: number, k: number, dropout: number, pairSeeds = true): UnmaskWork {
  if (pairSeeds) {
    const work = syntheticUnmaskWork(n, m, k, dropout, false)
    const pairs = work.pairwise.flatMap(job => job.peers.map(p => ({ seed: new Uint8Array(randomBytes(32)), sign: p.sign })))
    return { ...work, seeds: [...work.seeds, ...pairs], pairwise: [] }
  }
  const dropped = Math.floor(dropout * n)
  const survivors = n - dropped
  const survivorKeys = Array.from({ length: survivors }, (_, i) => ({ id: `agent-${i}`, publicKey: generateX25519KeyPair().publicKey }))
  const liveNeighbours = Math.round(k * survivors / n)
  return {
    vectorLength: m,
    keyContext: { protocol: PROTOCOL_VERSION, roundId: 'bench-unmask', specHash: '0'.repeat(64), vectorLength: m },
    seeds: survivorKeys.map(() => ({ seed: new Uint8Array(randomBytes(32)), sign: -1 as const })),
    pairwise: Array.from({ length: dropped }, (_, d) => ({
      id: `dropped-${d}`,
      secretKey: generateX25519KeyPair().privateKey,
      peers: Array.from({ length: liveNeighbours }, (_, j) => {
        const peer = survivorKeys[(d * 7 + j * 13) % survivors]
        return { ...peer, sign: (j % 2 === 0 ? 1 : -1) as 1 | -1 }
      })
    }))
  }
}

const cloneWork = (work: UnmaskWork): UnmaskWork => ({
  ...work,
  seeds: work.seeds.map(s => ({ seed: s.seed.slice(), sign: s.sign })),
  pairwise: work.pairwise.map(p => ({ ...p, secretKey: p.secretKey.slice(), peers: p.peers }))
})

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

/**
 * AES-256-CTR keystream speed of this thread, in bytes per millisecond of CPU time (the PRG the masks are made
 * of). CPU time, not wall-clock: on a shared machine the wall clock also counts waiting for a core.
 */
export function measureAesCtrBytesPerMs (minMs = 300): number {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), Buffer.alloc(16))
  const zeros = Buffer.alloc(1 << 16)
  for (let i = 0; i < 256; i++) cipher.update(zeros) // warm-up (and the allocator's thresholds, see prg.ts)
  let bytes = 0
  const started = cpuMs()
  let elapsed = 0
  while (elapsed < minMs) {
    for (let i = 0; i < 64; i++) { cipher.update(zeros); bytes += zeros.length }
    elapsed = cpuMs() - started
  }
  return bytes / elapsed
}

/**
 * X25519 agreements per millisecond of CPU time on this thread (node:crypto, KeyObjects imported once): the
 * other floor of the coordinator's unmasking, one agreement per (dropped agent, surviving neighbour) pair.
 */
export function measureX25519PerMs (minMs = 300): number {
  const own = x25519PrivateKeyObject(generateX25519KeyPair().privateKey)
  const peers = Array.from({ length: 16 }, () => x25519PublicKeyObject(generateX25519KeyPair().publicKey))
  for (let i = 0; i < 200; i++) x25519SharedSecret(own, peers[i % peers.length]).fill(0) // warm-up
  let count = 0
  const started = cpuMs()
  let elapsed = 0
  while (elapsed < minMs) {
    for (const peer of peers) { x25519SharedSecret(own, peer).fill(0); count++ }
    elapsed = cpuMs() - started
  }
  return count / elapsed
}

/** The exact encoded bytes of every message one agent sends in a round of n agents, m entries. */
export function agentBytesPerRound (n: number, m: number, k: number, t: number, dropout: number): number {
  const packr = new Packr({ useRecords: false, moreTypes: true })
  const roundId = `round-${'x'.repeat(24)}` // the coordinator's ids are about this long
  const sig = new Uint8Array(randomBytes(64))
  const key = (): Uint8Array => new Uint8Array(randomBytes(32))
  const neighbours = Array.from({ length: k }, (_, i) => Math.floor(i * n / k))
  const liveNeighbours = neighbours.slice(0, Math.round(k * (1 - dropout)))
  const deadNeighbours = neighbours.slice(liveNeighbours.length)
  const sent: SecAggMessage[] = [
    { type: 'advertise-keys', roundId, cPk: key(), sPk: key(), bCommit: key(), signature: sig },
    ...neighbours.map((): SecAggMessage => ({ type: 'shares', roundId, ciphertext: new Uint8Array(SHARE_CIPHERTEXT_BYTES) })),
    { type: 'share-receipt', roundId, holds: neighbours, signature: sig },
    { type: 'masked-input', roundId, vector: new Uint32Array(m).fill(0xdeadbeef) },
    { type: 'consistency-signature', roundId, signature: sig },
    { type: 'unmask-shares', roundId, bOwners: liveNeighbours, bShares: new Uint8Array(liveNeighbours.length * SHARE_BYTES), sOwners: deadNeighbours, sShares: new Uint8Array(deadNeighbours.length * SHARE_BYTES), pairOwners: deadNeighbours, pairSeeds: new Uint8Array(deadNeighbours.length * PAIR_SEED_BYTES) }
  ]
  void t
  return sent.reduce((total, message) => total + packr.pack(message).length, 0)
}

export async function run (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string', default: '100' },
      dim: { type: 'string', default: '10000' },
      dropout: { type: 'string', default: '0.3' },
      graph: { type: 'string', default: 'sparse' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'expansion-only': { type: 'boolean', default: false },
      'unmask-only': { type: 'boolean', default: false },
      'key-agreement': { type: 'boolean', default: false },
      workers: { type: 'string' }
    }
  })
  const agents = Number(values.agents)
  const dim = Number(values.dim)
  const dropout = Number(values.dropout)
  const graph = values.graph as 'full' | 'sparse' | 'auto'
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers)
  if (!Number.isInteger(agents) || agents < 2 || !Number.isInteger(dim) || dim < 1 || !(dropout >= 0 && dropout < 1) || !['full', 'sparse', 'auto'].includes(graph) ||
    !(Number.isInteger(workers) && workers >= 0)) {
    process.stderr.write('usage: npm run -s bench -- secagg --agents N --dim M --dropout D --graph full|sparse|auto [--workers W] [--json] [--expansion-only | --unmask-only [--key-agreement]]\n')
    process.exitCode = 2
    return
  }
  let figures: Record<string, unknown>
  if (values['expansion-only']) {
    const { k, t, graph: kind } = chooseGraphParams({ n: agents, dropoutRate: 0.33, corruptFraction: 0.05, graph })
    const bytes = agentBytesPerRound(agents, dim, k, t, dropout)
    figures = { agents, dim, dropout, graph: kind, k, t, bytesUpPerAgent: bytes, expansion: round4(bytes / (4 * dim)), mode: 'encoded-sizes' }
  } else if (values['unmask-only']) {
    const { k, t, graph: kind } = chooseGraphParams({ n: agents, dropoutRate: 0.33, corruptFraction: 0.05, graph })
    const work = syntheticUnmaskWork(agents, dim, k, dropout, !values['key-agreement'])
    let cpu = cpuMs()
    let wall = performance.now()
    let faults = process.resourceUsage().minorPageFault
    const inThread = computeUnmaskCorrection(cloneWork(work))
    const syncMs = performance.now() - wall
    const syncCpuMs = cpuMs() - cpu
    const syncPageFaults = process.resourceUsage().minorPageFault - faults
    const poolSize = workers === 0 ? availableParallelism() : workers
    cpu = cpuMs()
    wall = performance.now()
    faults = process.resourceUsage().minorPageFault
    const pooled = await computeUnmaskInWorkers(cloneWork(work), { workers: poolSize })
    const workersMs = performance.now() - wall
    const workersCpuMs = cpuMs() - cpu
    const workersPageFaults = process.resourceUsage().minorPageFault - faults
    const expansions = unmaskExpansions(work)
    figures = {
      agents, dim, dropout, graph: kind, k, t, mode: 'unmask-only', expansions,
      sameSum: inThread.every((v, i) => v === pooled[i]),
      syncUnmaskMs: round2(syncMs), syncCpuMs: round2(syncCpuMs), syncCpuUsPerExpansion: round2(1000 * syncCpuMs / expansions), syncPageFaults,
      workers: poolSize, workersUnmaskMs: round2(workersMs), workersCpuMs: round2(workersCpuMs), workersPageFaults
    }
  } else {
    const started = Date.now()
    const loadAtStart = loadavg()[0]
    // Measured before the round, while the heap is small (a GC of the full simulation would distort it).
    const aesBytesPerMs = measureAesCtrBytesPerMs()
    const x25519PerMs = measureX25519PerMs()
    const sim = await simulateRound({ agents, dim, dropout, dropPoint: 'masked-input', graph, seed: Number(values.seed), measureBytes: true, wire: false, streaming: true, phaseTimeoutMs: 60_000, unmaskWorkers: workers })
    const included = new Set(sim.result?.included ?? [])
    // An agent that stays to the end sends and receives every message type; dropped agents do less.
    const perAgent = (bytes: Map<string, number>): number => {
      const list = [...bytes].filter(([id]) => included.has(id)).map(([, b]) => b)
      return Math.round(median(list.length > 0 ? list : [0]))
    }
    const bytesUpPerAgent = perAgent(sim.bytesSent)
    // The PRG floor of the coordinator's unmasking: every expansion of m words (survivors' self masks, dropped
    // agents × their surviving neighbours) as pure AES-CTR keystream on one core, at the CPU-time speed measured before the round.
    const prgFloorMs = sim.unmaskExpansions === null ? NaN : sim.unmaskExpansions * dim * 4 / aesBytesPerMs
    // The key-agreement floor: one X25519 per pair whose seed its survivor did not send (0 when all did).
    const agreements = sim.unmaskKeyAgreements ?? NaN
    const x25519FloorMs = agreements / x25519PerMs
    figures = {
      agents, dim, dropout, graph: sim.graph, k: sim.k, t: sim.t,
      correct: sim.correct,
      status: sim.status,
      included: sim.result?.included.length ?? 0,
      clientMaskMs: round2(median(sim.clientMaskMs)),
      clientMaskMsP95: round2([...sim.clientMaskMs].sort((a, b) => a - b)[Math.floor(0.95 * (sim.clientMaskMs.length - 1))] ?? NaN),
      serverUnmaskMs: round2(sim.serverUnmaskMs ?? NaN),
      serverUnmaskCpuMs: round2(sim.serverUnmaskCpuMs ?? NaN),
      serverReconstructMs: round2(sim.phaseTimings.unmaskReconstructMs ?? NaN),
      unmaskWorkers: workers,
      unmaskExpansions: sim.unmaskExpansions,
      unmaskKeyAgreements: sim.unmaskKeyAgreements,
      aesCtrMBps: round2(aesBytesPerMs / 1000),
      prgFloorMs: round2(prgFloorMs),
      unmaskOverFloor: round2((sim.serverUnmaskMs ?? NaN) / prgFloorMs),
      x25519PerSec: Math.round(x25519PerMs * 1000),
      x25519FloorMs: round2(x25519FloorMs),
      // PRG + key agreements on one core, and what the unmasking cost in CPU over that (1.0 = nothing else).
      cryptoFloorMs: round2(prgFloorMs + x25519FloorMs),
      unmaskCpuOverCryptoFloor: round2((sim.serverUnmaskCpuMs ?? NaN) / (prgFloorMs + x25519FloorMs)),
      bytesUpPerAgent,
      bytesDownPerAgent: perAgent(sim.bytesReceived),
      expansion: round4(bytesUpPerAgent / (4 * dim)),
      totalSeconds: round2((Date.now() - started) / 1000),
      // Peak resident set of this process (worker threads included): the simulator, the server and n agents.
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      // The machine is shared: 1-minute load average at the start and end of the run (wall times scale with it).
      loadAverage: [round2(loadAtStart), round2(loadavg()[0])],
      cores: availableParallelism()
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(figures) + '\n')
  } else {
    for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(18)} ${String(v)}\n`)
  }
}
