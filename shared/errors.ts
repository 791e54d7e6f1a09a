/**
 * Every error fedmon raises on purpose is a FedmonError: a `name` for the class of failure and a stable
 * machine-readable `code`. The CLI prints `message` as one line (no stack) for these.
 */
export class FedmonError extends Error {
  readonly code: string
  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FedmonError'
    this.code = code
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends FedmonError {
  constructor (message: string) {
    super(message, 'ERR_USAGE')
    this.name = 'UsageError'
  }
}

/** A config or spec file that cannot be read or does not validate; the message names the file and the field. */
export class ConfigError extends FedmonError {
  readonly file: string
  readonly field: string | undefined
  constructor (file: string, field: string | undefined, message: string) {
    super(field !== undefined && field !== '' ? `${file}: ${field}: ${message}` : `${file}: ${message}`, 'ERR_CONFIG')
    this.name = 'ConfigError'
    this.file = file
    this.field = field
  }
}
