import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FairlaneConfig } from '@fairlane/config'
import {
  FairlaneError,
  childTraceParent,
  parseTraceParent,
  requestIdFrom,
} from '@fairlane/protocol'
import { tooLarge } from '../body-limit.ts'
import { pathOf, type Exchange } from '../exchange.ts'

/**
 * Stage 1: the request's identity (X-Request-Id kept or made, Fairlane's own span in the
 * client's trace or a new one) and the state object every later stage fills in. Cannot fail:
 * whatever follows needs a request id to answer with.
 */
export function correlate(
  req: IncomingMessage,
  res: ServerResponse,
  config: FairlaneConfig,
): Exchange {
  return {
    req,
    res,
    config,
    requestId: requestIdFrom(req.headers['x-request-id']),
    trace: childTraceParent(parseTraceParent(req.headers.traceparent)),
    method: req.method ?? 'GET',
    path: pathOf(req.url ?? '/'),
    startedAt: performance.now(),
    abort: new AbortController(),
    stage: 'correlate',
    closed: false,
    attempts: 0,
  }
}

/**
 * TRACE makes an upstream echo the request it received, injected credential included, back
 * to the client; TRACK is its IIS twin (Node's parser already refuses it as unknown).
 */
const REFUSED_METHODS = new Set(['TRACE', 'TRACK'])
/** The methods every target takes; any other the HTTP parser knows passes too, except TRACE. */
export const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

/**
 * What is refused before the key is even looked at: TRACE, a path with a malformed percent-escape
 * (the detail names no part of the target, which may carry a secret) and a declared body
 * above server.maxBodyBytes.
 */
export function checkRequestHead(x: Exchange): void {
  if (REFUSED_METHODS.has(x.method)) {
    throw new FairlaneError('method_not_allowed', 'correlate', `${x.method} is not proxied`, {
      headers: { allow: ALLOW },
    })
  }
  if (x.path.includes('%')) {
    try {
      decodeURI(x.path)
    } catch {
      throw new FairlaneError(
        'bad_request',
        'correlate',
        'the request path has a malformed percent-escape',
      )
    }
  }
  const declared = x.req.headers['content-length']
  const maxBody = x.config.server.maxBodyBytes
  if (declared !== undefined && Number(declared) > maxBody) throw tooLarge(maxBody, 'correlate')
}
