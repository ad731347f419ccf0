import type { Histogram, LabelValues } from 'prom-client'

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

/** One label set's counts in prom-client's Histogram (15.x keeps them in `hashMap`). */
interface Counts {
  readonly labels: Readonly<Record<string, unknown>>
  readonly bucketValues: Record<number, number>
  sum: number
  count: number
}

/** What this reads of a prom-client Histogram beyond its typed API. */
interface HistogramInternals {
  readonly hashMap?: Record<string, Counts>
  readonly upperBounds?: readonly number[]
}

/**
 * The child of one label set of a histogram made with `enableExemplars`. Without a span it
 * adds to the label set's counts directly, as prom-client's own child would: that child
 * re-validates and re-hashes its label object on every call, which cost about 1.4 µs of every
 * proxied request (docs/performance.md); the counts are found once, by a first observation
 * through prom-client, and again whenever the histogram's map no longer holds them (a
 * `reset`). A sampled span's observation goes through prom-client, which keeps the exemplar.
 * Exemplar labels are OpenTelemetry's names for Prometheus exemplars, `trace_id` and
 * `span_id`, which Grafana links to the trace.
 */
export class ExemplarChild<T extends string> implements TracedObserver {
  readonly #histogram: Histogram<T>
  readonly #internals: HistogramInternals
  readonly #labels: LabelValues<T>
  readonly #child: { observe(value: number): void }
  /** The label set's key in the histogram's map, and its counts there, once found. */
  #hash: string | undefined
  #counts: Counts | undefined

  constructor(histogram: Histogram<T>, labels: LabelValues<T>) {
    this.#histogram = histogram
    this.#internals = histogram as unknown as HistogramInternals
    this.#labels = labels
    this.#child = histogram.labels(labels)
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
    const counts = this.#counts
    const { hashMap, upperBounds } = this.#internals
    if (
      counts === undefined ||
      upperBounds === undefined ||
      hashMap?.[this.#hash as string] !== counts ||
      !Number.isFinite(value)
    ) {
      // prom-client's own path: it makes the counts (or refuses the value), then they are found.
      this.#child.observe(value)
      this.#find()
      return
    }
    counts.sum += value
    counts.count += 1
    for (const bound of upperBounds) {
      if (value <= bound) {
        counts.bucketValues[bound] = (counts.bucketValues[bound] ?? 0) + 1
        return
      }
    }
  }

  /** Finds this label set's counts in the histogram's map (after a `reset`, the new ones). */
  #find(): void {
    const hashMap = this.#internals.hashMap
    this.#counts = undefined
    if (hashMap === undefined) return
    const names = Object.keys(this.#labels) as T[]
    for (const hash in hashMap) {
      const counts = hashMap[hash] as Counts
      const same =
        Object.keys(counts.labels).length === names.length &&
        names.every((name) => counts.labels[name] === this.#labels[name])
      if (same) {
        this.#hash = hash
        this.#counts = counts
        return
      }
    }
  }
}
