/**
 * The HTTP API's OpenAPI 3.1 document (served at GET /v1/openapi.json), generated from zod schemas: the request
 * bodies the server validates with (api.ts) and response schemas written here, each checked by the compiler
 * against the type the server sends (a field renamed there fails the build here). A test asks the real server
 * about every path its source names and compares what it answers with the operations listed below.
 */
import { z } from 'zod'
import type { Report } from '../shared/report.js'
import type { RoundOutcome } from './contracts.js'
import { RoundRequestBody, SetReferenceBody, type AgentView, type ReferenceView, type StatusView } from './api.js'

const Instant = z.string().meta({ description: 'ISO-8601 instant', example: '2026-01-01T00:00:00.000Z' })
const WindowSchema = z.object({ from: Instant, to: Instant }).meta({ description: 'The half-open time window [from, to).' })

export const ErrorBodySchema = z.object({ error: z.object({ code: z.string().meta({ example: 'ERR_NOT_FOUND' }), message: z.string() }) })
export const HealthSchema = z.object({ status: z.literal('ok'), peerId: z.string(), uptimeS: z.number() })
export const RoundStartedSchema = z.object({ roundId: z.string() })

export const RoundOutcomeSchema = z.object({
  id: z.string(),
  kind: z.enum(['reference', 'current']),
  window: WindowSchema,
  status: z.enum(['running', 'done', 'failed', 'aborted']),
  reportId: z.string().nullable(),
  invited: z.array(z.string()).meta({ description: 'Peer ids of the agents asked to take part.' }),
  included: z.array(z.string()).meta({ description: 'Peer ids of the agents whose data is in the report.' }),
  dropped: z.array(z.string()),
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  declined: z.array(z.object({
    agent: z.string(),
    code: z.string(),
    reason: z.string(),
    signature: z.string().meta({ description: 'The agent\'s ed25519 signature (hex) over its decline, verifiable with its peer id.' })
  })).optional().meta({ description: 'Agents that refused the round, with their signed reasons.' }),
  startedAt: Instant,
  finishedAt: Instant.nullable(),
  timings: z.record(z.string(), z.number()).meta({ description: 'Milliseconds per phase.' }),
  scheduledWindowKey: z.string().nullable(),
  monitor: z.string().optional().meta({ description: 'The monitor the round was for (absent in rounds from before monitors).' })
})

/** GET /v1/rounds entries (shared/round-list.ts): rounds and scheduled windows no round ran for. */
export const RoundListEntrySchema = z.looseObject({
  id: z.string().nullable().meta({ description: 'The round; null for a scheduled window no round ran for (refused, retrying or missed).' }),
  monitor: z.string(),
  kind: z.enum(['reference', 'current']),
  window: WindowSchema,
  status: z.string().meta({ description: 'running, done, failed, aborted; for scheduled windows also retrying or missed.' }),
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  reportId: z.string().nullable(),
  scheduledWindowKey: z.string().nullable(),
  counts: z.object({ invited: z.number().int(), included: z.number().int(), dropped: z.number().int(), declined: z.number().int() }),
  startedAt: Instant,
  finishedAt: Instant.nullable(),
  attempts: z.number().int().optional(),
  nextAttemptAt: Instant.nullable().optional()
})

const Bounded = z.object({ value: z.number().nullable(), lower: z.number().nullable(), upper: z.number().nullable() })
const Rates = z.object({ reference: z.number().nullable(), current: z.number().nullable() })
const FeatureDriftSchema = z.looseObject({
  type: z.enum(['numeric', 'categorical', 'score']),
  psi: z.number().nullable(),
  js: z.number().nullable(),
  ks: z.object({ value: z.number().nullable(), upper: z.number().nullable() }).optional(),
  wasserstein: z.number().nullable().optional(),
  hellinger: z.number().nullable(),
  chi2: z.object({ statistic: z.number(), dof: z.number(), pValue: z.number() }).nullable().optional(),
  meanShift: z.number().nullable().optional(),
  stdRatio: z.number().nullable().optional(),
  missingRate: Rates,
  unseenRate: Rates.optional(),
  status: z.enum(['ok', 'warn', 'drift', 'unknown'])
})
const AlertSchema = z.object({
  rule: z.string(),
  metric: z.string(),
  value: z.number().nullable(),
  threshold: z.number(),
  kind: z.enum(['below', 'above', 'dropFromReference']),
  message: z.string(),
  firedAt: Instant
})

