import { Command, CommanderError } from 'commander'
import { FedmonError, UsageError } from '../shared/errors.js'

/** Exit codes: 0 ok, 1 failure, 2 usage. */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/**
 * Parses argv and runs the chosen command. Known errors print one line `fedmon: message` (no stack trace);
 * unexpected ones print the stack only when FEDMON_DEBUG is set.
 */
export async function runCli (program: Command, argv: string[]): Promise<void> {
  program.exitOverride()
  program.configureOutput({ outputError: (str, write) => write(str) })
  for (const cmd of allCommands(program)) {
    cmd.exitOverride()
    cmd.showHelpAfterError('(run with --help for usage and an example)')
  }
  try {
    await program.parseAsync(argv)
  } catch (err) {
    process.exitCode = exitCodeFor(err)
    if (err instanceof CommanderError) return // commander already printed it
    printError(err)
  }
}

export function exitCodeFor (err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK
    return EXIT_USAGE
  }
  if (err instanceof UsageError) return EXIT_USAGE
  return EXIT_FAILURE
}

export function printError (err: unknown): void {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`fedmon: ${message.split('\n')[0]}\n`)
  if (!(err instanceof FedmonError) && process.env.FEDMON_DEBUG !== undefined && err instanceof Error) {
    process.stderr.write(`${err.stack ?? ''}\n`)
  }
}

function * allCommands (cmd: Command): Generator<Command> {
  yield cmd
  for (const sub of cmd.commands) yield * allCommands(sub)
}
