import type { FailureKind, Outcome } from './upstream-outcome.ts'

export type CircuitState = 'closed' | 'open' | 'half-open'

/** When a circuit opens and how it comes back; every field has a default. */
export interface CircuitOptions {
  /** Outcomes the failure ratio is taken over (the most recent ones). Default 20. */
  readonly windowSize?: number
  /** Outcomes older than this leave the window too. Default: only windowSize bounds it. */
  readonly windowMs?: number
  /** Failure share of the window that opens the circuit. Default 0.5. */
  readonly failureRatio?: number
  /** Outcomes the window must hold before failureRatio applies. Default 5. */
  readonly minRequests?: number
  /** Failures in a row that open the circuit whatever the window says. Default 5. */
  readonly consecutiveFailures?: number
  /** How long the circuit stays open the first time. Default 5 000 ms. */
  readonly openMs?: number
  /** Ceiling of the open time, which doubles on every failed trial. Default 60 000 ms. */
  readonly maxOpenMs?: number
  /** Trial requests let through at once while half-open. Default 1. */
  readonly halfOpenProbes?: number
  /** Successes in a row, while half-open, that close the circuit. Default 2. */
  readonly successesToClose?: number
  /**
   * A trial that never reports back (its caller crashed or forgot) frees its slot after this
   * long, so a lost release cannot keep an endpoint half-open forever. Default 30 000 ms.
   */
  readonly trialTimeoutMs?: number
  /** Recent latencies kept for p95Ms(). Default 100. */
  readonly latencySamples?: number
}

export interface CircuitTransition {
  readonly from: CircuitState
  readonly to: CircuitState
  /** Clock time of the change. */
  readonly at: number
  /** Set when the circuit opens: how long it stays open this time. */
  readonly openMs?: number
}

export interface EndpointHealthOptions extends CircuitOptions {
  readonly now: () => number
  /** Called on every state change, for logs and counters. */
  readonly onTransition?: (transition: CircuitTransition) => void
}

const DEFAULTS: Required<CircuitOptions> = {
  windowSize: 20,
  windowMs: Number.POSITIVE_INFINITY,
  failureRatio: 0.5,
  minRequests: 5,
  consecutiveFailures: 5,
  openMs: 5_000,
  maxOpenMs: 60_000,
  halfOpenProbes: 1,
  successesToClose: 2,
  trialTimeoutMs: 30_000,
  latencySamples: 100,
}

function withDefaults(options: CircuitOptions): Required<CircuitOptions> {
  const o = { ...DEFAULTS }
  for (const key of Object.keys(DEFAULTS) as (keyof CircuitOptions)[]) {
    const value = options[key]
    if (value !== undefined) o[key] = value
  }
  return o
}

/** p95 of fewer samples than this is noise; hedging falls back to its fixed delay. */
const MIN_LATENCY_SAMPLES = 10

/**
 * The health of one upstream endpoint, fed with the outcome of every call to it (passive)
 * and of active probes, and a circuit breaker over it:
 *
 * - closed: calls go through. The circuit opens when the rolling window holds at least
 *   minRequests outcomes of which at least failureRatio failed, or after
 *   consecutiveFailures failures in a row.
 * - open: no calls for the open time. Outcomes of calls that were already in flight are
 *   kept for latency but do not move the circuit.
 * - half-open: at most halfOpenProbes trial calls at a time (tryAcquireTrial; the next
 *   record() frees a slot). successesToClose successes in a row close it with a fresh
 *   window; a single failure opens it again for twice the last open time, up to maxOpenMs.
 *   The two thresholds are the hysteresis: one lucky answer does not send the full load
 *   back to an endpoint that is still failing, and each failed trial waits longer.
 *
 * Pure: the clock is injected and the open → half-open change happens when the state is
 * next read, so there are no timers.
 */
export class EndpointHealth {
  readonly #now: () => number
  readonly #onTransition: ((transition: CircuitTransition) => void) | undefined
  readonly #o: Required<CircuitOptions>

  #state: CircuitState = 'closed'

  // Rolling window of outcomes: a ring, oldest at #head.
  readonly #windowAt: number[] = []
  readonly #windowFailed: boolean[] = []
  #head = 0
  #count = 0
  #failures = 0
  #failuresInRow = 0

  #openedAt: number | undefined
  #openMs: number
  #halfOpenAt = 0
  /** Acquisition times of the trials in flight, oldest first. */
  #trials: number[] = []
  #trialSuccesses = 0

  #lastFailure: { readonly kind: FailureKind; readonly at: number } | undefined

  readonly #latencies: number[] = []
  #latencyNext = 0
  #p95: number | undefined
  #p95Stale = false

  constructor(options: EndpointHealthOptions) {
    this.#now = options.now
    this.#onTransition = options.onTransition
    this.#o = withDefaults(options)
    this.#openMs = this.#o.openMs
  }

  get state(): CircuitState {
    this.#advance()
    return this.#state
  }

  /** Failures in the rolling window. */
  get failures(): number {
    this.#evictExpired()
    return this.#failures
  }

  /** Outcomes in the rolling window. */
  get requests(): number {
    this.#evictExpired()
    return this.#count
  }

  /** When the circuit last opened, while it is open or half-open. */
  get openedAt(): number | undefined {
    return this.#state === 'closed' ? undefined : this.#openedAt
  }

  /** While open: when it turns half-open. */
  get halfOpenAt(): number | undefined {
    return this.state === 'open' ? this.#halfOpenAt : undefined
  }

