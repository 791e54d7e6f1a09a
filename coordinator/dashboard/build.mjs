// Builds the dashboard's static assets into dist/coordinator/dashboard/assets (run after tsc; `npm run build`):
// - dashboard.js: the browser script (client/main.ts) bundled with uPlot by esbuild, one IIFE, no network;
// - dashboard.css: the pages' stylesheet (shared/report-html/styles.ts) and uPlot's own CSS.
// The client is type-checked first with its own tsconfig (DOM types), which the main build leaves out.
import { build } from 'esbuild'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const out = join(root, 'dist', 'coordinator', 'dashboard', 'assets')
const require = createRequire(import.meta.url)

const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(here, 'client', 'tsconfig.json')], { stdio: 'inherit' })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

mkdirSync(out, { recursive: true })
const started = Date.now()
await build({
  entryPoints: [join(here, 'client', 'main.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'eof',
  outfile: join(out, 'dashboard.js'),
  logLevel: 'warning'
})
const { PAGE_CSS } = await import(join(root, 'dist', 'shared', 'report-html', 'styles.js'))
const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')
writeFileSync(join(out, 'dashboard.css'), `/* uPlot ${JSON.parse(readFileSync(require.resolve('uplot/package.json'), 'utf8')).version} (MIT) */\n${uplotCss}\n${PAGE_CSS}`)
const size = (f) => readFileSync(join(out, f)).length
console.error(`dashboard assets: dashboard.js ${size('dashboard.js')} B, dashboard.css ${size('dashboard.css')} B (${Date.now() - started} ms)`)
