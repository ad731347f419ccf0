import type { Counter, LabelValues } from 'prom-client'
import { promClientKey } from './prom-client-key.ts'

/** One label set's value in prom-client's Counter (15.1.3 keeps it in `hashMap`). */
interface Count {
  value: number
}

/** What this reads of a prom-client Counter beyond its typed API. */
interface CounterInternals {
  readonly hashMap?: Record<string, Count | undefined>
  readonly sortedLabelNames?: readonly string[]
}

/**
 * The child of one label set of a counter, counting by ones on the label set's value
 * directly. prom-client's own child re-validates and re-hashes its label object on every
 * `inc`, a share of every proxied request for the counters each one moves
 * (docs/performance.md). As ExemplarChild does, the value is looked up under the key
 * prom-client files it by, made once; until it exists (the first `inc`, or after a `reset`),
 * and for any other amount, the count goes through prom-client, which makes or checks it.
 */
export class CounterChild<T extends string> {
  readonly #internals: CounterInternals
  readonly #child: { inc(value?: number): void }
  readonly #key: string

  constructor(counter: Counter<T>, labels: LabelValues<T>) {
    this.#internals = counter as unknown as CounterInternals
    this.#child = counter.labels(labels)
    this.#key = promClientKey(
      this.#internals.sortedLabelNames ?? Object.keys(labels).sort(),
      labels,
    )
  }

  inc(value?: number): void {
    const count = value === undefined ? this.#internals.hashMap?.[this.#key] : undefined
    if (count === undefined) this.#child.inc(value)
    else count.value += 1
  }
}
