import type { FailureKind } from './upstream-outcome.ts'
import {
  EndpointHealth,
  type CircuitOptions,
  type CircuitState,
  type CircuitTransition,
} from './endpoint-health.ts'

/** One endpoint's health as the admin API and the metrics exporter show it; JSON as is. */
export interface EndpointHealthSnapshot {
  readonly target: string
  readonly endpoint: string
  readonly region: string | null
  readonly state: CircuitState
  /** Failures in the rolling window. */
  readonly failures: number
  /** Outcomes in the rolling window. */
  readonly requests: number
  readonly p95Ms: number | null
  /** The most recent failure, in any state. */
  readonly lastFailure?: { readonly kind: FailureKind; readonly at: number }
  /** Clock time the circuit last opened, while it is open or half-open. */
  readonly openedAt?: number
  /** While open: clock time it turns half-open. */
  readonly halfOpenAt?: number
}

export interface HealthTransition extends CircuitTransition {
  readonly target: string
  readonly endpoint: string
}

export interface HealthRegistryOptions {
  readonly now: () => number
  /** Defaults for every target; a target's own options (sync) override them. */
  readonly circuit?: CircuitOptions
  readonly onTransition?: (transition: HealthTransition) => void
}

interface Entry {
  readonly health: EndpointHealth
  region: string | undefined
  /** The options the health was built with, to notice a reload that changes them. */
  readonly circuitKey: string
}

/**
 * The health of every endpoint of every target on this node, by (target, endpoint id). Each
 * node judges health from its own calls: a network path that fails from one region may be
 * fine from another, so health is not shared through the cluster.
 */
export class HealthRegistry {
  readonly #options: HealthRegistryOptions
  readonly #targets = new Map<string, Map<string, Entry>>()

  constructor(options: HealthRegistryOptions) {
    this.#options = options
  }

  /**
   * Makes the target's endpoints exactly these (at start and on every config reload).
   * Surviving endpoints keep their health, so a reload does not send traffic back to an
   * endpoint that is down; changed circuit options start that endpoint afresh.
   */
  sync(
    target: string,
    endpoints: readonly { readonly id: string; readonly region?: string }[],
    circuit: CircuitOptions = {},
  ): void {
    const options = { ...this.#options.circuit, ...definedOnly(circuit) }
    const circuitKey = JSON.stringify(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1)))
    const before = this.#targets.get(target)
    const after = new Map<string, Entry>()
    for (const { id, region } of endpoints) {
      const kept = before?.get(id)
      if (kept && kept.circuitKey === circuitKey) {
        kept.region = region
        after.set(id, kept)
        continue
      }
      const onTransition = this.#options.onTransition
      const health = new EndpointHealth({
        ...options,
        now: this.#options.now,
        onTransition: onTransition && ((t) => onTransition({ ...t, target, endpoint: id })),
      })
      after.set(id, { health, region, circuitKey })
    }
    this.#targets.set(target, after)
  }

  /** A target no longer configured. */
  remove(target: string): void {
    this.#targets.delete(target)
  }

  health(target: string, endpoint: string): EndpointHealth | undefined {
    return this.#targets.get(target)?.get(endpoint)?.health
  }

  snapshot(): EndpointHealthSnapshot[] {
    const out: EndpointHealthSnapshot[] = []
    for (const [target, endpoints] of this.#targets) {
      for (const [endpoint, { health, region }] of endpoints) {
        const { state, openedAt, halfOpenAt, lastFailure } = health
        out.push({
          target,
          endpoint,
          region: region ?? null,
          state,
          failures: health.failures,
          requests: health.requests,
          p95Ms: health.p95Ms() ?? null,
          ...(lastFailure === undefined ? {} : { lastFailure }),
          ...(openedAt === undefined ? {} : { openedAt }),
          ...(halfOpenAt === undefined ? {} : { halfOpenAt }),
        })
      }
    }
    return out
  }
}

/** `{ openMs: undefined }` from a config must not hide the registry's default. */
function definedOnly(options: CircuitOptions): CircuitOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
}
