import ipaddr from 'ipaddr.js'
import { FairlaneError } from '@fairlane/protocol'

export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
}

/** Looks a host name up; injected so the policy does no I/O. */
export type Resolve = (hostname: string) => Promise<readonly ResolvedAddress[]>

/** Where this Fairlane process listens: its own addresses are never a destination. */
export interface SelfAddresses {
  readonly addresses: readonly string[]
  readonly ports: readonly number[]
}

export interface DestinationRule {
  /**
   * Approved host patterns (X-Fairlane-Url form): exact host, `*.example.com`, or `*` (any
   * public host). Omitted for a configured target endpoint, whose host the operator chose.
   */
  readonly hostPatterns?: readonly string[]
  /** http:// allowed (https always is). */
  readonly allowHttp: boolean
  /** Omitted = any port. */
  readonly allowedPorts?: readonly number[]
  /**
   * Operator override per target (inbound mode): loopback/private/ULA/link-local (but not
   * metadata) allowed.
   */
  readonly allowPrivateAddresses: boolean
}

export interface PinnedDestination {
  /** Normalized URL as checked. */
  readonly url: URL
  /** ASCII (punycode), lower-case, no trailing dot, no IPv6 brackets. */
  readonly hostname: string
  /** Value for the upstream Host header: hostname (bracketed for IPv6) plus :port when not the scheme default. */
  readonly hostHeader: string
  /** The one checked address to connect to. */
  readonly address: string
  readonly family: 4 | 6
  readonly port: number
}

type Address = ipaddr.IPv4 | ipaddr.IPv6

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 }

/**
 * Instance metadata and credential endpoints. They sit in link-local, ULA or CGNAT space,
 * which the operator override opens, so they are refused by address before any range rule.
 */
const METADATA = [
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, Oracle instance metadata
  '169.254.170.2', // AWS ECS task credentials
  '169.254.170.23', // AWS EKS Pod Identity credentials
  '100.100.100.200', // Alibaba Cloud instance metadata
  'fd00:ec2::254', // AWS instance metadata over IPv6
  'fd00:ec2::23', // AWS EKS Pod Identity over IPv6
].map((a) => ipaddr.parse(a).toNormalizedString())

/** Ranges the operator override opens; unspecified, multicast and broadcast never open. */
const PRIVATE_V4 = new Set<string>(['loopback', 'private', 'linkLocal', 'carrierGradeNat'])
const PRIVATE_V6 = new Set<string>(['loopback', 'uniqueLocal', 'linkLocal'])

const RANGE_WORDS: Readonly<Record<string, string>> = {
  private: 'private',
  loopback: 'loopback',
  linkLocal: 'link-local',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  uniqueLocal: 'unique-local (fc00::/7)',
  multicast: 'multicast',
  broadcast: 'broadcast',
  unspecified: 'unspecified',
  reserved: 'reserved',
  '6to4': '6to4 (2002::/16)',
  teredo: 'Teredo (2001::/32)',
}

/** ipaddr's 'rfc6052' also covers the local-use 64:ff9b:1::/48, where the IPv4 position varies. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96')
/** All of today's public IPv6 space; ipaddr calls e.g. IPv4-compatible ::7f00:1 'unicast'. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3')

/** A URL that passed the checks needing no address; its address is still to be checked. */
interface ApprovedUrl {
  readonly url: URL
  readonly hostname: string
  readonly port: number
  /** The IP address the URL names literally, if it does. */
  readonly literal: Address | undefined
}

export class DestinationPolicy {
  readonly #resolve: Resolve
  readonly #self: () => SelfAddresses
  #selfCache: { source: SelfAddresses; set: SelfSet } | undefined
  readonly #patterns = new WeakMap<readonly string[], readonly HostPattern[]>()

  constructor(options: { resolve: Resolve; self: () => SelfAddresses }) {
    this.#resolve = options.resolve
    this.#self = options.self
  }

  /**
   * Throws FairlaneError: 'bad_request' (stage 'resolve') for an unparsable URL,
   * 'destination_blocked' (stage 'resolve') for anything refused, with a message saying why,
   * e.g. `address 10.0.0.5 of internal.example.com is private`.
   */
  /**
   * Parsing every own address is costly, and `self()` returns the same object until the
   * listeners change, so the parsed set is kept per object.
   */
  #selfSet(): SelfSet {
    const source = this.#self()
    if (this.#selfCache?.source !== source) this.#selfCache = { source, set: selfSet(source) }
    return this.#selfCache.set
  }

