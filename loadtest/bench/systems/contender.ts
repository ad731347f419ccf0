import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from '../lib/child.ts'
import type { Upstream } from '../lib/upstream.ts'

/**
 * A rate limit per tenant, keyed by the value of the request's Authorization header (the same
 * header that is the Fairlane key): every system gets identical requests, and each keys its
 * limit by the only thing that tells tenants apart.
 */
export interface TenantLimit {
  /** Per second, per tenant; on each instance for a per-node limiter, in total for a shared one. */
  readonly rps: number
  /** Requests that may pass at once after an idle period (nginx burst, GCRA burst, window max). */
  readonly burst: number
}

export interface DeployOptions {
  readonly upstream: Upstream
  /** Independent instances, each a full copy with its own limiter state (or a shared store). */
  readonly instances: number
  /** The bearer tokens of the tenants: Fairlane needs their hashes in its config. */
  readonly tenants: readonly string[]
  /** None: pass-through, nothing limited (a limiter contender then gets a limit far above any load). */
  readonly limit?: TenantLimit
  /**
   * Requests the upstream can take at once, for a system that queues in front of it (Fairlane's
   * target concurrency, with `headroom` slots kept for callers with nothing in flight). Peers
   * have no such queue: nginx's `max_conns` rejects beyond it (502) unless NGINX Plus's `queue`
   * is there, and @fastify/http-proxy has nothing of the kind.
   */
  readonly upstreamConcurrency?: { readonly limit: number; readonly headroom: number }
  /**
   * The same API served from several regions (the resilience scenario): every region's
   * upstream, each system knowing all of them the way its users configure it. `upstream` is
   * then the first region's. Only for a contender with `failover: true`.
   */
  readonly regions?: Regions
}

/** One region's upstream. */
interface Region {
  /** Its label: Fairlane's endpoint `region`, and FAIRLANE_REGION for `home`. */
  readonly name: string
  readonly upstream: Upstream
}

export interface Regions {
  readonly regions: readonly Region[]
  /** The region the proxy runs in (FAIRLANE_REGION); its endpoints are preferred where the system can. */
  readonly home: string
  /** Fairlane's fixed hedge delay (`hedge.delayMs`). */
  readonly hedgeDelayMs: number
}

/** A contender once started: where to send requests and what runs. */
export interface Deployment {
  /** Base URL of each instance; the request path is appended (`${base}/bench`). */
  readonly bases: readonly string[]
  /** CPU is watched per role; nginx's busy process is its worker, not the master the bench started. */
  readonly pids: Readonly<Record<string, number>>
  /** Processes whose exit during a run invalidates it. */
  readonly children: readonly Child[]
  /** Settings that shape the figures, printed and recorded beside them. */
  readonly notes: readonly string[]
  stop(): Promise<void>
}

/**
 * How a contender limits: not at all, per instance (each node counts alone, so N nodes admit
 * N times the limit), through a shared store, or Fairlane's own lanes and limits.
 */
type LimiterKind = 'none' | 'per-instance' | 'shared' | 'fairlane'

export interface Contender {
  /** Stable id, used in the JSON and by --systems. */
  readonly name: string
  /** One line: what runs, as a user would set it up. */
  readonly description: string
  readonly limiter: LimiterKind
  /** Instances it can run as here; Fairlane embedded is one process. */
  readonly maxInstances: number
  /** It can be given several regions' upstreams (`DeployOptions.regions`) and fail over between them. */
  readonly failover?: boolean
  /** undefined when it can run here; else why not (and what would make it run). */
  check(): Promise<string | undefined>
  /** Versions and other facts recorded with the results, once check() passed. */
  facts(): Promise<Readonly<Record<string, string>>>
  start(options: DeployOptions): Promise<Deployment>
}

/** For `limit` omitted on a limiting contender: a limit no bench load reaches, so every request takes the limiter's path and passes. */
export const FAR_ABOVE_LOAD: TenantLimit = { rps: 1_000_000, burst: 1_000_000 }

/** With FAR_ABOVE_LOAD: requests a key may have in flight, more than any bench load keeps. */
export const FAR_ABOVE_LOAD_IN_FLIGHT = 1_000_000

/** Polls `url` until it answers at all (any status): the process is listening and proxying. */
export async function waitForHttp(
  url: string,
  children: readonly Child[],
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    for (const child of children)
      if (!child.running)
        throw new Error(`${child.name} exited before it was ready\n${child.output()}`)
    try {
      const response = await fetch(url)
      await response.body?.cancel()
      return
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline)
      throw new Error(
        `${url} did not answer within ${timeoutMs} ms\n${children.map((c) => c.output()).join('\n')}`,
      )
    await sleep(50)
  }
}
