import type { Command } from 'commander'
import { UsageError } from '../../shared/errors.js'

export function register (program: Command): void {
  program.command('keygen')
    .description('write a new libp2p Ed25519 identity key (mode 0600) and print its peer id, or --show the peer id of an existing key')
    .option('--out <file>', 'where to write the key (protobuf encoding)')
    .option('--show <file>', 'print the peer id of this existing key file (nothing is written)')
    .option('--force', 'overwrite an existing file', false)
    .option('--json', 'print {"peerId", "file"} as JSON', false)
    .addHelpText('after', '\nExamples:\n  $ fedmon keygen --out site-a.key\n  12D3KooW...\n  $ fedmon keygen --show site-a.key\n  12D3KooW...')
    .action(async (opts: { out?: string, show?: string, force: boolean, json: boolean }) => {
      const { generateIdentity, writeIdentity, loadIdentity } = await import('../../shared/identity.js')
      if ((opts.out === undefined) === (opts.show === undefined)) throw new UsageError('give exactly one of --out FILE (a new key) or --show FILE (an existing key)')
      let peerId: string
      let file: string
      if (opts.show !== undefined) {
        file = opts.show
        peerId = loadIdentity(file).peerId
      } else {
        file = opts.out!
        const identity = await generateIdentity()
        writeIdentity(file, identity, { force: opts.force })
        peerId = identity.peerId
      }
      process.stdout.write(opts.json ? `${JSON.stringify({ peerId, file })}\n` : `${peerId}\n`)
    })
}
