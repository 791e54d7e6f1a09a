/**
 * The coordinator's HTTP API (node:http). JSON everywhere; errors are {"error": {"code", "message"}}.
 * It never serves anything finer than a finished report: no per-agent vectors, no partial sums.
 *
 * Browser-facing hardening (a web page the operator visits must not drive the API):
 * - writes need `Content-Type: application/json` (415 otherwise): a cross-site page can send text/plain,
 *   form-urlencoded or multipart without a CORS preflight, but not JSON; no CORS header is ever sent, so
 *   the preflight for JSON fails;
 * - the Host header must name this server (421 otherwise): after DNS rebinding a page is same-origin with
 *   the API under its own domain name, and the Host header is the one thing that still shows it.
 *   With a bearer token and no `allowedHosts` the check is off: the page cannot attach the token;
 * - without a token the server listens only on loopback (ApiListenError otherwise).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import { z } from 'zod'
import { parseDuration } from '../shared/config/duration.js'
import { reportSummary, type Report } from '../shared/report.js'
import type { RoundOutcome, RoundKind } from './contracts.js'
import type { RoundListEntry } from '../shared/round-list.js'
import type { Logger } from '../shared/log.js'
import { FedmonError } from '../shared/errors.js'
import { hostHeaderForm, isLoopbackHost, isWildcardHost, parseHostHeader } from '../shared/config/coordinator.js'
import { openApiDocument } from './openapi.js'
import { Dashboard, isDashboardPath, sessionAuthorized } from './dashboard.js'

/** An error with an HTTP status; the backend throws these to refuse (409 too few agents, 404 unknown id...). */
export class ApiError extends FedmonError {
  readonly status: number
  constructor (status: number, code: string, message: string) {
    super(message, code)
    this.name = 'ApiError'
    this.status = status
  }
}

/** An ApiServer asked to listen off loopback without a token (the config loader refuses this first). */
export class ApiListenError extends FedmonError {
  constructor (message: string) {
    super(message, 'ERR_API_INSECURE_LISTEN')
    this.name = 'ApiListenError'
  }
}

export interface AgentView { peerId: string, online: boolean, lastSeen: string | null, lastIncludedRound: string | null }
export interface ReferenceView { reportId: string, setAt: string }
/** One monitor of the deployment (`GET /v1/monitors`, `fedmon status`). */
export interface MonitorView {
  name: string
  model: string
  specHash: string
  vectorLength: number
  schedule: { every: string, delay: string } | null
  /** The id of its round running now, or null. */
  running: string | null
  lastRound: { id: string, kind: RoundKind, status: RoundOutcome['status'], window: RoundOutcome['window'], startedAt: string, finishedAt: string | null, reportId: string | null } | null
  nextScheduledRound: string | null
  latestReport: { id: string, window: Report['window'], createdAt: string } | null
  reference: ReferenceView | null
  alertRules: number
}

export interface StatusView {
  status: 'ok'
  peerId: string
  specHash: string
  model: string
  /** The monitor the status is of (the first one unless `?monitor=` names another). */
  monitor?: string
  /** Every monitor of the deployment, with its last and next round. */
  monitors?: MonitorView[]
  agents: { total: number, online: number }
  lastRound: RoundOutcome | null
  nextScheduledRound: string | null
  reference: ReferenceView | null
  /** The latest failed, aborted, retrying and missed rounds and scheduled windows (newest last). */
  recentFailures?: RoundListEntry[]
}

