import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'

/** The `p`th percentile of `values` (nearest rank); NaN when there are none. */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ] as number
}

/** What one caller saw: every request's outcome and latency. */
export class CallerRecord {
  readonly name: string
  sent = 0
  /** 2xx responses. */
  served = 0
  /** 429 and 503 answers from the proxy: refused or timed out in the queue. */
  refused = 0
  /** Anything else: other statuses and transport errors. */
  failed = 0
  readonly latenciesMs: number[] = []

  constructor(name: string) {
    this.name = name
  }

  /** Latency percentile of served requests (nearest rank), in ms; NaN when none. */
  percentile(p: number): number {
    return percentileOf(this.latenciesMs, p)
  }

  /**
   * Starts a new window: what is answered from now on counts, also the answer to a request sent
   * before. A window must be the same for every caller: a flood's answers lag its sends by its
   * whole backlog, so dropping answers to earlier requests would take that much more from a
   * deep flood than from a shallow one, and equal service would look unequal.
   */
  reset(): void {
    this.sent = this.served = this.refused = this.failed = 0
    this.latenciesMs.length = 0
  }
}

export interface CallerSpec {
  readonly name: string
  readonly url: string
  readonly headers: Record<string, string>
  /** Closed loop: this many requests always outstanding (a flood). */
  readonly concurrency?: number
  /** Open loop: this many requests per second, whatever the answers (a steady caller). */
  readonly ratePerSecond?: number
}

/**
 * Drives callers against a URL until stopped: flooders keep `concurrency` requests in flight,
 * steady callers send at a fixed rate. Used by the noisy-neighbour demo and benchmark.
 */
export class Traffic {
  readonly records = new Map<string, CallerRecord>()
  readonly #agent = new Agent({ connections: 512, pipelining: 1 })
  readonly #timers = new Set<NodeJS.Timeout>()
  #running = true
  readonly #inFlight = new Set<Promise<void>>()

  constructor(callers: readonly CallerSpec[]) {
    for (const caller of callers) {
      const record = new CallerRecord(caller.name)
      this.records.set(caller.name, record)
      if (caller.concurrency) {
        for (let i = 0; i < caller.concurrency; i++) this.#loop(caller, record)
      } else if (caller.ratePerSecond) {
        this.#steady(caller, record, caller.ratePerSecond)
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false
    for (const timer of this.#timers) clearTimeout(timer)
    await Promise.allSettled([...this.#inFlight])
    await this.#agent.close()
  }

  #loop(caller: CallerSpec, record: CallerRecord): void {
    if (!this.#running) return
    this.#send(caller, record).then(() => this.#loop(caller, record))
  }

  #steady(caller: CallerSpec, record: CallerRecord, rate: number): void {
    const interval = 1000 / rate
    let next = performance.now()
    const tick = () => {
      if (!this.#running) return
      void this.#send(caller, record)
      next += interval
      const timer = setTimeout(tick, Math.max(0, next - performance.now()))
      this.#timers.add(timer)
      timer.unref()
    }
    tick()
  }

  #send(caller: CallerSpec, record: CallerRecord): Promise<void> {
    record.sent++
    const started = performance.now()
    const done = request(caller.url, { dispatcher: this.#agent, headers: caller.headers })
      .then(async (response) => {
        await response.body.dump()
        if (response.statusCode >= 200 && response.statusCode < 300) {
          record.served++
          record.latenciesMs.push(performance.now() - started)
        } else if (response.statusCode === 429 || response.statusCode === 503) {
          record.refused++
        } else {
          record.failed++
        }
      })
      .catch(() => {
        record.failed++
      })
    this.#inFlight.add(done)
    return done.finally(() => this.#inFlight.delete(done))
  }
}

/** Jain's fairness index of the given allocations: 1 when all are equal, 1/n at worst. */
export function jainIndex(values: readonly number[]): number {
  const sum = values.reduce((a, b) => a + b, 0)
  const squares = values.reduce((a, b) => a + b * b, 0)
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares)
}
