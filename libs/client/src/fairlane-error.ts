import { retryAfterSeconds } from './retry-after.ts'

/** The problem+json body Fairlane answers with when it refuses or fails a request. */
export interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly code: string
  readonly stage?: string
  readonly requestId?: string
  readonly error?: string
  readonly detail?: string
  readonly [field: string]: unknown
}

const PROBLEM_TYPE = 'https://fairlane.dev/errors/'

/**
 * An error answer from Fairlane, or a non-2xx answer of the jobs API. `code` and `problem`
 * are set only when Fairlane itself refused (a problem+json body of its own); an upstream's
 * answer passed through has neither. Match on the subclass or on `code`.
 */
export class FairlaneError extends Error {
  override readonly name: string = 'FairlaneError'
  readonly status: number
  readonly code: string | undefined
  readonly stage: string | undefined
  readonly requestId: string | undefined
  readonly detail: string | undefined
  /** Seconds from the Retry-After header, when there was one. */
  readonly retryAfter: number | undefined
  readonly problem: Problem | undefined

  constructor(status: number, problem: Problem | undefined, retryAfter: number | undefined) {
    super(
      problem
        ? `${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`
        : `HTTP ${status}`,
    )
    this.status = status
    this.problem = problem
    this.code = problem?.code
    this.stage = problem?.stage
    this.requestId = problem?.requestId
    this.detail = problem?.detail
    this.retryAfter = retryAfter
  }

  /**
   * Fairlane refused before anything reached the upstream and said when to come back (429
   * or 503 with Retry-After): any method may be sent again after the wait.
   */
  get retryable(): boolean {
    return (
      this.problem !== undefined &&
      (this.status === 429 || this.status === 503) &&
      this.retryAfter !== undefined
    )
  }
}

/** 401: no Fairlane key, an unknown or revoked one, or a caller credential a route refused. */
export class AuthenticationError extends FairlaneError {
  override readonly name = 'AuthenticationError'
}
/** 403: a target the workspace may not use, or a destination the policy blocks. */
export class PermissionDeniedError extends FairlaneError {
  override readonly name = 'PermissionDeniedError'
}
export class NotFoundError extends FairlaneError {
  override readonly name = 'NotFoundError'
}
/** 409, 422 idempotency_conflict: the job is not in a state for this, or the key is taken. */
export class ConflictError extends FairlaneError {
  override readonly name = 'ConflictError'
}
/** The request itself was wrong (400, 405, 408, 413, 422, 431): do not send it again unchanged. */
export class BadRequestError extends FairlaneError {
  override readonly name = 'BadRequestError'
}
/** 429 rate_limited or queue_full: come back after `retryAfter` seconds. */
export class RateLimitError extends FairlaneError {
  override readonly name = 'RateLimitError'
}
/** 503 queue_timeout, cluster_unavailable, store_unavailable: come back after `retryAfter`. */
export class UnavailableError extends FairlaneError {
  override readonly name = 'UnavailableError'
}
/** 502 upstream_unavailable, 504 upstream_timeout: Fairlane already retried what it could. */
export class UpstreamError extends FairlaneError {
  override readonly name = 'UpstreamError'
}

type ErrorClass = new (
  status: number,
  problem: Problem | undefined,
  retryAfter: number | undefined,
) => FairlaneError

const BY_CODE: Readonly<Record<string, ErrorClass>> = {
  unauthenticated: AuthenticationError,
  caller_unauthenticated: AuthenticationError,
  forbidden_target: PermissionDeniedError,
  destination_blocked: PermissionDeniedError,
  admin_disabled: PermissionDeniedError,
  not_found: NotFoundError,
  conflict: ConflictError,
  bad_request: BadRequestError,
  method_not_allowed: BadRequestError,
  request_timeout: BadRequestError,
  payload_too_large: BadRequestError,
  headers_too_large: BadRequestError,
  rate_limited: RateLimitError,
  queue_full: RateLimitError,
  queue_timeout: UnavailableError,
  cluster_unavailable: UnavailableError,
  store_unavailable: UnavailableError,
  upstream_unavailable: UpstreamError,
  upstream_timeout: UpstreamError,
  internal: FairlaneError,
  job_not_found: NotFoundError,
  job_finished: ConflictError,
  job_not_finished: ConflictError,
  idempotency_conflict: ConflictError,
  tier_not_allowed: PermissionDeniedError,
  jobs_unavailable: UnavailableError,
}

// A code this client does not know (a newer server) is classed by its status.
const BY_STATUS: Readonly<Record<number, ErrorClass>> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: BadRequestError,
  408: BadRequestError,
  409: ConflictError,
  413: BadRequestError,
  422: BadRequestError,
  429: RateLimitError,
  431: BadRequestError,
  502: UpstreamError,
  503: UnavailableError,
  504: UpstreamError,
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== 'object' || value === null) return false
  const { type, code, status } = value as Record<string, unknown>
  return (
    typeof type === 'string' &&
    type.startsWith(PROBLEM_TYPE) &&
    typeof code === 'string' &&
    typeof status === 'number'
  )
}

/** Fairlane's own problem in a body, or undefined for anything else (an upstream's answer). */
function parseProblem(contentType: string | null, body: string): Problem | undefined {
  if (!contentType?.toLowerCase().startsWith('application/problem+json')) return undefined
  try {
    const value: unknown = JSON.parse(body)
    return isProblem(value) ? value : undefined
  } catch {
    return undefined
  }
}

/** The error of an answer already read: its status, headers and body text. */
export function errorFrom(
  status: number,
  headers: Headers,
  body: string,
  nowMs: number = Date.now(),
): FairlaneError {
  const problem = parseProblem(headers.get('content-type'), body)
  const Class = (problem && BY_CODE[problem.code]) ?? BY_STATUS[status] ?? FairlaneError
  return new Class(status, problem, retryAfterSeconds(headers.get('retry-after'), nowMs))
}

/**
 * Fairlane's refusal in a response of the proxy forms, or undefined when the response is the
 * upstream's (whatever its status). Reads a clone: the response's body stays readable.
 */
export async function problemError(response: Response): Promise<FairlaneError | undefined> {
  if (response.ok || !response.headers.get('content-type')?.includes('problem+json')) {
    return undefined
  }
  const error = errorFrom(response.status, response.headers, await response.clone().text())
  return error.problem ? error : undefined
}
