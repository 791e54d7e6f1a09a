/**
 * Which addresses a node may dial. Agents learn their neighbours' addresses from the coordinator's Announce,
 * which relays what every agent said in its hello: unfiltered, any site (or the coordinator) could make every
 * agent open TCP connections to hosts inside its network (port scans, internal services). An agent therefore
 * dials only addresses its operator allows: `network.dialAllow`, or by default public addresses plus the
 * network the coordinator itself is on (loopback for a federation on one host, the coordinator's private
 * block for one on a VPN or a container network).
 *
 * Rule grammar (a list; an address is allowed when one entry matches):
 *   public        globally routable unicast (not private, loopback, link-local, documentation, 6to4, ...)
 *   private       10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7 (ULA)
 *   loopback      127/8, ::1
 *   link-local    169.254/16, fe80::/10
 *   10.1.0.0/16   a CIDR block (IPv4 or IPv6); a bare address is a /32 or /128
 *   site-b.example.org   a DNS name (with a dot), matched exactly; what it resolves to is not checked, so
 *                 list only names you trust
 * Never dialled, whatever the list says: unspecified (0.0.0.0/8, ::), multicast, broadcast, port 0, and
 * anything but TCP over ip4/ip6/dns4/dns6/dns.
 */
import { BlockList, isIP } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_ADDR_CHARS } from '../wire/protocols.js'

export type AddrScope = 'loopback' | 'private' | 'link-local' | 'public' | 'special'

/** A TCP dial target: an IP (family 4 or 6) or a DNS name, and a port. */
export interface DialTarget { host: string, port: number, family: 4 | 6 | 'dns' }

function blocks (cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/')
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? 'ipv6' : 'ipv4')
  }
  return list
}

const UNDIALABLE = blocks(['0.0.0.0/8', '224.0.0.0/4', '255.255.255.255/32', '::/128', 'ff00::/8'])
const LOOPBACK = ['127.0.0.0/8', '::1/128']
export const PRIVATE_BLOCKS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']
const LINK_LOCAL = ['169.254.0.0/16', 'fe80::/10']
/**
 * Special-purpose blocks (IANA registries) that are not globally reachable; dialled only when listed.
 * (Not ::ffff:0:0/96: a BlockList matches every IPv4 address against it. IPv4-mapped addresses are checked
 * against the IPv4 rules anyway, and otherwise fall outside 2000::/3.)
 */
const SPECIAL = blocks([
  '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4',
  '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001::/23', '2001:db8::/32', '2002::/16', '3fff::/20'
])
const GLOBAL_UNICAST_V6 = blocks(['2000::/3'])
const SCOPES: Array<[AddrScope, BlockList]> = [['loopback', blocks(LOOPBACK)], ['private', blocks(PRIVATE_BLOCKS)], ['link-local', blocks(LINK_LOCAL)]]

const type = (family: 4 | 6): 'ipv4' | 'ipv6' => family === 4 ? 'ipv4' : 'ipv6'

/** The scope of an IP address, or null for one that is never dialled (unspecified, multicast, broadcast). */
export function scopeOf (ip: string, family: 4 | 6): AddrScope | null {
  if (UNDIALABLE.check(ip, type(family))) return null
  for (const [scope, list] of SCOPES) if (list.check(ip, type(family))) return scope
  if (SPECIAL.check(ip, type(family))) return 'special'
  if (family === 6 && !GLOBAL_UNICAST_V6.check(ip, 'ipv6')) return 'special'
  return 'public'
}

/**
 * The TCP target of a multiaddr (`/ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT[/p2p/ID]`), or null when it is not
 * one this node could dial or must never dial. `peer`, when given, must match a /p2p component.
 */
export function dialTarget (addr: Multiaddr | string, peer?: string): DialTarget | null {
  let components
  try {
    components = (typeof addr === 'string' ? multiaddr(addr) : addr).getComponents()
  } catch {
    return null
  }
  const [host, tcp, p2p, ...rest] = components
  if (host === undefined || tcp?.name !== 'tcp' || rest.length > 0) return null
  if (p2p !== undefined && (p2p.name !== 'p2p' || (peer !== undefined && p2p.value !== peer))) return null
  const port = Number(tcp.value)
  if (!Number.isInteger(port) || port < 1 || port > 65535 || host.value === undefined) return null
  if (host.name === 'ip4' || host.name === 'ip6') {
    const family = host.name === 'ip4' ? 4 : 6
    if (isIP(host.value) !== family || scopeOf(host.value, family) === null) return null
    return { host: host.value, port, family }
  }
  if (host.name === 'dns' || host.name === 'dns4' || host.name === 'dns6') return { host: normaliseName(host.value), port, family: 'dns' }
  return null
}

