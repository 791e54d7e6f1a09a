/**
 * Alert rules evaluated on every report, and webhook delivery of the alerts that fired.
 * Rules name a metric by dotted path into the report; `*` matches any one key. Shortcuts people expect:
 * `auc` → performance.auc.value; `drift.*.psi` covers every feature (drift.features.*.psi) and the score
 * (drift.score.psi); `drift.age.psi` means drift.features.age.psi. A value that is an object with a numeric
 * `value` (e.g. performance.auc) is read through it. Missing or null values never fire.
 */
import { z } from 'zod'
import type { Logger } from '../shared/log.js'
import type { Alert, Report } from '../shared/report.js'
import type { AlertEvaluator, AlertRule } from './contracts.js'

export const AlertRuleSchema = z.object({
  metric: z.string().min(1).regex(/^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$/, 'expected a dotted metric path like "performance.auc.value" or "drift.*.psi"'),
  below: z.number().finite().optional(),
  above: z.number().finite().optional(),
  dropFromReference: z.number().finite().nonnegative().optional(),
  name: z.string().min(1).optional()
}).strict().refine(r => [r.below, r.above, r.dropFromReference].filter(v => v !== undefined).length === 1, {
  message: 'give exactly one of below, above, dropFromReference'
})
export type AlertRuleSchema = z.infer<typeof AlertRuleSchema>

export const AlertsConfigSchema = z.array(AlertRuleSchema).default([])

/** Short metric names accepted by alerts and `fedmon report history --metric`. */
export const METRIC_ALIASES: Readonly<Record<string, string>> = {
  auc: 'performance.auc.value',
  auc_lower: 'performance.auc.lower',
  auc_upper: 'performance.auc.upper',
  pr_auc: 'performance.pr_auc',
  log_loss: 'performance.log_loss',
  brier: 'performance.brier',
  ece: 'performance.ece',
  precision: 'performance.precision',
  recall: 'performance.recall',
  f1: 'performance.f1',
  accuracy: 'performance.accuracy',
  prevalence: 'performance.prevalence',
  samples: 'samples.count',
  count: 'samples.count',
  labeled: 'samples.labeled',
  positives: 'samples.positives',
  score_psi: 'drift.score.psi'
}

const DRIFT_FIXED_KEYS = new Set(['features', 'score', 'reference', 'note', '*'])

/** Canonical path patterns for a user's metric expression (a wildcard drift path expands to two). */
export function expandMetricPattern (metric: string): string[][] {
  const resolved = METRIC_ALIASES[metric] ?? metric
  const parts = resolved.split('.')
  if (parts[0] === 'drift' && parts.length >= 3) {
    if (parts[1] === '*') return [['drift', 'features', '*', ...parts.slice(2)], ['drift', 'score', ...parts.slice(2)]]
    if (!DRIFT_FIXED_KEYS.has(parts[1])) return [['drift', 'features', ...parts.slice(1)]]
  }
  return [parts]
}

function numericLeaf (value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (value !== null && typeof value === 'object' && typeof (value as { value?: unknown }).value === 'number') {
    return numericLeaf((value as { value: number }).value)
  }
  return null
}

/** Every concrete (path, numeric value) in `root` matching the pattern; non-numeric leaves are skipped. */
export function matchMetric (root: unknown, pattern: string[]): Array<{ path: string, value: number }> {
  const out: Array<{ path: string, value: number }> = []
  const walk = (node: unknown, i: number, path: string[]): void => {
    if (i === pattern.length) {
      const v = numericLeaf(node)
      if (v !== null) out.push({ path: path.join('.'), value: v })
      return
    }
    if (node === null || typeof node !== 'object') return
    const seg = pattern[i]
    if (seg === '*') {
      for (const key of Object.keys(node).sort()) walk((node as Record<string, unknown>)[key], i + 1, [...path, key])
    } else if (Object.hasOwn(node, seg)) {
      walk((node as Record<string, unknown>)[seg], i + 1, [...path, seg])
    }
  }
  walk(root, 0, [])
  return out
}

