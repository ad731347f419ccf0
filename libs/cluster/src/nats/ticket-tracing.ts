import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { Admission, Ticket } from '@fairlane/protocol'

/**
 * The wire between nodes always speaks W3C trace context, whatever propagators the operator
 * configured for HTTP: both ends are Fairlane.
 */
const w3c = new W3CTraceContextPropagator()

function contextOf(traceparent: string): Context {
  return w3c.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter)
}

function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {}
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter)
  return carrier['traceparent']
}

/**
 * Spans of a ticket's NATS hop, in the messaging semantic conventions. A shard batch is one
 * NATS message carrying the tickets of many requests, hence of many traces: each ticket
 * carries its own context (Ticket.trace) instead of the message's headers, which could hold
 * one. The ingress makes a producer span per publication of a ticket (a resubmission is a
 * new one); the owner a consumer span under it and, under that, the admission span.
 * Only tickets that carry a context get spans: with traces off nothing here runs.
 */
export class TicketTracing {
  readonly #tracer: Tracer

  constructor(tracer: Tracer) {
    this.#tracer = tracer
  }

  /**
   * Ingress: the producer span of one publication of a ticket, under the context it carries,
   * and the ticket to publish, which carries the producer's context instead.
   */
  send(subject: string, ticket: Ticket, parent: string): { span: Span; ticket: Ticket } {
    const span = this.#tracer.startSpan(
      `send ${subject}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': subject,
          'fairlane.target': ticket.target,
        },
      },
      contextOf(parent),
    )
    const trace = traceparentOf(span)
    return { span, ticket: trace ? { ...ticket, trace } : ticket }
  }

  /** Ingress: the batch a producer span's ticket left in (or did not: `failed`). */
  sent(span: Span, items: number, failed: boolean): void {
    span.setAttribute('messaging.batch.message_count', items)
    if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: 'not published' })
    span.end()
  }

  /** Owner: the consumer span of a ticket that arrived in a batch of `items`. */
  process(subject: string, parent: string, items: number): Span {
    return this.#tracer.startSpan(
      `process ${subject}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': subject,
          'messaging.batch.message_count': items,
        },
      },
      contextOf(parent),
    )
  }

  /** Owner: the admission of a ticket by the lane's actor, under its consumer span. */
  admission(consumer: Span, ticket: Ticket): Span {
    return this.#tracer.startSpan(
      'fairlane.admission',
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'fairlane.target': ticket.target,
          'fairlane.workspace': ticket.workspace,
          'fairlane.cost': ticket.cost,
        },
      },
      trace.setSpan(ROOT_CONTEXT, consumer),
    )
  }

  /** Owner: ends the admission span with the actor's answer (undefined: the actor threw). */
  admitted(span: Span, admission: Admission | undefined): void {
    if (admission) {
      endWithAdmission(span, admission)
      return
    }
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'admission failed' })
    span.end()
  }
}

/** Ends a span of a ticket's wait or admission with what was decided (the owner's and ingress's alike). */
export function endWithAdmission(span: Span, admission: Admission): void {
  if (admission.allowed) {
    span.setAttribute('fairlane.admission', 'admitted')
    span.setAttribute('fairlane.queue_ms', admission.waitedMs)
  } else {
    span.setAttribute('fairlane.admission', admission.code)
    span.setAttribute('fairlane.refused_by', admission.refusedBy)
  }
  span.end()
}
