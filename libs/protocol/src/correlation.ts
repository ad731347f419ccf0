import { randomBytes, randomUUID } from 'node:crypto'

/**
 * Correlation: the client's X-Request-Id is kept when it is sane (short, printable, no
 * separators that could break a log line or a header), otherwise a new one is made.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header
  return value !== undefined && SANE_REQUEST_ID.test(value) ? value : randomUUID()
}

/** W3C Trace Context `traceparent`, version 00. */
export interface TraceParent {
  readonly traceId: string
  readonly spanId: string
  readonly flags: string
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export function parseTraceParent(header: string | string[] | undefined): TraceParent | undefined {
  const value = Array.isArray(header) ? header[0] : header
  const match = value === undefined ? null : TRACEPARENT.exec(value.trim())
  if (!match) return undefined
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string]
  // All-zero ids are invalid by the spec; treat them as absent.
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return { traceId, spanId, flags }
}

/** Continues the client's trace, or starts one, with a new span for the hop upstream. */
export function childTraceParent(parent: TraceParent | undefined): TraceParent {
  return {
    traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    flags: parent?.flags ?? '01',
  }
}

export function formatTraceParent(trace: TraceParent): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`
}
