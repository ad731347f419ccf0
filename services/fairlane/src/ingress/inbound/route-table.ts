import type { FairlaneConfig, RouteConfig } from '@fairlane/config'

/** Ticket workspaces of routes start with this; no workspace name can (`:` is not allowed). */
export const ROUTE_SPACE = 'route:'

/** One configured route, ready to match. */
export interface InboundRoute {
  readonly name: string
  /** The ticket workspace of the route's callers: ROUTE_SPACE + name. */
  readonly space: string
  readonly config: RouteConfig
  readonly host: string | undefined
  /** The prefix without a trailing slash; '' for `/`. */
  readonly prefix: string
}

/** Routes in match order: longest prefix first, and a route with a host before one without. */
export type RouteTable = readonly InboundRoute[]

const tables = new WeakMap<FairlaneConfig, RouteTable>()

/** The config's routes in match order, built once per config snapshot. */
export function routeTableOf(config: FairlaneConfig): RouteTable {
  let table = tables.get(config)
  if (!table) {
    table = Object.entries(config.routes)
      .map(([name, route]) => ({
        name,
        space: ROUTE_SPACE + name,
        config: route,
        host: route.host,
        prefix: route.pathPrefix.replace(/\/+$/, ''),
      }))
      .sort(
        (a, b) =>
          b.prefix.length - a.prefix.length ||
          Number(b.host !== undefined) - Number(a.host !== undefined),
      )
    tables.set(config, table)
  }
  return table
}

/** The Host header's name: lower case, without the port (IPv6 literals keep their brackets). */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined
  const end = header.startsWith('[') ? header.indexOf(']') + 1 : header.indexOf(':')
  return (end > 0 ? header.slice(0, end) : header).toLowerCase()
}

/**
 * The route of a request: a prefix matches whole path segments (`/v1` takes `/v1` and
 * `/v1/orders`, never `/v10`), the longest prefix wins, and at equal length a route naming
 * the request's host wins over one for any host.
 */
export function matchRoute(
  table: RouteTable,
  host: string | undefined,
  path: string,
): InboundRoute | undefined {
  for (const route of table) {
    if (route.host !== undefined && route.host !== host) continue
    const { prefix } = route
    if (
      prefix === '' ||
      path === prefix ||
      (path.startsWith(prefix) && path[prefix.length] === '/')
    )
      return route
  }
  return undefined
}