export const ReportSchema = z.object({
  id: z.string(),
  round: z.object({ id: z.string(), kind: z.enum(['reference', 'current', 'local']), durationMs: z.number().optional() }),
  window: WindowSchema,
  spec: z.object({ model: z.string(), hash: z.string(), vectorLength: z.number() }),
  agents: z.object({ invited: z.array(z.string()), included: z.array(z.string()), dropped: z.array(z.string()), contributing: z.number().optional().meta({ description: 'included sites with at least one record in the window (the summed per-site indicator; noisy under privacy.dp); absent in reports made before layout v3' }) }),
  samples: z.object({ count: z.number(), labeled: z.number(), positives: z.number().nullable(), unlabeled: z.number() }),
  performance: z.looseObject({ auc: Bounded }).meta({ description: 'auc {value, lower, upper} with certified bounds, pr_auc, log_loss, brier, ece, precision, recall, f1, ...' }),
  drift: z.looseObject({
    reference: z.object({ id: z.string().nullable(), window: WindowSchema.nullable() }).nullable(),
    features: z.record(z.string(), FeatureDriftSchema),
    score: FeatureDriftSchema.nullable(),
    note: z.string().optional()
  }),
  dataQuality: z.record(z.string(), z.unknown()),
  alerts: z.array(AlertSchema),
  privacy: z.looseObject({ threshold: z.number().nullable(), minAgents: z.number().nullable(), graph: z.string().optional(), k: z.number().optional(), dp: z.unknown().optional() }),
  createdAt: Instant
})

export const AgentViewSchema = z.object({ peerId: z.string(), online: z.boolean(), lastSeen: Instant.nullable(), lastIncludedRound: z.string().nullable() })
export const ReferenceViewSchema = z.object({ reportId: z.string(), setAt: Instant })
/** GET /v1/monitors entries (coordinator/api.ts MonitorView). */
export const MonitorViewSchema = z.object({
  name: z.string(),
  model: z.string(),
  specHash: z.string(),
  vectorLength: z.number().int(),
  schedule: z.object({ every: z.string(), delay: z.string() }).nullable(),
  running: z.string().nullable().meta({ description: 'The id of the monitor\'s round running now.' }),
  lastRound: z.object({ id: z.string(), kind: z.enum(['reference', 'current']), status: z.enum(['running', 'done', 'failed', 'aborted']), window: WindowSchema, startedAt: Instant, finishedAt: Instant.nullable(), reportId: z.string().nullable() }).nullable(),
  nextScheduledRound: Instant.nullable(),
  latestReport: z.object({ id: z.string(), window: WindowSchema, createdAt: Instant }).nullable(),
  reference: ReferenceViewSchema.nullable(),
  alertRules: z.number().int()
})

export const StatusViewSchema = z.object({
  status: z.literal('ok'),
  peerId: z.string(),
  specHash: z.string(),
  model: z.string(),
  monitor: z.string().optional().meta({ description: 'The monitor this status is of (the first unless `monitor` names another).' }),
  monitors: z.array(MonitorViewSchema).optional().meta({ description: 'Every monitor of the deployment.' }),
  agents: z.object({ total: z.number(), online: z.number() }),
  lastRound: RoundOutcomeSchema.nullable(),
  nextScheduledRound: Instant.nullable(),
  reference: ReferenceViewSchema.nullable()
})

// The compiler checks that what the server sends is what the document describes (extra fields are allowed:
// clients must ignore fields they do not know).
type Conforms<T, S extends z.ZodType> = T extends z.input<S> ? true : false
const conforms: [Conforms<RoundOutcome, typeof RoundOutcomeSchema>, Conforms<Report, typeof ReportSchema>, Conforms<AgentView, typeof AgentViewSchema>,
  Conforms<ReferenceView, typeof ReferenceViewSchema>, Conforms<StatusView, typeof StatusViewSchema>] = [true, true, true, true, true]
void conforms

