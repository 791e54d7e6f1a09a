/**
 * Writes the generated reference docs (`npm run -s docs`): docs/spec.md from the monitor spec's schema.
 * `--check` writes nothing and exits 1 when a committed file differs from what would be generated.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderSpecReference } from './spec-reference.js'

/** The checkout's root: dist/bin/docs/generate.js lives three levels below it. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

const generated: Record<string, () => string> = {
  'docs/spec.md': renderSpecReference
}

const check = process.argv.includes('--check')
let stale = 0
for (const [file, render] of Object.entries(generated)) {
  const path = join(root, file)
  const text = render()
  const current = existsSync(path) ? readFileSync(path, 'utf8') : null
  if (current === text) continue
  if (check) {
    process.stderr.write(`${file} is out of date: run \`npm run -s docs\`\n`)
    stale++
    continue
  }
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
  process.stdout.write(`wrote ${file}\n`)
}
process.exitCode = stale > 0 ? 1 : 0
