/**
 * Length-prefixed frames over libp2p 3 streams. Reads go through `lpStream` with the length limit checked
 * against the varint prefix before any buffer for the body is allocated; writes are chunked and wait while
 * the stream's write buffer is above a high-water mark (libp2p 3 does not apply backpressure for us).
 */
import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { WRITE_HIGH_WATER_MARK } from '../wire/protocols.js'
import { WireError } from '../wire/codec.js'

const CHUNK = 256 * 1024

/** Unsigned LEB128, the length prefix of every frame. */
export function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

export interface WriteFrameOptions { signal?: AbortSignal, highWaterMark?: number }

/**
 * Waits for the stream's next 'drain' (or 50 ms, to re-check: a drain can fire between our check and our
 * listener). Not `stream.onDrain()`: in @libp2p/utils 7.4 it keeps returning the first, already-resolved
 * drain promise, so a `while (full) await onDrain()` loop spins in microtasks and starves the event loop.
 */
async function nextDrain (stream: Stream, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer)
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { cleanup(); resolve() }
    const onClose = (): void => { cleanup(); reject(new WireError(`stream closed while writing (${stream.status})`, 'ERR_STREAM_CLOSED')) }
    const onAbort = (): void => { cleanup(); reject(signal?.reason instanceof Error ? signal.reason : new WireError('write aborted', 'ERR_TIMEOUT')) }
    const timer = setTimeout(onDrain, 50)
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/** Waits until the stream's queued bytes drop to the high-water mark (or the signal aborts). */
async function waitForRoom (stream: Stream, highWaterMark: number, signal?: AbortSignal): Promise<void> {
  while (stream.writeBufferLength > highWaterMark) {
    signal?.throwIfAborted()
    if (stream.writeStatus !== 'writable') throw new WireError(`stream closed while writing (${stream.writeStatus})`, 'ERR_STREAM_CLOSED')
    await nextDrain(stream, signal)
  }
}

/** Writes one length-prefixed frame, never queueing more than about `highWaterMark` + one chunk. */
export async function writeFrame (stream: Stream, body: Uint8Array, opts: WriteFrameOptions = {}): Promise<void> {
  const highWaterMark = opts.highWaterMark ?? WRITE_HIGH_WATER_MARK
  await waitForRoom(stream, highWaterMark, opts.signal)
  stream.send(varint(body.byteLength))
  for (let offset = 0; offset < body.byteLength; offset += CHUNK) {
    await waitForRoom(stream, highWaterMark, opts.signal)
    stream.send(body.subarray(offset, Math.min(offset + CHUNK, body.byteLength)))
  }
}

export interface ReadFrameOptions { signal?: AbortSignal, maxLength: number }

/**
 * Reads exactly one frame. Oversized frames fail with WireError('ERR_FRAME_TOO_LARGE') as soon as the prefix
 * is read; a stream ending early fails with 'ERR_EOF'.
 */
export async function readFrame (stream: Stream, opts: ReadFrameOptions): Promise<Uint8Array> {
  const lp = lpStream(stream, { maxDataLength: opts.maxLength, maxBufferSize: opts.maxLength + 16 })
  try {
    const list = await lp.read({ signal: opts.signal })
    return list.subarray()
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e.name === 'InvalidDataLengthError' || e.name === 'InvalidDataLengthLengthError' || e.name === 'StreamBufferError') {
      throw new WireError(`frame larger than the limit of ${opts.maxLength} bytes`, 'ERR_FRAME_TOO_LARGE', { cause: err })
    }
    if (e.name === 'InvalidMessageLengthError') throw new WireError('invalid frame length prefix', 'ERR_BAD_FRAME', { cause: err })
    if (e.name === 'UnexpectedEOFError') throw new WireError('stream ended before a whole frame', 'ERR_EOF', { cause: err })
    if (e.name === 'AbortError' || e.name === 'TimeoutError') throw new WireError('timed out reading a frame', 'ERR_TIMEOUT', { cause: err })
    throw new WireError(`cannot read frame (${e.message})`, 'ERR_READ', { cause: err })
  }
}
