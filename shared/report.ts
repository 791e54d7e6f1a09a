/**
 * The report object of design §5 — the user-facing contract. Top-level keys are fixed; the `performance`,
 * `drift`, `samples` and `dataQuality` parts are produced by shared/stats from a summed vector, the rest
 * (id, round, window, agents, privacy, createdAt) by whoever ran the aggregation (coordinator or `evaluate`).
 */
export interface Window { from: string, to: string } // ISO-8601 instants, [from, to)

export interface Bounded {
  value: number | null
  lower: number | null
  upper: number | null
  /** Set when noise (privacy.dp) widened [lower, upper] into a confidence interval at this level. */
  confidence?: number
  /** The noise's 95 % half-width that widened the interval on each side. */
  noise?: number
}

export interface FeatureDrift {
  type: 'numeric' | 'categorical' | 'score'
  psi: number | null
  js: number | null
  ks?: { value: number | null, upper: number | null }
  wasserstein?: number | null
  hellinger: number | null
  chi2?: { statistic: number, dof: number, pValue: number } | null
  meanShift?: number | null
  stdRatio?: number | null
  missingRate: { reference: number | null, current: number | null }
  unseenRate?: { reference: number | null, current: number | null }
  status: 'ok' | 'warn' | 'drift' | 'unknown'
  [extra: string]: unknown
}

export interface Alert {
  rule: string
  metric: string
  value: number | null
  threshold: number
  kind: 'below' | 'above' | 'dropFromReference'
  message: string
  firedAt: string
}

export interface Report {
  id: string
  round: { id: string, kind: 'reference' | 'current' | 'local', durationMs?: number }
  window: Window
  spec: { model: string, hash: string, vectorLength: number }
  agents: { invited: string[], included: string[], dropped: string[] }
  samples: { count: number, labeled: number, positives: number, unlabeled: number }
  performance: Record<string, unknown> & { auc: Bounded }
  drift: { reference: { id: string | null, window: Window | null } | null, features: Record<string, FeatureDrift>, score: FeatureDrift | null, note?: string, [extra: string]: unknown }
  dataQuality: Record<string, unknown>
  alerts: Alert[]
  privacy: { threshold: number | null, minAgents: number | null, graph?: string, k?: number, dp?: unknown }
  createdAt: string
}
