import type { Logger } from '../log.js'

/** The daemons' shared lifecycle: start, print, wait for SIGTERM/SIGINT, stop gracefully (exit code 0). */
export async function runDaemon<I> (daemon: { start: () => Promise<I>, stop: () => Promise<void> }, logger: Logger, started: (info: I) => void): Promise<void> {
  let resolveStopped!: () => void
  const stopped = { promise: new Promise<void>((resolve) => { resolveStopped = resolve }), resolve: () => { resolveStopped() } }
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping')
    const force = setTimeout(() => { logger.error('graceful stop timed out'); process.exit(1) }, 15_000)
    force.unref()
    daemon.stop().then(() => { stopped.resolve() }, (err: unknown) => { logger.error({ err }, 'stop failed'); process.exitCode = 1; stopped.resolve() })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  try {
    started(await daemon.start())
  } catch (err) {
    await daemon.stop().catch(() => {})
    throw err
  }
  await stopped.promise
  process.removeListener('SIGTERM', onSignal)
  process.removeListener('SIGINT', onSignal)
}
