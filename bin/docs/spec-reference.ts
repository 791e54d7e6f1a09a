/**
 * docs/spec.md: every key of the monitor spec with its type, default and meaning, generated from the zod schema
 * (shared/stats/spec.ts) through its JSON Schema, so types, bounds and defaults come from the code itself.
 * Meanings come from the schema's own `.describe()` when it has one, else from MEANINGS below; a test fails when a
 * key has neither, or when the committed file differs from what this renders (`npm run -s docs`).
 */
import { z } from 'zod'
import { MonitorSpec } from '../../shared/stats/spec.js'

/** One documented key (`default`: JSON, or 'required' / '—'). `variant`: the case of a tagged union it belongs to (a feature's `type`). */
export interface SpecReferenceRow { key: string, variant?: string, type: string, default: string, meaning: string }

/** Meanings by key; keys inside a tagged union's case are written `KEY (CASE)`. */
const MEANINGS: Readonly<Record<string, string>> = {
  model: 'The model\'s name, shown in reports and alerts.',
  score: 'The model\'s score column and how its histogram is binned.',
  'score.column': 'Column holding the predicted probability of the positive class (a number in [0, 1]).',
  'score.bins': 'Number of score bins: AUC and PR-AUC are exact up to ties within a bin, and certified bounds say how far.',
  'score.scale': '`linear`: bins uniform on [0, 1]; `logit`: uniform on logit(p), finer near 0 and 1 (rare positives).',
  'score.logitRange': 'With `scale: logit`, the bins cover logit(p) in [-logitRange, logitRange]; the end bins take the tails.',
  'score.sums': 'Score and loss sums (log loss, Brier, calibration, mean score). Absent: legacy precision 2^-24; `false`: none (those metrics are reported as unavailable).',
  'score.sums.precisionBits': 'Each record\'s term is rounded to one of 2^b + 1 levels: a sum never reveals a lone record finer than range/2^b. A site\'s policy (`maxSumPrecisionBits`) may refuse more.',
  label: 'The label column and which values count as positive and negative.',
  'label.column': 'Column holding the true outcome; absent or null for records whose label is not known yet.',
  'label.positive': 'The value that marks a positive record.',
  'label.negative': 'Values counted as negatives. Default: 0/false when `positive` is 1/true, else every other non-null value.',
  threshold: 'Decision threshold for precision, recall, F1 and accuracy.',
  features: 'Monitored input features by name (letters, digits, `_ . -`, up to 64, starting with a letter or `_`); drift is reported for each.',
  'features.<name>': 'One feature: `type: numeric` or `type: categorical` (tables below).',
  'features.<name>.type (numeric)': 'Numeric feature.',
  'features.<name>.column (numeric)': 'Column holding the feature (default: the feature\'s name; the agent config can map it too).',
  'features.<name>.edges (numeric)': 'Fixed bin edges, strictly increasing: bins (-inf, e0), [e0, e1), ..., [e_last, +inf). Without edges, a log-bucket sketch learns the reference quantiles.',
  'features.<name>.alpha (numeric)': 'Sketch relative accuracy (DDSketch α); only without `edges`.',
  'features.<name>.range (numeric)': 'Magnitudes [min, max] the sketch covers (0 < min < max ≤ 1e12); smaller non-zero magnitudes go to underflow, larger to overflow buckets. Without `moments`, max also clamps values for the legacy moments.',
  'features.<name>.bins (numeric)': 'Reference-quantile bins used for PSI and JS (sketch features only).',
  'features.<name>.moments (numeric)': 'Sums for the mean/std shift. Absent: legacy sums, exact to 2^-16 (a site with `maxSumPrecisionBits` refuses them); `false`: none.',
  'features.<name>.moments.clip (numeric)': 'Values are clipped into [lo, hi] (lo < hi, |lo|, |hi| ≤ 1e12) before summing; the range also bounds one record\'s influence.',
  'features.<name>.moments.precisionBits (numeric)': 'Each clipped value is summed as an integer in [0, 2^b]: mean and std to within (hi − lo)/2^(b+1).',
  'features.<name>.type (categorical)': 'Categorical feature.',
  'features.<name>.column (categorical)': 'Column holding the feature (default: the feature\'s name; the agent config can map it too).',
  'features.<name>.categories (categorical)': 'The vocabulary, distinct values without leading or trailing whitespace (values are trimmed before matching); anything else counts as "other", null as missing.',
  calibration: 'Calibration curve (ECE).',
  'calibration.bins': 'Number of equal-width score bins of the calibration curve.',
  drift: 'Drift thresholds against the reference window.',
  'drift.psi': 'Population stability index thresholds.',
  'drift.psi.warn': 'PSI at which a feature is marked `warn`.',
  'drift.psi.alert': 'PSI at which a feature is marked `drift` (at least `warn`).',
  'drift.js': 'Jensen–Shannon distance (base 2) for categorical features.',
  'drift.js.drift': 'JS distance at which a categorical feature drifts (Evidently\'s default 0.1).',
  'drift.wasserstein': 'Wasserstein-1 distance, normalised by the reference standard deviation, for numeric features and the score.',
  'drift.wasserstein.drift': 'Normalised Wasserstein distance at which a numeric feature or the score drifts (Evidently\'s default 0.1).',
  'drift.scoreBins': 'Reference-quantile bins for the score\'s PSI and JS.',
  limits: 'Bounds every agent checks and the vector layout is sized for.',
  'limits.maxRecordsPerAgent': 'Records one agent may contribute to one window; bounds every count entry (and so how many agents a round can sum without overflow).',
  privacy: 'Privacy of the published figures beyond secure aggregation.',
  'privacy.dp': 'Distributed differential privacy: every agent adds Skellam noise to its count entries before masking, sized so the sum over the fewest agents a round can finish with is (ε, δ)-DP per record per round. Absent: exact sums. Sums must be clipped and coarse: `score.sums` false or `{precisionBits ≤ 8}`, numeric `moments` false or `{clip, precisionBits ≤ 8}`; each sum is then one entry noised as a second release (a third of the budget), and `limits.maxRecordsPerAgent` × the largest term must stay ≤ 2^27. Counts and metrics become approximate and the report says so.',
  'privacy.dp.epsilon': 'ε per record per round.',
  'privacy.dp.delta': 'δ per record per round.',
  labels: 'Late labels: when a window\'s labels are read again.',
  'labels.refreshAfter': 'Ages after a window\'s end (e.g. `["7d", "30d", "90d"]`, strictly increasing) at which a window with a report is refreshed: a label-refresh round re-reads only the label-dependent entries (label classes, confusion, score × label histogram, calibration, log loss and Brier sums), counting labels recorded by window end + age, over exactly the first round\'s included set, and stores a new version of the report. Part of the spec hash, so every agent agrees on the ages; agents refuse any other age. Absent: no refreshes.'
}

