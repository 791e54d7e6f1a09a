import { FedmonError } from '../errors.js'

/**
 * Every rejection by the secure-aggregation state machines. A rejected message leaves the state machine
 * unchanged, so a daemon can log the error and keep running.
 */
export type SecAggErrorCode =
  | 'ERR_BAD_MESSAGE' | 'ERR_WRONG_ROUND' | 'ERR_BAD_SIGNATURE' | 'ERR_UNKNOWN_SENDER' | 'ERR_DUPLICATE'
  | 'ERR_BAD_LENGTH' | 'ERR_WRONG_PHASE' | 'ERR_NEVER_BOTH' | 'ERR_TOO_FEW_SURVIVORS' | 'ERR_OVERFLOW'
  | 'ERR_POLICY' | 'ERR_BAD_CIPHERTEXT' | 'ERR_CONSISTENCY' | 'ERR_RECONSTRUCT' | 'ERR_BAD_PARAMS'
  | 'ERR_ABORTED' | 'ERR_TIMEOUT' | 'ERR_REFRESH_SET_MISMATCH'

export class SecAggError extends FedmonError {
  declare readonly code: SecAggErrorCode
  constructor (code: SecAggErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'SecAggError'
  }
}
