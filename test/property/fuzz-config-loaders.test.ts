/**
 * Fuzzing the monitor-spec and config loaders (issue 6): random YAML/JSON-ish text and random mutations of valid
 * documents give either a valid result or a ConfigError whose message is one line naming the file (and, for a
 * document that parses, the field) — never another exception type.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { stringify as toYaml } from 'yaml'
import { ConfigError } from '../../shared/errors.js'
import { parseMonitorSpec, loadMonitorSpec } from '../../shared/stats/spec.js'
import { loadAgentConfig } from '../../shared/config/agent.js'
import { loadCoordinatorConfig } from '../../shared/config/coordinator.js'

const PEER = '12D3KooWSoLzampfxoUpVUQyX8Ky1L5wctdmqKPFdXb6m3uqfbyb'
let dir: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedmon-fuzz-config-'))
  writeFileSync(join(dir, 'roster.yaml'), `agents: [${PEER}]\n`) // the agent config's federation.roster
})
after(() => { rmSync(dir, { recursive: true, force: true }) })
const validSpec = {
  model: 'credit-risk',
  score: { column: 'score', bins: 1000, scale: 'linear' },
  label: { column: 'label', positive: 1 },
  threshold: 0.5,
  features: {
    age: { type: 'numeric' },
    income: { type: 'numeric', edges: [0, 20000, 40000, 80000] },
    region: { type: 'categorical', categories: ['north', 'south', 'east', 'west'] }
  },
  drift: { psi: { warn: 0.1, alert: 0.25 } }
}
const validAgent = {
  identity: './id.key',
  coordinator: `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`,
  data: { path: './logs/*.jsonl', columns: { ts: 'when', features: { age: 'a' } } },
  state: './state',
  federation: { roster: './roster.yaml' },
  policy: { minAgents: 3 }
}
const validCoordinator = {
  identity: './id.key',
  agents: [PEER],
  spec: './spec.yaml',
  store: './store.db',
  privacy: { minAgents: 3 },
  round: { phaseTimeoutMs: 1000 }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Every path to a value inside `doc` (the root included). */
function pathsOf (doc: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out = [prefix]
  if (Array.isArray(doc)) doc.forEach((d, i) => out.push(...pathsOf(d, [...prefix, i])))
  else if (doc !== null && typeof doc === 'object') for (const [k, d] of Object.entries(doc)) out.push(...pathsOf(d, [...prefix, k]))
  return out
}

