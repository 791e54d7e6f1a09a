/**
 * Alert rules evaluated on every report, and webhook delivery (signed when a secret is set) of the alerts that
 * fired and of those that stopped firing.
 * Rules name a metric by dotted path into the report; `*` matches any one key. Shortcuts people expect:
 * `auc` → performance.auc.value; `drift.*.psi` covers every feature (drift.features.*.psi) and the score
 * (drift.score.psi); `drift.age.psi` means drift.features.age.psi. A value that is an object with a numeric
 * `value` (e.g. performance.auc) is read through it. Missing or null values never fire.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { ConfigError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { Alert, Report } from '../shared/report.js'
import type { AlertEvaluator, AlertRule } from './contracts.js'
import { cellLabel, cellReport, type PublishedSegment } from '../shared/stats/segments.js'
import { AlertRuleSchema, AlertsConfigSchema, WebhookConfigSchema, type WebhookConfig } from '../shared/config/alerts.js'

// the config schemas live in shared/ (the config loader reads them; design §8 layering)
export { AlertRuleSchema, AlertsConfigSchema, WebhookConfigSchema, type WebhookConfig }


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
  score_psi: 'drift.score.psi',
  estimated_auc: 'performance.estimated.auc',
  label_coverage: 'performance.estimated.labels.coverage',
  // regression (shared/stats/tasks/regression.ts)
  mae: 'performance.mae.value',
  rmse: 'performance.rmse.value',
  r2: 'performance.r2.value',
  bias: 'performance.bias.value',
  mape: 'performance.mape.value',
  // multiclass (shared/stats/tasks/multiclass.ts); accuracy, log_loss, brier and ece are the same paths as binary's
  macro_auc: 'performance.macro_auc.value',
  weighted_auc: 'performance.weighted_auc.value',
  macro_f1: 'performance.macro_f1',
  weighted_f1: 'performance.weighted_f1',
  macro_precision: 'performance.macro_precision',
  macro_recall: 'performance.macro_recall'
}

/** Labelled records a realised performance metric needs before a rule on it fires (unless the rule says). */
export const DEFAULT_MIN_LABELED = 100

/**
 * The samples behind a metric path and the least a rule needs: realised performance figures rest on the
 * labelled records; everything else (drift, counts, estimates from the score histogram) on all records.
 */
function samplesBehind (report: Report, path: string, rule: { minSamples?: number }): { have: number, need: number, what: string } {
  const realised = path.startsWith('performance.') && !path.startsWith('performance.estimated.')
  return realised
    ? { have: report.samples.labeled, need: rule.minSamples ?? DEFAULT_MIN_LABELED, what: 'labelled records' }
    : { have: report.samples.count, need: rule.minSamples ?? 0, what: 'records' }
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
        // what the rule reads: the overall figures, or (segment rules) each targeted published cell's, as a report
        // of its own; a suppressed cell has no figure, so it never fires
        const targets: Array<{ view: Report, base: Report | null, segment?: Record<string, string> }> = []
        if (rule.segment === undefined && rule.segments === undefined) targets.push({ view: report, base: reference })
        for (const cell of publishedCells(report, rule)) {
          targets.push({ view: cellReport(report, cell), base: reference !== null ? cellOf(reference, cell.cell) : null, segment: cell.cell })
        }
        for (const { view, base: baseReport, segment } of targets) {
          const where = segment !== undefined ? `segment ${cellLabel(segment)}: ` : ''
          const extra = segment !== undefined ? { segment } : {}
          for (const pattern of patterns) {
            for (const { path, value } of matchMetric(view, pattern)) {
              if (samplesBehind(view, path, rule).have < samplesBehind(view, path, rule).need) continue
              if (rule.below !== undefined && value < rule.below) {
                alerts.push({ rule: label, metric: path, value, threshold: rule.below, kind: 'below', message: `${where}${path} = ${fmt(value)} is below ${fmt(rule.below)}`, firedAt, ...extra })
              } else if (rule.above !== undefined && value > rule.above) {
                alerts.push({ rule: label, metric: path, value, threshold: rule.above, kind: 'above', message: `${where}${path} = ${fmt(value)} is above ${fmt(rule.above)}`, firedAt, ...extra })
              } else if (rule.dropFromReference !== undefined && baseReport !== null) {
                const base = matchMetric(baseReport, path.split('.'))[0]
                if (base !== undefined && base.value - value > rule.dropFromReference) {
                  alerts.push({
                    rule: label,
                    metric: path,
                    value,
                    threshold: rule.dropFromReference,
                    kind: 'dropFromReference',
                    message: `${where}${path} dropped by ${fmt(base.value - value)} from the reference (${fmt(base.value)} → ${fmt(value)}), more than ${fmt(rule.dropFromReference)}`,
                    firedAt,
                    ...extra
                  })
                }
              }
            }
          }
        }
      }
      return alerts
    }
  }
}

