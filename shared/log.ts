import { pino, type Logger } from 'pino'

export type { Logger }

/** One logger factory: JSON lines to stderr (stdout stays free for command output). */
export function createLogger (name: string, level: string = process.env.FEDMON_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name, pid: process.pid } }, pino.destination({ fd: 2, sync: true }))
}
