import type { ConfigStore, FairlaneConfig, TargetConfig } from '@fairlane/config'
import type { Logger } from '@fairlane/telemetry'
import {
  EndpointSelector,
  HealthProber,
  HealthRegistry,
  RetryBudget,
  type EndpointHealth,
  type EndpointHealthSnapshot,
  type PinnedDestination,
} from '@fairlane/forward'

/** An endpoint's health as the admin port shows it: times as ISO dates. */
export type UpstreamHealthView = Omit<
  EndpointHealthSnapshot,
  'lastFailure' | 'openedAt' | 'halfOpenAt'
> & {
  readonly lastFailure?: { readonly kind: string; readonly at: string }
  readonly openedAt?: string
  readonly halfOpenAt?: string
}

/** One endpoint of a target as a request sees it. */
export interface RouteEndpoint {
  /** The endpoint's URL as configured: stable across reloads, the `endpoint` label of health. */
  readonly id: string
  /** Absolute URL of this request on this endpoint. */
  readonly url: string
  /** Path and query sent to it. */
  readonly path: string
  readonly region?: string
  readonly weight: number
}

/**
 * A node's view of its upstreams: the health of every endpoint (passive, from calls, and
 * active probes where configured), the order to try them in for the node's region, and each
 * target's retry budget. Rebuilt from the config on every change; health survives reloads.
 */
export class Upstreams {
  readonly registry: HealthRegistry
  readonly #selector: EndpointSelector
  readonly #now: () => number
  readonly #pin: (url: string, target: TargetConfig) => Promise<PinnedDestination>
  readonly #budgets = new Map<string, { settings: TargetConfig['retry']; budget: RetryBudget }>()
  #probers: HealthProber[] = []
  readonly #unsubscribe: () => void

  constructor(options: {
    store: ConfigStore
    region: string | undefined
    now: () => number
    random?: () => number
    /** The destination check a probe connects through, like a request. */
    pin: (url: string, target: TargetConfig) => Promise<PinnedDestination>
    logger: Logger
  }) {
    this.#now = options.now
    this.#pin = options.pin
    const { logger } = options
    this.registry = new HealthRegistry({
      now: options.now,
      onTransition: (t) =>
        logger[t.to === 'open' ? 'warn' : 'info'](
          { target: t.target, endpoint: t.endpoint, from: t.from, to: t.to, openMs: t.openMs },
          'endpoint circuit changed',
        ),
    })
    this.#selector = new EndpointSelector({
      ...(options.region ? { region: options.region } : {}),
      random: options.random ?? Math.random,
    })
    this.#sync(options.store.current())
    this.#unsubscribe = options.store.subscribe((config) => this.#sync(config))
  }

  /** The endpoints of a request in the order to try them now; a single one needs no copy. */
  order(target: string, endpoints: readonly RouteEndpoint[]): readonly RouteEndpoint[] {
    if (endpoints.length <= 1) return endpoints
    return this.#selector.order(endpoints, (e) => this.registry.health(target, e.id))
  }

  health(target: string, endpoint: string): EndpointHealth | undefined {
    return this.registry.health(target, endpoint)
  }

  budget(target: string, settings: TargetConfig['retry']): RetryBudget {
    const held = this.#budgets.get(target)
    if (held?.settings === settings) return held.budget
    const budget = new RetryBudget({
      now: this.#now,
      ratio: settings.budgetRatio,
      perSecond: settings.budgetPerSecond,
    })
    this.#budgets.set(target, { settings, budget })
    return budget
  }

  /** Health of every endpoint, with times as ISO dates (the registry keeps monotonic ones). */
  snapshot(): UpstreamHealthView[] {
    const offset = Date.now() - this.#now()
    const wall = (at: number) => new Date(at + offset).toISOString()
    return this.registry.snapshot().map(({ lastFailure, openedAt, halfOpenAt, ...e }) => ({
      ...e,
      ...(lastFailure ? { lastFailure: { kind: lastFailure.kind, at: wall(lastFailure.at) } } : {}),
      ...(openedAt !== undefined ? { openedAt: wall(openedAt) } : {}),
      ...(halfOpenAt !== undefined ? { halfOpenAt: wall(halfOpenAt) } : {}),
    }))
  }

  async close(): Promise<void> {
    this.#unsubscribe()
    await Promise.all(this.#probers.map((p) => p.stop()))
    this.#probers = []
  }

  #sync(config: FairlaneConfig): void {
    for (const { target } of this.registry.snapshot()) {
      if (!Object.hasOwn(config.targets, target)) this.registry.remove(target)
    }
    const old = this.#probers
    this.#probers = []
    for (const [name, target] of Object.entries(config.targets)) {
      const { health } = target
      this.registry.sync(
        name,
        target.endpoints.map((e) => ({ id: e.url, ...(e.region ? { region: e.region } : {}) })),
        {
          failureRatio: health.failureRatio,
          minRequests: health.minRequests,
          consecutiveFailures: health.consecutiveFailures,
          openMs: health.openMs,
          maxOpenMs: health.maxOpenMs,
          successesToClose: health.successesToClose,
        },
      )
      const probe = health.probe
      if (!probe) continue
      const prober = new HealthProber(
        target.endpoints.flatMap((e) => {
          const endpointHealth = this.registry.health(name, e.url)
          if (!endpointHealth) return []
          return [
            {
              url: e.url,
              health: endpointHealth,
              probe: {
                path: probe.path,
                intervalMs: probe.intervalMs,
                timeoutMs: probe.timeoutMs,
                expectedStatus: probe.expectStatus,
                // An authenticated health path needs the target's credential, like a request.
                headers: target.upstreamHeaders,
              },
            },
          ]
        }),
        { pin: (url) => this.#pin(url, target) },
      )
      prober.start()
      this.#probers.push(prober)
    }
    for (const prober of old) void prober.stop()
  }
}
