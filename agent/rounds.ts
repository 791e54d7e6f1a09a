/**
 * The agent's round service: one SecAggClient (sans-IO) per announced round, and one running round per monitor
 * (rounds of different monitors run side by side; a new Announce for a monitor replaces that monitor's round). It validates the coordinator's
 * Announce against the agent's policy and contribution ledger (refusals logged with the reason), checks the
 * round's monitor spec against the policy, computes the local vector in parallel with the key exchange,
 * sends Shamir shares peer-to-peer to neighbours and everything else to the coordinator, and wipes the
 * round's secrets when it ends. No secret of a round is written to disk (the ledger holds windows and ids).
 */
import { SecAggClient, type ClientOptions } from '../shared/secagg/client.js'
import type { AgentPolicy, ContributionGuard, VerifiedSpec } from '../shared/secagg/policy.js'
import { SecAggError } from '../shared/secagg/errors.js'
import { MESSAGE_ROUTES, type SecAggMessage } from '../shared/secagg/messages.js'
import type { Outgoing } from '../shared/secagg/types.js'
import type { Logger } from '../shared/log.js'

/** The announce's terms, its round id and the key of the monitor binding it runs under (MonitorBinding.key). */
export type AnnounceInfo = SecAggClient['announce'] & { roundId: string, monitor: string }

/**
 * Which of this site's monitors a round is for: its key (one running round per key), and the policy and
 * contribution-ledger scope it runs under.
 */
export interface MonitorBinding { key: string, policy?: AgentPolicy, guard?: ContributionGuard }

/**
 * The agent's local vector for a round, how many of its records fall in the window, and what is wrong with them
 * when they should not be contributed (agent/data-check.ts). Only the vector leaves, masked; a problem becomes
 * the reason of a signed decline.
 */
export interface LocalInput { vector: Uint32Array, records: number, problem?: string | null }

export interface AgentRoundServiceOptions extends ClientOptions {
  sender: { send: (to: string, message: SecAggMessage, opts: { signal?: AbortSignal, addrs?: string[], attempts?: number, attemptTimeoutMs?: number }) => Promise<void> }
  /** The monitor spec document with this hash, from the coordinator (when the Announce did not carry it). */
  fetchSpec: (specHash: string, signal: AbortSignal) => Promise<unknown>
  /** The local vector for the round under its verified spec (DuckDB scan); runs while keys are exchanged. */
  computeInput: (announce: AnnounceInfo, spec: VerifiedSpec, signal: AbortSignal) => Promise<LocalInput>
  /** The peers to admit besides the coordinator (the round's participants), or [] when no round runs. */
  admit: (peerIds: string[]) => void
  /** Called once a round is accepted with the neighbours (and their addresses) shares will go to: connect early. */
  connect?: (neighbours: Array<{ id: string, addrs: string[] }>, signal: AbortSignal) => void
  onRoundEnd?: (roundId: string, status: string) => void
  /**
   * The monitor the Announce names (undefined: a coordinator from before monitors) → this site's binding for
   * it; throws SecAggError (ERR_POLICY) for a monitor this site does not serve. Absent: every round runs under
   * `policy` and `guard`, key ''.
   */
  bindMonitor?: (monitor: string | undefined) => MonitorBinding
  /** Test-only: SIGKILL this process right after sending a message of this type (FEDMON_TEST_EXIT_AFTER). */
  testExitAfter?: string
  /**
   * Test-only: after sending a message of this type, stay connected but ignore the rest of the round
   * (FEDMON_TEST_STALL_AFTER) — a hung agent, which only the phase deadline drops.
   */
  testStallAfter?: string
  logger: Logger
  now?: () => number
  tickMs?: number
}

interface ActiveRound {
  client: SecAggClient
  roundId: string
  /** The monitor binding's key: one running round per key. */
  monitor: string
  addrs: Map<string, string[]>
  controller: AbortController
  ticker: NodeJS.Timeout
  /** Messages for a later phase than the client's (`isEarly`), fed to it once it gets there. */
  early: Array<{ from: string, message: SecAggMessage }>
  /** Test hook (testStallAfter): the agent hangs in this round. */
  stalled?: boolean
}

/**
 * Send timeouts follow the round's phase timeout (from the signed Announce): a message may take up to one
 * phase to get through, and a share attempt gets a third of it before a retry on a fresh stream. Fixed
 * short timeouts made a slow host's senders give up and retry while the receiver was still reading, and
 * the retries (with the pings) made it slower still: on 2 cores with 50 agents no round finished.
 */
