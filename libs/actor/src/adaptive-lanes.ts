import {
  AdaptiveLimit,
  type AdaptiveState,
  type Ceiling,
  type Decision,
  type ScopeLimit,
} from '@fairlane/limits'
import { saysLimits, type LaneSignals } from '@fairlane/protocol'
import type { LaneIdentity } from '@fairlane/scheduler'
import type { TicketPolicy } from './ticket-policy.ts'

/** Lanes per partition that may hold what they learned from the upstream. */
export const MAX_ADAPTIVE_LANES = 10_000

/** What a lane learned applies to a ticket: blocked until a time, or a scope to decide with. */
export type Learned =
  | { readonly until: number; readonly refusal?: Decision & { allowed: false } }
  | { readonly scope: ScopeLimit }

/**
 * What lanes learned from their upstream's answers (adaptive lane limits), by partition and
 * lane, bounded per partition; and the admissions per lane per second a 429 cuts from.
 */
export class AdaptiveLanes {
  readonly #now: () => number
  readonly #byPartition = new Map<string, Map<string, AdaptiveLimit>>()
  /**
   * Admissions per lane in the current and the previous second: the base of a 429's cut.
   * Keyed by the lane's identity object (one per key and target, so one partition): no key
   * string is built on the hot path.
   */
  #admissions = {
    second: 0,
    current: new Map<LaneIdentity, number>(),
    previous: new Map<LaneIdentity, number>(),
  }

  constructor(now: () => number) {
    this.#now = now
  }

  /**
   * What the lane learned from its upstream: blocked until a time (refused when that is past
   * the ticket's deadline), or a scope to decide with the others.
   */
  learned(policy: TicketPolicy, deadline: number): Learned | undefined {
    const lanes = this.#byPartition.get(policy.partition)
    const limit = lanes?.get(policy.identity.lane)
    const settings = policy.settings.adaptive
    if (!limit || !settings) return undefined
    // Turned off by a reload: what was learned no longer applies.
    if (!settings.enabled) {
      lanes?.delete(policy.identity.lane)
      return undefined
    }
    const now = this.#now()
    if (limit.blockedUntil > now) {
      if (limit.blockedUntil <= deadline) return { until: limit.blockedUntil }
      const refusal = {
        allowed: false,
        refusedBy: 'upstream',
        reason: 'rate',
        retryAfterMs: limit.blockedUntil - now,
        views: [],
      } as const
      return { until: limit.blockedUntil, refusal }
    }
    const scope = limit.scope(now, settings)
    if (scope) return { scope }
    if (limit.idle(now)) lanes?.delete(policy.identity.lane)
    return undefined
  }

  /** Takes in what the upstream said in the answer to one of the lane's requests; true if the lane's limit changed. */
  observe(policy: TicketPolicy, word: LaneSignals): boolean {
    const settings = policy.settings.adaptive
    if (!settings?.enabled) return false
    if (!saysLimits(word)) return false
    const said = word.status === 429 || word.retryAfterMs !== undefined
    let lanes = this.#byPartition.get(policy.partition)
    const lane = policy.identity.lane
    let limit = lanes?.get(lane)
    const ceiling = ceilingOf(
      policy.sharedScopes ? [...policy.scopes, ...policy.sharedScopes] : policy.scopes,
    )
    // A stated limit no tighter than the configured one changes nothing: no state for it,
    // so lanes of upstreams that always send their limits cost nothing here.
    const restricts =
      said ||
      (word.rps !== undefined && word.rps < (ceiling.rps ?? Infinity)) ||
      (word.maxConcurrent !== undefined && word.maxConcurrent < (ceiling.concurrency ?? Infinity))
    if (!limit && !restricts) return false
    if (!lanes) this.#byPartition.set(policy.partition, (lanes = new Map()))
    if (!limit) {
      // Bounded like the queues: under a flood of distinct callers the oldest learning goes.
      if (lanes.size >= MAX_ADAPTIVE_LANES) lanes.delete(lanes.keys().next().value as string)
      lanes.set(lane, (limit = new AdaptiveLimit(`upstream:${policy.partition}/${lane}`)))
    }
    return limit.observe(this.#now(), word, settings, ceiling, this.#observedRps(policy.identity))
  }

  /** Counts an admission of the lane: what the upstream's 429 cuts from. */
  admitted(lane: LaneIdentity): void {
    const second = Math.floor(this.#now() / 1000)
    const window = this.#admissions
    if (second !== window.second) {
      window.previous = second === window.second + 1 ? window.current : new Map()
      window.current = new Map()
      window.second = second
    }
    window.current.set(lane, (window.current.get(lane) ?? 0) + 1)
  }

  /** What the partition's lanes learned and still hold, for its next owner. */
  save(partition: string): Record<string, AdaptiveState> {
    const now = this.#now()
    const lanes: Record<string, AdaptiveState> = {}
    for (const [lane, limit] of this.#byPartition.get(partition) ?? []) {
      if (!limit.idle(now)) lanes[lane] = limit.save(now)
    }
    return lanes
  }

  /** Resumes what the partition's lanes learned under their previous owner `ageMs` ago. */
  restore(partition: string, saved: Readonly<Record<string, AdaptiveState>>, ageMs: number): void {
    const now = this.#now()
    let lanes = this.#byPartition.get(partition)
    if (!lanes) this.#byPartition.set(partition, (lanes = new Map()))
    for (const [lane, state] of Object.entries(saved)) {
      lanes.set(lane, AdaptiveLimit.restore(`upstream:${partition}/${lane}`, state, now, ageMs))
    }
  }

  #observedRps(key: LaneIdentity): number {
    const window = this.#admissions
    const second = Math.floor(this.#now() / 1000)
    if (second !== window.second)
      return second === window.second + 1 ? (window.current.get(key) ?? 0) : 0
    return Math.max(window.previous.get(key) ?? 0, window.current.get(key) ?? 0)
  }
}

/** The configured limits a lane's adopted ones may never exceed: the tightest of its scopes. */
export function ceilingOf(scopes: readonly ScopeLimit[]): Ceiling {
  let rps: number | undefined
  let concurrency: number | undefined
  for (const scope of scopes) {
    if (scope.rate) {
      const perSecond = (scope.rate.limit * 1000) / scope.rate.periodMs
      rps = Math.min(rps ?? Infinity, perSecond)
    }
    if (scope.concurrency !== undefined)
      concurrency = Math.min(concurrency ?? Infinity, scope.concurrency)
  }
  return {
    ...(rps !== undefined ? { rps } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  }
}