/** What the API needs from the coordinator daemon. */
export interface ApiBackend {
  readonly peerId: string
  uptimeS: () => number
  /**
   * Starts a round now; returns its id. Throws ApiError 409 (busy, too few agents, window overlapping a
   * report), 422 (window too long or in the future) or 503 (not ready).
   */
  startRound: (req: { window: { from: number, to: number }, reference: boolean, refreshMs?: number, monitor?: string }) => string
  getRound: (id: string) => RoundOutcome | null
  /** Rounds and round-less scheduled windows, newest last (see shared/round-list.ts). */
  listRounds: (opts: { limit: number, failed: boolean, monitor?: string }) => RoundListEntry[]
  /** Newest last; one monitor's when `monitor` is set (404 ERR_UNKNOWN_MONITOR for no such monitor), else every monitor's. */
  listReports: (opts: { last: number, kind: RoundKind | 'any', monitor?: string }) => Report[]
  getReport: (id: string) => Report | null
  /** Every version of the window of report `id` (first round, then each label refresh), oldest first; null when unknown. */
  reportVersions: (id: string) => Report[] | null
  latestReport: (monitor?: string) => Report | null
  agents: () => AgentView[]
  /** Every monitor (absent in single-monitor test backends: an empty list). */
  monitors?: () => MonitorView[]
  status: (monitor?: string) => StatusView
  /** The monitor's current reference (the first monitor's when none is named). */
  reference: (monitor?: string) => ReferenceView | null
  /** Throws ApiError 404 when no reference-capable report of the monitor has this id. */
  setReference: (reportId: string, monitor?: string) => ReferenceView
  metrics: () => Promise<{ contentType: string, body: string }>
}

