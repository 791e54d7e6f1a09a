import type { Logger } from '../log.js'

/**
 * The daemons' shared lifecycle: start, print, wait for SIGTERM/SIGINT, stop gracefully (exit code 0).
 * A daemon with `reload` re-reads its roster on SIGHUP (one reload at a time; a SIGHUP during one runs
 * another after it, so the last edit of the file is always the one taken).
 */
export async function runDaemon<I> (daemon: { start: () => Promise<I>, stop: () => Promise<void>, reload?: () => Promise<void> }, logger: Logger, started: (info: I) => void): Promise<void> {
  let resolveStopped!: () => void
  const stopped = { promise: new Promise<void>((resolve) => { resolveStopped = resolve }), resolve: () => { resolveStopped() } }
  let stopping = false
  let running = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping')
    const force = setTimeout(() => { logger.error('graceful stop timed out'); process.exit(1) }, 15_000)
    force.unref()
    daemon.stop().then(() => { stopped.resolve() }, (err: unknown) => { logger.error({ err }, 'stop failed'); process.exitCode = 1; stopped.resolve() })
  }
  let reloading: Promise<void> | null = null
  let again = false
  const reload = daemon.reload?.bind(daemon)
  // Without a listener SIGHUP would end the process: a daemon without reload just says it has none.
  const onHangup = (): void => {
    if (reload === undefined || !running || stopping) {
      logger.warn({ signal: 'SIGHUP' }, running ? 'nothing to reload' : 'SIGHUP ignored: not running yet')
      return
    }
    if (reloading !== null) { again = true; return }
    logger.info({ signal: 'SIGHUP' }, 'reloading the roster')
    reloading = reload()
      .catch((err: unknown) => { logger.error({ err: (err as Error).message }, 'reload failed') })
      .finally(() => {
        reloading = null
        if (again) { again = false; onHangup() }
      })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', onHangup)
  try {
    started(await daemon.start())
    running = true
  } catch (err) {
    await daemon.stop().catch(() => {})
    throw err
  }
  await stopped.promise
  await reloading
  process.removeListener('SIGTERM', onSignal)
  process.removeListener('SIGINT', onSignal)
  process.removeListener('SIGHUP', onHangup)
}
