import type { FairlaneConfig, TargetConfig } from '@fairlane/config'
import type { DestinationRule, UpstreamTimeouts } from '@fairlane/forward'
import { FairlaneError } from '@fairlane/protocol'
import { URL_TARGET } from '../limits/scopes.ts'
import { hasDotSegment } from './dot-segments.ts'
import type { RouteEndpoint } from './upstreams.ts'
import type { Principal } from '../keys/key-index.ts'

/** Where one request goes and under which rules, before the destination is checked. */
export interface Route {
  /** Target name, or URL_TARGET for the X-Fairlane-Url form. */
  readonly target: string
  /** Absolute URL to check and call. */
  readonly url: string
  /**
   * Path and query to send, exactly as the client wrote them (target form only): the URL
   * above is normalised by parsing, which would rewrite `\` and escape some characters.
   */
  readonly path?: string
  readonly rule: DestinationRule
  readonly timeouts: UpstreamTimeouts
  /** Headers injected from target config (the upstream credential). */
  readonly inject: Readonly<Record<string, string>>
  readonly forwardClientAuthorization: boolean
  /** Every endpoint of the target with this request's URL on it; `url` and `path` are the first's. */
  readonly endpoints: readonly RouteEndpoint[]
}

const TARGET_PATH = /^\/t\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/

type EndpointConfig = TargetConfig['endpoints'][number]

/** Nothing to inject: one object for every X-Fairlane-Url request. */
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** An endpoint's scheme and host, and its base path; parsed once per config object. */
const bases = new WeakMap<EndpointConfig, { readonly origin: string; readonly basePath: string }>()

function endpointBase(endpoint: EndpointConfig): { origin: string; basePath: string } {
  let base = bases.get(endpoint)
  if (!base) {
    const url = new URL(endpoint.url)
    base = { origin: `${url.protocol}//${url.host}`, basePath: url.pathname.replace(/\/+$/, '') }
    bases.set(endpoint, base)
  }
  return base
}

/** A target's route for a path and query, on every endpoint of the target. */
export function targetRoute(
  name: string,
  target: TargetConfig,
  rest: string,
  query: string,
): Route {
  const endpoints = target.endpoints.map((endpoint): RouteEndpoint => {
    const { origin, basePath } = endpointBase(endpoint)
    const path = basePath + (rest || (basePath ? '' : '/'))
    return {
      id: endpoint.url,
      url: `${origin}${path}${query}`,
      path: path + query,
      ...(endpoint.region ? { region: endpoint.region } : {}),
      weight: endpoint.weight,
    }
  })
  const first = endpoints[0]
  if (!first) throw new FairlaneError('internal', 'resolve', `target ${name} has no endpoint`)
  return {
    target: name,
    url: first.url,
    path: first.path,
    endpoints,
    // The operator chose the endpoint, so scheme and port are theirs; address safety is not.
    rule: { allowHttp: true, allowPrivateAddresses: target.allowPrivateAddresses },
    timeouts: target.timeouts,
    inject: target.upstreamHeaders,
    forwardClientAuthorization: target.forwardClientAuthorization,
  }
}

/**
 * Resolves the two proxy forms: `/t/<target>/<path>` and an absolute URL in X-Fairlane-Url.
 * `rawUrl` is the request target exactly as the client sent it, so the path reaches the
 * upstream byte for byte.
 */
export function resolveRoute(
  config: FairlaneConfig,
  principal: Principal,
  rawUrl: string,
  urlHeader: string | undefined,
): Route {
  const match = TARGET_PATH.exec(rawUrl)
  if (match) {
    const name = decodeURIComponent(match[1] ?? '')
    const rest = match[2] ?? ''
    if (hasDotSegment(rest)) {
      throw new FairlaneError('bad_request', 'resolve', 'path must not contain . or .. segments')
    }
    const target = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined
    // Unknown and not-allowed targets answer alike, so a key cannot probe what exists.
    if (!target || !principal.workspace.targets.includes(name)) {
      throw new FairlaneError(
        'forbidden_target',
        'resolve',
        `target "${name}" is not allowed for this workspace`,
      )
    }
    return targetRoute(name, target, rest, match[3] ?? '')
  }
  if (urlHeader !== undefined) {
    if (principal.workspace.hosts.length === 0) {
      throw new FairlaneError(
        'destination_blocked',
        'resolve',
        'this workspace has no approved hosts for X-Fairlane-Url',
      )
    }
    const { destinations } = config
    const ports = destinations.allowHttp
      ? [...new Set([...destinations.allowedPorts, 80])]
      : destinations.allowedPorts
    return {
      target: URL_TARGET,
      url: urlHeader.trim(),
      rule: {
        hostPatterns: principal.workspace.hosts,
        allowHttp: destinations.allowHttp,
        allowedPorts: ports,
        allowPrivateAddresses: false,
      },
      timeouts: destinations.timeouts,
      inject: NO_HEADERS,
      forwardClientAuthorization: destinations.forwardClientAuthorization,
      // One destination the client named: no endpoints to fail over to, no retries.
      endpoints: [],
    }
  }
  throw new FairlaneError(
    'not_found',
    'resolve',
    'use /t/<target>/<path>, or send the destination URL in X-Fairlane-Url',
  )
}
