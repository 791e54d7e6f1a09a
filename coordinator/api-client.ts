/** A small client for the coordinator's HTTP API (used by the CLI commands; no secrets but the bearer token). */
import { readFileSync } from 'node:fs'
import { FedmonError } from '../shared/errors.js'

export class ApiRequestError extends FedmonError {
  readonly status: number
  constructor (status: number, code: string, message: string) {
    super(message, code)
    this.name = 'ApiRequestError'
    this.status = status
  }
}

export interface ApiClientOptions { url: string, tokenFile?: string, token?: string, timeoutMs?: number }

export class ApiClient {
  private readonly base: string
  private readonly token: string | undefined
  private readonly timeoutMs: number

  constructor (opts: ApiClientOptions) {
    this.base = opts.url.replace(/\/+$/, '')
    this.timeoutMs = opts.timeoutMs ?? 30_000
    if (opts.token !== undefined) this.token = opts.token
    else if (opts.tokenFile !== undefined) {
      try {
        this.token = readFileSync(opts.tokenFile, 'utf8').trim()
      } catch (err) {
        throw new FedmonError(`${opts.tokenFile}: cannot read token file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'ERR_TOKEN_FILE')
      }
    }
  }

  async get<T> (path: string): Promise<T> {
    return await this.request<T>('GET', path)
  }

  async post<T> (path: string, body: unknown): Promise<T> {
    return await this.request<T>('POST', path, body)
  }

  async put<T> (path: string, body: unknown): Promise<T> {
    return await this.request<T>('PUT', path, body)
  }

  async request<T> (method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.base + path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (err) {
      const c = (err as { cause?: { code?: string, message?: string, errors?: Array<{ code?: string }> } }).cause
      const cause = c?.code ?? c?.errors?.[0]?.code ?? ((err as Error).name === 'TimeoutError' ? 'timed out' : c?.message ?? (err as Error).message)
      throw new FedmonError(`cannot reach the coordinator API at ${this.base} (${cause})`, 'ERR_UNREACHABLE')
    }
    const text = await res.text()
    let json: unknown = null
    try { json = text === '' ? null : JSON.parse(text) } catch { /* not JSON */ }
    if (!res.ok) {
      const e = (json as { error?: { code?: string, message?: string } } | null)?.error
      throw new ApiRequestError(res.status, e?.code ?? `HTTP_${res.status}`, `${method} ${path}: ${res.status} ${e?.message ?? text.slice(0, 200)}`)
    }
    return json as T
  }
}
