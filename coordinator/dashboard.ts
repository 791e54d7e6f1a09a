/**
 * The dashboard the coordinator serves on its API port (issue 13): `/` overview, `/monitors/NAME` history,
 * `/monitors/NAME/reports/ID` one report. The pages are a static shell plus a script bundle (built by
 * coordinator/dashboard/build.mjs into dist/coordinator/dashboard/assets); the script reads the same /v1 JSON
 * as any client, so the dashboard shows nothing the API does not serve.
 *
 * Security:
 * - auth as the API: a bearer token, or a session cookie set by the login form from the same token
 *   (HttpOnly, SameSite=Strict; its value is an HMAC of the token, never the token). The cookie authorizes
 *   reads only (GET/HEAD); writes still need the bearer header. No token configured: the API listens on
 *   loopback only and the pages need no login, as the API;
 * - every page carries a CSP that forbids inline script and style and any other origin; names from the spec
 *   (features, categories, monitors) are escaped by shared/report-html;
 * - the login form checks Origin against Host, so another site cannot post to it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Report } from '../shared/report.js'
import { FedmonError } from '../shared/errors.js'
import { dashboardShell, standaloneReportHtml } from '../shared/report-html/document.js'
import { esc } from '../shared/report-html/escape.js'

export class DashboardAssetsError extends FedmonError {
  constructor (message: string) {
    super(message, 'ERR_DASHBOARD_ASSETS')
    this.name = 'DashboardAssetsError'
  }
}

/** Where build.mjs writes the assets: next to this module in dist/. */
export const ASSET_DIR = fileURLToPath(new URL('./dashboard/assets/', import.meta.url))
const ASSETS: Record<string, string> = { 'dashboard.js': 'text/javascript; charset=utf-8', 'dashboard.css': 'text/css; charset=utf-8' }

/** The script bundle and stylesheet (read once per process). */
let cachedAssets: { js: string, css: string } | null = null
export function readDashboardAssets (): { js: string, css: string } {
  if (cachedAssets !== null) return cachedAssets
  const file = (name: string): string => {
    const path = `${ASSET_DIR}${name}`
    if (!existsSync(path)) throw new DashboardAssetsError(`dashboard asset ${path} is missing: run "npm run build" (it bundles the dashboard after tsc)`)
    return readFileSync(path, 'utf8')
  }
  cachedAssets = { js: file('dashboard.js'), css: file('dashboard.css') }
  return cachedAssets
}

/** `fedmon report --html FILE`: one self-contained page. Returns the bytes written. */
export function writeStandaloneReport (report: Report, file: string): number {
  const html = standaloneReportHtml(report, readDashboardAssets())
  try {
    writeFileSync(file, html)
  } catch (err) {
    throw new FedmonError(`--html: cannot write ${file}: ${(err as Error).message}`, 'ERR_WRITE_FILE', { cause: err })
  }
  return Buffer.byteLength(html)
}

export const SESSION_COOKIE = 'fedmon_session'

/** The session cookie's value for a token: an HMAC, so the cookie jar never holds the token itself. */
export function sessionValue (token: string): string {
  return createHmac('sha256', token).update('fedmon dashboard session v1').digest('base64url')
}

function cookie (header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}

function sameSecret (a: string, b: string): boolean {
  const x = Buffer.from(a); const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Does this request carry a valid session cookie? Reads only: a cookie never authorizes a write. */
export function sessionAuthorized (req: IncomingMessage, expected: string | null): boolean {
  if (expected === null) return false
  const method = req.method ?? 'GET'
  if (method !== 'GET' && method !== 'HEAD') return false
  const got = cookie(req.headers.cookie, SESSION_COOKIE)
  return got !== null && sameSecret(got, expected)
}

/** Paths the dashboard answers; everything else is the API's. */
export function isDashboardPath (path: string): boolean {
  return path === '/' || path === '/login' || path === '/logout' || path.startsWith('/assets/') || path === '/monitors' || path.startsWith('/monitors/')
}

/** No inline script or style, nothing from another origin; the pages fetch only their own /v1. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin', // not no-referrer: with it a browser sends "Origin: null" on the login post
  'x-frame-options': 'DENY'
}

const MAX_LOGIN_BODY = 4096

export interface DashboardRequest {
  path: string
  method: string
  /** The API's verdict: bearer token or session cookie (or no token configured). */
  authorized: boolean
}

export class Dashboard {
  private readonly token: string | null
  private readonly session: string | null

