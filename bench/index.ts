import '../shared/polyfill.js'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

// `npm run -s bench -- NAME [flags]`: each bench/NAME.js exports `run(argv: string[]): Promise<void>` and prints figures.
const here = dirname(fileURLToPath(import.meta.url))
const [name, ...rest] = process.argv.slice(2)
const available = readdirSync(here).filter(f => f.endsWith('.js') && f !== 'index.js').map(f => f.slice(0, -3)).sort()
if (name === undefined || !available.includes(name)) {
  process.stderr.write(`usage: npm run -s bench -- <${available.join('|')}> [flags]\n`)
  process.exit(2)
}
const file = join(here, `${name}.js`)
if (!existsSync(file)) process.exit(2)
const mod = await import(pathToFileURL(file).href) as { run: (argv: string[]) => Promise<void> }
await mod.run(rest)
