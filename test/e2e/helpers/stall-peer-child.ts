/**
 * A roster peer that asks for large answers and then stops reading at the OS level: for the TCP backpressure
 * test (network-backpressure.test.ts). It dials CONNECTIONS fresh connections to TARGET with KEY, opens
 * STREAMS_PER_CONNECTION streams on PROTOCOL on each and writes REQUEST_FILE's frame on them but its last
 * byte. Once the target has refused what is over its budgets, it sends the last byte on the streams still
 * open, prints one JSON line and SIGSTOPs itself in the same tick: the answers reach a process that never runs
 * again, so its kernel receive buffers fill, TCP's window closes and the target's socket writes stall.
 * (Stopping itself, rather than being stopped by the test, is what guarantees not one byte of an answer is
 * read: a stopped process sends no Yamux window update either.) The test SIGKILLs it.
 *
 *   node stall-peer-child.js KEY TARGET PROTOCOL REQUEST_FILE CONNECTIONS STREAMS_PER_CONNECTION
 */
import '../../../shared/polyfill.js'
import { readFileSync } from 'node:fs'
import type { Stream } from '@libp2p/interface'
import { RawPeer, varint } from './raw-peer.js'

const [keyFile, target, protocol, requestFile, connectionsArg, streamsArg] = process.argv.slice(2)
if (streamsArg === undefined) {
  process.stderr.write('usage: stall-peer-child KEY TARGET PROTOCOL REQUEST_FILE CONNECTIONS STREAMS_PER_CONNECTION\n')
  process.exit(2)
}
const body = readFileSync(requestFile)
const frame = new Uint8Array([...varint(body.byteLength), ...body])
const peer = await RawPeer.start({ keyFile, target })

let dialled = 0
for (let i = 0; i < Number(connectionsArg); i++) {
  try { await peer.connect({ fresh: true, signal: AbortSignal.timeout(10_000) }); dialled++ } catch { /* refused over the per-peer cap */ }
}
await new Promise(resolve => setTimeout(resolve, 300)) // connections refused after Noise close a moment later
const connections = peer.connections().filter(c => c.status === 'open')

const opened: Stream[] = []
let refusedAtOpen = 0
await Promise.all(connections.map(async (connection) => {
  for (let i = 0; i < Number(streamsArg); i++) {
    try {
      const stream = await RawPeer.openOn(connection, protocol, { signal: AbortSignal.timeout(5000) })
      stream.send(frame.subarray(0, frame.byteLength - 1))
      opened.push(stream)
    } catch { refusedAtOpen++ }
  }
}))
// The target resets streams over its per-peer budget as soon as their handler starts: wait until the resets
// have arrived (the count of open streams holds still for half a second; at most 5 s on a busy host).
const isHeld = (s: Stream): boolean => s.status === 'open' && s.writeStatus === 'writable'
let last = -1
for (let stable = 0, waited = 0; stable < 2 && waited < 5000; waited += 250) {
  await new Promise(resolve => setTimeout(resolve, 250))
  const n = opened.filter(isHeld).length
  stable = n === last ? stable + 1 : 0
  last = n
}
const held = opened.filter(isHeld)
for (const stream of held) stream.send(frame.subarray(frame.byteLength - 1))
// Stream writes go down to socket.write() synchronously (Yamux, Noise and the TCP socket have no async step),
// so the requests are in the kernel now; stdout is a pipe, written synchronously on Linux.
process.stdout.write(JSON.stringify({
  connections: { dialled, open: connections.length },
  streams: { opened: opened.length, refusedAtOpen, resetByTarget: opened.length - held.length, requestsCompleted: held.length }
}) + '\n')
process.kill(process.pid, 'SIGSTOP')
setInterval(() => {}, 60_000) // not reached until SIGCONT (the test sends SIGKILL)