function sendTimeouts (phaseTimeoutMs: number): { totalMs: number, shareAttemptMs: number } {
  return { totalMs: Math.max(10_000, phaseTimeoutMs), shareAttemptMs: Math.max(2_500, Math.floor(phaseTimeoutMs / 3)) }
}
const MAX_EARLY = 10_000
/** The scan's error when a window holds more records than the spec's limits.maxRecordsPerAgent (agent/scan.ts). */
const DATA_DEPENDENT_FAILURE = 'ERR_SCAN_RECORD_CAP'

export class AgentRoundService {
  private readonly opts: AgentRoundServiceOptions
  private readonly now: () => number
  /** Running rounds by monitor key. */
  private readonly active = new Map<string, ActiveRound>()
  private readonly abortedEarly = new Set<string>()

  constructor (opts: AgentRoundServiceOptions) {
    this.opts = opts
    this.now = opts.now ?? Date.now
  }

  /** A running round's id (the first one's when several monitors run), or null. */
  get currentRoundId (): string | null {
    return this.active.values().next().value?.roundId ?? null
  }

  /** The ids of the rounds running now, one per monitor. */
  get runningRoundIds (): string[] {
    return [...this.active.values()].map(a => a.roundId)
  }

  private isActive (active: ActiveRound): boolean {
    return this.active.get(active.monitor) === active
  }

  private roundById (roundId: string): ActiveRound | null {
    for (const a of this.active.values()) if (a.roundId === roundId) return a
    return null
  }

  /** Every running round's participants (the gater admits them), or [] when none runs. */
  private admitRunning (): void {
    const ids = new Set<string>()
    for (const a of this.active.values()) for (const p of a.client.announce.participants) ids.add(p.id)
    this.opts.admit([...ids])
  }

  receive (from: string, message: SecAggMessage): void {
    const route = MESSAGE_ROUTES[message.type]
    if (route === 'coordinator->agent' && from !== this.opts.coordinator) {
      this.opts.logger.warn({ peer: from, type: message.type }, 'coordinator message from another peer: dropped')
      return
    }
    if (route === 'agent->coordinator') {
      this.opts.logger.warn({ peer: from, type: message.type }, 'coordinator-bound message sent to an agent: dropped')
      return
    }
    if (message.type === 'announce') {
      if (this.abortedEarly.has(message.roundId)) {
        this.opts.logger.info({ round: message.roundId }, 'round already aborted by the coordinator: not joining')
        return
      }
      this.onAnnounce(from, message)
      return
    }
    const active = this.roundById(message.roundId)
    if (message.type === 'abort' && active === null) {
      // Streams are independent: an Abort can overtake its Announce. Remember it (the sender is the
      // Noise-authenticated coordinator) so the late Announce is not joined.
      this.abortedEarly.add(message.roundId)
      if (this.abortedEarly.size > 16) this.abortedEarly.delete(this.abortedEarly.values().next().value as string)
      return
    }
    if (active === null) {
      this.opts.logger.debug({ peer: from, type: message.type, round: message.roundId }, 'message for no running round: dropped')
      return
    }
    if (active.stalled === true && message.type !== 'abort') return
    this.feed(active, from, message)
  }

  /** Aborts the running rounds (shutdown): secrets wiped, nothing more sent. */
  stop (): void {
    for (const active of [...this.active.values()]) {
      active.client.abort()
      this.end(active, 'aborted')
    }
  }

