import type { JobRecord, JobResponse } from './job.ts'

/** What one attempt of a job came to. */
export interface AttemptResult {
  /** The upstream's answer, when one came. */
  readonly response?: JobResponse
  /** Milliseconds the upstream (Retry-After) or the lane's refusal named to wait. */
  readonly retryAfterMs?: number
  /** Why there is no usable answer: an error code of docs/errors.md. */
  readonly error?: { readonly code: string; readonly message: string }
  /** Upstream calls made; 0 when the lane refused before any. */
  readonly calls: number
  /** Another attempt cannot change the outcome (a revoked key, a forbidden destination). */
  readonly final?: boolean
}

export type AttemptVerdict =
  | { readonly next: 'retry'; readonly at: number }
  | {
      readonly next: 'finish'
      readonly state: 'succeeded' | 'failed'
      readonly response?: JobResponse
      readonly error?: { readonly code: string; readonly message: string }
    }

const BACKOFF_BASE_MS = 1_000
const BACKOFF_MAX_MS = 60_000

/** 408, 425, 429 and 5xx may pass by themselves; any other answer is final. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500
}

/**
 * What follows an attempt: a 2xx or 3xx finishes the job as succeeded, another 4xx as failed;
 * a 408/425/429/5xx or no answer is tried again at the time the upstream (or the lane) named,
 * else after 1 s, 2 s, 4 s … up to 60 s (±20% jitter), while the job's attempts and deadline
 * allow. Attempts the lane refused before any upstream call do not count against `attempts`.
 */
export function attemptVerdict(
  job: JobRecord,
  result: AttemptResult,
  now: number,
  random: () => number,
): AttemptVerdict {
  const { response } = result
  if (response && !retryableStatus(response.status)) {
    return response.status < 400
      ? { next: 'finish', state: 'succeeded', response }
      : {
          next: 'finish',
          state: 'failed',
          response,
          error: { code: 'upstream_status', message: `the upstream answered ${response.status}` },
        }
  }
  const failure = response
    ? { code: 'upstream_status', message: `the upstream answered ${response.status}` }
    : (result.error ?? { code: 'internal', message: 'the attempt failed' })
  const failed = (message?: string): AttemptVerdict => ({
    next: 'finish',
    state: 'failed',
    ...(response ? { response } : {}),
    error: message ? { code: 'job_deadline', message } : failure,
  })
  if (result.final) return failed()
  const calls = job.attempts.filter((a) => (a.calls ?? 0) > 0).length + (result.calls > 0 ? 1 : 0)
  if (calls >= job.body.retry.attempts) return failed()
  const backoff = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, calls - 1), BACKOFF_MAX_MS)
  const wait = result.retryAfterMs ?? backoff * (0.8 + 0.4 * random())
  const at = now + Math.max(0, Math.round(wait))
  if (at > job.deadlineAt) {
    return failed(`the deadline passes before the next attempt could start (${failure.message})`)
  }
  return { next: 'retry', at }
}