function normaliseName (name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

const KEYWORDS = new Set<AddrScope>(['public', 'private', 'loopback', 'link-local'])
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** Why a dial rule is not one (null when it is valid). */
export function dialRuleProblem (entry: string): string | null {
  if (KEYWORDS.has(entry as AddrScope)) return null
  const [net, bits, ...more] = entry.split('/')
  const family = isIP(net)
  if (family !== 0) {
    if (more.length > 0) return 'expected a CIDR block like 10.0.0.0/8'
    if (bits === undefined) return null
    const n = Number(bits)
    if (!/^\d{1,3}$/.test(bits) || n > (family === 4 ? 32 : 128)) return `prefix length must be 0-${family === 4 ? 32 : 128}`
    return null
  }
  if (entry.includes('/')) return 'expected a CIDR block like 10.0.0.0/8 or fd00::/8'
  // A name needs a dot: a bare word is far more likely a mistyped keyword ("pubilc", "all") than a host.
  if (HOSTNAME.test(entry) && /[a-z]/i.test(entry) && entry.includes('.')) return null
  return 'expected public, private, loopback, link-local, a CIDR block (10.0.0.0/8) or a DNS name with a dot (site-b.example.org)'
}

/** An allow-list of dial targets (grammar in the header). */
export class DialAllowList {
  readonly entries: readonly string[]
  private readonly scopes = new Set<AddrScope>()
  private readonly cidrs = new BlockList()
  private readonly names = new Set<string>()

  /** Throws RangeError naming the first invalid entry; validate config input with dialRuleProblem first. */
  constructor (entries: readonly string[]) {
    this.entries = [...entries]
    for (const entry of entries) {
      const problem = dialRuleProblem(entry)
      if (problem !== null) throw new RangeError(`dial rule ${JSON.stringify(entry)}: ${problem}`)
      if (KEYWORDS.has(entry as AddrScope)) { this.scopes.add(entry as AddrScope); continue }
      const [net, bits] = entry.split('/')
      const family = isIP(net)
      if (family === 0) { this.names.add(normaliseName(entry)); continue }
      this.cidrs.addSubnet(net, bits === undefined ? (family === 4 ? 32 : 128) : Number(bits), family === 4 ? 'ipv4' : 'ipv6')
    }
  }

  /**
   * The default of an agent: public addresses, plus the network of each of the coordinator's addresses
   * (loopback, its private block, link-local). A coordinator on a public address adds nothing.
   */
  static forCoordinator (coordinatorIps: ReadonlyArray<{ ip: string, family: 4 | 6 }>): DialAllowList {
    const entries = new Set<string>(['public'])
    for (const { ip, family } of coordinatorIps) {
      const scope = scopeOf(ip, family)
      if (scope === 'loopback' || scope === 'link-local') entries.add(scope)
      if (scope === 'private') {
        const block = PRIVATE_BLOCKS.find(cidr => blocks([cidr]).check(ip, type(family)))
        if (block !== undefined) entries.add(block)
      }
    }
    return new DialAllowList([...entries])
  }

  allows (target: DialTarget): boolean {
    if (target.family === 'dns') return this.names.has(target.host)
    const scope = scopeOf(target.host, target.family)
    if (scope === null) return false
    return this.scopes.has(scope) || this.cidrs.check(target.host, type(target.family))
  }

  /** Whether `addr` (a multiaddr, its /p2p component if any naming `peer`) may be dialled. */
  allowsAddr (addr: Multiaddr | string, peer?: string): boolean {
    const target = dialTarget(addr, peer)
    return target !== null && this.allows(target)
  }
}

/**
 * The coordinator's choice of an agent's hello addresses to announce to its neighbours: dialable TCP
 * addresses only (no /p2p of another peer), in printable ASCII; when `allow` is configured, only those it
 * allows; without it, loopback addresses only for an agent that itself connected over loopback (for anyone
 * else they point at the dialler's own host). Capped in count and size, so every Announce fits the agents'
 * frame limit (shared/wire/protocols.ts).
 */
export function selectAnnouncedAddrs (addrs: readonly string[], opts: { peer: string, remoteAddr?: Multiaddr | string, allow?: DialAllowList }): { kept: string[], dropped: string[] } {
  const remote = opts.remoteAddr !== undefined ? dialTarget(opts.remoteAddr) : null
  const remoteIsLoopback = remote !== null && remote.family !== 'dns' && scopeOf(remote.host, remote.family) === 'loopback'
  const kept: string[] = []
  const dropped: string[] = []
  let chars = 0
  for (const addr of addrs) {
    const target = /^[\x21-\x7e]+$/.test(addr) ? dialTarget(addr, opts.peer) : null
    let ok = target !== null
    if (ok && target !== null) {
      if (opts.allow !== undefined) ok = opts.allow.allows(target)
      else if (target.family !== 'dns' && scopeOf(target.host, target.family) === 'loopback') ok = remoteIsLoopback
    }
    if (ok && (kept.length >= MAX_ANNOUNCED_ADDRS || chars + addr.length > MAX_ANNOUNCED_ADDR_CHARS)) ok = false
    if (ok) {
      kept.push(addr)
      chars += addr.length
    } else dropped.push(addr)
  }
  return { kept, dropped }
}
