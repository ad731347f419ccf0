import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  propagation,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api'
import type { Admission, TraceParent } from '@fairlane/protocol'
import { endWithAdmission } from '@fairlane/cluster'
import type { PinnedDestination } from '@fairlane/forward'
import { pathOf, type Exchange } from './exchange.ts'
import type { RouteEndpoint } from './upstreams.ts'

/** Why an upstream attempt was made (docs/observability.md#traces). */
export type AttemptReason = 'first' | 'retry' | 'failover' | 'hedge'

/** The methods HTTP semantic conventions name; any other is `_OTHER`. */
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
])

function methodOf(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER'
}

/** A span's place in its trace, as W3C traceparent fields. */
export function traceParentOf(span: Span): TraceParent {
  const context = span.spanContext()
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    flags: (context.traceFlags & 1) === 1 ? '01' : '00',
  }
}

/**
 * The ids of a span the sampler kept, for an exemplar; undefined for no span or one sampled
 * out, whose trace id would lead nowhere. Allocates nothing.
 */
export function sampled(span: Span | undefined): SpanContext | undefined {
  if (span === undefined) return undefined
  const context = span.spanContext()
  return (context.traceFlags & 1) === 1 ? context : undefined
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * The spans of one request on the ingress side, in the HTTP semantic conventions: the server
 * span (the request, from its head to its response closing), a span per wait in the lane, and
 * a client span per upstream attempt. Exists only while traces are on: with tracing off the
 * ingress holds none, and the request path makes no span and extracts or injects no context.
 */
export class RequestTracing {
  readonly #tracer: Tracer

  constructor(tracer: Tracer) {
    this.#tracer = tracer
  }

  /**
   * Starts the request's server span, continuing the client's traceparent; the exchange's
   * trace (its log line's ids) becomes the span's.
   */
  begin(x: Exchange): void {
    const { req } = x
    const parent = propagation.extract(ROOT_CONTEXT, req.headers)
    const method = methodOf(x.method)
    const attributes: Attributes = {
      'http.request.method': method,
      'url.path': x.path,
      'url.scheme': 'http',
      'network.protocol.version': req.httpVersion,
      'fairlane.request_id': x.requestId,
    }
    if (method === '_OTHER') attributes['http.request.method_original'] = x.method
    const host = header(req.headers.host)
    if (host) attributes['server.address'] = host.replace(/:\d+$/, '')
    if (req.socket.localPort) attributes['server.port'] = req.socket.localPort
    if (req.socket.remoteAddress) attributes['client.address'] = req.socket.remoteAddress
    const agent = header(req.headers['user-agent'])
    if (agent) attributes['user_agent.original'] = agent
    const span = this.#tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent)
    x.span = span
    x.trace = traceParentOf(span)
  }

  /** Ends the server span with what the request came to. */
  end(x: Exchange, span: Span, status: number, stage: string): void {
    span.setAttribute('http.response.status_code', status)
    span.setAttribute('fairlane.stage', stage)
    if (x.target) span.setAttribute('fairlane.target', x.target)
    if (x.workspace) span.setAttribute('fairlane.workspace', x.workspace)
    if (x.keyId) span.setAttribute('fairlane.key_id', x.keyId)
    if (x.inbound) span.setAttribute('fairlane.route', x.inbound.name)
    if (x.code) span.setAttribute('fairlane.code', x.code)
    if (x.queueMs !== undefined) span.setAttribute('fairlane.queue_ms', x.queueMs)
    span.setAttribute('fairlane.attempts', x.attempts)
    if (x.clientClosed) span.setAttribute('fairlane.client_closed', true)
    // Server spans: a 4xx is the client's doing, only a 5xx is the server's error.
    if (status >= 500) {
      span.setAttribute('error.type', String(status))
      span.setStatus({ code: SpanStatusCode.ERROR, ...(x.code ? { message: x.code } : {}) })
    }
    span.end()
  }

  /** A wait in the lane (the first admission, or a retry's way back in), under the request. */
  queue(x: Exchange, parent: Span): Span {
    return this.#tracer.startSpan(
      'fairlane.queue_wait',
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'fairlane.target': x.target ?? '',
          'fairlane.cost': x.ticket?.cost ?? 1,
        },
      },
      trace.setSpan(ROOT_CONTEXT, parent),
    )
  }

  /** Ends a queue span with the admission's outcome. */
  queued(span: Span, admission: Admission): void {
    endWithAdmission(span, admission)
  }

  /** A queue span whose submission failed (no owner answered). */
  failed(span: Span, err: unknown): void {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: err instanceof Error ? err.message : String(err),
    })
    span.end()
  }

  /**
   * Starts the client span of one upstream attempt and returns it with the headers to send:
   * the request's headers with this span's context (traceparent, and whatever else the
   * configured propagators carry), so the upstream continues the trace under the attempt.
   */
  attempt(
    parent: Span,
    method: string,
    endpoint: RouteEndpoint,
    destination: PinnedDestination,
    attempt: number,
    reason: AttemptReason,
    headers: Record<string, string | string[]>,
  ): { span: Span; headers: Record<string, string | string[]> } {
    const known = methodOf(method)
    const attributes: Attributes = {
      'http.request.method': known,
      'server.address': destination.hostname,
      'server.port': destination.port,
      'network.peer.address': destination.address,
      // Without its query, which may carry a secret.
      'url.full': `${destination.url.protocol}//${destination.hostHeader}${pathOf(endpoint.path)}`,
      'fairlane.endpoint': endpoint.id,
      'fairlane.attempt': attempt,
      'fairlane.attempt.reason': reason,
    }
    if (known === '_OTHER') attributes['http.request.method_original'] = method
    if (attempt > 1) attributes['http.request.resend_count'] = attempt - 1
    if (endpoint.region) attributes['fairlane.upstream.region'] = endpoint.region
    const span = this.#tracer.startSpan(
      known,
      { kind: SpanKind.CLIENT, attributes },
      trace.setSpan(ROOT_CONTEXT, parent),
    )
    const sent = { ...headers }
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), sent)
    return { span, headers: sent }
  }

  /** Ends an attempt's span with its answer (status) or its failure (error). */
  answered(span: Span, outcome: { status: number } | { error: unknown }): void {
    if ('status' in outcome) {
      span.setAttribute('http.response.status_code', outcome.status)
      // Client spans: any 4xx or 5xx is an error of the call.
      if (outcome.status >= 400) {
        span.setAttribute('error.type', String(outcome.status))
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
    } else {
      const { error } = outcome
      const code = (error as { code?: unknown } | null)?.code
      span.setAttribute('error.type', typeof code === 'string' ? code : 'connection_failed')
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      })
    }
    span.end()
  }
}
