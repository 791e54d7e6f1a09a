/** The coordinator's config file (YAML or JSON). Paths are relative to the config file. */
import { isIPv4, isIPv6 } from 'node:net'
import { z } from 'zod'
import { loadConfigFile, resolveFrom } from './load.js'
import { isPeerIdString } from '../identity.js'
import { ListenAddrs, NetworkConfig } from './agent.js'
import { loadRosterFile } from './roster.js'
import { ScheduleConfigSchema } from './schedule.js'
// The alert rules' and webhooks' grammar lives with their evaluator; the config reuses their schemas so both always agree.
import { AlertRuleSchema, WebhookConfigSchema } from './alerts.js'

const PeerIdString = z.string().refine(isPeerIdString, 'not a libp2p peer id (12D3Koo...)')

const HostPort = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7600')

const AllowedHost = z.string().refine(s => parseHostHeader(s) !== null,
  'expected a host name or host:port as the Host header carries it (no scheme, path or wildcard), e.g. fedmon.example.com or fedmon.example.com:8443')

/**
 * Without a bearer token the API trusts whoever can connect, so it may listen only where nobody else can:
 * on loopback. Anywhere else (0.0.0.0, a LAN address, a DNS name) any host on the network, or a web page
 * via DNS rebinding, could read reports and start rounds that use up the sites' windows.
 */
function requireTokenOffLoopback (api: { listen: string, tokenFile?: string }, ctx: z.RefinementCtx): void {
  if (api.tokenFile !== undefined || typeof api.listen !== 'string') return
  const { host } = parseHostPort(api.listen)
  if (isLoopbackHost(host)) return
  ctx.addIssue({
    code: 'custom',
    path: ['tokenFile'],
    message: `required because api.listen ${api.listen} is not a loopback address: without a bearer token anyone who can reach it could read reports and start rounds; set api.tokenFile (a file holding a token of at least 16 characters) or listen on 127.0.0.1`
  })
}


