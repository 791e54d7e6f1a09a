/**
 * Control messages outside the secure-aggregation protocol, on their own protocols (see protocols.ts):
 * the agent's hello (its listen addresses) and the spec request/response. Validated with zod on receipt.
 */
import { z } from 'zod'

/** agent → coordinator on every (re)connect: where neighbours can dial this agent. */
export const Hello = z.object({
  type: z.literal('hello'),
  addrs: z.array(z.string().max(512)).max(32),
  version: z.string().max(64)
})
export type Hello = z.infer<typeof Hello>

/** agent → coordinator: the monitor spec whose hash an Announce carried. */
export const SpecRequest = z.object({ type: z.literal('spec-request'), specHash: z.string().regex(/^[0-9a-f]{64}$/) })
export type SpecRequest = z.infer<typeof SpecRequest>

/** coordinator → agent: the spec document; the agent re-hashes it and compares with the Announce. */
export const SpecResponse = z.object({ type: z.literal('spec'), spec: z.unknown() })
export type SpecResponse = z.infer<typeof SpecResponse>
