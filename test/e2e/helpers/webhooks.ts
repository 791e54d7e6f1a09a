/** A webhook receiver on loopback for e2e tests: records every JSON body POSTed to it. */
import { createServer } from 'node:http'
import { freePort } from './processes.js'

export interface HookReceiver {
  /** The URL to configure as a coordinator webhook. */
  url: string
  /** Every body received, in arrival order. */
  bodies: any[]
  close: () => Promise<void>
}

export async function startHookReceiver (): Promise<HookReceiver> {
  const port = await freePort()
  const bodies: any[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => { bodies.push(JSON.parse(body)); res.writeHead(204); res.end() })
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: async () => { await new Promise(resolve => server.close(resolve)) } }
}