/** An instant in a body: ISO-8601 string or epoch ms. */
const Instant = z.union([
  z.number().int().nonnegative(),
  z.string().refine(s => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 instant').transform(s => Date.parse(s))
])

export const RoundRequestBody = z.object({
  window: z.object({ from: Instant, to: Instant }).refine(w => w.from < w.to, 'window.from must be before window.to'),
  reference: z.boolean().optional(),
  /**
   * A label refresh of the window's report at this declared age (one of the spec's labels.refreshAfter, e.g.
   * "30d"): only the label-dependent entries are summed again, over exactly the window's first included set.
   */
  refresh: z.string().refine(v => { try { parseDuration(v); return true } catch { return false } }, 'refresh must be a duration such as "7d" or "30d"').optional(),
  /** The monitor to run the round for; required when the deployment runs more than one. */
  monitor: z.string().min(1).max(64).optional()
})
export type RoundRequestBody = z.infer<typeof RoundRequestBody>

export const SetReferenceBody = z.object({ id: z.string().min(1), monitor: z.string().min(1).max(64).optional() })
export type SetReferenceBody = z.infer<typeof SetReferenceBody>

const MAX_BODY = 64 * 1024

export interface ApiServerOptions {
  backend: ApiBackend
  host: string
  port: number
  /** When set, every route but /healthz needs `Authorization: Bearer <token>`. Required off loopback. */
  token?: string
  /**
   * More Host header values to answer (config `api.allowedHosts`): "name" (any port) or "name:port".
   * Without a token the Host check always applies; with a token it applies only when this is set.
   */
  allowedHosts?: readonly string[]
  logger?: Logger
}

/** Which Host header values a server answers. */
export interface HostAllowList {
  /** "name:port" (IPv6 bracketed). */
  readonly exact: ReadonlySet<string>
  /** Names allowed on any port (allowedHosts entries without a port). */
  readonly anyPort: ReadonlySet<string>
}

/**
 * The Host values a server listening on host:port answers: that address itself; on loopback or all
 * interfaces also localhost, 127.0.0.1 and [::1] on that port (a wildcard's own address names nothing
 * a client would type); plus `allowedHosts`.
 */
export function hostAllowList (listen: { host: string, port: number }, allowedHosts: readonly string[] = []): HostAllowList {
  const exact = new Set<string>()
  const anyPort = new Set<string>()
  if (isLoopbackHost(listen.host) || isWildcardHost(listen.host)) {
    for (const name of ['localhost', '127.0.0.1', '[::1]']) exact.add(`${name}:${listen.port}`)
  }
  if (!isWildcardHost(listen.host)) exact.add(`${hostHeaderForm(listen.host)}:${listen.port}`)
  for (const entry of allowedHosts) {
    const parsed = parseHostHeader(entry)
    if (parsed === null) throw new ApiListenError(`api.allowedHosts: "${entry}" is not a host or host:port`)
    if (parsed.port === null) anyPort.add(parsed.host)
    else exact.add(`${parsed.host}:${parsed.port}`)
  }
  return { exact, anyPort }
}

/** Is this Host header value (undefined = absent) one the list allows? A Host without a port means port 80. */
export function hostAllowed (list: HostAllowList, header: string | undefined): boolean {
  if (header === undefined) return false
  const parsed = parseHostHeader(header)
  if (parsed === null) return false
  if (list.anyPort.has(parsed.host)) return true
  return list.exact.has(`${parsed.host}:${parsed.port ?? 80}`)
}

/** `application/json`, any case, with no parameter but an optional UTF-8 charset. */
export function isJsonContentType (header: string | undefined): boolean {
  if (header === undefined) return false
  const [type, ...params] = header.split(';')
  if (type.trim().toLowerCase() !== 'application/json') return false
  return params.every(p => {
    if (p.trim() === '') return true
    const eq = p.indexOf('=')
    const name = p.slice(0, eq < 0 ? undefined : eq).trim().toLowerCase()
    const value = eq < 0 ? '' : p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
    return name === 'charset' && /^utf-?8$/i.test(value) // the body is read as UTF-8, whatever else it claims
  })
}

/** Methods that change state: only these can start rounds or move the reference. */
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Warns at most once per kind every WARN_EVERY_MS, with a count of what it held back: a page cannot flood the log. */
const WARN_EVERY_MS = 10_000

export class ApiServer {
  private readonly opts: ApiServerOptions
  private server: Server | null = null
  private readonly tokenDigest: Buffer | null
  /** null: any Host (token set, no allowedHosts). Set once the port is known. */
  private hosts: HostAllowList | null = null
  private readonly warned = new Map<string, { at: number, held: number }>()
  /** The web dashboard on the same port (coordinator/dashboard.ts): every path outside /v1, /metrics, /healthz. */
  private readonly dashboard: Dashboard

  constructor (opts: ApiServerOptions) {
    if (opts.token === undefined && !isLoopbackHost(opts.host)) {
      throw new ApiListenError(`refusing to serve the API on ${opts.host} without a bearer token: anyone who can reach it could read reports and start rounds (set api.tokenFile, or listen on 127.0.0.1)`)
    }
    this.opts = opts
    this.tokenDigest = opts.token !== undefined ? sha256(opts.token) : null
    this.dashboard = new Dashboard({ token: opts.token })
    if (opts.allowedHosts !== undefined) hostAllowList({ host: opts.host, port: opts.port }, opts.allowedHosts) // fail before listening
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  async start (): Promise<{ host: string, port: number }> {
    // requireHostHeader off: a request without Host gets this API's JSON 421, not node's bare 400.
    const server = createServer({ requireHostHeader: false }, (req, res) => { void this.handle(req, res) })
    server.keepAliveTimeout = 5_000
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, this.opts.host, () => { server.off('error', reject); resolve() })
    })
    const addr = server.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.opts.port
    const checkHost = this.opts.token === undefined || this.opts.allowedHosts !== undefined
    this.hosts = checkHost ? hostAllowList({ host: this.opts.host, port }, this.opts.allowedHosts) : null
    return { host: this.opts.host, port }
  }

  async stop (): Promise<void> {
    const server = this.server
    this.server = null
    if (server === null) return
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }

  private authorized (req: IncomingMessage): boolean {
    if (this.tokenDigest === null) return true
    const header = req.headers.authorization ?? ''
    const m = /^Bearer\s+(.+)$/i.exec(header)
    if (m === null) return sessionAuthorized(req, this.dashboard.sessionCookieValue) // the dashboard's login cookie: reads only
    return timingSafeEqual(sha256(m[1].trim()), this.tokenDigest)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname.replace(/\/+$/, '') || '/'
    const method = req.method ?? 'GET'
    try {
      this.checkHost(req, method, path)
      if (path === '/healthz' && method === 'GET') {
        send(res, 200, { status: 'ok', peerId: this.opts.backend.peerId, uptimeS: this.opts.backend.uptimeS() })
        return
      }
      if (isDashboardPath(path)) { await this.dashboard.handle(req, res, { path, method, authorized: this.authorized(req) }); return }
      if (!this.authorized(req)) throw new ApiError(401, 'ERR_UNAUTHORIZED', 'missing or wrong bearer token')
      if (WRITE_METHODS.has(method)) this.checkJson(req, method, path)
      await this.route(method, path, url, req, res)
    } catch (err) {
      if (err instanceof ApiError) {
        // A refusal before a body was read: close rather than drain whatever the client still sends.
        if (hasBody(req) && !req.complete) res.setHeader('connection', 'close')
        send(res, err.status, { error: { code: err.code, message: err.message } })
      } else {
        this.opts.logger?.error({ err, path, method }, 'api: internal error')
        send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } })
      }
    }
  }

  /** DNS rebinding guard: the Host must name this server (see hostAllowList). */
  private checkHost (req: IncomingMessage, method: string, path: string): void {
    if (this.hosts === null) return
    const host = req.headers.host
    if (hostAllowed(this.hosts, host)) return
    const seen = host === undefined ? null : printable(host)
    this.warnLimited('host', { host: seen, method, path, remote: req.socket.remoteAddress }, 'api: refused a request for another Host (DNS rebinding?)')
    throw new ApiError(421, 'ERR_HOST_NOT_ALLOWED', seen === null
      ? 'request has no Host header'
      : `Host "${seen}" is not served here: use the address the API listens on, or add the name to api.allowedHosts`)
  }

  /** CSRF guard: a browser sends JSON cross-origin only after a CORS preflight, which this API never grants. */
  private checkJson (req: IncomingMessage, method: string, path: string): void {
    const type = req.headers['content-type']
    if (isJsonContentType(type)) return
    const seen = type === undefined ? 'none' : printable(type)
    this.warnLimited('content-type', { contentType: seen, method, path, remote: req.socket.remoteAddress }, 'api: refused a write without Content-Type: application/json (cross-site request?)')
    throw new ApiError(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', `${method} needs Content-Type: application/json (got ${seen})`)
  }

  private warnLimited (kind: string, fields: Record<string, unknown>, msg: string): void {
    const logger = this.opts.logger
    if (logger === undefined) return
    const now = Date.now()
    const last = this.warned.get(kind)
    if (last !== undefined && now - last.at < WARN_EVERY_MS) { last.held++; return }
    logger.warn({ ...fields, suppressed: last?.held ?? 0 }, msg)
    this.warned.set(kind, { at: now, held: 0 })
  }

  private async route (method: string, path: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const b = this.opts.backend
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
    if (path === '/metrics' && method === 'GET') {
      const { contentType, body } = await b.metrics()
      res.writeHead(200, { 'content-type': contentType })
      res.end(body)
      return
    }
    if (parts[0] !== 'v1') throw new ApiError(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`)
    const [, resource, id] = parts
    if (resource === 'openapi.json' && parts.length === 2 && method === 'GET') { send(res, 200, openApiDocument()); return }
    if (resource === 'rounds' && parts.length === 2) {
      if (method === 'POST') {
        const body = parseBody(RoundRequestBody, await readJson(req))
        const roundId = b.startRound({ window: body.window, reference: body.reference ?? false, ...(body.refresh !== undefined ? { refreshMs: parseDuration(body.refresh) } : {}), ...(body.monitor !== undefined ? { monitor: body.monitor } : {}) })
        send(res, 202, { roundId })
        return
      }
      if (method === 'GET') { send(res, 200, { rounds: b.listRounds(roundListParams(url)) }); return }
    }
    if (resource === 'rounds' && parts.length === 3 && method === 'GET') {
      const round = b.getRound(id)
      if (round === null) throw new ApiError(404, 'ERR_NOT_FOUND', `no round ${id}`)
      send(res, 200, round)
      return
    }
    if (resource === 'reports' && method === 'GET') {
      if (parts.length === 2) {
        const kind = url.searchParams.get('kind') ?? 'any'
        if (kind !== 'any' && kind !== 'reference' && kind !== 'current') throw new ApiError(400, 'ERR_BAD_REQUEST', 'kind must be reference, current or any')
        const monitor = monitorParam(url)
        const reports = b.listReports({ last: lastParam(url, 20), kind, ...(monitor !== undefined ? { monitor } : {}) })
        send(res, 200, { reports: view(url) === 'summary' ? reports.map(reportSummary) : reports })
        return
      }
      if (parts.length === 4 && parts[3] === 'versions') {
        const target = id === 'latest' ? b.latestReport(monitorParam(url))?.id ?? null : id
        const versions = target !== null ? b.reportVersions(target) : null
        if (versions === null || versions.length === 0) throw new ApiError(404, 'ERR_NOT_FOUND', id === 'latest' ? 'no report yet' : `no report ${id}`)
        send(res, 200, { versions: view(url) === 'summary' ? versions.map(reportSummary) : versions })
        return
      }
      if (parts.length === 3) {
        const report = id === 'latest' ? b.latestReport(monitorParam(url)) : b.getReport(id)
        if (report === null) throw new ApiError(404, 'ERR_NOT_FOUND', id === 'latest' ? 'no report yet' : `no report ${id}`)
        send(res, 200, report)
        return
      }
    }
    if (resource === 'agents' && parts.length === 2 && method === 'GET') { send(res, 200, { agents: b.agents() }); return }
    if (resource === 'status' && parts.length === 2 && method === 'GET') { send(res, 200, b.status(monitorParam(url))); return }
    if (resource === 'monitors' && parts.length === 2 && method === 'GET') { send(res, 200, { monitors: b.monitors?.() ?? [] }); return }
    if (resource === 'reference' && parts.length === 2) {
      if (method === 'GET') {
        const ref = b.reference(monitorParam(url))
        if (ref === null) throw new ApiError(404, 'ERR_NOT_FOUND', 'no reference set')
        send(res, 200, ref)
        return
      }
      if (method === 'PUT') {
        const body = parseBody(SetReferenceBody, await readJson(req))
        send(res, 200, b.setReference(body.id, body.monitor))
        return
      }
    }
    throw new ApiError(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`)
  }
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** A header value to echo in an error or a log line: printable ASCII, at most 200 characters. */
function printable (s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** `view=full` (default) or `view=summary` (shared/report.ts reportSummary). */
function view (url: URL): 'full' | 'summary' {
  const value = url.searchParams.get('view') ?? 'full'
  if (value !== 'full' && value !== 'summary') throw new ApiError(400, 'ERR_BAD_REQUEST', 'view must be full or summary')
  return value
}

/** `?monitor=NAME` (empty or absent: none). */
function monitorParam (url: URL): string | undefined {
  const monitor = url.searchParams.get('monitor')
  return monitor !== null && monitor !== '' ? monitor : undefined
}

/** GET /v1/rounds: `limit` (or `last`), `failed=true`, `monitor=NAME`. */
function roundListParams (url: URL): { limit: number, failed: boolean, monitor?: string } {
  const limit = url.searchParams.has('limit') ? countParam(url, 'limit', 20) : lastParam(url, 20)
  const failed = url.searchParams.get('failed')
  if (failed !== null && failed !== 'true' && failed !== 'false') throw new ApiError(400, 'ERR_BAD_REQUEST', 'failed must be true or false')
  const monitor = url.searchParams.get('monitor')
  return { limit, failed: failed === 'true', ...(monitor !== null && monitor !== '' ? { monitor } : {}) }
}

function lastParam (url: URL, fallback: number): number {
  return countParam(url, 'last', fallback)
}

function countParam (url: URL, name: string, fallback: number): number {
  const raw = url.searchParams.get(name)
  if (raw === null) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new ApiError(400, 'ERR_BAD_REQUEST', `${name} must be an integer in 1..10000`)
  return n
}

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new ApiError(413, 'ERR_TOO_LARGE', `body larger than ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new ApiError(400, 'ERR_BAD_REQUEST', 'body is not valid JSON')
  }
}

function parseBody<S extends z.ZodType> (schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : ''
    throw new ApiError(400, 'ERR_BAD_REQUEST', `${where}${issue?.message ?? 'invalid body'}`)
  }
  return result.data
}
