/**
 * A small typed client for the coordinator's HTTP API (design §5), used by every CLI command that talks
 * to a running coordinator. HTTP failures become FedmonErrors with one clear line:
 * unreachable → "cannot reach the coordinator at URL (is it running?)", 401 → "unauthorized: wrong or
 * missing token (--token-file)", 404 on a report → "no report with id X", else the server's own message.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import type { Command } from 'commander'
import { FedmonError, UsageError } from './errors.js'
import type { Report } from './report.js'
import type { RoundOutcome } from './round-outcome.js'
import type { RoundListEntry } from './round-list.js'

export const DEFAULT_API_URL = 'http://127.0.0.1:7600'

export class ApiError extends FedmonError {
  readonly status: number | null
  readonly apiCode: string | null
  constructor (message: string, code: string, status: number | null, apiCode: string | null = null, options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'ApiError'
    this.status = status
    this.apiCode = apiCode
  }
}

const ErrorBody = z.object({ error: z.object({ code: z.string().optional(), message: z.string() }) })

export const HealthResponse = z.object({ status: z.string(), peerId: z.string().optional(), uptimeS: z.number().optional() }).passthrough()
export interface HealthResponse { status: string, peerId?: string, uptimeS?: number, [extra: string]: unknown }

export const ReferenceInfo = z.object({ reportId: z.string(), setAt: z.string() })
export type ReferenceInfo = z.infer<typeof ReferenceInfo>

export const AgentInfo = z.object({ peerId: z.string(), online: z.boolean(), lastSeen: z.string().nullable(), lastIncludedRound: z.string().nullable() }).passthrough()
export interface AgentInfo { peerId: string, online: boolean, lastSeen: string | null, lastIncludedRound: string | null }
const AgentsResponse = z.object({ agents: z.array(AgentInfo) })

const RoundShape = z.object({ id: z.string(), status: z.string() }).passthrough()
const RoundListShape = z.object({
  id: z.string().nullable(),
  status: z.string(),
  window: z.object({ from: z.string(), to: z.string() }).passthrough(),
  counts: z.object({ invited: z.number(), included: z.number(), dropped: z.number(), declined: z.number() }).passthrough()
}).passthrough()
const ReportShape = z.object({ id: z.string(), window: z.object({ from: z.string(), to: z.string() }).passthrough() }).passthrough()

export const StatusResponse = z.object({
  status: z.string(),
  peerId: z.string().optional(),
  specHash: z.string().optional(),
  model: z.string().optional(),
  agents: z.object({ total: z.number(), online: z.number() }),
  lastRound: RoundShape.nullable().optional(),
  nextScheduledRound: z.string().nullable().optional(),
  reference: ReferenceInfo.nullable().optional(),
  recentFailures: z.array(RoundListShape).optional()
}).passthrough()
export interface StatusResponse {
  status: string
  peerId?: string
  specHash?: string
  model?: string
  agents: { total: number, online: number }
  lastRound?: RoundOutcome | null
  nextScheduledRound?: string | null
  reference?: ReferenceInfo | null
  recentFailures?: RoundListEntry[]
  /** The monitor this status is of, and every monitor of the deployment (coordinators with monitors). */
  monitor?: string
  monitors?: MonitorInfo[]
  [extra: string]: unknown
}

/** One monitor as `GET /v1/monitors` describes it (coordinator/api.ts MonitorView). */
export interface MonitorInfo {
  name: string
  model: string
  specHash: string
  vectorLength: number
  schedule: { every: string, delay: string } | null
  running: string | null
  lastRound: { id: string, kind: string, status: string, window: { from: string, to: string }, startedAt: string, finishedAt: string | null, reportId: string | null } | null
  nextScheduledRound: string | null
  latestReport: { id: string, window: { from: string, to: string }, createdAt: string } | null
  reference: ReferenceInfo | null
  alertRules: number
}
const MonitorInfoShape = z.object({ name: z.string(), model: z.string(), specHash: z.string() }).passthrough()

export type Instant = string | number | Date
export type ReportKindFilter = 'reference' | 'current' | 'any'

function toIso (t: Instant): string {
  const d = t instanceof Date ? t : new Date(t)
  if (Number.isNaN(d.getTime())) throw new UsageError(`invalid time: ${String(t)}`)
  return d.toISOString()
}

