import { BlockList, isIP } from 'node:net'
import type { FairlaneConfig } from '@fairlane/config'

/** An address Fairlane can reason about: one spelling per address. */
export interface Address {
  readonly text: string
  readonly family: 4 | 6
}

const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/**
 * One address as a proxy or socket spells it: IPv4-mapped IPv6 (`::ffff:1.2.3.4`, how a
 * dual-stack socket reports an IPv4 peer) becomes IPv4, so one client has one lane whichever
 * way it arrived. Anything that is not an address (`unknown`, an obfuscated node) is undefined.
 */
export function parseAddress(raw: string): Address | undefined {
  const text = raw.trim()
  const mapped = MAPPED.exec(text)
  if (mapped?.[1]) return { text: mapped[1], family: 4 }
  const family = isIP(text)
  if (family === 4) return { text, family: 4 }
  if (family === 6) return { text: text.toLowerCase(), family: 6 }
  return undefined
}

/** The addresses of a `Forwarded` header's `for=` parameters, in order; `for` values that are not addresses stay as written. */
function forwardedFor(value: string): string[] {
  const out: string[] = []
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue
      let node = pair.slice(eq + 1).trim()
      if (node.startsWith('"') && node.endsWith('"')) node = node.slice(1, -1)
      // [v6]:port, [v6], v4:port
      if (node.startsWith('[')) node = node.slice(1, node.indexOf(']'))
      else if (node.split(':').length === 2) node = node.slice(0, node.indexOf(':'))
      out.push(node)
    }
  }
  return out
}

/** The hops a forwarding header lists, left (client) to right (nearest proxy). */
export function forwardedHops(
  header: string | string[] | undefined,
  kind: 'x-forwarded-for' | 'forwarded',
): string[] {
  if (header === undefined) return []
  const value = Array.isArray(header) ? header.join(',') : header
  return kind === 'forwarded' ? forwardedFor(value) : value.split(',').map((hop) => hop.trim())
}

/**
 * The client address: the socket's peer, unless the peer is a trusted proxy; then the
 * right-most hop of the forwarding header that is not itself trusted (hops left of it were
 * written by whoever the client is, so they prove nothing). A hop that is not an address
 * stops the walk at the last address known, so a malformed header cannot pick a lane.
 * All hops trusted: the left-most one.
 */
export function clientAddress(
  peer: Address,
  hops: readonly string[],
  trusted: (address: Address) => boolean,
): Address {
  let client = peer
  for (let i = hops.length - 1; i >= 0 && trusted(client); i--) {
    const hop = parseAddress(hops[i] ?? '')
    if (!hop) break
    client = hop
  }
  return client
}

/** The 8 16-bit groups of a valid IPv6 address (an embedded IPv4 tail included). */
function groups6(text: string): number[] {
  let head = text
  const tail: number[] = []
  const v4 = /:(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    tail.push((a << 8) | b, (c << 8) | d)
    head = text.slice(0, v4.index + 1)
    if (!head.endsWith('::')) head = head.slice(0, -1)
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)))
  const gap = head.indexOf('::')
  if (gap === -1) return [...parse(head), ...tail]
  const left = parse(head.slice(0, gap))
  const right = parse(head.slice(gap + 2))
  const zeros = Array<number>(8 - left.length - right.length - tail.length).fill(0)
  return [...left, ...zeros, ...right, ...tail]
}

/** The address's network at `v4` or `v6` bits, as `network/bits`: the lane of an IP caller. */
export function ipPrefix(address: Address, v4: number, v6: number): string {
  if (address.family === 4) {
    const octets = address.text.split('.').map(Number)
    const masked = octets.map((octet, i) => {
      const keep = Math.max(0, Math.min(8, v4 - i * 8))
      return octet & ((0xff << (8 - keep)) & 0xff)
    })
    return `${masked.join('.')}/${v4}`
  }
  const masked = groups6(address.text).map((group, i) => {
    const keep = Math.max(0, Math.min(16, v6 - i * 16))
    return (group & ((0xffff << (16 - keep)) & 0xffff)).toString(16)
  })
  return `${masked.join(':')}/${v6}`
}

/** trustedProxies as a lookup, built once per config snapshot. */
const lists = new WeakMap<FairlaneConfig, (address: Address) => boolean>()

const NOBODY = (): boolean => false

export function trustedProxiesOf(config: FairlaneConfig): (address: Address) => boolean {
  let check = lists.get(config)
  if (!check) {
    if (config.trustedProxies.length === 0) check = NOBODY
    else {
      const list = new BlockList()
      for (const cidr of config.trustedProxies) {
        const [network = '', bits] = cidr.split('/')
        const address = parseAddress(network)
        if (!address) continue
        const type = address.family === 4 ? 'ipv4' : 'ipv6'
        if (bits === undefined) list.addAddress(address.text, type)
        else list.addSubnet(address.text, Number(bits), type)
      }
      check = (address) => list.check(address.text, address.family === 4 ? 'ipv4' : 'ipv6')
    }
    lists.set(config, check)
  }
  return check
}
