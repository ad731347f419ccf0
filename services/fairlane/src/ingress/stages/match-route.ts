import { FairlaneError } from '@fairlane/protocol'
import type { Exchange } from '../exchange.ts'
import { hostName, matchRoute, routeTableOf } from '../inbound/route-table.ts'

/**
 * Whether a request is for a route: the config has routes and the request uses neither key
 * form (`/t/<target>/…`, X-Fairlane-Url), which keep working beside them on the same port.
 * Without routes this is one lookup of the snapshot's (empty) table.
 */
export function isRouteRequest(x: Exchange): boolean {
  return (
    routeTableOf(x.config).length > 0 &&
    !x.path.startsWith('/t/') &&
    x.req.headers['x-fairlane-url'] === undefined
  )
}

/** Inbound stage 2a: the route by host and longest path prefix; 404 not_found for none. */
export function matchInbound(x: Exchange): void {
  x.stage = 'resolve'
  // An absolute-form or `*` request target would otherwise reach the upstream as its path.
  if (!x.path.startsWith('/'))
    throw new FairlaneError('bad_request', 'resolve', 'the request target must be a path')
  const route = matchRoute(routeTableOf(x.config), hostName(x.req.headers.host), x.path)
  if (!route) throw new FairlaneError('not_found', 'resolve', 'no route matches this host and path')
  x.inbound = route
  x.target = route.config.target
}
