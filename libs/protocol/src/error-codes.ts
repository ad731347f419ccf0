/**
 * The stable error codes of the public contract. A code means the same thing wherever it
 * is raised; the ingress maps it to an HTTP status in one place (see `toProblem`).
 */
export const ERROR_CODES = {
  unauthenticated: { status: 401, title: 'Missing or invalid Fairlane key' },
  caller_unauthenticated: { status: 401, title: 'Missing or invalid caller credential' },
  forbidden_target: { status: 403, title: 'Target not allowed for this workspace' },
  destination_blocked: { status: 403, title: 'Destination blocked by policy' },
  model_not_allowed: { status: 403, title: 'Model not allowed' },
  admin_disabled: { status: 403, title: 'Admin API disabled' },
  not_found: { status: 404, title: 'No such route' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'Request timeout' },
  conflict: { status: 409, title: 'Conflict' },
  rate_limited: { status: 429, title: 'Rate limit exceeded' },
  queue_full: { status: 429, title: 'Queue full' },
  queue_timeout: { status: 503, title: 'Timed out waiting in queue' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  headers_too_large: { status: 431, title: 'Request headers too large' },
  cluster_unavailable: { status: 503, title: 'Cluster unavailable' },
  upstream_unavailable: { status: 502, title: 'Upstream unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timed out' },
  store_unavailable: { status: 503, title: 'Config store unavailable' },
  bad_request: { status: 400, title: 'Bad request' },
  internal: { status: 500, title: 'Internal error' },
  job_not_found: { status: 404, title: 'No such job' },
  job_finished: { status: 409, title: 'Job already finished' },
  job_not_finished: { status: 409, title: 'Job not finished' },
  idempotency_conflict: { status: 422, title: 'Idempotency-Key reused for another job' },
  tier_not_allowed: { status: 403, title: 'Tier above the key’s own' },
  jobs_unavailable: { status: 503, title: 'Jobs unavailable' },
} as const satisfies Record<string, { status: number; title: string }>

export type ErrorCode = keyof typeof ERROR_CODES

/** Where on the request path a refusal happened; `admin` for the admin API on the admin port. */
export type Stage =
  | 'correlate'
  | 'authenticate'
  | 'resolve'
  | 'limit'
  | 'queue'
  | 'forward'
  | 'respond'
  | 'admin'
  /** The jobs API (/v1/jobs) on the proxy port. */
  | 'jobs'
