/**
 * A raw peer as a child process, for faults that need a real process death: connects with KEY to TARGET,
 * opens a stream on PROTOCOL, writes the length prefix and FRACTION of the frame in FRAME_FILE, prints
 * `partial frame sent <bytes>/<frame bytes>` on stdout and then waits to be SIGKILLed (never ends the frame).
 *
 *   node raw-peer-child.js KEY TARGET PROTOCOL FRAME_FILE FRACTION
 *
 * With RAW_PEER_WAIT_STDIN=1 it starts its node, prints `ready` and connects only once a line arrives on
 * stdin: the test can start it ahead (loading libp2p takes seconds on a busy host) and fire it at the moment
 * the target admits the key (e.g. an agent, only while a round that lists it runs).
 */
import '../../../shared/polyfill.js'
import { readFileSync } from 'node:fs'
import { RawPeer, partialFrame } from './raw-peer.js'

const [keyFile, target, protocol, frameFile, fraction] = process.argv.slice(2)
if (fraction === undefined) {
  process.stderr.write('usage: raw-peer-child KEY TARGET PROTOCOL FRAME_FILE FRACTION\n')
  process.exit(2)
}
const peer = await RawPeer.start({ keyFile, target })
if (process.env.RAW_PEER_WAIT_STDIN === '1') {
  process.stdout.write('ready\n')
  await new Promise<void>((resolve) => { process.stdin.once('data', () => { resolve() }) })
}
const body = readFileSync(frameFile) // read only now: with RAW_PEER_WAIT_STDIN the test writes it meanwhile
const stream = await peer.open(protocol)
const bytes = partialFrame(body, Number(fraction))
peer.sendRaw(stream, bytes)
// Wait until the bytes have left this process before saying so: the test kills us right after.
while (stream.writeBufferLength > 0) await new Promise(resolve => setTimeout(resolve, 10))
process.stdout.write(`partial frame sent ${bytes.byteLength}/${body.byteLength}\n`)
setInterval(() => {}, 60_000) // hold the connection open with the frame unfinished
