/**
 * The wire codec: one msgpack document per length-prefixed frame. `useRecords: false` keeps documents
 * self-describing, `moreTypes: true` round-trips typed arrays (Uint32Array vectors) — the default does not.
 */
import { Packr } from 'msgpackr'
import { FedmonError } from '../errors.js'

export class WireError extends FedmonError {
  constructor (message: string, code: string = 'ERR_BAD_FRAME', options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'WireError'
  }
}

const packr = new Packr({ useRecords: false, moreTypes: true })

/** Encodes one message document. */
export function encodeFrame (value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * Decodes one frame. Throws WireError('ERR_BAD_FRAME') for bytes that are not exactly one msgpack document
 * (trailing bytes are refused: a frame is one message, nothing smuggled after it).
 */
export function decodeFrame (bytes: Uint8Array): unknown {
  let values: unknown[]
  try {
    values = packr.unpackMultiple(bytes) as unknown[]
  } catch (err) {
    throw new WireError(`undecodable frame (${(err as Error).message})`, 'ERR_BAD_FRAME', { cause: err })
  }
  if (values.length !== 1) throw new WireError(`a frame must hold exactly one document, found ${values.length}`)
  return values[0]
}
