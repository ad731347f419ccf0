import type { RouteConfig } from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import type { FairlaneMetrics } from '@fairlane/telemetry'
import type { CallerId } from '../../limits/callers.ts'
import type { Exchange } from '../exchange.ts'

type NewCallersConfig = RouteConfig['callers']['newCallers']

/**
 * A caller let in again within this long keeps its place in the known set: a caller that
 * comes back often costs one lookup, not a reinsertion, and the set's order (least recently
 * let in first) is right to within this.
 */
const TOUCH_MS = 1000

/**
 * One route's bound on new callers at this node. A caller the route let in lately is known
 * and passes with one lookup; any other caller takes a token from a bucket of `perSecond`
 * refilled continuously up to `burst`, and without one it is refused before it costs a lane,
 * a limit state or an upstream call. The known set keeps the route's `maxIdle`
 * callers let in most recently, so under a flood it turns over at the bucket's rate at most:
 * a flood of new callers cannot push an established caller out faster than that.
 */
export class NewCallerGate {
  /** Caller → when it was last let in (ms); iteration order is least recently first. */
  readonly #known = new Map<CallerId, number>()
  #settings: NewCallersConfig
  #maxKnown: number
  #tokens: number
  #at: number

  constructor(settings: NewCallersConfig, maxKnown: number, now: number) {
    this.#settings = settings
    this.#maxKnown = maxKnown
    this.#tokens = settings.burst
    this.#at = now
  }

  /**
   * Settings of a reloaded config: the bucket keeps its tokens (up to the new burst) and the
   * known set its callers (a smaller set sheds its oldest at the next new caller).
   */
  configure(settings: NewCallersConfig, maxKnown: number): void {
    this.#settings = settings
    this.#maxKnown = maxKnown
    this.#tokens = Math.min(this.#tokens, settings.burst)
  }

  /** 0 when the caller may go on; otherwise how long (ms) until the route takes a new caller again. */
  admit(caller: CallerId, now: number): number {
    const known = this.#known
    const seen = known.get(caller)
    if (seen !== undefined) {
      if (now - seen >= TOUCH_MS) {
        known.delete(caller)
        known.set(caller, now)
      }
      return 0
    }
    const { perSecond, burst } = this.#settings
    const tokens = Math.min(burst, this.#tokens + ((now - this.#at) * perSecond) / 1000)
    this.#at = now
    if (tokens < 1) {
      this.#tokens = tokens
      return Math.ceil(((1 - tokens) * 1000) / perSecond)
    }
    this.#tokens = tokens - 1
    while (known.size >= this.#maxKnown) {
      const oldest = known.keys().next()
      if (oldest.done) break
      known.delete(oldest.value)
    }
    known.set(caller, now)
    return 0
  }

  /** How many callers the route knows at this node. */
  get knownCallers(): number {
    return this.#known.size
  }
}

/**
 * The refusal a route answers new callers with beyond its bound, one per route and
 * Retry-After value: a flood is refused without building an error (and its stack) per request.
 */
function refusalOf(route: string, settings: NewCallersConfig, retryAfterMs: number): FairlaneError {
  return new FairlaneError(
    'rate_limited',
    'limit',
    `route ${route} takes ${settings.perSecond} new callers per second (burst ${settings.burst}) and this caller is new; retry later`,
    { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } },
  )
}

interface RouteGate {
  readonly gate: NewCallerGate
  settings: NewCallersConfig
  maxKnown: number
  /** Refusals by Retry-After seconds. */
  readonly refusals: Map<number, FairlaneError>
}

/**
 * Inbound stage 2c: every route's new-caller bound at this node, kept across config reloads
 * (a reload must not make every caller new again). Customers (`c:` callers) are known by
 * the config itself and never counted.
 */
export class NewCallerGates {
  readonly #routes = new Map<string, RouteGate>()
  readonly #now: () => number
  readonly #metrics: Pick<FairlaneMetrics, 'limitRefusals'>

  constructor(now: () => number, metrics: Pick<FairlaneMetrics, 'limitRefusals'>) {
    this.#now = now
    this.#metrics = metrics
  }

  /** Throws the 429 for a new caller beyond its route's bound; returns for any other. */
  check(x: Exchange): void {
    const route = x.inbound
    const caller = x.caller
    if (!route || caller === undefined || caller.startsWith('c:')) return
    const { newCallers, maxIdle } = route.config.callers
    if (!newCallers.enabled) return
    const now = this.#now()
    let held = this.#routes.get(route.name)
    if (!held) {
      held = {
        gate: new NewCallerGate(newCallers, maxIdle, now),
        settings: newCallers,
        maxKnown: maxIdle,
        refusals: new Map(),
      }
      this.#routes.set(route.name, held)
    } else if (held.settings !== newCallers || held.maxKnown !== maxIdle) {
      held.gate.configure(newCallers, maxIdle)
      held.settings = newCallers
      held.maxKnown = maxIdle
      held.refusals.clear()
    }
    const retryAfterMs = held.gate.admit(caller, now)
    if (retryAfterMs === 0) return
    this.#metrics.limitRefusals.inc({ scope: 'route', reason: 'new_caller' })
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
    let refusal = held.refusals.get(seconds)
    if (!refusal) {
      refusal = refusalOf(route.name, newCallers, retryAfterMs)
      held.refusals.set(seconds, refusal)
    }
    throw refusal
  }
}
