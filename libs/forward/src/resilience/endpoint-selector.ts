import type { EndpointHealth } from './endpoint-health.ts'

export interface UpstreamEndpoint {
  /** Stable within its target; also the `endpoint` label of health metrics. */
  readonly id: string
  readonly url: string
  readonly region?: string
  /**
   * Share of traffic among the endpoints of its group. Default 1; 0 makes the endpoint a
   * standby, tried after every weighted endpoint of its group.
   */
  readonly weight?: number
}

/** What the selector reads of an endpoint's health. */
export type HealthView = Pick<EndpointHealth, 'available' | 'score' | 'p95Ms'>

export interface EndpointSelectorOptions {
  /** The node's own region; endpoints there are preferred. */
  readonly region?: string
  /** Uniform in [0, 1); injected so that tests can seed it. */
  readonly random: () => number
}

/**
 * A slower endpoint's share shrinks with its p95 relative to the fastest of its group, but
 * never below this fraction, so it keeps getting enough calls to show when it has recovered.
 */
const MIN_LATENCY_FACTOR = 0.1

/**
 * Orders a target's endpoints for one request: the first is the one to call, the rest the
 * failover order. Pure; it reads health and takes nothing (a half-open endpoint's trial is
 * taken by the caller, with tryAcquireTrial, when it actually sends).
 *
 * 1. available endpoints of the node's region;
 * 2. available endpoints of other regions — unless the home region has become much slower
 *    (its best p95 over 4× and 50 ms above theirs): then 1 and 2 form one group;
 * 3. the rest: open circuits and half-open ones whose trial slots are taken. They stay in
 *    the list as a last resort: when nothing else is left, a call that will probably fail
 *    still beats refusing the request for certain.
 *
 * Within each group the order is a weighted random permutation (each position drawn in
 * proportion to weight among those left), where an endpoint's weight is its configured
 * weight × its health score × its latency factor (fastest p95 of the group ÷ its own p95,
 * at least 0.1, 1 while either is unknown). So configured weights set the traffic split
 * among healthy, equally fast endpoints, and a failing or slow one gets less without being
 * starved of the calls that would show its recovery.
 */
export class EndpointSelector {
  readonly #region: string | undefined
  readonly #random: () => number

  constructor(options: EndpointSelectorOptions) {
    this.#region = options.region
    this.#random = options.random
  }

  /** `health` returns undefined for an endpoint with no record yet: it counts as healthy. */
  order<E extends UpstreamEndpoint>(
    endpoints: readonly E[],
    health: (endpoint: E) => HealthView | undefined,
  ): E[] {
    const local: Candidate<E>[] = []
    const remote: Candidate<E>[] = []
    const lastResort: Candidate<E>[] = []
    for (const endpoint of endpoints) {
      const view = health(endpoint)
      const candidate: Candidate<E> = {
        endpoint,
        weight: (endpoint.weight ?? 1) * (view?.score() ?? 1),
        p95: view?.p95Ms(),
        local: this.#region !== undefined && endpoint.region === this.#region,
        key: 0,
      }
      if (view && !view.available()) lastResort.push(candidate)
      else if (candidate.local) local.push(candidate)
      else remote.push(candidate)
    }
    // A home region much slower than another is no longer preferred: both compete on
    // weight and latency, so the slow one keeps a trickle that shows when it recovers.
    const home = slower(local, remote)
      ? [...this.#shuffle([...local, ...remote])]
      : this.#shuffle(local)
    const away = slower(local, remote) ? [] : this.#shuffle(remote)
    // The last resort keeps the region preference: a local endpoint is likely faster to retry.
    return [
      ...home,
      ...away,
      ...this.#shuffle(lastResort.filter((c) => c.local)),
      ...this.#shuffle(lastResort.filter((c) => !c.local)),
    ]
  }

  /**
   * Efraimidis–Spirakis: key = -ln(u) / w, ascending. Equivalent to drawing one endpoint at a
   * time in proportion to weight, in one random number per endpoint. A zero weight sorts
   * last; ties keep the configured order (the sort is stable).
   */
  #shuffle<E extends UpstreamEndpoint>(group: Candidate<E>[]): E[] {
    let fastest = Number.POSITIVE_INFINITY
    for (const c of group) if (c.p95 !== undefined && c.p95 > 0) fastest = Math.min(fastest, c.p95)
    for (const c of group) {
      const latency =
        c.p95 !== undefined && c.p95 > 0 && fastest !== Number.POSITIVE_INFINITY
          ? Math.max(fastest / c.p95, MIN_LATENCY_FACTOR)
          : 1
      const weight = c.weight * latency
      c.key = weight > 0 ? -Math.log(1 - this.#random()) / weight : Number.POSITIVE_INFINITY
    }
    return group.sort((a, b) => (a.key === b.key ? 0 : a.key - b.key)).map((c) => c.endpoint)
  }
}

/** The home region is this many times slower (p95), and by this much, than another. */
const SLOW_FACTOR = 4
const SLOW_MARGIN_MS = 50

function fastestP95<E>(group: readonly Candidate<E>[]): number | undefined {
  let fastest: number | undefined
  for (const c of group) if (c.p95 !== undefined) fastest = Math.min(fastest ?? Infinity, c.p95)
  return fastest
}

function slower<E>(local: readonly Candidate<E>[], remote: readonly Candidate<E>[]): boolean {
  const home = fastestP95(local)
  const away = fastestP95(remote)
  if (home === undefined || away === undefined) return false
  return home > away * SLOW_FACTOR && home - away > SLOW_MARGIN_MS
}

interface Candidate<E> {
  readonly endpoint: E
  readonly weight: number
  readonly p95: number | undefined
  readonly local: boolean
  key: number
}
