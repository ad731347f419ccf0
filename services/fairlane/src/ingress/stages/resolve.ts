import type { TargetConfig } from '@fairlane/config'
import type { DestinationPolicy, PinnedDestination } from '@fairlane/forward'
import { FairlaneError } from '@fairlane/protocol'
import { URL_TARGET } from '../../limits/scopes.ts'
import type { EndpointDestinations } from '../endpoint-destinations.ts'
import type { Exchange } from '../exchange.ts'
import { hasDotSegment } from '../dot-segments.ts'
import { resolveRoute, targetRoute, type Route } from '../route.ts'
import type { RouteEndpoint, Upstreams } from '../upstreams.ts'

export interface ResolveDeps {
  readonly policy: DestinationPolicy
  readonly upstreams: Upstreams
  /** Checked target endpoints, reused within the DNS cache's lifetime. */
  readonly destinations: EndpointDestinations
}

/** The X-Fairlane-Url form: the one destination the client named. */
function urlEndpoint(url: string, destination: PinnedDestination): RouteEndpoint {
  return { id: url, url, path: destination.url.pathname + destination.url.search, weight: 1 }
}

/**
 * Stage 3: target and endpoint, and the destination check of the endpoint the first attempt
 * goes to (one pinned resolution), before anything queues. An endpoint whose address cannot
 * be had (DNS fails) is a failed endpoint: the next one is checked instead, and only when
 * none passes is the request refused. Returns nothing when it is done at once (the usual
 * case: the endpoint's check is cached), a promise when a check must be awaited.
 */
export function resolve(x: Exchange, deps: ResolveDeps): Promise<void> | undefined {
  x.stage = 'resolve'
  const principal = x.principal
  if (!principal) throw new FairlaneError('internal', 'resolve', 'resolve before authenticate')
  const urlHeader = x.req.headers['x-fairlane-url']
  const route = resolveRoute(
    x.config,
    principal,
    x.req.url ?? '/',
    typeof urlHeader === 'string' ? urlHeader : undefined,
  )
  x.route = route
  x.target = route.target
  const target = route.target === URL_TARGET ? undefined : x.config.targets[route.target]
  x.targetConfig = target
  if (!target) return checkUrl(x, route, deps)
  return checkEndpoints(x, route, target, deps)
}

/** The X-Fairlane-Url form's check: never cached, each such request resolves once. */
async function checkUrl(x: Exchange, route: Route, deps: ResolveDeps): Promise<void> {
  const destination = await deps.policy.check(route.url, route.rule)
  x.destination = destination
  x.firstOrder = [urlEndpoint(route.url, destination)]
}

/**
 * Inbound stage 3: the matched route's target with the request's path and query as the
 * client sent them (nothing stripped), then the same endpoint check as the /t/ form.
 */
export function resolveInbound(x: Exchange, deps: ResolveDeps): Promise<void> | undefined {
  x.stage = 'resolve'
  const name = x.inbound?.config.target ?? ''
  const target = Object.hasOwn(x.config.targets, name) ? x.config.targets[name] : undefined
  if (!target) throw new FairlaneError('internal', 'resolve', `route target ${name} is missing`)
  const raw = x.req.url ?? '/'
  const q = raw.indexOf('?')
  const path = q === -1 ? raw : raw.slice(0, q)
  if (hasDotSegment(path)) {
    throw new FairlaneError('bad_request', 'resolve', 'path must not contain . or .. segments')
  }
  const route = targetRoute(name, target, path, q === -1 ? '' : raw.slice(q))
  x.route = route
  x.target = name
  x.targetConfig = target
  return checkEndpoints(x, route, target, deps)
}

/**
 * The destination check of the endpoint the first attempt goes to (one pinned resolution):
 * done at once when it is cached (nothing returned), else a promise (checkInOrder).
 */
export function checkEndpoints(
  x: Exchange,
  route: Route,
  target: TargetConfig,
  deps: ResolveDeps,
): Promise<void> | undefined {
  const ordered = deps.upstreams.order(route.target, route.endpoints)
  const first = ordered[0]
  const held = first && deps.destinations.held(target, first)
  if (!held) return checkInOrder(x, route, target, deps, ordered)
  x.destination = held
  x.firstOrder = ordered
  return undefined
}

/**
 * Checks the endpoints in `ordered` until one passes. An endpoint whose address cannot be
 * had (DNS fails) is a failed endpoint: the next one is checked instead, and only when none
 * passes is the request refused.
 */
async function checkInOrder(
  x: Exchange,
  route: Route,
  target: TargetConfig,
  deps: ResolveDeps,
  order: readonly RouteEndpoint[],
): Promise<void> {
  let ordered = order
  // Made at the first endpoint that fails its check: most requests have none.
  let unresolvable: RouteEndpoint[] | undefined
  for (let i = 0; i < ordered.length; i++) {
    const endpoint = ordered[i] as RouteEndpoint
    try {
      x.destination = await deps.destinations.check(target, endpoint, route.rule)
      if (unresolvable) {
        const failed = unresolvable
        // Those that failed the check go last: a race or failover tries the others first.
        const rest = ordered.filter((e) => e !== endpoint && !failed.includes(e))
        ordered = [endpoint, ...rest, ...failed]
      }
      break
    } catch (err) {
      if (i === ordered.length - 1) throw err
      unresolvable ??= []
      unresolvable.push(endpoint)
      deps.upstreams
        .health(route.target, endpoint.id)
        ?.record({ ok: false, kind: 'connect-error', latencyMs: 0 })
    }
  }
  x.firstOrder = ordered
}
