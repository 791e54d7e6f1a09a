import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('keygen')
    .description('write a new libp2p Ed25519 identity key (mode 0600) and print its peer id')
    .requiredOption('--out <file>', 'where to write the key (protobuf encoding)')
    .option('--force', 'overwrite an existing file', false)
    .option('--json', 'print {"peerId", "file"} as JSON', false)
    .addHelpText('after', '\nExample:\n  $ fedmon keygen --out site-a.key\n  12D3KooW...')
    .action(async (opts: { out: string, force: boolean, json: boolean }) => {
      const { generateIdentity, writeIdentity } = await import('../../shared/identity.js')
      const identity = await generateIdentity()
      writeIdentity(opts.out, identity, { force: opts.force })
      process.stdout.write(opts.json ? `${JSON.stringify({ peerId: identity.peerId, file: opts.out })}\n` : `${identity.peerId}\n`)
    })
}
