/**
 * The coordinator's roster: which agents may connect (the config's peer ids, or its roster file's), which are connected now,
 * the listen addresses each reported in its hello (announced to neighbours so agents dial each other),
 * and when each was last seen. Pure bookkeeping; the daemon feeds it libp2p events.
 */
export interface RosterEntry {
  peerId: string
  connected: boolean
  addrs: string[]
  lastSeen: number | null
}

export class Roster {
  private readonly entries = new Map<string, RosterEntry>()
  /** The member ids as one array, kept until the next reload (its digest is computed once per roster). */
  private idList: readonly string[] | null = null

  constructor (agents: readonly string[]) {
    for (const peerId of agents) this.entries.set(peerId, { peerId, connected: false, addrs: [], lastSeen: null })
  }

  /** Every member's peer id (a large round's Announce names its participants by their bits over these). */
  ids (): readonly string[] {
    this.idList ??= [...this.entries.keys()]
    return this.idList
  }

  /**
   * Takes a new roster (a reload): members that stay keep their state (connected, addresses, last seen),
   * new ones start offline, and those no longer listed are forgotten. Returns who came and went.
   */
  replace (agents: readonly string[]): { added: string[], removed: string[] } {
    const next = new Set(agents)
    const removed = [...this.entries.keys()].filter(id => !next.has(id))
    for (const id of removed) this.entries.delete(id)
    const added = [...next].filter(id => !this.entries.has(id))
    for (const peerId of added) this.entries.set(peerId, { peerId, connected: false, addrs: [], lastSeen: null })
    if (added.length > 0 || removed.length > 0) this.idList = null
    return { added, removed }
  }

  has (peerId: string): boolean {
    return this.entries.has(peerId)
  }

  get size (): number {
    return this.entries.size
  }

  /** Returns false for peers not on the roster (nothing is recorded for them). */
  connected (peerId: string, now: number): boolean {
    const e = this.entries.get(peerId)
    if (e === undefined) return false
    e.connected = true
    e.lastSeen = now
    return true
  }

  disconnected (peerId: string, now: number): void {
    const e = this.entries.get(peerId)
    if (e === undefined) return
    e.connected = false
    e.addrs = []
    e.lastSeen = now
  }

  seen (peerId: string, now: number): void {
    const e = this.entries.get(peerId)
    if (e !== undefined) e.lastSeen = now
  }

  setAddrs (peerId: string, addrs: string[], now: number): void {
    const e = this.entries.get(peerId)
    if (e === undefined) return
    e.addrs = addrs
    e.lastSeen = now
  }

  /** Agents that can take part in a round now: connected and reachable (they said hello with addresses). */
  ready (): Array<{ id: string, addrs: string[] }> {
    return [...this.entries.values()].filter(e => e.connected && e.addrs.length > 0).map(e => ({ id: e.peerId, addrs: [...e.addrs] }))
  }

  /** Online = connected and said hello (reachable by neighbours): the agents a round would invite now. */
  onlineCount (): number {
    let n = 0
    for (const e of this.entries.values()) if (e.connected && e.addrs.length > 0) n++
    return n
  }

  isOnline (peerId: string): boolean {
    const e = this.entries.get(peerId)
    return e !== undefined && e.connected && e.addrs.length > 0
  }

  list (): RosterEntry[] {
    return [...this.entries.values()].map(e => ({ ...e, addrs: [...e.addrs] }))
  }
}