export interface ApiClientOptions {
  baseUrl?: string
  token?: string
  /** Per-request timeout (ms); default 30 s. */
  timeoutMs?: number
}

export interface RequestOptions { signal?: AbortSignal }

export class ApiClient {
  readonly baseUrl: string
  private readonly token: string | undefined
  private readonly timeoutMs: number

  constructor (opts: ApiClientOptions = {}) {
    const raw = (opts.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, '')
    const url = URL.canParse(raw) ? new URL(raw) : null
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`invalid --api URL: ${raw} (expected e.g. ${DEFAULT_API_URL})`)
    this.baseUrl = raw
    this.token = opts.token
    this.timeoutMs = opts.timeoutMs ?? 30_000
  }

  async health (opts: RequestOptions = {}): Promise<HealthResponse> {
    return this.parse(HealthResponse, await this.request('GET', '/healthz', undefined, opts), '/healthz') as HealthResponse
  }

  /** The deployment's monitors with their last and next round. */
  async monitors (opts: RequestOptions = {}): Promise<MonitorInfo[]> {
    return this.parse(z.object({ monitors: z.array(MonitorInfoShape) }), await this.request('GET', '/v1/monitors', undefined, opts), '/v1/monitors').monitors as unknown as MonitorInfo[]
  }

  async status (opts: RequestOptions & { monitor?: string } = {}): Promise<StatusResponse> {
    const path = `/v1/status${opts.monitor !== undefined ? `?monitor=${encodeURIComponent(opts.monitor)}` : ''}`
    return this.parse(StatusResponse, await this.request('GET', path, undefined, opts), '/v1/status') as unknown as StatusResponse
  }

  async agents (opts: RequestOptions = {}): Promise<AgentInfo[]> {
    return this.parse(AgentsResponse, await this.request('GET', '/v1/agents', undefined, opts), '/v1/agents').agents as AgentInfo[]
  }

  /** Asks for a round now; resolves to its id (the round runs in the background: see waitForRound). */
  async startRound (body: { window: { from: Instant, to: Instant }, reference?: boolean, refresh?: string, monitor?: string }, opts: RequestOptions = {}): Promise<string> {
    const payload = { window: { from: toIso(body.window.from), to: toIso(body.window.to) }, ...(body.reference === true ? { reference: true } : {}), ...(body.refresh !== undefined ? { refresh: body.refresh } : {}), ...(body.monitor !== undefined ? { monitor: body.monitor } : {}) }
    const res = this.parse(z.object({ roundId: z.string() }).passthrough(), await this.request('POST', '/v1/rounds', payload, opts), 'POST /v1/rounds')
    return res.roundId
  }

  async getRound (id: string, opts: RequestOptions = {}): Promise<RoundOutcome> {
    const res = await this.request('GET', `/v1/rounds/${encodeURIComponent(id)}`, undefined, { ...opts, notFound: `no round with id ${id}` })
    return this.parse(RoundShape, res, '/v1/rounds/:id') as unknown as RoundOutcome
  }

  /**
   * Rounds, and scheduled windows no round ran for (`id: null`), oldest first: the newest `last` (default 20);
   * `failed` keeps failed, aborted, retrying and missed ones; `monitor` one monitor's.
   */
  async listRounds (opts: RequestOptions & { last?: number, failed?: boolean, monitor?: string } = {}): Promise<RoundListEntry[]> {
    const params = new URLSearchParams()
    if (opts.last !== undefined) params.set('limit', String(opts.last))
    if (opts.failed === true) params.set('failed', 'true')
    if (opts.monitor !== undefined) params.set('monitor', opts.monitor)
    const q = params.size > 0 ? `?${params.toString()}` : ''
    const res = this.parse(z.object({ rounds: z.array(RoundListShape) }), await this.request('GET', `/v1/rounds${q}`, undefined, opts), '/v1/rounds')
    return res.rounds as unknown as RoundListEntry[]
  }

  /** Polls a round until it is no longer running. `onProgress` sees every poll (for a TTY spinner). */
  async waitForRound (id: string, opts: RequestOptions & { intervalMs?: number, onProgress?: (round: RoundOutcome) => void } = {}): Promise<RoundOutcome> {
    const interval = opts.intervalMs ?? 250
    for (;;) {
      const round = await this.getRound(id, opts)
      opts.onProgress?.(round)
      if (round.status !== 'running') return round
      await delay(interval, opts.signal)
    }
  }

  /** Reports oldest first, newest last. */
  async listReports (opts: RequestOptions & { last?: number, kind?: ReportKindFilter, monitor?: string } = {}): Promise<Report[]> {
    const params = new URLSearchParams()
    if (opts.last !== undefined) params.set('last', String(opts.last))
    if (opts.kind !== undefined) params.set('kind', opts.kind)
    if (opts.monitor !== undefined) params.set('monitor', opts.monitor)
    const q = params.size > 0 ? `?${params.toString()}` : ''
    const res = this.parse(z.object({ reports: z.array(ReportShape) }), await this.request('GET', `/v1/reports${q}`, undefined, opts), '/v1/reports')
    return res.reports as unknown as Report[]
  }

  /** The newest report (of `monitor`, when named). */
  async latestReport (opts: RequestOptions & { monitor?: string } = {}): Promise<Report> {
    const q = opts.monitor !== undefined ? `?monitor=${encodeURIComponent(opts.monitor)}` : ''
    const res = await this.request('GET', `/v1/reports/latest${q}`, undefined, { ...opts, notFound: opts.monitor !== undefined ? `no report of monitor ${opts.monitor} yet (or no such monitor: fedmon status lists them)` : 'no reports yet (run a round first: fedmon round run --reference --wait)' })
    return this.parse(ReportShape, res, '/v1/reports/latest') as unknown as Report
  }

  /** A report by id; `latest` the newest (of `monitor`, when named). */
  async getReport (id: string, opts: RequestOptions & { monitor?: string } = {}): Promise<Report> {
    if (id === 'latest') return await this.latestReport(opts)
    const res = await this.request('GET', `/v1/reports/${encodeURIComponent(id)}`, undefined, { ...opts, notFound: `no report with id ${id}` })
    return this.parse(ReportShape, res, '/v1/reports/:id') as unknown as Report
  }

  /** Every version of report `id`'s window (first round, then each label refresh), oldest first. */
  async reportVersions (id: string, opts: RequestOptions = {}): Promise<Report[]> {
    const res = await this.request('GET', `/v1/reports/${encodeURIComponent(id)}/versions`, undefined, { ...opts, notFound: `no report with id ${id}` })
    return this.parse(z.object({ versions: z.array(ReportShape) }), res, '/v1/reports/:id/versions').versions as unknown as Report[]
  }

  /** The current reference, or null when none is set. */
  async getReference (opts: RequestOptions = {}): Promise<ReferenceInfo | null> {
    try {
      return this.parse(ReferenceInfo, await this.request('GET', '/v1/reference', undefined, opts), '/v1/reference')
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null
      throw err
    }
  }

  async setReference (id: string, opts: RequestOptions = {}): Promise<ReferenceInfo> {
    const res = await this.request('PUT', '/v1/reference', { id }, { ...opts, notFound: `no report with id ${id} that can serve as the reference` })
    return this.parse(ReferenceInfo, res, 'PUT /v1/reference')
  }

  /** The Prometheus exposition text. */
  async metrics (opts: RequestOptions = {}): Promise<string> {
    return await this.request('GET', '/metrics', undefined, { ...opts, text: true }) as string
  }

  private parse<S extends z.ZodType> (schema: S, value: unknown, what: string): z.infer<S> {
    const r = schema.safeParse(value)
    if (!r.success) throw new ApiError(`unexpected response from the coordinator at ${this.baseUrl} (${what}): ${r.error.issues[0]?.message ?? 'invalid'}`, 'ERR_API_RESPONSE', null)
    return r.data
  }

  private async request (method: string, path: string, body: unknown, opts: RequestOptions & { notFound?: string, text?: boolean }): Promise<unknown> {
    const headers: Record<string, string> = { accept: opts.text === true ? 'text/plain' : 'application/json' }
    // Every write is JSON, body or not: the API refuses other types (415) as cross-site form posts.
    if (body !== undefined || (method !== 'GET' && method !== 'HEAD')) headers['content-type'] = 'application/json'
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    const signals = [AbortSignal.timeout(this.timeoutMs)]
    if (opts.signal !== undefined) signals.push(opts.signal)
    let res: Response
    try {
      res = await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.any(signals) })
    } catch (err) {
      if (opts.signal?.aborted === true) throw new ApiError('aborted', 'ERR_ABORTED', null, null, { cause: err })
      if ((err as Error)?.name === 'TimeoutError') throw new ApiError(`the coordinator at ${this.baseUrl} did not answer within ${Math.round(this.timeoutMs / 1000)} s`, 'ERR_API_TIMEOUT', null, null, { cause: err })
      throw new ApiError(`cannot reach the coordinator at ${this.baseUrl} (is it running?)`, 'ERR_API_UNREACHABLE', null, null, { cause: err })
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new ApiError(`connection to the coordinator at ${this.baseUrl} broke while reading the answer`, 'ERR_API_UNREACHABLE', res.status, null, { cause: err })
    }
    if (res.ok) {
      if (opts.text === true) return text
      try {
        return JSON.parse(text)
      } catch {
        throw new ApiError(`unexpected response from the coordinator at ${this.baseUrl} (${method} ${path}): not JSON`, 'ERR_API_RESPONSE', res.status)
      }
    }
    let serverCode: string | null = null
    let serverMessage: string | null = null
    try {
      const parsed = ErrorBody.safeParse(JSON.parse(text))
      if (parsed.success) { serverCode = parsed.data.error.code ?? null; serverMessage = parsed.data.error.message }
    } catch { /* not JSON: fall back to the status line */ }
    if (res.status === 401 || res.status === 403) throw new ApiError('unauthorized: wrong or missing token (--token-file)', 'ERR_API_UNAUTHORIZED', res.status, serverCode)
    if (res.status === 404 && opts.notFound !== undefined) throw new ApiError(opts.notFound, 'ERR_NOT_FOUND', 404, serverCode)
    const detail = serverMessage ?? `HTTP ${res.status} ${res.statusText}`.trim()
    const code = res.status === 404 ? 'ERR_NOT_FOUND' : res.status === 409 ? 'ERR_API_CONFLICT' : res.status === 400 ? 'ERR_API_BAD_REQUEST' : res.status === 503 ? 'ERR_API_UNAVAILABLE' : 'ERR_API'
    // The coordinator's own code goes on the line too: scripts and operators grep for it.
    throw new ApiError(`coordinator: ${detail.split('\n')[0]}${serverCode !== null ? ` (${serverCode})` : ''}`, code, res.status, serverCode)
  }
}