/** Reads one concrete metric (aliases and the drift shortcut resolved) from a report; null when absent. */
export function readMetric (report: unknown, metric: string): number | null {
  for (const pattern of expandMetricPattern(metric)) {
    if (pattern.includes('*')) continue
    const hit = matchMetric(report, pattern)[0]
    if (hit !== undefined) return hit.value
  }
  return null
}

export function describeRule (rule: AlertRule & { name?: string }): string {
  if (rule.name !== undefined) return rule.name
  if (rule.below !== undefined) return `${rule.metric} below ${rule.below}`
  if (rule.above !== undefined) return `${rule.metric} above ${rule.above}`
  return `${rule.metric} drops more than ${rule.dropFromReference} from the reference`
}

const fmt = (x: number): string => Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, '')

export function createAlertEvaluator (rules: AlertRule[], opts: { now?: () => number } = {}): AlertEvaluator {
  const now = opts.now ?? Date.now
  for (const rule of rules) {
    const parsed = AlertRuleSchema.safeParse(rule)
    if (!parsed.success) throw new TypeError(`invalid alert rule ${JSON.stringify(rule)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  }
  const compiled = rules.map(rule => ({ rule, label: describeRule(rule), patterns: expandMetricPattern(rule.metric) }))

  return {
    evaluate (report: Report, reference: Report | null): Alert[] {
      const firedAt = new Date(now()).toISOString()
      const alerts: Alert[] = []
      for (const { rule, label, patterns } of compiled) {
        for (const pattern of patterns) {
          for (const { path, value } of matchMetric(report, pattern)) {
            if (rule.below !== undefined && value < rule.below) {
              alerts.push({ rule: label, metric: path, value, threshold: rule.below, kind: 'below', message: `${path} = ${fmt(value)} is below ${fmt(rule.below)}`, firedAt })
            } else if (rule.above !== undefined && value > rule.above) {
              alerts.push({ rule: label, metric: path, value, threshold: rule.above, kind: 'above', message: `${path} = ${fmt(value)} is above ${fmt(rule.above)}`, firedAt })
            } else if (rule.dropFromReference !== undefined && reference !== null) {
              const base = matchMetric(reference, path.split('.'))[0]
              if (base !== undefined && base.value - value > rule.dropFromReference) {
                alerts.push({
                  rule: label,
                  metric: path,
                  value,
                  threshold: rule.dropFromReference,
                  kind: 'dropFromReference',
                  message: `${path} dropped by ${fmt(base.value - value)} from the reference (${fmt(base.value)} → ${fmt(value)}), more than ${fmt(rule.dropFromReference)}`,
                  firedAt
                })
              }
            }
          }
        }
      }
      return alerts
    }
  }
}

type NotifierLogger = Pick<Logger, 'info' | 'warn' | 'error'>

export interface WebhookNotifierOptions {
  urls: string[]
  logger: NotifierLogger
  maxAttempts?: number
  baseDelayMs?: number
  timeoutMs?: number
  /** Deliveries in flight beyond this are dropped (logged): a dead receiver must not grow memory without bound. */
  maxPending?: number
}

/** The JSON body POSTed to each webhook. `text` makes it usable as a Slack/Mattermost incoming webhook as is. */
export interface AlertWebhookPayload {
  type: 'fedmon.alerts'
  text: string
  report: { id: string, model: string, window: Report['window'], round: Report['round'], samples: Report['samples'], createdAt: string }
  alerts: Alert[]
}

export function alertPayload (report: Report, alerts: Alert[]): AlertWebhookPayload {
  const head = `fedmon: ${alerts.length} alert${alerts.length === 1 ? '' : 's'} on ${report.spec.model} (${report.window.from} → ${report.window.to}, report ${report.id})`
  return {
    type: 'fedmon.alerts',
    text: [head, ...alerts.map(a => `• ${a.message}`)].join('\n'),
    report: { id: report.id, model: report.spec.model, window: report.window, round: report.round, samples: report.samples, createdAt: report.createdAt },
    alerts
  }
}

class RetryableError extends Error {}

/** POSTs alerts to webhooks in the background, retrying with exponential backoff; `notify` never blocks. */
export class WebhookNotifier {
  private readonly urls: string[]
  private readonly logger: NotifierLogger
  private readonly maxAttempts: number
  private readonly baseDelayMs: number
  private readonly timeoutMs: number
  private readonly maxPending: number
  private readonly pending = new Set<Promise<void>>()
  private readonly controller = new AbortController()
  private stopped = false

  constructor (opts: WebhookNotifierOptions) {
    this.urls = [...opts.urls]
    for (const url of this.urls) {
      const parsed = URL.canParse(url) ? new URL(url) : null
      if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new TypeError(`invalid webhook URL: ${url}`)
    }
    this.logger = opts.logger
    this.maxAttempts = opts.maxAttempts ?? 5
    this.baseDelayMs = opts.baseDelayMs ?? 1000
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.maxPending = opts.maxPending ?? 100
  }

  /** Number of deliveries still in flight (including their retries). */
  get inFlight (): number { return this.pending.size }

  notify (report: Report, alerts: Alert[]): void {
    if (this.stopped || alerts.length === 0 || this.urls.length === 0) return
    const body = JSON.stringify(alertPayload(report, alerts))
    for (const url of this.urls) {
      if (this.pending.size >= this.maxPending) {
        this.logger.warn({ url, reportId: report.id }, 'too many webhook deliveries pending; dropping this one')
        continue
      }
      const delivery = this.deliver(url, body, report.id).finally(() => this.pending.delete(delivery))
      this.pending.add(delivery)
    }
  }

  /**
   * Sends a notification of another kind (e.g. `fedmon.round_failed`) to every webhook, the same way as
   * alerts (background, retried); `label` names it in the log.
   */
  notifyEvent (payload: { type: string, text: string }, label: string): void {
    if (this.stopped || this.urls.length === 0) return
    const body = JSON.stringify(payload)
    for (const url of this.urls) {
      if (this.pending.size >= this.maxPending) {
        this.logger.warn({ url, event: label }, 'too many webhook deliveries pending; dropping this one')
        continue
      }
      const delivery = this.deliver(url, body, label).finally(() => this.pending.delete(delivery))
      this.pending.add(delivery)
    }
  }

  /** Waits for in-flight deliveries up to `graceMs`, then aborts the rest. */
  async stop (graceMs = 0): Promise<void> {
    this.stopped = true
    if (graceMs > 0 && this.pending.size > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.allSettled([...this.pending]), new Promise(resolve => { timer = setTimeout(resolve, graceMs) })])
      clearTimeout(timer)
    }
    this.controller.abort(new Error('webhook notifier stopped'))
    await Promise.allSettled([...this.pending])
  }

  /** Resolves when everything queued so far has been delivered or given up (for tests and orderly shutdowns). */
  async drain (): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  private async deliver (url: string, body: string, reportId: string): Promise<void> {
    const signal = this.controller.signal
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (signal.aborted) return
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'fedmon-webhook/1' },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)])
        })
        await res.arrayBuffer().catch(() => {})
        if (res.ok) {
          this.logger.info({ url, reportId, attempt }, 'alert webhook delivered')
          return
        }
        if (res.status >= 500 || res.status === 429 || res.status === 408) throw new RetryableError(`HTTP ${res.status}`)
        this.logger.error({ url, reportId, status: res.status }, 'alert webhook rejected the delivery; not retrying')
        return
      } catch (err) {
        if (signal.aborted) return
        const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)
        if (attempt === this.maxAttempts) {
          this.logger.error({ url, reportId, attempts: attempt, err: reason }, 'alert webhook delivery failed; giving up')
          return
        }
        const wait = this.baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5)
        this.logger.warn({ url, reportId, attempt, err: reason, retryInMs: Math.round(wait) }, 'alert webhook delivery failed; retrying')
        await sleep(wait, signal)
      }
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
