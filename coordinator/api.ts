/**
 * The coordinator's HTTP API (node:http). JSON everywhere; errors are {"error": {"code", "message"}}.
 * It never serves anything finer than a finished report: no per-agent vectors, no partial sums.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import { z } from 'zod'
import type { Report } from '../shared/report.js'
import type { RoundOutcome, RoundKind } from './contracts.js'
import type { Logger } from '../shared/log.js'
import { FedmonError } from '../shared/errors.js'

/** An error with an HTTP status; the backend throws these to refuse (409 too few agents, 404 unknown id...). */
export class ApiError extends FedmonError {
  readonly status: number
  constructor (status: number, code: string, message: string) {
    super(message, code)
    this.name = 'ApiError'
    this.status = status
  }
}

export interface AgentView { peerId: string, online: boolean, lastSeen: string | null, lastIncludedRound: string | null }
export interface ReferenceView { reportId: string, setAt: string }
export interface StatusView {
  status: 'ok'
  peerId: string
  specHash: string
  model: string
  agents: { total: number, online: number }
  lastRound: RoundOutcome | null
  nextScheduledRound: string | null
  reference: ReferenceView | null
}

/** What the API needs from the coordinator daemon. */
export interface ApiBackend {
  readonly peerId: string
  uptimeS: () => number
  /** Starts a round now; returns its id. Throws ApiError 409 (busy, too few agents) or 503 (not ready). */
  startRound: (req: { window: { from: number, to: number }, reference: boolean }) => string
  getRound: (id: string) => RoundOutcome | null
  listRounds: (last: number) => RoundOutcome[]
  listReports: (opts: { last: number, kind: RoundKind | 'any' }) => Report[]
  getReport: (id: string) => Report | null
  latestReport: () => Report | null
  agents: () => AgentView[]
  status: () => StatusView
  reference: () => ReferenceView | null
  /** Throws ApiError 404 when no reference-capable report has this id. */
  setReference: (reportId: string) => ReferenceView
  metrics: () => Promise<{ contentType: string, body: string }>
}

/** An instant in a body: ISO-8601 string or epoch ms. */
const Instant = z.union([
  z.number().int().nonnegative(),
  z.string().refine(s => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 instant').transform(s => Date.parse(s))
])

export const RoundRequestBody = z.object({
  window: z.object({ from: Instant, to: Instant }).refine(w => w.from < w.to, 'window.from must be before window.to'),
  reference: z.boolean().optional()
})
export type RoundRequestBody = z.infer<typeof RoundRequestBody>

export const SetReferenceBody = z.object({ id: z.string().min(1) })
export type SetReferenceBody = z.infer<typeof SetReferenceBody>

const MAX_BODY = 64 * 1024

export interface ApiServerOptions {
  backend: ApiBackend
  host: string
  port: number
  /** When set, every route but /healthz needs `Authorization: Bearer <token>`. */
  token?: string
  logger?: Logger
}

export class ApiServer {
  private readonly opts: ApiServerOptions
  private server: Server | null = null
  private readonly tokenDigest: Buffer | null

  constructor (opts: ApiServerOptions) {
    this.opts = opts
    this.tokenDigest = opts.token !== undefined ? sha256(opts.token) : null
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  async start (): Promise<{ host: string, port: number }> {
    const server = createServer((req, res) => { void this.handle(req, res) })
    server.keepAliveTimeout = 5_000
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, this.opts.host, () => { server.off('error', reject); resolve() })
    })
    const addr = server.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.opts.port
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
    if (m === null) return false
    return timingSafeEqual(sha256(m[1].trim()), this.tokenDigest)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname.replace(/\/+$/, '') || '/'
    const method = req.method ?? 'GET'
    try {
      if (path === '/healthz' && method === 'GET') {
        send(res, 200, { status: 'ok', peerId: this.opts.backend.peerId, uptimeS: this.opts.backend.uptimeS() })
        return
      }
      if (!this.authorized(req)) throw new ApiError(401, 'ERR_UNAUTHORIZED', 'missing or wrong bearer token')
      await this.route(method, path, url, req, res)
    } catch (err) {
      if (err instanceof ApiError) {
        send(res, err.status, { error: { code: err.code, message: err.message } })
      } else {
        this.opts.logger?.error({ err, path, method }, 'api: internal error')
        send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } })
      }
    }
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
    if (resource === 'rounds' && parts.length === 2) {
      if (method === 'POST') {
        const body = parseBody(RoundRequestBody, await readJson(req))
        const roundId = b.startRound({ window: body.window, reference: body.reference ?? false })
        send(res, 202, { roundId })
        return
      }
      if (method === 'GET') { send(res, 200, { rounds: b.listRounds(lastParam(url, 20)) }); return }
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
        send(res, 200, { reports: b.listReports({ last: lastParam(url, 20), kind }) })
        return
      }
      if (parts.length === 3) {
        const report = id === 'latest' ? b.latestReport() : b.getReport(id)
        if (report === null) throw new ApiError(404, 'ERR_NOT_FOUND', id === 'latest' ? 'no report yet' : `no report ${id}`)
        send(res, 200, report)
        return
      }
    }
    if (resource === 'agents' && parts.length === 2 && method === 'GET') { send(res, 200, { agents: b.agents() }); return }
    if (resource === 'status' && parts.length === 2 && method === 'GET') { send(res, 200, b.status()); return }
    if (resource === 'reference' && parts.length === 2) {
      if (method === 'GET') {
        const ref = b.reference()
        if (ref === null) throw new ApiError(404, 'ERR_NOT_FOUND', 'no reference set')
        send(res, 200, ref)
        return
      }
      if (method === 'PUT') {
        const body = parseBody(SetReferenceBody, await readJson(req))
        send(res, 200, b.setReference(body.id))
        return
      }
    }
    throw new ApiError(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`)
  }
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function lastParam (url: URL, fallback: number): number {
  const raw = url.searchParams.get('last')
  if (raw === null) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new ApiError(400, 'ERR_BAD_REQUEST', 'last must be an integer in 1..10000')
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
