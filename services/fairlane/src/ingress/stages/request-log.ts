import { performance } from 'node:perf_hooks'
import type { FairlaneMetrics, Logger } from '@fairlane/telemetry'
import type { Exchange } from '../exchange.ts'

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}

/**
 * The request's one log line and its metrics, when its response closed. Built from named
 * safe fields of the exchange: ids and names, never the key, a body or a query string.
 */
export function recordRequest(
  x: Exchange,
  status: number,
  metrics: FairlaneMetrics,
  logger: Logger,
): void {
  const seconds = (performance.now() - x.startedAt) / 1000
  const target = x.target ?? '(none)'
  const stage = x.code || x.clientClosed ? x.stage : 'respond'
  metrics.requests.inc({ target, status: String(status), stage })
  metrics.requestDuration.observe({ target }, seconds)
  if (!logger.isLevelEnabled('info')) return
  logger.info(
    {
      requestId: x.requestId,
      traceId: x.trace.traceId,
      method: x.method,
      path: x.path,
      workspace: x.workspace,
      keyId: x.keyId,
      target: x.target,
      stage,
      status,
      code: x.code,
      durationMs: round(seconds * 1000),
      queueMs: x.queueMs === undefined ? undefined : round(x.queueMs),
      upstreamMs: x.upstreamMs === undefined ? undefined : round(x.upstreamMs),
      upstreamStatus: x.upstreamStatus,
      attempts: x.attempts,
      clientClosed: x.clientClosed,
      error: x.error,
    },
    'request',
  )
}
