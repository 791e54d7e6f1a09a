// The generated reference docs in docs/ are what the generator makes from the schemas now: they cannot drift
// from the code (regenerate with `npm run -s docs`).
import '../../shared/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderSpecReference, specReferenceRows, unusedMeanings } from '../../bin/docs/spec-reference.js'
import { repoRoot } from '../fixtures/repo.js'


test('docs/spec.md is the generated spec reference (run `npm run -s docs` after changing the spec schema)', () => {
  const committed = readFileSync(join(repoRoot(), 'docs', 'spec.md'), 'utf8')
  assert.equal(committed, renderSpecReference(), 'docs/spec.md differs from the generated reference: run `npm run -s docs`')
})

test('the spec reference lists every key of the spec schema, each with its type, default and meaning', () => {
  const rows = specReferenceRows()
  const keys = rows.map(r => r.key)
  for (const key of ['model', 'score.bins', 'score.sums.precisionBits', 'label.negative', 'threshold', 'features.<name>.edges',
    'features.<name>.categories', 'features.<name>.moments.clip', 'calibration.bins', 'drift.psi.warn', 'drift.scoreBins', 'limits.maxRecordsPerAgent']) {
    assert.ok(keys.includes(key), `${key} is listed`)
  }
  const bins = rows.find(r => r.key === 'score.bins')
  assert.equal(bins?.default, '4096')
  assert.match(bins?.type ?? '', /integer/)
  assert.equal(rows.find(r => r.key === 'model')?.default, 'required')
  const missing = rows.filter(r => r.meaning.trim() === '').map(r => `${r.key}${r.variant !== undefined ? ` (${r.variant})` : ''}`)
  assert.deepEqual(missing, [], 'every key has a description (bin/docs/spec-reference.ts, or .describe() in the schema)')
  assert.deepEqual(unusedMeanings(), [], 'no description is left for a key the schema no longer has')
})