  /** The most recent failure recorded, in any state: what an operator asks first. */
  get lastFailure(): { readonly kind: FailureKind; readonly at: number } | undefined {
    return this.#lastFailure
  }

  /**
   * Whether a call may be sent now: closed yes, open no, half-open while a trial slot is
   * free. Takes nothing; a caller that sends to a half-open endpoint calls tryAcquireTrial.
   */
  available(): boolean {
    switch (this.state) {
      case 'closed':
        return true
      case 'open':
        return false
      case 'half-open':
        this.#expireTrials()
        return this.#trials.length < this.#o.halfOpenProbes
    }
  }

  /**
   * Call right before sending. Closed: true, nothing is taken. Open: false. Half-open: takes
   * a trial slot if one is free; the outcome's record() gives it back (releaseTrial() if
   * the call ends without an outcome, e.g. the client went away).
   */
  tryAcquireTrial(): boolean {
    if (!this.available()) return false
    if (this.#state === 'half-open') this.#trials.push(this.#now())
    return true
  }

  releaseTrial(): void {
    this.#trials.shift()
  }

  record(outcome: Outcome): void {
    if (outcome.ok) this.#addLatency(outcome.latencyMs)
    else this.#lastFailure = { kind: outcome.kind, at: this.#now() }
    switch (this.state) {
      case 'closed':
        this.#push(!outcome.ok)
        this.#failuresInRow = outcome.ok ? 0 : this.#failuresInRow + 1
        if (
          this.#failuresInRow >= this.#o.consecutiveFailures ||
          (this.#count >= this.#o.minRequests &&
            this.#failures >= this.#o.failureRatio * this.#count)
        ) {
          this.#open(this.#o.openMs)
        }
        return
      case 'open':
        return
      case 'half-open':
        // A half-open circuit reads every outcome as a trial's, including one of a call sent
        // before it opened: either is fresh news about the endpoint.
        this.#trials.shift()
        if (!outcome.ok) {
          this.#open(Math.min(this.#openMs * 2, this.#o.maxOpenMs))
        } else if (++this.#trialSuccesses >= this.#o.successesToClose) {
          this.#close()
        }
        return
    }
  }

  /** 95th percentile of recent successful calls' latency; undefined below 10 samples. */
  p95Ms(): number | undefined {
    if (this.#p95Stale) {
      this.#p95Stale = false
      if (this.#latencies.length < MIN_LATENCY_SAMPLES) {
        this.#p95 = undefined
      } else {
        const sorted = this.#latencies.toSorted((a, b) => a - b)
        this.#p95 = sorted[Math.ceil(0.95 * sorted.length) - 1]
      }
    }
    return this.#p95
  }

  /**
   * Share of successes in the window, in (0, 1]; 1 with no outcomes. Smoothed by one
   * imagined success so that a single failure does not drop an endpoint to zero.
   */
  score(): number {
    this.#evictExpired()
    return (this.#count - this.#failures + 1) / (this.#count + 1)
  }

  #advance(): void {
    if (this.#state === 'open' && this.#now() >= this.#halfOpenAt) {
      this.#trials = []
      this.#trialSuccesses = 0
      this.#transition('half-open')
    }
  }

  #open(openMs: number): void {
    const now = this.#now()
    this.#openedAt = now
    this.#openMs = openMs
    this.#halfOpenAt = now + openMs
    this.#transition('open', openMs)
  }

  #close(): void {
    this.#windowAt.length = 0
    this.#windowFailed.length = 0
    this.#head = 0
    this.#count = 0
    this.#failures = 0
    this.#failuresInRow = 0
    this.#trials = []
    this.#openedAt = undefined
    this.#openMs = this.#o.openMs
    this.#transition('closed')
  }

  #transition(to: CircuitState, openMs?: number): void {
    const from = this.#state
    this.#state = to
    this.#onTransition?.(
      openMs === undefined ? { from, to, at: this.#now() } : { from, to, at: this.#now(), openMs },
    )
  }

  #push(failed: boolean): void {
    this.#evictExpired()
    const size = this.#o.windowSize
    if (this.#count === size) this.#evictOldest()
    const slot = (this.#head + this.#count) % size
    this.#windowAt[slot] = this.#now()
    this.#windowFailed[slot] = failed
    this.#count++
    if (failed) this.#failures++
  }

  #evictExpired(): void {
    if (this.#o.windowMs === Number.POSITIVE_INFINITY) return
    const oldest = this.#now() - this.#o.windowMs
    while (this.#count > 0 && (this.#windowAt[this.#head] ?? 0) <= oldest) this.#evictOldest()
    // A run of failures is the newest part of the window: what left the window leaves the run.
    this.#failuresInRow = Math.min(this.#failuresInRow, this.#count)
  }

  #evictOldest(): void {
    if (this.#windowFailed[this.#head]) this.#failures--
    this.#head = (this.#head + 1) % this.#o.windowSize
    this.#count--
  }

  #expireTrials(): void {
    const oldest = this.#now() - this.#o.trialTimeoutMs
    while (this.#trials.length > 0 && (this.#trials[0] ?? 0) <= oldest) this.#trials.shift()
  }

  #addLatency(ms: number): void {
    if (this.#latencies.length < this.#o.latencySamples) {
      this.#latencies.push(ms)
    } else {
      this.#latencies[this.#latencyNext] = ms
      this.#latencyNext = (this.#latencyNext + 1) % this.#o.latencySamples
    }
    this.#p95Stale = true
  }
}