  /**
   * The checks of a URL that need no address: scheme, credentials, port, IP spellings and
   * the approved host patterns. Throws as check() does; a job is held to them when it is
   * submitted, long before its address is looked up.
   */
  approve(rawUrl: string, rule: DestinationRule): ApprovedUrl {
    let url: URL
    try {
      url = new URL(rawUrl)
    } catch (err) {
      throw new FairlaneError(
        'bad_request',
        'resolve',
        'destination URL is not a valid absolute URL',
        {
          cause: err,
        },
      )
    }

    const defaultPort = DEFAULT_PORTS[url.protocol]
    if (defaultPort === undefined) blocked(`scheme ${url.protocol} is not allowed (use https)`)
    if (url.protocol === 'http:' && !rule.allowHttp)
      blocked('http is not allowed for this destination (use https)')

    const raw = rawHost(rawUrl)
    if (url.username !== '' || url.password !== '' || raw.userinfo) {
      blocked('credentials in the URL (user:pass@) are not allowed')
    }

    const port = url.port === '' ? defaultPort : Number(url.port)
    if (port === 0) blocked('port 0 is not allowed')
    if (rule.allowedPorts && !rule.allowedPorts.includes(port))
      blocked(`port ${port} is not allowed`)

    let literal: Address | undefined
    if (url.hostname.startsWith('[')) {
      literal = ipaddr.IPv6.parse(url.hostname.slice(1, -1))
    } else if (ipaddr.IPv4.isValidFourPartDecimal(url.hostname)) {
      // WHATWG URL rewrites 2130706433, 0x7f.1, 0177.0.0.1, 127.1, %31… and full-width digits
      // to a dotted quad; anything but that plain quad in the input is an evasion attempt.
      if (
        raw.host.toLowerCase() !== url.hostname ||
        !ipaddr.IPv4.isValidFourPartDecimal(raw.host)
      ) {
        blocked(
          `host ${JSON.stringify(raw.host)} is an unusual spelling of IPv4 address ${url.hostname}`,
        )
      }
      literal = ipaddr.IPv4.parse(url.hostname)
    }

    const hostname = url.hostname.startsWith('[')
      ? url.hostname.slice(1, -1)
      : url.hostname.replace(/\.$/, '')
    if (!literal && (hostname === '' || hostname.startsWith('.') || hostname.includes('..'))) {
      blocked(`host ${url.hostname} has an empty label`)
    }
    if (!literal && hostname !== url.hostname) url.hostname = hostname

    if (
      rule.hostPatterns &&
      !this.#patternsOf(rule.hostPatterns).some((p) => p.matches(hostname))
    ) {
      blocked(`host ${hostname} is not approved`)
    }
    return { url, hostname, port, literal }
  }

  async check(rawUrl: string, rule: DestinationRule): Promise<PinnedDestination> {
    const { url, hostname, port, literal } = this.approve(rawUrl, rule)
    const addresses = literal ? [literal] : await this.#lookup(hostname)
    const self = this.#selfSet()
    const subject = literal ? '' : ` of ${hostname}`
    for (const address of addresses) {
      const reason = refusal(address, rule.allowPrivateAddresses)
      if (reason) blocked(`address ${address.toString()}${subject} is ${reason}`)
      if (self.includes(address, port)) {
        blocked(
          `address ${address.toString()}${subject} port ${port} is this Fairlane node (request loop)`,
        )
      }
    }

    // Attackers mix records, so every address was checked above; the first is the one used.
    const pinned = connectable(addresses[0] as Address)
    const bracketed = url.hostname.startsWith('[') ? url.hostname : hostname
    return {
      url,
      hostname,
      hostHeader: url.port === '' ? bracketed : `${bracketed}:${port}`,
      address: pinned.toString(),
      family: pinned.kind() === 'ipv4' ? 4 : 6,
      port,
    }
  }

  async #lookup(hostname: string): Promise<Address[]> {
    let records: readonly ResolvedAddress[]
    try {
      records = await this.#resolve(hostname)
    } catch (err) {
      if (err instanceof FairlaneError) throw err
      const code = (err as { code?: unknown } | null)?.code
      if (code === 'ENOTFOUND' || code === 'ENODATA')
        blocked(`host ${hostname} does not resolve`, err)
      // A resolver that failed says nothing about the destination; the client may retry.
      throw new FairlaneError(
        'upstream_unavailable',
        'resolve',
        `could not resolve ${hostname} (${typeof code === 'string' ? code : 'lookup failed'})`,
        { cause: err },
      )
    }
    if (records.length === 0) blocked(`host ${hostname} does not resolve`)
    return records.map((record) => {
      if (!ipaddr.isValid(record.address))
        blocked(`host ${hostname} resolved to an invalid address`)
      return ipaddr.parse(record.address)
    })
  }

  #patternsOf(patterns: readonly string[]): readonly HostPattern[] {
    let compiled = this.#patterns.get(patterns)
    if (!compiled) {
      compiled = patterns.map(hostPattern)
      this.#patterns.set(patterns, compiled)
    }
    return compiled
  }
}

function blocked(message: string, cause?: unknown): never {
  throw new FairlaneError(
    'destination_blocked',
    'resolve',
    message,
    cause === undefined ? {} : { cause },
  )
}

