/** The shapes of the jobs API (docs/jobs.md); fields beyond these pass through untouched. */

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

/** A job in one of these states will not change any more. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled'])

/** The request a job makes: `target` and `path`, or `url` (held to the approved hosts). */
export interface JobRequest {
  readonly method: string
  readonly target?: string
  readonly path?: string
  readonly url?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: unknown
  readonly [field: string]: unknown
}

/** Where the result goes: an operator-approved `target` and `path`, or a public `url`. */
export interface JobWebhook {
  readonly target?: string
  readonly path?: string
  readonly url?: string
  readonly [field: string]: unknown
}

/** Everything of the job body beside `request`; `idempotencyKey` is sent as a header. */
export interface QueueOptions {
  readonly webhook?: JobWebhook | readonly JobWebhook[]
  readonly tier?: string
  readonly deadlineMs?: number
  readonly idempotencyKey?: string
  readonly [field: string]: unknown
}

/** The upstream's last answer: `body` for JSON or text, `bodyBase64` for other bytes. */
export interface JobResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body?: unknown
  readonly bodyBase64?: string
  readonly truncated?: boolean
}

export interface JobAttempt {
  readonly startedAt: string
  readonly finishedAt?: string
  /** The upstream's status; absent when none answered. */
  readonly status?: number
  readonly region?: string
  /** The error code when no usable answer came (`rate_limited`, `upstream_unavailable`…). */
  readonly error?: string
  readonly retryAt?: string
  readonly [field: string]: unknown
}

export interface Job {
  readonly id: string
  readonly state: JobState
  readonly attempts: readonly JobAttempt[]
  readonly response?: JobResponse
  /** Why a failed job failed: `upstream_status`, `job_deadline`, or a refusal's code. */
  readonly error?: { readonly code: string; readonly message: string }
  readonly chainId?: string
  readonly [field: string]: unknown
}

/** The answer to POST /v1/jobs: at least the job's id. */
export interface QueuedJob {
  readonly id: string
  readonly [field: string]: unknown
}

export interface ListJobsOptions {
  readonly state?: JobState
  readonly cursor?: string
  readonly limit?: number
}

export interface JobPage {
  readonly jobs: readonly Job[]
  /** Pass to the next listJobs call; absent on the last page. */
  readonly cursor?: string
}