type JsonSchema = {
  type?: string
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: JsonSchema | boolean
  propertyNames?: JsonSchema
  items?: JsonSchema
  prefixItems?: JsonSchema[]
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  description?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  maxItems?: number
  pattern?: string
}

const code = (v: unknown): string => `\`${JSON.stringify(v)}\``

/** A compact type: `integer (2 to 65536)`, `"linear" or "logit"`, `array of number (1 to 1024 items)`, `[number, number]`. */
function describeType (s: JsonSchema): string {
  if (s.const !== undefined) return code(s.const)
  if (s.enum !== undefined) return s.enum.map(code).join(' or ')
  const options = s.anyOf ?? s.oneOf
  if (options !== undefined) return options.map(describeType).join(' or ')
  if (s.prefixItems !== undefined) return `[${s.prefixItems.map(describeType).join(', ')}]`
  let base = s.type ?? 'any'
  if (base === 'array' && s.items !== undefined) base = (s.items.anyOf ?? s.items.oneOf) !== undefined ? `array of (${describeType(s.items)})` : `array of ${describeType(s.items)}`
  if (base === 'object' && s.properties === undefined && typeof s.additionalProperties === 'object') base = `map of name to ${entryType(s.additionalProperties)}`
  const bounds: string[] = []
  const lo = s.minimum !== undefined ? `≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : null
  const hi = s.maximum !== undefined ? `≤ ${s.maximum}` : s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : null
  if (s.minimum !== undefined && s.maximum !== undefined) bounds.push(`${s.minimum} to ${s.maximum}`)
  else bounds.push(...[lo, hi].filter((b): b is string => b !== null))
  if (s.type === 'string' && s.minLength === 1) bounds.push('non-empty')
  if (s.minItems !== undefined || s.maxItems !== undefined) {
    bounds.push(s.maxItems === undefined ? `at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}` : `${s.minItems ?? 0} to ${s.maxItems} items`)
  }
  return bounds.length > 0 ? `${base} (${bounds.join(', ')})` : base
}

/** A map's entry: its own type when it is a plain value (a column name), else `object`. */
function entryType (entry: JsonSchema): string {
  return entry.type !== undefined && entry.type !== 'object' ? describeType(entry) : 'object'
}

/** The object case of `a or { ... }` (score.sums, moments): its keys are documented under the same path. */
function objectOption (s: JsonSchema): JsonSchema | undefined {
  return (s.anyOf ?? []).find(o => o.properties !== undefined)
}

/** Every documented key, in schema order: a key, then the keys inside it; tagged-union cases after the rest. */
export function specReferenceRows (): SpecReferenceRow[] {
  const root = z.toJSONSchema(MonitorSpec, { io: 'input', unrepresentable: 'any' }) as JsonSchema
  const rows: SpecReferenceRow[] = []
  const cases: SpecReferenceRow[] = []
  const walk = (props: Record<string, JsonSchema>, required: readonly string[], prefix: string, variant: string | undefined, out: SpecReferenceRow[]): void => {
    for (const [name, s] of Object.entries(props)) {
      const key = prefix === '' ? name : `${prefix}.${name}`
      const id = variant !== undefined ? `${key} (${variant})` : key
      out.push({
        key,
        variant,
        type: describeType(s),
        default: s.default !== undefined ? JSON.stringify(s.default) : required.includes(name) ? 'required' : '—',
        meaning: s.description ?? MEANINGS[id] ?? ''
      })
      const inner = s.properties !== undefined ? s : objectOption(s)
      if (inner?.properties !== undefined) walk(inner.properties, inner.required ?? [], key, variant, out)
      const entry = typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined
      if (entry !== undefined) {
        const entryKey = `${key}.<name>`
        const tagged = entry.oneOf ?? entry.anyOf
        out.push({ key: entryKey, type: entryType(entry), default: '—', meaning: entry.description ?? MEANINGS[entryKey] ?? '' })
        if (tagged !== undefined) {
          for (const option of tagged) {
            const tag = Object.values(option.properties ?? {}).find(p => typeof p.const === 'string')?.const as string | undefined
            walk(option.properties ?? {}, option.required ?? [], entryKey, tag ?? 'object', cases)
          }
        } else if (entry.properties !== undefined) {
          walk(entry.properties, entry.required ?? [], entryKey, variant, out)
        }
      }
    }
  }
  walk(root.properties ?? {}, root.required ?? [], '', undefined, rows)
  return [...rows, ...cases]
}

/** Meanings in MEANINGS whose key the schema no longer has (a renamed or removed key). */
export function unusedMeanings (): string[] {
  const used = new Set(specReferenceRows().map(r => r.variant !== undefined ? `${r.key} (${r.variant})` : r.key))
  return Object.keys(MEANINGS).filter(k => !used.has(k))
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function table (rows: SpecReferenceRow[]): string[] {
  return [
    '| Key | Type | Default | Meaning |',
    '|---|---|---|---|',
    ...rows.map(r => `| \`${r.key}\` | ${cell(r.type)} | ${r.default === 'required' || r.default === '—' ? r.default : cell(`\`${r.default}\``)} | ${cell(r.meaning)} |`)
  ]
}

export function renderSpecReference (): string {
  const rows = specReferenceRows()
  const variants = [...new Set(rows.flatMap(r => r.variant !== undefined ? [r.variant] : []))]
  const lines = [
    '# Monitor spec reference',
    '',
    '<!-- Generated by `npm run -s docs` from the zod schema in shared/stats/spec.ts (bin/docs/spec-reference.ts). Do not edit by hand: a test compares this file with the generator\'s output. -->',
    '',
    'The monitor spec says which columns a round reads, how they are binned and which thresholds apply. The coordinator loads it',
    '(`spec:` in its config) and sends it to the agents by hash; its canonical form fixes the vector layout and the spec hash that',
    'binds every round. YAML or JSON; unknown keys are errors (with a suggestion when a known key is close). Keys marked `required`',
    'must be given; every other key may be left out and takes its default. An example: [examples/spec.yaml](../examples/spec.yaml).',
    '',
    '## Keys',
    '',
    ...table(rows.filter(r => r.variant === undefined))
  ]
  for (const variant of variants) {
    lines.push('', `## \`features.<name>\` with \`type: ${variant}\``, '', ...table(rows.filter(r => r.variant === variant)))
  }
  return lines.join('\n') + '\n'
}
