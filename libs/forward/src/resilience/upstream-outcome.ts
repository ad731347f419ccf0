import { FairlaneError } from '@fairlane/protocol'

/**
 * Why an upstream call says the endpoint is unwell. 'unexpected-status' comes only from an
 * active probe whose answer is outside its expected range.
 */
export type FailureKind = 'status-5xx' | 'unexpected-status' | 'timeout' | 'connect-error' | 'reset'

/**
 * What one call (a proxied request or an active probe) says about an endpoint's health.
 * `latencyMs` is the time until the response head arrived, or until the call failed.
 */
export type Outcome =
  | { readonly ok: true; readonly kind: 'success'; readonly latencyMs: number }
  | { readonly ok: false; readonly kind: FailureKind; readonly latencyMs: number }

/**
 * Any response but a 5xx is a success for health. A 429 in particular is a healthy upstream
 * that is busy: the lane's adaptive limits answer it by slowing down. Opening the circuit
 * would move the whole load to another endpoint of the same provider, which then answers
 * 429 as well, and would hide a healthy endpoint for the open time. Other 4xx are the
 * request's fault, not the endpoint's.
 */
export function statusOutcome(status: number, latencyMs: number): Outcome {
  return status >= 500 && status <= 599
    ? { ok: false, kind: 'status-5xx', latencyMs }
    : { ok: true, kind: 'success', latencyMs }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])
const ABORT_CODES = new Set(['UND_ERR_ABORTED', 'ABORT_ERR'])

/**
 * Classifies a failed call; `undefined` when the failure says nothing about the endpoint:
 * the call was aborted on our side (the client went away, a hedge lost, the prober stopped),
 * so it must not count against the upstream.
 *
 * A connect timeout is a 'connect-error', not a 'timeout': nothing reached the upstream,
 * which is what a failover decision needs to know. A FairlaneError from the forwarder is
 * judged by its cause.
 */
export function errorOutcome(err: unknown, latencyMs: number): Outcome | undefined {
  let cause = err
  while (cause instanceof FairlaneError && cause.cause !== undefined) cause = cause.cause
  const name = (cause as { name?: unknown } | null)?.name
  const code = (cause as { code?: unknown } | null)?.code
  if (name === 'AbortError' || (typeof code === 'string' && ABORT_CODES.has(code))) {
    return undefined
  }
  if (name === 'TimeoutError' || (typeof code === 'string' && TIMEOUT_CODES.has(code))) {
    return { ok: false, kind: 'timeout', latencyMs }
  }
  if (typeof code === 'string' && RESET_CODES.has(code)) {
    return { ok: false, kind: 'reset', latencyMs }
  }
  // Refused, unreachable, DNS, TLS, a connect timeout, a blocked destination: no answer at all.
  return { ok: false, kind: 'connect-error', latencyMs }
}