/** An instant: ISO-8601 string or epoch ms. */
export const Instant = z.union([z.number().int().nonnegative(), z.string().refine(s => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 instant')])
  .transform(v => typeof v === 'number' ? v : Date.parse(v))

export const PrivacyConfig = z.object({
  minAgents: z.number().int().min(2).default(3),
  threshold: z.number().int().min(1).optional(),
  dropoutRate: z.number().min(0).max(0.9).optional(),
  corruptFraction: z.number().min(0).max(0.9).optional(),
  graph: z.enum(['full', 'sparse', 'auto']).optional()
}).strict()

/** Default `round.maxWindowMs`: 31 days (coordinator/window-rails.ts applies it). */
export const DEFAULT_MAX_WINDOW_MS = 31 * 86_400_000

/** A monitor's name: in URLs, Prometheus labels and CLI flags, so a short token. */
export const MonitorName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a monitor name of 1-64 letters, digits, ".", "_" or "-" (starting with a letter or digit)')

const ReferenceWindow = z.object({ from: Instant, to: Instant }).strict().refine(w => w.from < w.to, 'from must be before to')

/** One entry of `monitors`: a model's spec with its own schedule, reference window, alert rules and webhooks. */
export const MonitorConfig = z.object({
  name: MonitorName,
  spec: z.string().min(1),
  schedule: ScheduleConfigSchema.optional(),
  reference: ReferenceWindow.optional(),
  alerts: z.array(AlertRuleSchema).default([]),
  webhooks: z.array(WebhookConfigSchema).default([])
}).strict()

/** Keys that belong in each monitor once `monitors` is set (one deployment, many monitors). */
const PER_MONITOR_KEYS = ['spec', 'schedule', 'reference', 'alerts', 'webhooks'] as const

export const CoordinatorConfig = z.object({
  identity: z.string().min(1),
  listen: ListenAddrs.default(['/ip4/127.0.0.1/tcp/4001']),
  /** The roster: peer ids inline, or the path of the roster file the agents have too (shared/config/roster.ts). */
  agents: z.union([z.array(PeerIdString).min(1), z.string().min(1)], { error: 'expected a list of peer ids, or the path of a roster file' }),
  /** `announceAllow`: which of an agent's hello addresses are announced to its neighbours (and dialled). */
  network: z.object({ announceAllow: NetworkConfig.shape.dialAllow }).strict().optional(),
  /** The single monitor's spec (the monitor is named after the spec's model); or `monitors`. */
  spec: z.string().min(1).optional(),
  /** Many monitors in one deployment (one node, one roster, one API). */
  monitors: z.array(MonitorConfig).min(1, 'list at least one monitor (or use `spec` for a single one)').optional(),
  store: z.string().min(1),
  api: z.object({
    listen: HostPort.default('127.0.0.1:7600'),
    tokenFile: z.string().min(1).optional(),
    /** Extra names the API answers to (Host header), e.g. behind a reverse proxy: "host" (any port) or "host:port". */
    allowedHosts: z.array(AllowedHost).optional()
  }).strict().superRefine(requireTokenOffLoopback).default({ listen: '127.0.0.1:7600' }),
  privacy: PrivacyConfig.default({ minAgents: 3 }),
  schedule: ScheduleConfigSchema.optional(),
  reference: ReferenceWindow.optional(),
  alerts: z.array(AlertRuleSchema).optional(),
  webhooks: z.array(WebhookConfigSchema).optional(),
  round: z.object({
    phaseTimeoutMs: z.number().int().min(100).default(30_000),
    /** The longest window a round may cover (API, configured reference and scheduled rounds alike). */
    maxWindowMs: z.number().int().min(1000).default(DEFAULT_MAX_WINDOW_MS)
  }).strict().default({ phaseTimeoutMs: 30_000, maxWindowMs: DEFAULT_MAX_WINDOW_MS })
}).strict().superRefine((config, ctx) => {
  if (config.monitors === undefined) {
    if (config.spec === undefined) ctx.addIssue({ code: 'custom', path: ['spec'], message: 'required: the monitor spec file (or `monitors: [{name, spec, ...}]` for several monitors)' })
    return
  }
  for (const key of PER_MONITOR_KEYS) {
    if (config[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `not allowed beside \`monitors\`: each monitor has its own ${key} (monitors[].${key})` })
  }
  const seen = new Map<string, number>()
  config.monitors.forEach((m, i) => {
    const earlier = seen.get(m.name)
    if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: ['monitors', i, 'name'], message: `"${m.name}" is already the name of monitors[${earlier}]: monitor names must be unique` })
    else seen.set(m.name, i)
  })
})

/**
 * One monitor as loaded: the spec path resolved. `name` null for the single monitor of a config without
 * `monitors` (the daemon names it after the spec's model). `field` is where it sits in the file ('' top level).
 */
export interface LoadedMonitorConfig {
  name: string | null
  field: string
  spec: string
  schedule?: z.infer<typeof ScheduleConfigSchema>
  reference?: { from: number, to: number }
  alerts: Array<z.infer<typeof AlertRuleSchema>>
  webhooks: Array<z.infer<typeof WebhookConfigSchema>>
}

/**
 * A coordinator config as loaded: `agents` the roster's peer ids, `rosterFile` set when they come from a file,
 * `monitors` always set (a single-`spec` config is one monitor). The top-level spec, schedule, reference, alerts
 * and webhooks are those of the first monitor (what single-monitor code reads).
 */
export type CoordinatorConfig = Omit<z.infer<typeof CoordinatorConfig>, 'agents' | 'spec' | 'monitors' | 'alerts' | 'webhooks'> & {
  agents: string[]
  rosterFile?: string
  file: string
  spec: string
  alerts: LoadedMonitorConfig['alerts']
  webhooks: LoadedMonitorConfig['webhooks']
  monitors: LoadedMonitorConfig[]
}

/** The roster a coordinator config names: inline ids, or those of the roster file (read now). */
function resolveRoster (file: string, agents: string | string[]): { agents: string[], rosterFile?: string } {
  if (typeof agents !== 'string') return { agents }
  const rosterFile = resolveFrom(file, agents)
  return { agents: [...loadRosterFile(rosterFile, { from: { file, field: 'agents' } }).ids], rosterFile }
}

/**
 * Loads, validates and resolves a coordinator config (and reads its roster file, if it names one);
 * ConfigError names the file and the field. Run again on a roster reload (SIGHUP).
 */
export function loadCoordinatorConfig (file: string): CoordinatorConfig {
  const config = loadConfigFile(file, CoordinatorConfig)
  const monitors: LoadedMonitorConfig[] = config.monitors !== undefined
    ? config.monitors.map((m, i) => ({ ...m, field: `monitors[${i}]`, spec: resolveFrom(file, m.spec) }))
    : [{ name: null, field: '', spec: resolveFrom(file, config.spec as string), schedule: config.schedule, reference: config.reference, alerts: config.alerts ?? [], webhooks: config.webhooks ?? [] }]
  const first = monitors[0]
  return {
    ...config,
    ...resolveRoster(file, config.agents),
    file,
    monitors,
    identity: resolveFrom(file, config.identity),
    spec: first.spec,
    schedule: first.schedule,
    reference: first.reference,
    alerts: first.alerts,
    webhooks: first.webhooks,
    store: resolveFrom(file, config.store),
    api: { ...config.api, tokenFile: config.api.tokenFile !== undefined ? resolveFrom(file, config.api.tokenFile) : undefined }
  }
}

/** Splits "127.0.0.1:7600" / "[::1]:7600" into host and port. */
export function parseHostPort (s: string): { host: string, port: number } {
  const i = s.lastIndexOf(':')
  let host = s.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host, port: Number(s.slice(i + 1)) }
}

