/**
 * Header hygiene between client and upstream. The Fairlane key authenticates to Fairlane only;
 * hop-by-hop headers describe one connection, not the message; upstream credentials come only
 * from the target's config.
 */

export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Node answers 100-continue to the client itself; undici refuses to send Expect upstream.
  'expect',
])

/** Headers that only Fairlane reads; they never travel upstream. */
function isFairlaneControl(name: string): boolean {
  return name.startsWith('x-fairlane-') || name.startsWith('fairlane-')
}

const NO_TOKENS: ReadonlySet<string> = new Set()

/** The usual Connection value names a hop-by-hop field, dropped anyway: no set to build. */
const PLAIN_CONNECTION = new Set(['keep-alive', 'Keep-Alive'])

/** Header names a Connection field lists (RFC 9110 7.6.1): they describe this hop only. */
function connectionTokens(headers: HeaderBag): ReadonlySet<string> {
  const value = headers['connection']
  if (value === undefined || (typeof value === 'string' && PLAIN_CONNECTION.has(value)))
    return NO_TOKENS
  const tokens = new Set<string>()
  for (const line of Array.isArray(value) ? value : [value]) {
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase()
      if (name) tokens.add(name)
    }
  }
  return tokens
}

/** The lower-cased names of a target's injected headers, once per config object. */
const injectedNames = new WeakMap<Readonly<Record<string, string>>, ReadonlySet<string>>()

function injectedOf(inject: Readonly<Record<string, string>>): ReadonlySet<string> {
  let names = injectedNames.get(inject)
  if (!names) {
    names = new Set(Object.keys(inject).map((n) => n.toLowerCase()))
    injectedNames.set(inject, names)
  }
  return names
}

export interface UpstreamHeaderOptions {
  /** The Fairlane key the client presented; any header that carries it is dropped. */
  readonly presentedKey: string
  /** True when the client's Authorization is its own upstream credential, not its Fairlane key. */
  readonly forwardClientAuthorization: boolean
  /** Host header of the destination as checked by the destination policy. */
  readonly hostHeader: string
  /** Injected from target config; they replace client headers of the same name. */
  readonly inject: Readonly<Record<string, string>>
  readonly requestId: string
}

/** Builds the header set sent upstream from what the client sent (names already lower-case). */
export function upstreamRequestHeaders(
  client: HeaderBag,
  options: UpstreamHeaderOptions,
): Record<string, string | string[]> {
  const dropped = connectionTokens(client)
  const injected = injectedOf(options.inject)
  const out: Record<string, string | string[]> = {}
  for (const name in client) {
    const value = client[name]
    if (value === undefined) continue
    if (HOP_BY_HOP.has(name) || dropped.has(name) || isFairlaneControl(name)) continue
    if (name === 'host' || name === 'x-request-id' || injected.has(name)) continue
    if (name === 'authorization' && !options.forwardClientAuthorization) continue
    if (carries(value, options.presentedKey)) continue
    out[name] = value
  }
  const inject = options.inject
  for (const name in inject) out[name.toLowerCase()] = inject[name] as string
  out['host'] = options.hostHeader
  out['x-request-id'] = options.requestId
  return out
}

function carries(value: string | string[], secret: string): boolean {
  if (secret.length === 0) return false
  if (typeof value === 'string') return value.includes(secret)
  return value.some((v) => v.includes(secret))
}

/** Response headers from upstream, without the hop-by-hop ones. */
export function clientResponseHeaders(upstream: HeaderBag): Record<string, string | string[]> {
  const dropped = connectionTokens(upstream)
  const out: Record<string, string | string[]> = {}
  for (const name in upstream) {
    const value = upstream[name]
    if (value === undefined || HOP_BY_HOP.has(name) || dropped.has(name)) continue
    out[name] = value
  }
  return out
}
