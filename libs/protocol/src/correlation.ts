import { randomFillSync, randomUUID } from 'node:crypto'

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

// Trace and span ids are drawn from a pool refilled 8 KiB at a time: one call into the
// CSPRNG per few hundred requests instead of two per request.
const pool = Buffer.alloc(8192)
let poolOffset = pool.length

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return hex
}

/** Continues the client's trace, or starts one, with a new span for the hop upstream. */
export function childTraceParent(parent: TraceParent | undefined): TraceParent {
  return {
    traceId: parent?.traceId ?? randomHex(16),
    spanId: randomHex(8),
    flags: parent?.flags ?? '01',
  }
}

export function formatTraceParent(trace: TraceParent): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`
}
