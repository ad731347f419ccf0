import type { TargetConfig } from '@fairlane/config'
import type { DestinationPolicy, DestinationRule, PinnedDestination } from '@fairlane/forward'
import type { RouteEndpoint } from './upstreams.ts'

interface Entry {
  readonly destination: PinnedDestination
  readonly expiresAt: number
}

/**
 * Checked destinations of configured target endpoints, so a request to a target does not
 * parse, match and look up the same endpoint again. Only the endpoint's scheme, host and
 * port are checked (the request's path cannot change them), so the check of its configured
 * URL holds for every request to it.
 *
 * Bounded and invalidated by what changes the answer: one table per target config object
 * (a reload that changes a target makes a new object, whose table starts empty; the
 * target's endpoints bound its size; the rule comes from that object), an entry lives at
 * most `ttlMs` (the DNS cache's lifetime, docs/security.md: never longer than the resolver
 * would have kept the answer; 0 with a resolver that caches nothing), and a failed check is
 * never kept. The X-Fairlane-Url form is not cached: each such request resolves once.
 */
export class EndpointDestinations {
  readonly #policy: DestinationPolicy
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #tables = new WeakMap<TargetConfig, Map<string, Entry>>()

  constructor(options: { policy: DestinationPolicy; ttlMs: number; now: () => number }) {
    this.#policy = options.policy
    this.#ttlMs = options.ttlMs
    this.#now = options.now
  }

  /** The endpoint's checked destination while it is still fresh: the request path's usual answer, with no await. */
  held(target: TargetConfig, endpoint: RouteEndpoint): PinnedDestination | undefined {
    const entry = this.#tables.get(target)?.get(endpoint.id)
    return entry && entry.expiresAt > this.#now() ? entry.destination : undefined
  }

  async check(
    target: TargetConfig,
    endpoint: RouteEndpoint,
    rule: DestinationRule,
  ): Promise<PinnedDestination> {
    if (this.#ttlMs <= 0) return this.#policy.check(endpoint.id, rule)
    const held = this.held(target, endpoint)
    if (held) return held
    let table = this.#tables.get(target)
    if (!table) {
      table = new Map()
      this.#tables.set(target, table)
    }
    const now = this.#now()
    const destination = await this.#policy.check(endpoint.id, rule)
    table.set(endpoint.id, { destination, expiresAt: now + this.#ttlMs })
    return destination
  }
}
