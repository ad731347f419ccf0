import { performance } from 'node:perf_hooks'
import type { FairlaneMetrics, LineFields, RequestLines } from '@fairlane/telemetry'
import type { Exchange } from '../exchange.ts'
import { sampled } from '../request-tracing.ts'

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}

/** A request's log line: every field a named scalar. */
export type RequestLine = LineFields

/**
 * The request's log line, from named safe fields of the exchange: ids and names, never the
 * key, a body or a query string. Its writer does not redact (see RequestLines), so no
 * field may be nested or named like a redacted path; request-log.test.ts holds it to that.
 */
export function requestLine(x: Exchange, status: number, stage: string, ms: number): RequestLine {
  return {
    requestId: x.requestId,
    traceId: x.trace.traceId,
    spanId: x.trace.spanId,
    method: x.method,
    path: x.path,
    workspace: x.workspace,
    keyId: x.keyId,
    route: x.inbound?.name,
    // The caller's lane id: a customer name, an IP prefix, or a SHA-256, never a credential.
    caller: x.caller,
    target: x.target,
    stage,
    status,
    code: x.code,
    durationMs: round(ms),
    queueMs: x.queueMs === undefined ? undefined : round(x.queueMs),
    upstreamMs: x.upstreamMs === undefined ? undefined : round(x.upstreamMs),
    upstreamStatus: x.upstreamStatus,
    attempts: x.attempts,
    clientClosed: x.clientClosed,
    error: x.error,
  }
}

/** The stage a request ended in: the one that failed, or `respond`. */
export function finalStage(x: Exchange): string {
  return x.code || x.clientClosed ? x.stage : 'respond'
}

/** The request's log line and its metrics, when its response closed. */
export function recordRequest(
  x: Exchange,
  status: number,
  metrics: FairlaneMetrics,
  lines: RequestLines,
): void {
  const seconds = (performance.now() - x.startedAt) / 1000
  const target = x.target ?? '(none)'
  const stage = finalStage(x)
  metrics.requestsOf(target, stage, status).inc()
  metrics.requestDurationOf(target).observe(seconds, sampled(x.span))
  if (lines.enabled) lines.write(requestLine(x, status, stage, seconds * 1000), 'request')
}