async function delay (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw new ApiError('aborted', 'ERR_ABORTED', null)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    function onAbort (): void { clearTimeout(timer); reject(new ApiError('aborted', 'ERR_ABORTED', null)) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Reads a bearer token file (first line, trimmed); errors name the file. */
export function readTokenFile (file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new FedmonError(`${file}: ${code === 'ENOENT' ? 'token file not found' : `cannot read token file (${code ?? String(err)})`}`, 'ERR_TOKEN_FILE')
  }
  const token = text.split(/\r?\n/)[0].trim()
  if (token === '') throw new FedmonError(`${file}: token file is empty`, 'ERR_TOKEN_FILE')
  return token
}

export interface ApiCliOptions { api?: string, tokenFile?: string }

/** Adds the common `--api URL` and `--token-file F` options (FEDMON_API / FEDMON_TOKEN_FILE as defaults). */
export function addApiOptions (cmd: Command): Command {
  return cmd
    .option('--api <url>', 'coordinator API URL (env FEDMON_API)', nonEmpty(process.env.FEDMON_API) ?? DEFAULT_API_URL)
    .option('--token-file <file>', 'file holding the API bearer token (env FEDMON_TOKEN_FILE)', nonEmpty(process.env.FEDMON_TOKEN_FILE))
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s
}

/** Builds a client from parsed CLI options. */
export function clientFromOptions (opts: ApiCliOptions): ApiClient {
  return new ApiClient({ baseUrl: opts.api, token: opts.tokenFile !== undefined ? readTokenFile(opts.tokenFile) : undefined })
}
