import type { JobBody } from './job-body.ts'
import type { Delivery, JobAttempt, JobRecord, JobResponse, JobState } from './job.ts'

/** A job to store, as the API (or a finished job's follow-up) asks for it. */
export interface NewJob {
  readonly workspace: string
  readonly keyId: string
  readonly body: JobBody
  readonly deadlineMs: number
  readonly idempotencyKey?: string
  readonly chainId?: string
  readonly parentId?: string
  /** W3C traceparent of the submitting request's span, when it was traced. */
  readonly traceparent?: string
}

export type SubmitResult =
  | { readonly kind: 'created'; readonly job: JobRecord }
  | { readonly kind: 'replayed'; readonly job: JobRecord }
  /** The Idempotency-Key was used within its window for a different body. */
  | { readonly kind: 'conflict'; readonly job: JobRecord }

export interface JobQuery {
  readonly state?: JobState
  readonly cursor?: string
  readonly limit: number
}

/** What an attempt led to: another attempt later, or the end. */
export type AttemptEnd =
  | { readonly next: 'retry'; readonly at: number }
  | {
      readonly next: 'finish'
      readonly state: 'succeeded' | 'failed'
      readonly response?: JobResponse
      readonly error?: { readonly code: string; readonly message: string }
      /** Follow-ups to submit with the outcome, in the same write. */
      readonly followUps: readonly NewJob[]
    }

/**
 * Where jobs live: durable once `submit` resolves. Every change of a job is one write, so a
 * process killed at any point leaves each job either before or after it. The embedded store
 * is SQLite; a cluster store (JetStream) implements the same interface.
 */
export interface JobStore {
  submit(job: NewJob): Promise<SubmitResult>
  get(workspace: string, id: string): Promise<JobRecord | undefined>
  list(workspace: string, query: JobQuery): Promise<{ jobs: JobRecord[]; cursor?: string }>
  /**
   * Cancels a queued or running job (a running one's outcome is then dropped); a finished
   * job is returned unchanged.
   */
  cancel(workspace: string, id: string): Promise<JobRecord | undefined>
  /**
   * Queued jobs whose time has come, oldest first, marked running: at most `perLane` of one
   * key are looked at, and `accept` may leave some of them for later.
   */
  claim(limit: number, perLane: number, accept: (job: JobRecord) => boolean): Promise<JobRecord[]>
  /** Records an attempt of a running job and what follows; ignored for a job cancelled meanwhile. */
  endAttempt(id: string, attempt: JobAttempt, end: AttemptEnd): Promise<JobRecord | undefined>
  /** Finished jobs with a webhook delivery due. */
  dueDeliveries(limit: number): Promise<JobRecord[]>
  recordDelivery(id: string, delivery: Delivery): Promise<void>
  /** Makes every undelivered webhook of a finished job due now, its maximum age afresh. */
  redeliver(workspace: string, id: string): Promise<JobRecord | undefined>
  /** Removes finished jobs past their retention; returns how many. */
  sweep(): Promise<number>
  close(): Promise<void>
}
