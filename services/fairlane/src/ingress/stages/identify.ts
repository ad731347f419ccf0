import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { FairlaneError } from '@fairlane/protocol'
import { customersOf } from '../../limits/callers.ts'
import type { Exchange } from '../exchange.ts'
import {
  clientAddress,
  forwardedHops,
  ipPrefix,
  parseAddress,
  trustedProxiesOf,
  type Address,
} from '../inbound/client-ip.ts'
import { verifyToken } from '../inbound/jwt-verifier.ts'

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*[ \t]+(\S+)[ \t]*$/

/**
 * The credential in a header: in Authorization the part after the scheme (`Bearer <token>`
 * is the token, so the customers table lists `sha256(token)`; a value with no scheme is
 * taken whole), in any other header the whole value.
 */
export function credentialIn(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (typeof value !== 'string' || value.trim() === '') return undefined
  if (name !== 'authorization') return value
  return SCHEME.exec(value)?.[1] ?? value.trim()
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** The client address per trustedProxies; the socket peer when nothing else can be had. */
function clientOf(x: Exchange): Address {
  const peer = parseAddress(x.req.socket.remoteAddress ?? '') ?? { text: '0.0.0.0', family: 4 }
  const trusted = trustedProxiesOf(x.config)
  if (!trusted(peer)) return peer
  const kind = x.config.forwardedHeader
  return clientAddress(peer, forwardedHops(x.req.headers[kind], kind), trusted)
}

/**
 * Inbound stage 2b: who the caller is, first present first: the route's caller header
 * (hashed), a verified JWT claim, or the client IP aggregated to a prefix. The credential
 * itself is kept nowhere: only its SHA-256 becomes the lane. A route that names a header or
 * a JWT and no IP callers refuses a request carrying neither (401).
 */
export async function identify(x: Exchange): Promise<void> {
  x.stage = 'authenticate'
  const route = x.inbound
  if (!route) throw new FairlaneError('internal', 'authenticate', 'identify before the route')
  const { callers } = route.config
  const headers = x.req.headers
  if (callers.header) {
    const credential = credentialIn(headers, callers.header.toLowerCase())
    if (credential !== undefined) {
      const hash = sha256(credential)
      const customer = customersOf(x.config).byCredential.get(hash)
      x.caller = customer !== undefined ? `c:${customer}` : `h:${hash}`
      return
    }
  }
  const jwt = callers.jwt
  if (jwt) {
    const token = credentialIn(headers, jwt.header.toLowerCase())
    if (token !== undefined) {
      const claims = await verifyToken(jwt, token)
      const value = claims[jwt.claim]
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw new FairlaneError(
          'caller_unauthenticated',
          'authenticate',
          `the token has no ${jwt.claim} claim`,
        )
      }
      const customer = customersOf(x.config).byClaim.get(String(value))
      if (customer !== undefined) {
        x.caller = `c:${customer}`
        return
      }
      const tier = jwt.tierClaim === undefined ? undefined : claims[jwt.tierClaim]
      const claimed = typeof tier === 'string' && Object.hasOwn(x.config.tiers, tier)
      x.caller = `j:${sha256(String(value))}${claimed ? `:${tier}` : ''}`
      return
    }
  }
  const ip = callers.ip
  if (ip || (!callers.header && !jwt)) {
    const client = clientOf(x)
    x.caller = `ip:${ipPrefix(client, ip?.ipv4Prefix ?? 32, ip?.ipv6Prefix ?? 64)}`
    return
  }
  const wanted = [callers.header, jwt && `a token in ${jwt.header}`].filter(Boolean).join(' or ')
  throw new FairlaneError('caller_unauthenticated', 'authenticate', `send ${wanted}`)
}