  constructor (opts: { token?: string }) {
    this.token = opts.token ?? null
    this.session = opts.token !== undefined ? sessionValue(opts.token) : null
  }

  /** The value a valid session cookie has (null: no token, no sessions). */
  get sessionCookieValue (): string | null {
    return this.session
  }

  async handle (req: IncomingMessage, res: ServerResponse, r: DashboardRequest): Promise<void> {
    const { path, method } = r
    if (path.startsWith('/assets/')) { this.asset(res, path.slice('/assets/'.length), method); return }
    if (path === '/login') { await this.login(req, res, method); return }
    if (path === '/logout') {
      res.writeHead(303, { ...SECURITY_HEADERS, location: this.token === null ? '/' : '/login', 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`, 'cache-control': 'no-store' })
      res.end()
      return
    }
    if (method !== 'GET' && method !== 'HEAD') { this.page(res, 405, 'Method not allowed', '<p class="error">The dashboard pages are read-only.</p>', { allow: 'GET, HEAD' }); return }
    if (!r.authorized) {
      res.writeHead(303, { ...SECURITY_HEADERS, location: `/login?next=${encodeURIComponent(path)}`, 'cache-control': 'no-store' })
      res.end()
      return
    }
    if (path === '/monitors') { res.writeHead(303, { ...SECURITY_HEADERS, location: '/' }); res.end(); return }
    const body = dashboardShell({ title: 'fedmon' })
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(method === 'HEAD' ? undefined : body)
  }

  private asset (res: ServerResponse, name: string, method: string): void {
    const type = ASSETS[name]
    if (type === undefined || (method !== 'GET' && method !== 'HEAD')) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' })
      res.end('not found')
      return
    }
    const assets = readDashboardAssets()
    const body = name === 'dashboard.js' ? assets.js : assets.css
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' })
    res.end(method === 'HEAD' ? undefined : body)
  }

  private async login (req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const url = new URL(req.url ?? '/login', 'http://localhost')
    const next = safeNext(url.searchParams.get('next'))
    if (this.token === null) { res.writeHead(303, { ...SECURITY_HEADERS, location: next }); res.end(); return }
    if (method === 'GET' || method === 'HEAD') { this.loginForm(res, 200, next, ''); return }
    if (method !== 'POST') { this.page(res, 405, 'Method not allowed', '', { allow: 'GET, POST' }); return }
    if (!sameOrigin(req)) { this.loginForm(res, 403, next, 'This form only accepts posts from its own page.'); return }
    const form = await readForm(req)
    if (form === null) { res.setHeader('connection', 'close'); this.loginForm(res, 413, next, 'The form was too large.'); return }
    const token = form.get('token') ?? ''
    const target = safeNext(form.get('next'))
    if (!sameSecret(sessionValue(token.trim()), this.session as string)) {
      this.loginForm(res, 401, target, 'Wrong token.')
      return
    }
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: target,
      'set-cookie': `${SESSION_COOKIE}=${this.session as string}; HttpOnly; SameSite=Strict; Path=/`,
      'cache-control': 'no-store'
    })
    res.end()
  }

  private loginForm (res: ServerResponse, status: number, next: string, error: string): void {
    this.page(res, status, 'Sign in', `<h1>Sign in to the fedmon dashboard</h1>${error !== '' ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form class="login" method="post" action="/login">
<label>API token (the coordinator's <code>api.tokenFile</code>)<br><input type="password" name="token" autocomplete="current-password" required autofocus></label>
<input type="hidden" name="next" value="${esc(next)}">
<button type="submit">Sign in</button>
</form>
<p class="note">Signing in sets a session cookie for this site (HttpOnly, SameSite=Strict) that lets the pages read the API.</p>`)
  }

  private page (res: ServerResponse, status: number, title: string, main: string, headers: Record<string, string> = {}): void {
    const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>${esc(title)} — fedmon</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/dashboard.css"></head>
<body><header class="top"><span class="brand">fedmon</span></header><main>${main}</main></body></html>
`
    res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(body)
  }
}

/** A same-site path to go to after login: "/…" but never "//host" or "/\\host" (no open redirect). */
function safeNext (next: string | null | undefined): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\r\n]/.test(next)) return '/'
  return next
}

/** A browser's form post carries Origin; it must name the Host it was sent to. */
function sameOrigin (req: IncomingMessage): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true // not a browser's cross-site post (those always carry Origin)
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false
  }
}

async function readForm (req: IncomingMessage): Promise<URLSearchParams | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_LOGIN_BODY) return null
    chunks.push(chunk as Buffer)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}
