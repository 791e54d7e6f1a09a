import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { FedmonError } from '../errors.js'
import type { KeyContext } from '../crypto/hkdf.js'
import { unmaskExpansions, type PairwiseUnmask, type UnmaskWork } from './unmask.js'

/**
 * Unmasking on worker threads, so the coordinator's event loop keeps serving while the masks are expanded.
 * Work is cut into batches of about BATCH_WORDS of keystream (batchExpansionsFor) and handed out on demand (a worker
 * that gets less CPU simply takes fewer batches); each worker keeps one partial sum, and the partial sums
 * are added at the end. Same result, bit for bit, as computeUnmaskCorrection (addition mod 2^32 commutes).
 *
 * Use with the server's deferred mode:
 *   const server = new SecAggServer({ ...options, deferUnmask: true })
 *   ... when server.pendingUnmask() !== null:
 *   const correction = await computeUnmaskInWorkers(server.pendingUnmask()!, { signal })
 *   const out = server.completeUnmask(correction, now)
 */

/** ~6 ms of work at m = 100k: big enough that messaging is noise, small enough to balance. */
const BATCH_EXPANSIONS = 32
/** Words of keystream per batch (32 expansions of 100k words); fewer words per expansion → more expansions per batch. */
const BATCH_WORDS = BATCH_EXPANSIONS * 100_000
const MAX_BATCH_EXPANSIONS = 1024

/**
 * Expansions per batch for vectors of `vectorLength` words: about BATCH_WORDS of keystream, so that at small m
 * (10k words: ~2 ms of key agreement + PRG per 32 expansions) the per-batch messaging (structured clone of ids and
 * keys, a reply) stays a small share of the work, while batches stay small enough for the workers to balance.
 */
export function batchExpansionsFor (vectorLength: number): number {
  return Math.max(1, Math.min(MAX_BATCH_EXPANSIONS, Math.floor(BATCH_WORDS / Math.max(1, vectorLength))))
}
/** Batches queued per worker beyond the running one, so a worker never waits for the main thread (e.g. during a GC there). */
const PREFETCH = 2

export type PoolRequest =
  | { type: 'init', vectorLength: number, keyContext: KeyContext }
  | { type: 'batch', batch: number, seeds: UnmaskWork['seeds'], pairwise: PairwiseUnmask[] }
  | { type: 'finish' }

export type PoolReply =
  | { type: 'done', batch: number }
  | { type: 'result', values: Uint32Array }
  | { type: 'error', message: string }

export class UnmaskWorkerError extends FedmonError {
  constructor (message: string, code: 'ERR_UNMASK_WORKER' | 'ERR_ABORTED' = 'ERR_UNMASK_WORKER', options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'UnmaskWorkerError'
  }
}

export interface UnmaskPoolOptions {
  /** Worker threads; default: the number of cores (at least 1, at most 8). */
  workers?: number
}

type Batch = Extract<PoolRequest, { type: 'batch' }>

/**
 * Cuts the work into batches of at most `size` expansions. A dropped agent's peers stay in one batch when they
 * fit in a batch of their own (its s-key is then imported once per agent, not once per piece); only an agent
 * with more than `size` surviving neighbours spans batches.
 */
export function splitUnmaskWork (work: Pick<UnmaskWork, 'seeds' | 'pairwise'>, size = BATCH_EXPANSIONS): Batch[] {
  const batches: Batch[] = []
  let current: Batch = { type: 'batch', batch: 0, seeds: [], pairwise: [] }
  let room = size
  const flush = (): void => {
    if (room === size) return
    batches.push(current)
    current = { type: 'batch', batch: batches.length, seeds: [], pairwise: [] }
    room = size
  }
  for (const seed of work.seeds) {
    current.seeds.push(seed)
    if (--room === 0) flush()
  }
  for (const job of work.pairwise) {
    if (job.peers.length > room && job.peers.length <= size) flush()
    for (let from = 0; from < job.peers.length;) {
      const peers = job.peers.slice(from, from + room)
      current.pairwise.push({ id: job.id, secretKey: job.secretKey, peers })
      from += peers.length
      room -= peers.length
      if (room === 0) flush()
    }
  }
  flush()
  return batches
}

/**
 * A fixed set of unmask workers: start(), any number of compute() calls (one at a time), stop().
 * A failed or aborted compute() stops the pool.
 */
export class UnmaskWorkerPool {
  readonly size: number
  private workers: Worker[] = []
  private busy = false

