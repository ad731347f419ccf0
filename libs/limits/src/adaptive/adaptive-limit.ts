import type { ScopeLimit } from '../ledger.ts'

export interface AdaptiveSettings {
  readonly enabled: boolean
  /** A 429 that states no limit multiplies the rate by this. */
  readonly decrease: number
  /** Recovery after a cut: requests per second added per second without a 429. */
  readonly increasePerSecond: number
}

/** What the upstream said in one answer; times relative to now. */
export interface UpstreamWord {
  readonly status: number
  readonly retryAfterMs?: number
  readonly rps?: number
  readonly maxConcurrent?: number
}

/** What a lane may do at most, from configuration: the adopted limits never exceed it. */
export interface Ceiling {
  readonly rps?: number
  readonly concurrency?: number
}

/** What a lane learned, with times relative to when it was saved: for the lane's next owner. */
export interface AdaptiveState {
  readonly rps?: number
  readonly concurrency?: number
  readonly recoverTo?: number
  readonly blockedForMs?: number
}

/** A rate under this is not worth keeping a lane at: one request a minute. */
const MIN_RPS = 1 / 60

/**
 * What one lane learned about its upstream's limits: a rate and a concurrency the upstream
 * stated (adopted as they are, capped by the configured ceiling), or a rate cut by a 429
 * that stated nothing (multiplicative decrease, then additive increase each second until
 * the rate is back where it was). A Retry-After blocks the lane until that time. Pure: the
 * clock comes with every call.
 */
export class AdaptiveLimit {
  readonly id: string
  #rps: number | undefined
  #concurrency: number | undefined
  /** Set while recovering from a cut: the rate at the cut, where recovery ends. */
  #recoverTo: number | undefined
  #lastStepAt = 0
  #blockedUntil = 0
  #scope: ScopeLimit | undefined

  constructor(id: string) {
    this.id = id
  }

  /** No request of the lane may start before this time (monotonic ms). */
  get blockedUntil(): number {
    return this.#blockedUntil
  }

  /**
   * Takes in one answer; true when what the lane may do changed. `observedRps` is how fast
   * the lane was actually going, the base of a cut when nothing else is known.
   */
  observe(
    now: number,
    word: UpstreamWord,
    settings: AdaptiveSettings,
    ceiling: Ceiling,
    observedRps: number,
  ): boolean {
    if (!settings.enabled) return false
    const before = `${this.#rps}/${this.#concurrency}/${this.#blockedUntil}`
    if (word.retryAfterMs !== undefined && word.retryAfterMs > 0) {
      this.#blockedUntil = Math.max(this.#blockedUntil, now + word.retryAfterMs)
    }
    if (word.maxConcurrent !== undefined) {
      const adopted = Math.max(1, Math.min(word.maxConcurrent, ceiling.concurrency ?? Infinity))
      if (adopted !== this.#concurrency) {
        this.#concurrency = adopted
        this.#scope = undefined
      }
    }
    if (word.rps !== undefined) {
      // A stated rate is adopted as it is: the upstream knows its limit better than a guess.
      const adopted = Math.max(MIN_RPS, Math.min(word.rps, ceiling.rps ?? Infinity))
      if (adopted !== this.#rps) {
        this.#rps = adopted
        this.#scope = undefined
      }
      this.#recoverTo = undefined
    } else if (word.status === 429) {
      const base = this.#rps ?? Math.min(ceiling.rps ?? Infinity, Math.max(observedRps, 1))
      this.#recoverTo = Math.max(this.#recoverTo ?? 0, base)
      this.#rps = Math.max(MIN_RPS, base * settings.decrease)
      this.#lastStepAt = now
      this.#scope = undefined
    }
    return `${this.#rps}/${this.#concurrency}/${this.#blockedUntil}` !== before
  }

  /** The adopted limits as a lane scope, after this second's recovery step; none when nothing is adopted. */
  scope(now: number, settings: AdaptiveSettings): ScopeLimit | undefined {
    this.#recover(now, settings)
    if (this.#rps === undefined && this.#concurrency === undefined) return undefined
    this.#scope ??= {
      id: this.id,
      kind: 'upstream',
      unit: 'request',
      ...(this.#rps !== undefined
        ? {
            // A burst of a tenth of a second keeps the pace without a wall of requests.
            rate: {
              limit: this.#rps,
              periodMs: 1000,
              burst: Math.max(1, Math.ceil(this.#rps / 10)),
            },
          }
        : {}),
      ...(this.#concurrency !== undefined ? { concurrency: this.#concurrency } : {}),
    }
    return this.#scope
  }

  /** What this lane learned, relative to `now`, for its next owner. */
  save(now: number): AdaptiveState {
    return {
      ...(this.#rps !== undefined ? { rps: this.#rps } : {}),
      ...(this.#concurrency !== undefined ? { concurrency: this.#concurrency } : {}),
      ...(this.#recoverTo !== undefined ? { recoverTo: this.#recoverTo } : {}),
      ...(this.#blockedUntil > now ? { blockedForMs: this.#blockedUntil - now } : {}),
    }
  }

  /** Resumes what a previous owner saved `ageMs` ago. */
  static restore(id: string, state: AdaptiveState, now: number, ageMs: number): AdaptiveLimit {
    const limit = new AdaptiveLimit(id)
    limit.#rps = state.rps
    limit.#concurrency = state.concurrency
    limit.#recoverTo = state.recoverTo
    limit.#lastStepAt = now
    limit.#blockedUntil = state.blockedForMs ? now + state.blockedForMs - ageMs : 0
    return limit
  }

  /** Nothing learned is in force any more: the lane can forget this. */
  idle(now: number): boolean {
    return this.#rps === undefined && this.#concurrency === undefined && now >= this.#blockedUntil
  }

  #recover(now: number, settings: AdaptiveSettings): void {
    if (this.#recoverTo === undefined || this.#rps === undefined) return
    const steps = Math.floor((now - this.#lastStepAt) / 1000)
    if (steps <= 0) return
    this.#lastStepAt += steps * 1000
    this.#rps += steps * settings.increasePerSecond
    this.#scope = undefined
    if (this.#rps >= this.#recoverTo) {
      this.#rps = undefined
      this.#recoverTo = undefined
    }
  }
}