/** Junk a mutation can put anywhere: odd keys and strings (newlines, NUL, quotes), extreme numbers, nesting. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 2, withNullPrototype: true, withBigInt: false }),
  fc.constantFrom(-1, 0, 1e308, -1e308, Number.NaN, Infinity, 2 ** 53, 0.5, '', '\u0000', 'line\nbreak', "'); DROP TABLE x; --", [], {}, [[[]]], { 'odd\nkey': 1 }, { '': 1 }),
  fc.string({ unit: 'binary', maxLength: 20 })
)

type Mutation = { kind: 'set', at: number, value: unknown } | { kind: 'delete', at: number } | { kind: 'addKey', at: number, key: string, value: unknown }
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: junk }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('addKey' as const), at: fc.nat(), key: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('line\nbreak', '\u0000', 'a.b', '__proto__')), value: junk })
)

function mutate (doc: Json, ms: Mutation[]): unknown {
  let root: unknown = structuredClone(doc)
  for (const original of ms) {
    // A fresh copy of the junk: constantFrom hands out the same object every time, and a mutation that puts one
    // inside itself (or inside a constant shared with the next run) built cyclic documents — a stack overflow
    // in this test's own path walk, not in the loaders (seen as a rare "Maximum call stack size exceeded").
    const m = 'value' in original ? { ...original, value: structuredClone(original.value) } : original
    const paths = pathsOf(root as Json)
    const path = paths[m.at % paths.length]
    if (path.length === 0) {
      if (m.kind === 'set') root = m.value
      else if (m.kind === 'addKey' && root !== null && typeof root === 'object' && !Array.isArray(root)) Object.defineProperty(root, m.key, { value: m.value, enumerable: true, configurable: true, writable: true })
      continue
    }
    let parent: any = root
    for (const p of path.slice(0, -1)) parent = parent[p]
    const last = path[path.length - 1]
    if (m.kind === 'set') parent[last] = m.value
    else if (m.kind === 'delete') { if (Array.isArray(parent)) parent.splice(Number(last), 1); else delete parent[last] }
    else {
      const target = parent[last]
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, configurable: true, writable: true })
    }
  }
  return root
}

/** Either a value or a ConfigError with one line naming `file` (and a field when `needField`); anything else fails. */
function expectValidOrConfigError (fn: () => unknown, file: string, needField: boolean): void {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${(err as Error)?.name}: ${String((err as Error)?.message)}`)
    assert.ok(!/[\r\n]/.test(err.message), `message must be one line: ${JSON.stringify(err.message)}`)
    assert.ok(err.message.startsWith(`${file}: `), `message names the file: ${err.message}`)
    assert.equal(err.file, file)
    if (needField) assert.ok(err.field !== undefined && err.field !== '', `message names a field: ${err.message}`)
  }
}

test('parseMonitorSpec: random mutations of a valid spec give a spec or a one-line ConfigError naming the field', () => {
  assert.doesNotThrow(() => parseMonitorSpec(validSpec, 'spec.yaml'))
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
    const doc = mutate(validSpec as Json, ms)
    expectValidOrConfigError(() => parseMonitorSpec(doc, 'spec.yaml'), 'spec.yaml', true)
  }), { numRuns: 600, includeErrorInReport: true })
})

test('parseMonitorSpec: arbitrary values never throw anything but ConfigError', () => {
  fc.assert(fc.property(fc.anything({ maxDepth: 3, withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }), (doc) => {
    expectValidOrConfigError(() => parseMonitorSpec(doc, 'spec.yaml'), 'spec.yaml', true)
  }), { numRuns: 400, includeErrorInReport: true })
})

/** Text a file might hold: YAML or JSON of a mutated document, cut short or with bytes flipped, or plain junk. */
function fileText (doc: Json): fc.Arbitrary<string> {
  const rendered = fc.tuple(fc.array(mutation, { maxLength: 3 }), fc.boolean()).map(([ms, json]) => {
    const d = mutate(doc, ms)
    // an undefined document (a mutation can set the root to it) renders as nothing in both: write 'null'
    try { return (json ? JSON.stringify(d) : toYaml(d) as string | undefined) ?? 'null' } catch { return String(d) }
  })
  return fc.oneof(
    rendered,
    fc.tuple(rendered, fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1))),
    fc.tuple(rendered, fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 })).map(([t, n, s]) => { const i = n % (t.length + 1); return t.slice(0, i) + s + t.slice(i + 1) }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom('', '---', '- a\n- b', 'a: [1, 2', 'a: &x 1\nb: *y', '{"a": 1,}', '\ufeffmodel: x', 'model: !!binary AAAA', 'key: value\n\tbad indent: 1', '? [complex]\n: key', '%YAML 9.9\n---\na: 1')
  )
}

let n = 0
for (const [name, doc, load] of [
  ['monitor spec', validSpec, loadMonitorSpec],
  ['agent config', validAgent, loadAgentConfig],
  ['coordinator config', validCoordinator, loadCoordinatorConfig]
] as const) {
  test(`${name} loader: random file text gives a value or a one-line ConfigError naming the file`, () => {
    const good = join(dir, `good ${name}.yaml`)
    writeFileSync(good, toYaml(doc))
    assert.doesNotThrow(() => (load as (f: string) => unknown)(good))
    fc.assert(fc.property(fileText(doc as Json), (text) => {
      const file = join(dir, `${name} ${n++}.yaml`)
      writeFileSync(file, text)
      expectValidOrConfigError(() => (load as (f: string) => unknown)(file), file, false)
    }), { numRuns: 250, includeErrorInReport: true })
    expectValidOrConfigError(() => (load as (f: string) => unknown)(join(dir, 'missing.yaml')), join(dir, 'missing.yaml'), false)
  })
}