  private onAnnounce (from: string, announce: SecAggMessage): void {
    let client: SecAggClient
    let binding: MonitorBinding
    try {
      const { self, coordinator, sign, verify, roster } = this.opts
      // The monitor is read before the signature is checked; fromAnnounce then verifies it with everything else.
      const named = announce.type === 'announce' ? announce.monitor : undefined
      binding = this.opts.bindMonitor?.(named) ?? { key: '', policy: this.opts.policy, guard: this.opts.guard }
      client = SecAggClient.fromAnnounce({ self, coordinator, sign, verify, policy: binding.policy, guard: binding.guard, roster }, from, announce, this.now())
    } catch (err) {
      const e = err as Error & { code?: string }
      this.opts.logger.warn({ round: announce.roundId, code: e.code, reason: e.message }, 'round refused')
      // Tell the coordinator why (signed), so the operator sees the reason rather than a silent dropout.
      const { self, coordinator, sign, verify } = this.opts
      this.sendDecline(SecAggClient.declineAnnounce({ self, coordinator, sign, verify }, from, announce, err))
      return
    }
    const running = this.active.get(binding.key)
    if (running !== undefined) {
      this.opts.logger.warn({ round: running.roundId, next: client.roundId, monitor: binding.key }, 'a new announce for the monitor replaces its running round')
      running.client.abort()
      this.end(running, 'superseded')
    }
    const info: AnnounceInfo = { ...client.announce, roundId: client.roundId, monitor: binding.key }
    const active: ActiveRound = {
      client,
      roundId: client.roundId,
      monitor: binding.key,
      addrs: new Map(client.announce.participants.map(p => [p.id, p.addrs])),
      controller: new AbortController(),
      ticker: setInterval(() => { this.tick(active) }, this.opts.tickMs ?? 200),
      early: []
    }
    this.active.set(binding.key, active)
    this.admitRunning()
    this.opts.logger.info({ round: client.roundId, monitor: binding.key, participants: client.announce.participants.length, listedBy: announce.type === 'announce' && announce.members !== undefined ? 'roster bits' : 'list', vectorLength: client.announce.vectorLength, reference: client.announce.reference }, 'round accepted')
    this.step(active, () => client.start(this.now()))
    // Connection setup (TCP + Noise + identify) overlaps the advertise phase instead of delaying ShareKeys.
    this.opts.connect?.(client.neighbours().map(id => ({ id, addrs: active.addrs.get(id) ?? [] })), active.controller.signal)
    const started = this.now()
    this.prepareInput(active, info).then((input) => {
      if (!this.isActive(active) || input === null) return
      this.opts.logger.info({ round: active.roundId, ms: this.now() - started, records: input.records }, 'local vector ready')
      this.step(active, () => client.setInput(input.vector, this.now(), { records: input.records, problem: input.problem ?? null }))
    }, (err: Error & { code?: string }) => {
      if (!this.isActive(active)) return
      // SecAggErrors here come from provideSpec: the spec does not match the hash or the policy.
      if (err instanceof SecAggError) {
        this.opts.logger.warn({ round: active.roundId, code: err.code, reason: err.message }, 'round refused')
      } else if (err.code === DATA_DEPENDENT_FAILURE) {
        // More records than the spec's cap: whether that happens depends on the data, so leaving quietly would
        // tell a probing coordinator the record count. The window is used up, and the decline says why.
        this.opts.logger.warn({ round: active.roundId, code: err.code, reason: err.message }, 'round refused: the window is used up')
        active.client.withdraw(err.message, this.now())
      } else {
        this.opts.logger.error({ round: active.roundId, code: err.code, err: err.message }, 'cannot compute the local vector: leaving the round')
      }
      active.client.abort()
      this.end(active, 'failed')
    })
  }

  /**
   * The round's spec (carried by the Announce, or fetched and handed to provideSpec, which checks it against
   * the announced hash and the policy and fails the round on a refusal), then the local vector under it.
   * Null when the round ended meanwhile.
   */
  private async prepareInput (active: ActiveRound, info: AnnounceInfo): Promise<LocalInput | null> {
    const { client, controller: { signal } } = active
    let spec = client.spec
    if (spec === null) {
      const document = await this.opts.fetchSpec(info.specHash, signal)
      if (!this.isActive(active)) return null
      spec = client.provideSpec(document)
    }
    return await this.opts.computeInput(info, spec, signal)
  }

  private feed (active: ActiveRound, from: string, message: SecAggMessage): void {
    // A message for a later phase waits (streams are independent); it is fed once the client gets there.
    if (active.client.isEarly(message) && active.early.length < MAX_EARLY) {
      active.early.push({ from, message })
      return
    }
    try {
      const out = active.client.receive(from, message, this.now())
      if (message.type === 'key-set') this.learnAddrs(active)
      this.dispatch(active, out)
    } catch (err) {
      const e = err as Error & { code?: string }
      if (e.code === 'ERR_POLICY') this.opts.logger.warn({ round: active.roundId, peer: from, type: message.type, code: e.code, reason: e.message }, 'round refused')
      else this.opts.logger.warn({ peer: from, type: message.type, code: e.code, err: e.message }, 'message refused')
      return
    }
    this.retryEarly(active)
    this.checkEnd(active)
  }

  private step (active: ActiveRound, run: () => Outgoing[]): void {
    try {
      this.dispatch(active, run())
    } catch (err) {
      const e = err as Error & { code?: string }
      if (e.code === 'ERR_POLICY') this.opts.logger.warn({ round: active.roundId, code: e.code, reason: e.message }, 'round refused')
      else this.opts.logger.warn({ round: active.roundId, code: e.code, err: e.message }, 'round step refused')
    }
    this.retryEarly(active)
    this.checkEnd(active)
  }

