import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api'
import type { PinnedDestination } from '@fairlane/forward'
import type { JobRecord } from '@fairlane/jobs'
import { parseTraceParent } from '@fairlane/protocol'
import { pathOf, type Exchange } from '../ingress/exchange.ts'
import { traceParentOf } from '../ingress/request-tracing.ts'

/**
 * The context of the span that submitted the job, stored with it in W3C form whatever the
 * propagators; the root for a job submitted without traces (a new trace per span then).
 */
function submissionOf(job: JobRecord): Context {
  const parent = parseTraceParent(job.traceparent)
  if (!parent) return ROOT_CONTEXT
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: Number.parseInt(parent.flags, 16),
    isRemote: true,
  })
}

/** A delivery try's error code: the code before `: ` when it names one. */
function errorTypeOf(error: string): string {
  return /^([a-z_]+): /.exec(error)?.[1] ?? '_OTHER'
}

/**
 * The spans of jobs (docs/observability.md#job-and-webhook-spans): one per attempt, under
 * which the attempt's queue wait and upstream calls hang as a request's do, and a client
 * span per webhook delivery try. Both are children of the span that submitted the job, so a
 * job and its follow-ups make one trace with their submission, however late they run; the
 * sampler's decision for the submission holds for them (parent-based samplers). Exists only
 * while traces are on.
 */
export class JobTracing {
  readonly #tracer: Tracer

  constructor(tracer: Tracer) {
    this.#tracer = tracer
  }

  /** Starts the span of a job's attempt as the exchange's span: its stages hang under it. */
  attempt(x: Exchange, job: JobRecord, attempt: number): void {
    const attributes: Attributes = {
      'fairlane.job.id': job.id,
      'fairlane.job.chain_id': job.chainId,
      'fairlane.job.attempt': attempt,
      'fairlane.workspace': job.workspace,
      'fairlane.key_id': job.keyId,
      'fairlane.request_id': x.requestId,
    }
    const target = job.body.request.target
    if (target !== undefined) attributes['fairlane.target'] = target
    const span = this.#tracer.startSpan(
      'fairlane.job_attempt',
      { kind: SpanKind.CONSUMER, attributes },
      submissionOf(job),
    )
    x.span = span
    x.trace = traceParentOf(span)
  }

  /** Ends an attempt's span: the upstream's status, or the code it failed with. */
  attempted(x: Exchange, span: Span, status: number): void {
    if (status > 0) span.setAttribute('http.response.status_code', status)
    span.setAttribute('fairlane.attempts', x.attempts)
    if (x.queueMs !== undefined) span.setAttribute('fairlane.queue_ms', x.queueMs)
    if (x.result?.endpoint.region)
      span.setAttribute('fairlane.upstream.region', x.result.endpoint.region)
    if (x.code) {
      span.setAttribute('fairlane.code', x.code)
      span.setAttribute('error.type', x.code)
      span.setStatus({ code: SpanStatusCode.ERROR, message: x.code })
    } else if (status >= 500) {
      span.setAttribute('error.type', String(status))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.end()
  }

  /** Starts the client span of one try to deliver a finished job to its webhook `index`. */
  delivery(job: JobRecord, index: number): Span {
    const attempt = (job.deliveries.find((d) => d.index === index)?.attempts ?? 0) + 1
    const attributes: Attributes = {
      'http.request.method': 'POST',
      'fairlane.job.id': job.id,
      'fairlane.webhook.index': index,
      'fairlane.webhook.attempt': attempt,
    }
    if (attempt > 1) attributes['http.request.resend_count'] = attempt - 1
    return this.#tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes }, submissionOf(job))
  }

  /**
   * The receiver a delivery's span reaches, and the headers to send it: these with the span's
   * context, so the receiver's spans continue the trace.
   */
  reaching(
    span: Span,
    destination: PinnedDestination,
    path: string,
    headers: Record<string, string>,
  ): Record<string, string> {
    span.setAttributes({
      'server.address': destination.hostname,
      'server.port': destination.port,
      'network.peer.address': destination.address,
      // Without its query, which may carry a secret.
      'url.full': `${destination.url.protocol}//${destination.hostHeader}${pathOf(path)}`,
    })
    const sent = { ...headers }
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), sent)
    return sent
  }

  /** Ends a delivery's span with the receiver's status, or why none came (a DeliveryTry). */
  delivered(span: Span, tried: { readonly status?: number; readonly error?: string }): void {
    if (tried.status !== undefined) {
      span.setAttribute('http.response.status_code', tried.status)
      // Client spans: any 4xx or 5xx is an error of the call.
      if (tried.status >= 400) {
        span.setAttribute('error.type', String(tried.status))
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
    } else if (tried.error !== undefined) {
      span.setAttribute('error.type', errorTypeOf(tried.error))
      span.setStatus({ code: SpanStatusCode.ERROR, message: tried.error })
    }
    span.end()
  }
}
