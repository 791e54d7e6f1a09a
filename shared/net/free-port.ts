import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that is free now (for the demo, tests and benchmarks, which write ports into configs). */
export async function freePort (): Promise<number> {
  // A random port below Linux's ephemeral range (32768-60999): ports the kernel hands out for bind(0) and
  // outgoing connections never collide with it, and two callers rarely pick the same one. Checked bindable.
  for (let attempt = 0; ; attempt++) {
    const candidate = 20000 + Math.floor(Math.random() * 12000)
    const ok = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => { resolve(false) })
      server.listen(candidate, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
    })
    if (ok) return candidate
    if (attempt >= 50) throw new Error('no free TCP port found on 127.0.0.1')
  }
}
