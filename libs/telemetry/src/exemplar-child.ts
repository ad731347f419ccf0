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

/**
 * The child of one label set of a histogram made with `enableExemplars`. Without a span it
 * observes through prom-client's cached child, as a histogram without exemplars does (the
 * caller builds no label object and no exemplar); only a sampled span's observation pays for
 * the labelled observe and the exemplar's labels. Exemplar labels are OpenTelemetry's names for
 * Prometheus exemplars, `trace_id` and `span_id`, which Grafana links to the trace.
 */
export class ExemplarChild<T extends string> implements TracedObserver {
  readonly #histogram: Histogram<T>
  readonly #labels: LabelValues<T>
  readonly #child: { observe(value: number): void }

  constructor(histogram: Histogram<T>, labels: LabelValues<T>) {
    this.#histogram = histogram
    this.#labels = labels
    this.#child = histogram.labels(labels)
  }

  observe(value: number, span?: SpanIds): void {
    if (span === undefined) {
      this.#child.observe(value)
      return
    }
    const exemplarLabels = { trace_id: span.traceId, span_id: span.spanId }
    this.#histogram.observe({
      labels: this.#labels,
      value,
      // prom-client types exemplar labels as the metric's own label names; any names are valid.
      exemplarLabels: exemplarLabels as LabelValues<string> as LabelValues<T>,
    })
  }
}