/** One documented response: a JSON body with this schema, or (no schema) a text body of `contentType`. */
export interface ApiResponseDoc { description: string, schema?: z.ZodType, contentType?: string }
export interface ApiOperation {
  method: 'get' | 'post' | 'put'
  /** OpenAPI path template: `{id}` for a path parameter. */
  path: string
  summary: string
  /** false: served without the bearer token. */
  auth: boolean
  query?: Array<{ name: string, description: string, schema: z.ZodType }>
  body?: () => z.ZodType
  responses: Record<number, ApiResponseDoc>
}

const LAST = { name: 'last', description: 'How many, newest first.', schema: z.number().int().min(1).max(10_000).default(20) }
const error = (description: string): ApiResponseDoc => ({ description, schema: ErrorBodySchema })
const NOT_FOUND = error('No such object (`ERR_NOT_FOUND`).')
const MONITOR = { name: 'monitor', description: 'One monitor (by its name in the coordinator config); absent: see the summary.', schema: z.string().optional() }

/** Every route the API serves (coordinator/api.ts). Request body schemas are read when the document is built. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness: answers without the token.', auth: false, responses: { 200: { description: 'Up.', schema: HealthSchema } } },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics (text exposition format).', auth: true, responses: { 200: { description: 'Metrics.', contentType: 'text/plain; version=0.0.4' } } },
  { method: 'get', path: '/v1/openapi.json', summary: 'This document.', auth: true, responses: { 200: { description: 'The OpenAPI 3.1 document.', schema: z.looseObject({ openapi: z.string() }) } } },
  {
    method: 'post',
    path: '/v1/rounds',
    summary: 'Start a round now over a window (instants as ISO-8601 strings or epoch milliseconds).',
    auth: true,
    body: () => RoundRequestBody,
    responses: {
      202: { description: 'Started; poll GET /v1/rounds/{id}.', schema: RoundStartedSchema },
      400: error('Malformed body (`ERR_BAD_REQUEST`).'),
      404: error('No monitor of that name (`ERR_UNKNOWN_MONITOR`).'),
      409: error('Refused: a round of the monitor is running, too few agents online, or the window is not allowed.'),
      422: error('Several monitors and none named (`ERR_MONITOR_REQUIRED`), or the window is too long or in the future.'),
      503: error('The coordinator is not running (`ERR_NOT_READY`).')
    }
  },
  {
    method: 'get',
    path: '/v1/rounds',
    summary: 'Recent rounds and scheduled windows (failed, retrying, missed included), finished or not.',
    auth: true,
    query: [
      LAST,
      { name: 'limit', description: 'Same as `last`.', schema: z.number().int().min(1).max(10_000).optional() },
      { name: 'failed', description: 'true: only failed, aborted, retrying and missed ones.', schema: z.enum(['true', 'false']).default('false') },
      { name: 'monitor', description: 'Only this monitor.', schema: z.string().optional() }
    ],
    responses: { 200: { description: 'Rounds.', schema: z.object({ rounds: z.array(RoundListEntrySchema) }) }, 400: error('Bad query parameter.') }
  },
  { method: 'get', path: '/v1/rounds/{id}', summary: 'One round: status, who was included, dropped or declined, failure.', auth: true, responses: { 200: { description: 'The round.', schema: RoundOutcomeSchema }, 404: NOT_FOUND } },
  {
    method: 'get',
    path: '/v1/reports',
    summary: 'Recent reports, newest first.',
    auth: true,
    query: [LAST, { name: 'kind', description: 'Which reports.', schema: z.enum(['reference', 'current', 'any']).default('any') }, MONITOR,
      { name: 'view', description: '`summary`: without histograms, the reliability curve and per-feature detail beyond distances and status (for lists and charts over many reports).', schema: z.enum(['full', 'summary']).default('full') }],
    responses: { 200: { description: 'Reports.', schema: z.object({ reports: z.array(ReportSchema) }) }, 400: error('Bad query parameter.'), 404: error('No monitor of that name (`ERR_UNKNOWN_MONITOR`).') }
  },
  { method: 'get', path: '/v1/reports/latest', summary: 'The newest current report (else the newest of any kind), of every monitor or of `monitor`.', auth: true, query: [MONITOR], responses: { 200: { description: 'The report.', schema: ReportSchema }, 404: error('No report yet.') } },
  { method: 'get', path: '/v1/reports/{id}', summary: 'One report.', auth: true, responses: { 200: { description: 'The report.', schema: ReportSchema }, 404: NOT_FOUND } },
  { method: 'get', path: '/v1/reports/{id}/versions', summary: 'Every version of the report\'s window (first round, then one per label refresh), oldest first; `latest` names the newest report. `view=summary` as for /v1/reports.', auth: true, responses: { 200: { description: 'The versions.', schema: z.object({ versions: z.array(ReportSchema) }) }, 404: NOT_FOUND } },
  { method: 'get', path: '/v1/agents', summary: 'The roster: each agent, online or not, when last seen, its last included round.', auth: true, responses: { 200: { description: 'Agents.', schema: z.object({ agents: z.array(AgentViewSchema) }) } } },
  { method: 'get', path: '/v1/monitors', summary: 'The deployment\'s monitors: spec, schedule, the running, last and next round, latest report, reference.', auth: true, responses: { 200: { description: 'Monitors.', schema: z.object({ monitors: z.array(MonitorViewSchema) }) } } },
  { method: 'get', path: '/v1/status', summary: 'Coordinator status: spec, agents online, last round, next scheduled round, reference (of the first monitor, or of `monitor`), and every monitor.', auth: true, query: [MONITOR], responses: { 200: { description: 'Status.', schema: StatusViewSchema }, 404: error('No monitor of that name (`ERR_UNKNOWN_MONITOR`).') } },
  { method: 'get', path: '/v1/reference', summary: 'The current reference report (of the first monitor, or of `monitor`).', auth: true, query: [MONITOR], responses: { 200: { description: 'The reference.', schema: ReferenceViewSchema }, 404: error('No reference set.') } },
  {
    method: 'put',
    path: '/v1/reference',
    summary: 'Make a reference-capable report the current reference.',
    auth: true,
    body: () => SetReferenceBody,
    responses: { 200: { description: 'The new reference.', schema: ReferenceViewSchema }, 400: error('Malformed body.'), 404: NOT_FOUND }
  }
]

/** JSON Schema of a zod schema for OpenAPI 3.1 (JSON Schema 2020-12); `input`: what a client may send or receive. */
function jsonSchema (schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>
  return rest
}