/** The published cells a segment rule reads: the one it names, or every one (`segments: "*"`). */
function publishedCells (report: Report, rule: AlertRule): PublishedSegment[] {
  if (rule.segment === undefined && rule.segments === undefined) return []
  const published = (report.segments ?? []).filter((s): s is PublishedSegment => !s.suppressed)
  if (rule.segments === '*') return published
  const want = cellLabel(rule.segment ?? {})
  return published.filter(s => cellLabel(s.cell) === want)
}

/** The same cell of another report (the reference), as a report; null when it was not published there. */
function cellOf (report: Report, cell: Record<string, string>): Report | null {
  const found = (report.segments ?? []).find((s): s is PublishedSegment => !s.suppressed && cellLabel(s.cell) === cellLabel(cell))
  return found !== undefined ? cellReport(report, found) : null
}

type NotifierLogger = Pick<Logger, 'info' | 'warn' | 'error'>


/** Where a delivery goes, and the secret that signs it (none: unsigned). */
export interface WebhookTarget { url: string, secret?: string }

const MIN_SECRET_CHARS = 16

/** Resolves the configured webhooks into targets, reading each secret now; a ConfigError names the webhook's field. */
export function loadWebhookTargets (configFile: string, webhooks: readonly WebhookConfig[], env: NodeJS.ProcessEnv = process.env): WebhookTarget[] {
  return webhooks.map((w, i) => {
    if (typeof w === 'string') return { url: w }
    let secret: string | undefined
    if (w.secretFile !== undefined) {
      const file = isAbsolute(w.secretFile) ? w.secretFile : resolve(dirname(resolve(configFile)), w.secretFile)
      try {
        secret = readFileSync(file, 'utf8').trim()
      } catch (err) {
        throw new ConfigError(configFile, `webhooks[${i}].secretFile`, `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`}`)
      }
      if (secret.length < MIN_SECRET_CHARS) throw new ConfigError(configFile, `webhooks[${i}].secretFile`, `${file}: the secret must be at least ${MIN_SECRET_CHARS} characters`)
    } else if (w.secretEnv !== undefined) {
      secret = env[w.secretEnv]?.trim()
      if (secret === undefined || secret === '') throw new ConfigError(configFile, `webhooks[${i}].secretEnv`, `the environment variable ${w.secretEnv} is not set`)
      if (secret.length < MIN_SECRET_CHARS) throw new ConfigError(configFile, `webhooks[${i}].secretEnv`, `${w.secretEnv}: the secret must be at least ${MIN_SECRET_CHARS} characters`)
    }
    return secret !== undefined ? { url: w.url, secret } : { url: w.url }
  })
}

/** The signature header (lower case, as node reports headers): `sha256=` and the HMAC-SHA256 of the body in hex. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-fedmon-signature-256'

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the webhook's secret (GitHub's X-Hub-Signature-256 scheme). */
export function webhookSignature (secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export interface WebhookNotifierOptions {
  /** Where to deliver, each with its signing secret (if any). */
  targets?: WebhookTarget[]
  /** Unsigned webhooks by URL (the same as targets without secrets). */
  urls?: string[]
  logger: NotifierLogger
  maxAttempts?: number
  baseDelayMs?: number
  timeoutMs?: number
  /** Deliveries in flight beyond this are dropped (logged): a dead receiver must not grow memory without bound. */
  maxPending?: number
}

/**
 * Any JSON body POSTed to the webhooks: `type` names the event (sent as X-Fedmon-Event too), `text` makes it
 * usable as a Slack/Mattermost incoming webhook as is.
 */
export interface WebhookPayload { type: string, text: string, [field: string]: unknown }

/** The report a notification is about, in brief. */
export interface WebhookReportSummary { id: string, model: string, window: Report['window'], round: Report['round'], samples: Report['samples'], createdAt: string }

/** The JSON body POSTed to each webhook when alerts fire. */
export interface AlertWebhookPayload extends WebhookPayload {
  type: 'fedmon.alerts'
  report: WebhookReportSummary
  alerts: Alert[]
}

/** An alert that fired on an earlier report and no longer does: its value now (null when absent) and when it last fired. */
export interface ResolvedAlert { rule: string, metric: string, value: number | null, firedAt: string, segment?: Record<string, string> }

/** The JSON body POSTed when alerts stop firing. */
export interface ResolvedWebhookPayload extends WebhookPayload {
  type: 'fedmon.alerts.resolved'
  report: WebhookReportSummary
  resolved: ResolvedAlert[]
}

function reportSummary (report: Report): WebhookReportSummary {
  return { id: report.id, model: report.spec.model, window: report.window, round: report.round, samples: report.samples, createdAt: report.createdAt }
}

export function alertPayload (report: Report, alerts: Alert[]): AlertWebhookPayload {
  const head = `fedmon: ${alerts.length} alert${alerts.length === 1 ? '' : 's'} on ${report.spec.model} (${report.window.from} → ${report.window.to}, report ${report.id})`
  return {
    type: 'fedmon.alerts',
    text: [head, ...alerts.map(a => `• ${a.message}`)].join('\n'),
    report: reportSummary(report),
    alerts
  }
}

export function resolvedPayload (report: Report, resolved: ResolvedAlert[]): ResolvedWebhookPayload {
  const head = `fedmon: ${resolved.length} alert${resolved.length === 1 ? '' : 's'} resolved on ${report.spec.model} (${report.window.from} → ${report.window.to}, report ${report.id})`
  const now = (a: ResolvedAlert): string => a.value !== null ? `${a.metric} = ${fmt(a.value)} now` : `${a.metric} absent now`
  return {
    type: 'fedmon.alerts.resolved',
    text: [head, ...resolved.map(a => `• resolved: ${a.rule} (${now(a)})`)].join('\n'),
    report: reportSummary(report),
    resolved
  }
}

class RetryableError extends Error {}

/** An alert's identity across reports: the rule that fired on which concrete metric. */
const alertKey = (a: { rule: string, metric: string, segment?: Record<string, string> }): string => `${a.rule}\u0000${a.metric}${a.segment !== undefined ? `\u0000${cellLabel(a.segment)}` : ''}`

/**
 * POSTs notifications to webhooks in the background, retrying with exponential backoff; `notify` and `send`
 * never block. Remembers which alerts fire per model and report kind, so an alert that stops firing is
 * announced as resolved (once).
 */
export class WebhookNotifier {
  private readonly targets: WebhookTarget[]
  private readonly logger: NotifierLogger
  private readonly maxAttempts: number
  private readonly baseDelayMs: number
  private readonly timeoutMs: number
  private readonly maxPending: number
  private readonly pending = new Set<Promise<void>>()
  private readonly controller = new AbortController()
  /** Firing alerts by `model / report kind`: what the last report of that series raised. */
  private readonly firing = new Map<string, Map<string, Alert>>()
  private stopped = false

  constructor (opts: WebhookNotifierOptions) {
    this.targets = [...(opts.targets ?? []), ...(opts.urls ?? []).map(url => ({ url }))]
    for (const { url } of this.targets) {
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

  /**
   * Takes every new report with the alerts it raised (none included): sends the alerts that fire, and a
   * `resolved` notification for those that fired on the previous report of the series and no longer do.
   */
  notify (report: Report, alerts: Alert[]): void {
    const resolved = this.track(report, alerts)
    if (alerts.length > 0) this.send(alertPayload(report, alerts))
    if (resolved.length > 0) this.send(resolvedPayload(report, resolved))
  }

  /** Takes a report's alerts as the firing state without notifying (e.g. the last stored report, at start). */
  rememberFiring (report: Report): void {
    this.track(report, report.alerts)
  }

  /** POSTs `payload` to every webhook (signed where a secret is set), in the background. */
  send (payload: WebhookPayload): void {
    if (this.stopped || this.targets.length === 0) return
    const body = JSON.stringify(payload)
    const id = typeof (payload.report as { id?: unknown } | undefined)?.id === 'string' ? (payload.report as { id: string }).id : undefined
    for (const target of this.targets) {
      if (this.pending.size >= this.maxPending) {
        this.logger.warn({ url: target.url, event: payload.type, reportId: id }, 'too many webhook deliveries pending; dropping this one')
        continue
      }
      const delivery = this.deliver(target, body, payload.type, id).finally(() => this.pending.delete(delivery))
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

  /** Records what fires now for the report's series; returns what fired before and no longer does. */
  private track (report: Report, alerts: Alert[]): ResolvedAlert[] {
    const series = `${report.spec.model}\u0000${report.round.kind}`
    const before = this.firing.get(series) ?? new Map<string, Alert>()
    const now = new Map(alerts.map(a => [alertKey(a), a]))
    this.firing.set(series, now)
    const resolved: ResolvedAlert[] = []
    for (const [key, a] of before) {
      if (now.has(key)) continue
      if (a.segment !== undefined) {
        const cell = cellOf(report, a.segment) // null: the cell is suppressed now (no figure)
        resolved.push({ rule: a.rule, metric: a.metric, value: cell !== null ? readMetric(cell, a.metric) : null, firedAt: a.firedAt, segment: a.segment })
        continue
      }
      resolved.push({ rule: a.rule, metric: a.metric, value: readMetric(report, a.metric), firedAt: a.firedAt })
    }
    return resolved
  }

  private async deliver (target: WebhookTarget, body: string, event: string, reportId: string | undefined): Promise<void> {
    const { url } = target
    const signal = this.controller.signal
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'fedmon-webhook/1', 'x-fedmon-event': event, 'x-fedmon-delivery': randomUUID() }
    if (target.secret !== undefined) headers[WEBHOOK_SIGNATURE_HEADER] = webhookSignature(target.secret, body)
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (signal.aborted) return
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)])
        })
        await res.arrayBuffer().catch(() => {})
        if (res.ok) {
          this.logger.info({ url, event, reportId, attempt }, 'webhook delivered')
          return
        }
        if (res.status >= 500 || res.status === 429 || res.status === 408) throw new RetryableError(`HTTP ${res.status}`)
        this.logger.error({ url, event, reportId, status: res.status }, 'webhook rejected the delivery; not retrying')
        return
      } catch (err) {
        if (signal.aborted) return
        const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)
        if (attempt === this.maxAttempts) {
          this.logger.error({ url, event, reportId, attempts: attempt, err: reason }, 'webhook delivery failed; giving up')
          return
        }
        const wait = this.baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5)
        this.logger.warn({ url, event, reportId, attempt, err: reason, retryInMs: Math.round(wait) }, 'webhook delivery failed; retrying')
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
