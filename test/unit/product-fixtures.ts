// Report and round fixtures shared by the product's unit tests (store, alerts, metrics, CLI).
import type { Report, FeatureDrift } from '../../shared/report.js'
import type { RoundOutcome } from '../../coordinator/contracts.js'
import assert from 'node:assert/strict'

export function featureDrift (psi: number | null, status: FeatureDrift['status'] = 'ok', type: FeatureDrift['type'] = 'numeric'): FeatureDrift {
  return {
    type,
    psi,
    js: psi === null ? null : psi / 2,
    ks: { value: psi === null ? null : psi / 4, upper: psi === null ? null : psi / 4 + 0.01 },
    wasserstein: psi === null ? null : psi / 8,
    hellinger: psi === null ? null : psi / 16,
    missingRate: { reference: 0, current: 0.01 },
    status
  }
}

export function makeReport (opts: { id: string, kind?: 'reference' | 'current', auc?: number | null, psi?: Record<string, number | null>, scorePsi?: number | null, createdAt?: string, from?: string, to?: string, alerts?: Report['alerts'], count?: number }): Report {
  const auc = opts.auc === undefined ? 0.8 : opts.auc
  const psi = opts.psi ?? { age: 0.05, income: 0.3 }
  const features: Record<string, FeatureDrift> = {}
  for (const [name, v] of Object.entries(psi)) features[name] = featureDrift(v, v === null ? 'unknown' : v > 0.25 ? 'drift' : v > 0.1 ? 'warn' : 'ok')
  const count = opts.count ?? 10_000
  return {
    id: opts.id,
    round: { id: `round-${opts.id}`, kind: opts.kind ?? 'current', durationMs: 1234 },
    window: { from: opts.from ?? '2026-01-01T00:00:00.000Z', to: opts.to ?? '2026-01-02T00:00:00.000Z' },
    spec: { model: 'credit-risk', hash: 'ab'.repeat(32), vectorLength: 4242 },
    agents: { invited: ['a', 'b', 'c', 'd'], included: ['a', 'b', 'c'], dropped: ['d'] },
    samples: { count, labeled: count - 1000, positives: 2000, unlabeled: 1000 },
    performance: { auc: { value: auc, lower: auc === null ? null : auc - 0.001, upper: auc === null ? null : auc + 0.001 }, pr_auc: 0.6, log_loss: 0.45, brier: 0.15, ece: 0.02, precision: 0.7, recall: 0.6, f1: 0.646 },
    drift: { reference: { id: 'ref', window: null }, features, score: opts.scorePsi === undefined ? featureDrift(0.02, 'ok', 'score') : featureDrift(opts.scorePsi, 'ok', 'score') },
    dataQuality: { missing: { age: 0.01 } },
    alerts: opts.alerts ?? [],
    privacy: { threshold: 2, minAgents: 3 },
    createdAt: opts.createdAt ?? '2026-01-02T00:15:00.000Z'
  }
}

export function makeRound (id: string, over: Partial<RoundOutcome> = {}): RoundOutcome {
  return {
    id,
    kind: 'current',
    window: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' },
    status: 'running',
    reportId: null,
    invited: ['a', 'b', 'c', 'd'],
    included: [],
    dropped: [],
    failure: null,
    startedAt: '2026-01-02T00:15:00.000Z',
    finishedAt: null,
    timings: {},
    scheduledWindowKey: null,
    ...over
  }
}

/** Minimal Prometheus text parser: `name{labels} value` lines, HELP/TYPE kept. */
export function parseExposition (text: string): { samples: Array<{ name: string, labels: Record<string, string>, value: number }>, types: Map<string, string> } {
  const samples: Array<{ name: string, labels: Record<string, string>, value: number }> = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) { types.set(type[1], type[2]); continue }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m !== null, `unparseable exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2]
    samples.push({ name: m[1], labels, value: m[3] === 'NaN' ? Number.NaN : Number(m[3]) })
  }
  return { samples, types }
}


export function sampleValue (samples: ReturnType<typeof parseExposition>['samples'], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}