const capitalised = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

/** getRoundsById, getReportsLatest, putReference... */
function operationId (op: ApiOperation): string {
  const words = op.path.split('/').filter(s => s !== '' && s !== 'v1')
    .map(s => s.startsWith('{') ? `By${capitalised(s.slice(1, -1))}` : capitalised(s.replace(/\.json$/, '')))
  return `${op.method}${words.join('')}`
}

let cached: Record<string, unknown> | null = null

/** The OpenAPI 3.1 document, built once. */
export function openApiDocument (): Record<string, unknown> {
  if (cached !== null) return cached
  const paths: Record<string, Record<string, unknown>> = {}
  for (const op of API_OPERATIONS) {
    const parameters = [
      ...[...op.path.matchAll(/\{([^}]+)\}/g)].map(m => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...(op.query ?? []).map(q => ({ name: q.name, in: 'query', required: false, description: q.description, schema: jsonSchema(q.schema) }))
    ]
    const responses: Record<string, unknown> = {}
    for (const [status, r] of Object.entries(op.responses)) {
      responses[status] = {
        description: r.description,
        content: r.schema !== undefined ? { 'application/json': { schema: jsonSchema(r.schema) } } : { [r.contentType ?? 'text/plain']: { schema: { type: 'string' } } }
      }
    }
    if (op.auth) responses['401'] = { description: 'Missing or wrong bearer token (`ERR_UNAUTHORIZED`).', content: { 'application/json': { schema: jsonSchema(ErrorBodySchema) } } }
    paths[op.path] ??= {}
    paths[op.path][op.method] = {
      summary: op.summary,
      operationId: operationId(op),
      ...(op.auth ? {} : { security: [] }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body !== undefined ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body()) } } } } : {}),
      responses
    }
  }
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'fedmon coordinator API',
      version: '0.1.0',
      description: 'Reports, rounds, agents and the reference of a fedmon coordinator. JSON everywhere; errors are {"error": {"code", "message"}}. ' +
        'Every route but /healthz needs `Authorization: Bearer <token>` when the coordinator has `api.tokenFile` (required off loopback). ' +
        'Writes need `Content-Type: application/json`; the Host header must name the server (see api.allowedHosts).'
    },
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The token in the coordinator\'s api.tokenFile.' } } },
    paths
  }
  return cached
}
