import { ERROR_CODES, type ErrorCode, type Stage } from './error-codes.ts'

/**
 * The one error type that crosses lib boundaries. Libs throw it with a stable code and the
 * stage that refused; only the ingress turns it into an HTTP response.
 */
export class FairlaneError extends Error {
  readonly code: ErrorCode
  readonly stage: Stage
  /** Extra response headers the refusal needs (Retry-After, RateLimit, …). */
  readonly headers: Readonly<Record<string, string>>

  constructor(
    code: ErrorCode,
    stage: Stage,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'FairlaneError'
    this.code = code
    this.stage = stage
    this.headers = options.headers ?? {}
  }
}

export interface Problem {
  type: string
  title: string
  status: number
  code: ErrorCode
  stage: Stage
  requestId: string
  error: string
  detail?: string
}

export const PROBLEM_TYPE_BASE = 'https://fairlane.dev/errors/'

/** `error` is the short text clients match on; for 429 it is always "Rate limit exceeded". */
export function toProblem(err: FairlaneError, requestId: string): Problem {
  const { status, title } = ERROR_CODES[err.code]
  return {
    type: PROBLEM_TYPE_BASE + err.code.replaceAll('_', '-'),
    title,
    status,
    code: err.code,
    stage: err.stage,
    requestId,
    error: status === 429 ? 'Rate limit exceeded' : title,
    detail: err.message,
  }
}