/** A listen host reachable only from this machine: 127.0.0.0/8, ::1 or the name localhost. */
export function isLoopbackHost (host: string): boolean {
  const h = unbracket(host.toLowerCase())
  if (h === 'localhost') return true
  if (isIPv4(h)) return h.startsWith('127.')
  if (isIPv6(h)) return normalizeIPv6(h) === '[::1]'
  return false
}

/** A listen host meaning "every interface" (0.0.0.0, ::), where the literal host names no address. */
export function isWildcardHost (host: string): boolean {
  const h = unbracket(host.toLowerCase())
  if (h === '' || h === '0.0.0.0') return true
  return isIPv6(h) && normalizeIPv6(h) === '[::]'
}

/**
 * Parses an HTTP Host header value ("name", "name:port", "[v6]:port") into a lower-case host (IPv6 in its
 * bracketed canonical form) and the port (null when absent); null for anything else (userinfo, path, list).
 */
export function parseHostHeader (value: string): { host: string, port: number | null } | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?::(\d{1,5}))?$/.exec(value)
  if (m === null) return null
  const port = m[2] !== undefined ? Number(m[2]) : null
  if (port !== null && port > 65535) return null
  let host = m[1].toLowerCase()
  if (host.startsWith('[')) {
    if (!isIPv6(unbracket(host))) return null
    host = normalizeIPv6(unbracket(host))
  }
  return { host, port }
}

/** A listen host as a Host header spells it: IPv6 bracketed and canonical, names lower-case. */
export function hostHeaderForm (host: string): string {
  const h = unbracket(host.toLowerCase())
  return isIPv6(h) ? normalizeIPv6(h) : h
}

function unbracket (h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h
}

/** "0:0::1" and "::1" are one address: compare IPv6 in the WHATWG URL serialisation ("[::1]"). */
function normalizeIPv6 (h: string): string {
  try {
    return new URL(`http://[${h}]/`).hostname
  } catch {
    return `[${h}]` // a zone id (fe80::1%eth0) is no URL host: keep it verbatim
  }
}
