import '../shared/polyfill.js'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { Packr } from 'msgpackr'
import { simulateRound } from '../shared/secagg/simulate.js'
import { chooseGraphParams } from '../shared/secagg/params.js'
import { SHARE_BYTES, SHARE_CIPHERTEXT_BYTES, type SecAggMessage } from '../shared/secagg/messages.js'

/**
 * `npm run -s bench -- secagg --agents N --dim M --dropout D --graph full|sparse|auto [--json] [--expansion-only]`
 * Simulates one whole round in this process (every agent masks for real; dropouts happen after ShareKeys,
 * the costly case for the coordinator) and prints the figures. `expansion` = bytes one agent sends in the
 * round ÷ 4·m, from exact msgpackr encodings (the wire codec). With --expansion-only the round is not run:
 * every message one agent sends at (N, M) is built at its real size and encoded.
 */

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const round2 = (x: number): number => Math.round(x * 100) / 100
const round4 = (x: number): number => Math.round(x * 10_000) / 10_000

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
    { type: 'advertise-keys', roundId, cPk: key(), sPk: key(), signature: sig },
    ...neighbours.map((): SecAggMessage => ({ type: 'shares', roundId, ciphertext: new Uint8Array(SHARE_CIPHERTEXT_BYTES) })),
    { type: 'share-receipt', roundId, holds: neighbours, signature: sig },
    { type: 'masked-input', roundId, vector: new Uint32Array(m).fill(0xdeadbeef) },
    { type: 'consistency-signature', roundId, signature: sig },
    { type: 'unmask-shares', roundId, bOwners: liveNeighbours, bShares: new Uint8Array(liveNeighbours.length * SHARE_BYTES), sOwners: deadNeighbours, sShares: new Uint8Array(deadNeighbours.length * SHARE_BYTES) }
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
      'expansion-only': { type: 'boolean', default: false }
    }
  })
  const agents = Number(values.agents)
  const dim = Number(values.dim)
  const dropout = Number(values.dropout)
  const graph = values.graph as 'full' | 'sparse' | 'auto'
  if (!Number.isInteger(agents) || agents < 2 || !Number.isInteger(dim) || dim < 1 || !(dropout >= 0 && dropout < 1) || !['full', 'sparse', 'auto'].includes(graph)) {
    process.stderr.write('usage: npm run -s bench -- secagg --agents N --dim M --dropout D --graph full|sparse|auto [--json] [--expansion-only]\n')
    process.exitCode = 2
    return
  }
  let figures: Record<string, unknown>
  if (values['expansion-only']) {
    const { k, t, graph: kind } = chooseGraphParams({ n: agents, dropoutRate: 0.33, corruptFraction: 0.05, graph })
    const bytes = agentBytesPerRound(agents, dim, k, t, dropout)
    figures = { agents, dim, dropout, graph: kind, k, t, bytesUpPerAgent: bytes, expansion: round4(bytes / (4 * dim)), mode: 'encoded-sizes' }
  } else {
    const started = Date.now()
    const sim = await simulateRound({ agents, dim, dropout, dropPoint: 'masked-input', graph, seed: Number(values.seed), measureBytes: true, wire: false, phaseTimeoutMs: 60_000 })
    const included = new Set(sim.result?.included ?? [])
    // An agent that stays to the end sends every message type; dropped agents send less.
    const perAgent = [...sim.bytesSent].filter(([id]) => included.has(id)).map(([, b]) => b)
    const bytesUpPerAgent = Math.round(median(perAgent.length > 0 ? perAgent : [0]))
    figures = {
      agents, dim, dropout, graph: sim.graph, k: sim.k, t: sim.t,
      correct: sim.correct,
      status: sim.status,
      included: sim.result?.included.length ?? 0,
      clientMaskMs: round2(median(sim.clientMaskMs)),
      clientMaskMsP95: round2([...sim.clientMaskMs].sort((a, b) => a - b)[Math.floor(0.95 * (sim.clientMaskMs.length - 1))] ?? NaN),
      serverUnmaskMs: round2(sim.serverUnmaskMs ?? NaN),
      bytesUpPerAgent,
      expansion: round4(bytesUpPerAgent / (4 * dim)),
      totalSeconds: round2((Date.now() - started) / 1000)
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(figures) + '\n')
  } else {
    for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(18)} ${String(v)}\n`)
  }
}
