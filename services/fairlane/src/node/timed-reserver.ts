import type { Reserver, ScopeLimit } from '@fairlane/limits'
import type { FairlaneMetrics } from '@fairlane/telemetry'

type ReserveRequest = Parameters<Reserver['reserve']>[1]
type Grant = Awaited<ReturnType<Reserver['reserve']>>

/** The ledger's reserver with each call timed into fairlane_ledger_call_duration_seconds. */
export class TimedReserver implements Reserver {
  readonly #inner: Reserver
  readonly #metrics: FairlaneMetrics
  readonly #now: () => number

  constructor(inner: Reserver, metrics: FairlaneMetrics, now: () => number) {
    this.#inner = inner
    this.#metrics = metrics
    this.#now = now
  }

  async reserve(scope: ScopeLimit, want: ReserveRequest): Promise<Grant> {
    const started = this.#now()
    try {
      return await this.#inner.reserve(scope, want)
    } finally {
      this.#metrics.ledgerCallOf('reserve').observe((this.#now() - started) / 1000)
    }
  }

  async refund(scope: ScopeLimit, units: number, slots: readonly string[]): Promise<void> {
    const started = this.#now()
    try {
      await this.#inner.refund(scope, units, slots)
    } finally {
      this.#metrics.ledgerCallOf('refund').observe((this.#now() - started) / 1000)
    }
  }

  async renew(scope: ScopeLimit, slots: readonly string[]): Promise<readonly string[]> {
    const started = this.#now()
    try {
      return await this.#inner.renew(scope, slots)
    } finally {
      this.#metrics.ledgerCallOf('renew').observe((this.#now() - started) / 1000)
    }
  }

  async debit(scopes: readonly ScopeLimit[], cost: number): Promise<void> {
    const started = this.#now()
    try {
      await this.#inner.debit(scopes, cost)
    } finally {
      this.#metrics.ledgerCallOf('debit').observe((this.#now() - started) / 1000)
    }
  }

  ping(): Promise<void> {
    return this.#inner.ping()
  }
}
