import type { Histogram, LabelValues } from 'prom-client'
import { promClientKey } from './prom-client-key.ts'

/** The ids of a sampled span, which an exemplar names (a TraceParent or a SpanContext). */
export interface SpanIds {
  readonly traceId: string
  readonly spanId: string
}

/** A histogram child whose observation may name the sampled span it was made in. */
export interface TracedObserver {
  /** Observes `value`; with `span`, the observation becomes its bucket's exemplar. */
  observe(value: number, span?: SpanIds): void
}

/** One label set's counts in prom-client's Histogram (15.1.3 keeps them in `hashMap`). */
interface Counts {
  readonly bucketValues: Record<string, number>
  sum: number
  count: number
}

/** What this reads of a prom-client Histogram beyond its typed API. */
interface HistogramInternals {
  readonly hashMap?: Record<string, Counts | undefined>
  readonly upperBounds?: readonly number[]
  readonly sortedLabelNames?: readonly string[]
}

/**
 * The child of one label set of a histogram made with `enableExemplars`. Without a span it
 * adds to the label set's counts directly, as prom-client's own child would: that child
 * re-validates and re-hashes its label object on every call, which cost about 1.4 µs of every
 * proxied request (docs/performance.md). The counts are looked up under the key prom-client
 * files them by, made once; until they exist (the first observation, or after a `reset`) the
 * observation goes through prom-client, which makes them. A sampled span's observation goes
 * through prom-client too, which keeps the exemplar. Exemplar labels are OpenTelemetry's
 * names for Prometheus exemplars, `trace_id` and `span_id`, which Grafana links to the trace.
 */
export class ExemplarChild<T extends string> implements TracedObserver {
  readonly #histogram: Histogram<T>
  readonly #internals: HistogramInternals
  readonly #labels: LabelValues<T>
  readonly #child: { observe(value: number): void }
  readonly #key: string
  /**
   * The upper bounds (prom-client freezes them) and, one per bound, the key prom-client files
   * its count under: indexing by the number itself turned it into a string on every
   * observation, most of what an observation cost.
   */
  readonly #buckets:
    { readonly bounds: readonly number[]; readonly keys: readonly string[] } | undefined

  constructor(histogram: Histogram<T>, labels: LabelValues<T>) {
    this.#histogram = histogram
    this.#internals = histogram as unknown as HistogramInternals
    this.#labels = labels
    this.#child = histogram.labels(labels)
    this.#key = promClientKey(
      this.#internals.sortedLabelNames ?? Object.keys(labels).sort(),
      labels,
    )
    const bounds = this.#internals.upperBounds
    this.#buckets = bounds && { bounds, keys: bounds.map(String) }
  }

  observe(value: number, span?: SpanIds): void {
    if (span !== undefined) {
      const exemplarLabels = { trace_id: span.traceId, span_id: span.spanId }
      this.#histogram.observe({
        labels: this.#labels,
        value,
        // prom-client types exemplar labels as the metric's own label names; any names are valid.
        exemplarLabels: exemplarLabels as LabelValues<string> as LabelValues<T>,
      })
      return
    }
    const counts = this.#internals.hashMap?.[this.#key]
    const buckets = this.#buckets
    if (counts === undefined || buckets === undefined || !Number.isFinite(value)) {
      // prom-client's own path: it makes the counts, or refuses the value.
      this.#child.observe(value)
      return
    }
    counts.sum += value
    counts.count += 1
    const { bounds, keys } = buckets
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        const key = keys[i] as string
        counts.bucketValues[key] = (counts.bucketValues[key] ?? 0) + 1
        return
      }
    }
  }
}
