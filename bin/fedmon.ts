#!/usr/bin/env node
import '../shared/polyfill.js'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Command, CommanderError } from 'commander'
import { runCli } from './cli.js'

// Each file in cmds/ registers one top-level command (Lodestar style). Discovering them keeps this file
// free of a hand-kept list; each command module imports its heavy dependencies lazily inside its action.
const cmdsDir = join(dirname(fileURLToPath(import.meta.url)), 'cmds')

async function main (): Promise<void> {
  const program = new Command('fedmon')
    .description('Federated, privacy-preserving model monitoring over secure aggregation')
    .version('0.1.0')
  const files = (existsSync(cmdsDir) ? readdirSync(cmdsDir) : []).filter(f => f.endsWith('.js')).sort()
  for (const file of files) {
    const mod = await import(pathToFileURL(join(cmdsDir, file)).href) as { register?: (p: Command) => void }
    mod.register?.(program)
  }
  await runCli(program, process.argv)
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  process.stderr.write(`fedmon: ${(err as Error)?.message ?? String(err)}\n`)
  process.exit(1)
})
