import { upstreamRequestHeaders } from '@fairlane/forward'
import { callerSettings } from '../../limits/callers.ts'
import type { Exchange } from '../exchange.ts'
import type { Route } from '../route.ts'
import { parseAddress, trustedProxiesOf } from './client-ip.ts'
import type { InboundRoute } from './route-table.ts'

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * What the API behind a route receives: the client's headers with the customer's own
 * credential untouched (it is for the API; no Fairlane key is involved), hop-by-hop and
 * Fairlane control headers stripped as on the key path (so a client cannot send its own
 * X-Fairlane-Caller), the target's injected headers, the socket peer appended to
 * X-Forwarded-For, and X-Forwarded-Proto/Host: the trusted proxy's values when the peer is
 * one, Fairlane's own view otherwise. Optionally the caller and tier it was admitted as.
 */
export function inboundRequestHeaders(
  x: Exchange,
  inbound: InboundRoute,
  route: Route,
  hostHeader: string,
): Record<string, string | string[]> {
  const client = x.req.headers
  const headers = upstreamRequestHeaders(client, {
    presentedKey: '',
    forwardClientAuthorization: true,
    hostHeader,
    inject: route.inject,
    requestId: x.requestId,
  })
  const peer = parseAddress(x.req.socket.remoteAddress ?? '')
  const trusted = peer !== undefined && trustedProxiesOf(x.config)(peer)
  const hop = peer?.text ?? 'unknown'
  const prior = joined(client['x-forwarded-for'])
  headers['x-forwarded-for'] = prior ? `${prior}, ${hop}` : hop
  const proto = joined(client['x-forwarded-proto'])
  headers['x-forwarded-proto'] = trusted && proto ? proto : 'http'
  const host = (trusted && joined(client['x-forwarded-host'])) || client.host
  if (host) headers['x-forwarded-host'] = host
  else delete headers['x-forwarded-host']
  const caller = x.caller ?? ''
  if (inbound.config.forwardCaller) headers['x-fairlane-caller'] = caller
  if (inbound.config.forwardTier)
    headers['x-fairlane-tier'] = callerSettings(x.config, inbound.config, caller).tier
  return headers
}
