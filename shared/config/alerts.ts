/**
 * The alert rules and webhooks of a coordinator config (and of each of its monitors): schemas only, so the config
 * loader in shared/ needs nothing from coordinator/ (design §8 layering). coordinator/alerts.ts evaluates them.
 */
import { z } from 'zod'

export const AlertRuleSchema = z.object({
  metric: z.string().min(1).regex(/^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$/, 'expected a dotted metric path like "performance.auc.value" or "drift.*.psi"'),
  below: z.number().finite().optional(),
  above: z.number().finite().optional(),
  dropFromReference: z.number().finite().nonnegative().optional(),
  /**
   * Fire only when the report holds at least this many samples behind the metric: labelled records for
   * realised performance metrics, all records otherwise. Default: DEFAULT_MIN_LABELED for realised performance
   * metrics (an AUC over 37 labels pages nobody), 0 for the rest.
   */
  minSamples: z.number().int().nonnegative().optional(),
  name: z.string().min(1).optional(),
  /** One segment cell, `{region: north}`: the rule reads that cell's figures (spec.segments), not the overall ones. */
  segment: z.record(z.string().min(1), z.string().min(1)).refine(s => Object.keys(s).length === 1, 'a segment cell is one column and its value, e.g. {region: north}').optional(),
  /** `"*"`: the rule reads every published segment cell, firing per cell. */
  segments: z.literal('*', { error: 'segments: "*" (every cell); for one cell use segment: {column: value}' }).optional()
}).strict().refine(r => [r.below, r.above, r.dropFromReference].filter(v => v !== undefined).length === 1, {
  message: 'give exactly one of below, above, dropFromReference'
}).refine(r => r.segment === undefined || r.segments === undefined, { message: 'give at most one of segment, segments' })
export type AlertRuleSchema = z.infer<typeof AlertRuleSchema>

export const AlertsConfigSchema = z.array(AlertRuleSchema).default([])

/**
 * A webhook in the coordinator config: a URL, or `{ url, secretFile | secretEnv }` to sign deliveries with a
 * secret kept out of the YAML (a file next to the config, or an environment variable).
 */
export const WebhookConfigSchema = z.union([
  z.url(),
  z.strictObject({
    url: z.url(),
    /** A file holding the signing secret (at least 16 characters), relative to the config file. */
    secretFile: z.string().min(1).optional(),
    /** The name of an environment variable holding the signing secret. */
    secretEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').optional()
  }).refine(w => w.secretFile === undefined || w.secretEnv === undefined, 'give at most one of secretFile, secretEnv')
], { error: 'expected a webhook URL, or { url, secretFile } / { url, secretEnv }' })
export type WebhookConfig = z.infer<typeof WebhookConfigSchema>