  constructor (options: UnmaskPoolOptions = {}) {
    const size = options.workers ?? Math.min(8, availableParallelism())
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`workers must be a positive integer, got ${size}`)
    this.size = size
  }

  get started (): boolean { return this.workers.length > 0 }

  async start (): Promise<void> {
    if (this.started) return
    const url = new URL('./unmask-worker.js', import.meta.url)
    const workers = Array.from({ length: this.size }, () => new Worker(url))
    try {
      await Promise.all(workers.map(async w => await new Promise<void>((resolve, reject) => {
        w.once('online', resolve)
        w.once('error', reject)
        w.once('exit', code => reject(new Error(`exited with code ${code}`)))
      })))
    } catch (err) {
      await Promise.all(workers.map(async w => await w.terminate()))
      throw new UnmaskWorkerError(`unmask worker failed to start: ${(err as Error).message}`, 'ERR_UNMASK_WORKER', { cause: err })
    }
    this.workers = workers
  }

  async stop (): Promise<void> {
    const workers = this.workers
    this.workers = []
    await Promise.all(workers.map(async w => await w.terminate()))
  }

  /** The correction for `work` (see unmask.ts); rejects with UnmaskWorkerError (code ERR_ABORTED on abort). */
  async compute (work: UnmaskWork, options: { signal?: AbortSignal } = {}): Promise<Uint32Array> {
    if (!this.started) throw new UnmaskWorkerError('the unmask pool is not started')
    if (this.busy) throw new UnmaskWorkerError('the unmask pool is already computing')
    options.signal?.throwIfAborted()
    const batches = splitUnmaskWork(work, batchExpansionsFor(work.vectorLength))
    const total = new Uint32Array(work.vectorLength)
    if (unmaskExpansions(work) === 0) return total
    this.busy = true
    const workers = this.workers
    let next = 0
    let finished = 0
    let resolve!: (values: Uint32Array) => void
    let reject!: (err: Error) => void
    const promise = new Promise<Uint32Array>((res, rej) => { resolve = res; reject = rej })
    const cleanups: Array<() => void> = []
    let settled = false
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      reject(err)
      // A worker in the middle of a batch cannot be interrupted: the pool is stopped (start() it again to reuse it).
      void this.stop()
    }
    const feed = (worker: Worker): void => {
      if (next < batches.length) worker.postMessage(batches[next++])
    }
    workers.forEach(worker => {
      let outstanding = 0
      const onMessage = (reply: PoolReply): void => {
        if (settled) return
        if (reply.type === 'error') { fail(new UnmaskWorkerError(`unmask worker: ${reply.message}`)); return }
        if (reply.type === 'done') {
          outstanding--
          if (next < batches.length) { feed(worker); outstanding++ } else if (outstanding === 0) worker.postMessage({ type: 'finish' } satisfies PoolRequest)
          return
        }
        const values = reply.values
        for (let i = 0; i < total.length; i++) total[i] += values[i]
        values.fill(0)
        if (++finished === workers.length) { settled = true; resolve(total) }
      }
      const onError = (err: Error): void => fail(new UnmaskWorkerError(`unmask worker crashed: ${err.message}`, 'ERR_UNMASK_WORKER', { cause: err }))
      const onExit = (code: number): void => fail(new UnmaskWorkerError(`unmask worker exited with code ${code}`))
      worker.on('message', onMessage)
      worker.on('error', onError)
      worker.on('exit', onExit)
      cleanups.push(() => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit) })
      worker.postMessage({ type: 'init', vectorLength: work.vectorLength, keyContext: work.keyContext } satisfies PoolRequest)
      for (let i = 0; i <= PREFETCH; i++) {
        if (next < batches.length) { feed(worker); outstanding++ }
      }
      if (outstanding === 0) worker.postMessage({ type: 'finish' } satisfies PoolRequest)
    })
    const onAbort = (): void => fail(new UnmaskWorkerError('unmask aborted', 'ERR_ABORTED', { cause: options.signal?.reason }))
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await promise
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      for (const cleanup of cleanups) cleanup()
      this.busy = false
    }
  }
}

/** One-shot: start a pool, compute the correction for `work`, stop the pool (~50 ms of worker start-up). */
export async function computeUnmaskInWorkers (work: UnmaskWork, options: UnmaskPoolOptions & { signal?: AbortSignal } = {}): Promise<Uint32Array> {
  const pool = new UnmaskWorkerPool(options)
  await pool.start()
  try {
    return await pool.compute(work, { signal: options.signal })
  } finally {
    await pool.stop()
  }
}