/** Why an address may not be a destination, or undefined when it may. */
function refusal(address: Address, allowPrivate: boolean): string | undefined {
  if (METADATA.includes(address.toNormalizedString())) return 'a cloud metadata address'
  if (!isIPv6(address)) {
    const range = address.range()
    if (range === 'unicast' || (allowPrivate && PRIVATE_V4.has(range))) return undefined
    return describe(range)
  }
  if (address.zoneId !== undefined) return 'scoped to an interface'
  const embedded = embeddedIPv4(address)
  if (embedded) {
    const reason = refusal(embedded, allowPrivate)
    return reason && `mapped to ${embedded.toString()}, which is ${reason}`
  }
  const range = address.range()
  if (range === 'rfc6052') return 'a local-use NAT64 address (64:ff9b:1::/48)'
  if (range === 'unicast') {
    return address.match(GLOBAL_UNICAST_V6) ? undefined : 'outside global unicast space (2000::/3)'
  }
  if (allowPrivate && PRIVATE_V6.has(range)) return undefined
  return describe(range)
}

function describe(range: string): string {
  return RANGE_WORDS[range] ?? `in special-purpose range ${range}`
}

/** The IPv4 address an IPv6 address stands for: IPv4-mapped, SIIT (RFC 6145) or NAT64 well-known prefix. */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const range = address.range()
  if (range !== 'ipv4Mapped' && range !== 'rfc6145' && !address.match(NAT64_WELL_KNOWN))
    return undefined
  const bytes = address.toByteArray().slice(12)
  return new ipaddr.IPv4(bytes)
}

/** An IPv4-mapped address is the IPv4 host itself; connecting over IPv4 needs no dual-stack socket. */
function connectable(address: Address): Address {
  return isIPv6(address) && address.isIPv4MappedAddress() ? address.toIPv4Address() : address
}

function isIPv6(address: Address): address is ipaddr.IPv6 {
  return address.kind() === 'ipv6'
}

interface SelfSet {
  includes(address: Address, port: number): boolean
}

function selfSet(self: SelfAddresses): SelfSet {
  const addresses = new Set<string>()
  let allInterfaces = false
  for (const entry of self.addresses) {
    if (!ipaddr.isValid(entry)) continue
    const address = ipaddr.process(entry)
    if (address.range() === 'unspecified') allInterfaces = true
    addresses.add(address.toNormalizedString())
  }
  return {
    includes(address, port) {
      if (!self.ports.includes(port)) return false
      const normalized = connectable(address)
      if (addresses.has(normalized.toNormalizedString())) return true
      // A wildcard listener answers on loopback too, whatever interface list was passed.
      return allInterfaces && normalized.range() === 'loopback'
    },
  }
}

interface HostPattern {
  matches(hostname: string): boolean
}

const NOTHING: HostPattern = { matches: () => false }

/** Patterns go through the same normalization as URLs, so `*.Example.COM.` and IDN forms work. */
function hostPattern(pattern: string): HostPattern {
  const trimmed = pattern.trim()
  if (trimmed === '*') return { matches: () => true }
  const wildcard = trimmed.startsWith('*.')
  const host = normalizeHost(wildcard ? trimmed.slice(2) : trimmed)
  // A malformed pattern approves nothing: a config typo must not open a wider door.
  if (host === undefined) return NOTHING
  if (!wildcard) return { matches: (hostname) => hostname === host }
  const suffix = `.${host}`
  return { matches: (hostname) => hostname.endsWith(suffix) && !isIpLiteral(hostname) }
}

function normalizeHost(host: string): string | undefined {
  const bracketed = ipaddr.IPv6.isValid(host) ? `[${host}]` : host
  if (host === '' || /[/?#@\\:]/.test(bracketed.replace(/^\[.*\]$/, ''))) return undefined
  let url: URL
  try {
    url = new URL(`http://${bracketed}/`)
  } catch {
    return undefined
  }
  const name = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const stripped = name.replace(/\.$/, '')
  return stripped === '' || stripped.includes('..') || stripped.startsWith('.')
    ? undefined
    : stripped
}

function isIpLiteral(hostname: string): boolean {
  return ipaddr.isValid(hostname)
}

/**
 * The host exactly as the input spelled it, before WHATWG normalization, and whether the
 * authority carried an `@` at all (`http://@host/` parses with empty credentials).
 */
function rawHost(input: string): { host: string; userinfo: boolean } {
  // Mirror the URL parser's preprocessing so the authority found here is the one it parsed.
  let start = 0
  let end = input.length
  while (start < end && input.charCodeAt(start) <= 0x20) start++
  while (end > start && input.charCodeAt(end - 1) <= 0x20) end--
  const cleaned = input.slice(start, end).replace(/[\t\n\r]/g, '')
  // Special schemes accept any run of / and \ (even none) before the authority.
  const scheme = /^[a-z][a-z0-9+.-]*:[/\\]*/i.exec(cleaned)
  const rest = scheme ? cleaned.slice(scheme[0].length) : cleaned
  const authorityEnd = rest.search(/[/\\?#]/)
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd)
  const at = authority.lastIndexOf('@')
  const hostPort = authority.slice(at + 1)
  const close = hostPort.startsWith('[') ? hostPort.indexOf(']') : -1
  const colon = hostPort.indexOf(':', close + 1)
  return { host: colon === -1 ? hostPort : hostPort.slice(0, colon), userinfo: at !== -1 }
}
