import '../polyfill.js'
import { parentPort } from 'node:worker_threads'
import { UnmaskAccumulator, wipeUnmaskWork, type UnmaskWork } from './unmask.js'
import type { PoolReply, PoolRequest } from './unmask-pool.js'

/**
 * Worker side of UnmaskWorkerPool: expands the batches it is given into one private partial sum and
 * returns it on 'finish'. Secrets it receives are wiped as soon as they are used.
 */

if (parentPort === null) throw new Error('unmask-worker.js must run as a worker thread')
const port = parentPort
let acc: UnmaskAccumulator | null = null

const reply = (message: PoolReply, transfer: ArrayBuffer[] = []): void => { port.postMessage(message, transfer) }

port.on('message', (request: PoolRequest) => {
  try {
    switch (request.type) {
      case 'init':
        acc?.wipe()
        acc = new UnmaskAccumulator(request.vectorLength, request.keyContext)
        break
      case 'batch': {
        if (acc === null) throw new Error('batch before init')
        const batch: Pick<UnmaskWork, 'seeds' | 'pairwise'> = request
        for (const { seed, sign } of batch.seeds) acc.addSeed(seed, sign)
        for (const job of batch.pairwise) acc.addPairwise(job)
        wipeUnmaskWork(batch)
        reply({ type: 'done', batch: request.batch })
        break
      }
      case 'finish': {
        if (acc === null) throw new Error('finish before init')
        const values = acc.values()
        acc.wipe()
        acc = null
        reply({ type: 'result', values }, [values.buffer as ArrayBuffer])
        break
      }
    }
  } catch (err) {
    acc?.wipe()
    acc = null
    reply({ type: 'error', message: (err as Error).message ?? String(err) })
  }
})