  private retryEarly (active: ActiveRound): void {
    if (active.early.length === 0 || !this.isActive(active)) return
    const pending = active.early
    active.early = []
    let progressed = false
    for (const { from, message } of pending) {
      // Still early: keep it without asking the client (an exception per message per tick added up to
      // seconds of CPU per round at 50 agents).
      if (active.client.isEarly(message)) { active.early.push({ from, message }); continue }
      try {
        const out = active.client.receive(from, message, this.now())
        if (message.type === 'key-set') this.learnAddrs(active)
        this.dispatch(active, out)
        progressed = true
      } catch (err) {
        const e = err as Error & { code?: string }
        this.opts.logger.warn({ peer: from, type: message.type, code: e.code, err: e.message }, 'message refused')
      }
    }
    if (progressed) this.retryEarly(active)
  }

  /**
   * A large round's Announce names no addresses (roster-members.ts): the key set brings the neighbours', which
   * the shares about to be sent need, and the early connections to them start now.
   */
  private learnAddrs (active: ActiveRound): void {
    const learnt = active.client.neighbourAddresses().filter(n => (active.addrs.get(n.id) ?? []).length === 0)
    if (learnt.length === 0) return
    for (const { id, addrs } of learnt) active.addrs.set(id, addrs)
    this.opts.connect?.(learnt, active.controller.signal)
  }

  private tick (active: ActiveRound): void {
    if (!this.isActive(active)) return
    this.step(active, () => active.client.tick(this.now()))
  }

  private checkEnd (active: ActiveRound): void {
    if (!this.isActive(active)) return
    const status = active.client.status
    if (status === 'done' || status === 'failed') this.end(active, status)
  }

  private end (active: ActiveRound, status: string): void {
    clearInterval(active.ticker)
    // A refusal by this agent's own rules before its masked input left (policy, spec, ledger): say why.
    this.sendDecline(active.client.declineNotice())
    // Cancel the scan and in-flight sends only when the round is cut short: a finished round's last
    // message (the unmask shares) is usually still on its way.
    if (status !== 'done' && status !== 'failed') active.controller.abort()
    active.early = []
    if (this.isActive(active)) {
      this.active.delete(active.monitor)
      this.admitRunning()
    }
    this.opts.logger.info({ round: active.roundId, monitor: active.monitor, status }, 'round ended')
    this.opts.onRoundEnd?.(active.roundId, status)
  }

  /** Sends a Decline (if any) to the coordinator, independently of any round's lifetime. */
  private sendDecline (notice: Outgoing | null): void {
    if (notice === null) return
    const timeoutMs = 10_000 // a few hundred bytes, sent whether or not a round runs: a fixed bound suffices
    this.opts.sender.send(this.opts.coordinator, notice.message, { signal: AbortSignal.timeout(timeoutMs), attempts: 2 }).then(() => {
      this.opts.logger.info({ round: notice.message.roundId }, 'decline sent to the coordinator')
    }, (err: Error) => {
      this.opts.logger.warn({ round: notice.message.roundId, err: err.message }, 'cannot send the decline to the coordinator')
    })
  }

  private dispatch (active: ActiveRound, out: Outgoing[]): void {
    if (out.length === 0) return
    const sends = out.map(async ({ to, message }) => {
      const direct = MESSAGE_ROUTES[message.type] === 'agent->agent'
      const target = direct ? to : this.opts.coordinator
      const { totalMs, shareAttemptMs } = sendTimeouts(active.client.announce.phaseTimeoutMs)
      const signal = AbortSignal.any([active.controller.signal, AbortSignal.timeout(totalMs)])
      try {
        // Shares are tiny: a stuck attempt is retried on a fresh stream rather than waited out.
        await this.opts.sender.send(target, message, direct
          ? { signal, addrs: active.addrs.get(to), attempts: 3, attemptTimeoutMs: shareAttemptMs }
          : { signal, attempts: 2 })
      } catch (err) {
        if (!signal.aborted || !active.controller.signal.aborted) this.opts.logger.warn({ peer: target, type: message.type, err: (err as Error).message }, 'send failed')
      }
    })
    for (const { message } of out) {
      if (message.type === 'share-receipt') this.opts.logger.info({ round: active.roundId, holds: message.holds.length, neighbours: active.client.neighbours().length }, 'shares received')
    }
    if (this.opts.testStallAfter !== undefined && out.some(o => o.message.type === this.opts.testStallAfter)) {
      active.stalled = true
      this.opts.logger.warn({ round: active.roundId, after: this.opts.testStallAfter }, 'FEDMON_TEST_STALL_AFTER: ignoring the rest of this round (test hook)')
    }
    const exitAfter = this.opts.testExitAfter
    if (exitAfter !== undefined && out.some(o => o.message.type === exitAfter)) {
      void Promise.all(sends).then(() => {
        this.opts.logger.warn({ round: active.roundId, after: exitAfter }, 'FEDMON_TEST_EXIT_AFTER: killing this agent (test hook)')
        process.kill(process.pid, 'SIGKILL')
      })
    }
  }
}
