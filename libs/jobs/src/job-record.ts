import { createHash } from 'node:crypto'
import type { Delivery, JobRecord } from './job.ts'
import type { NewJob } from './job-store.ts'

/**
 * What an Idempotency-Key's job is compared by: a submission with the same key and the same
 * hash replays the job, another hash conflicts.
 */
export function bodyHash(body: NewJob['body']): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex')
}

/** A job as stored on submission: queued, due now. */
export function newJobRecord(job: NewJob, id: string, now: number): JobRecord {
  return {
    id,
    workspace: job.workspace,
    keyId: job.keyId,
    state: 'queued',
    body: job.body,
    createdAt: now,
    updatedAt: now,
    dueAt: now,
    deadlineAt: now + job.deadlineMs,
    attempts: [],
    chainId: job.chainId ?? id,
    ...(job.parentId !== undefined ? { parentId: job.parentId } : {}),
    ...(job.idempotencyKey !== undefined ? { idempotencyKey: job.idempotencyKey } : {}),
    ...(job.traceparent !== undefined ? { traceparent: job.traceparent } : {}),
    deliveries: [],
  }
}

/** A job's end (`end` says how): every webhook of it becomes due now. */
export function finishedJob(
  job: JobRecord,
  end: Partial<JobRecord> & Pick<JobRecord, 'state'>,
  now: number,
): JobRecord {
  const hooks = job.body.webhooks?.length ?? (job.body.webhook ? 1 : 0)
  const deliveries = Array.from({ length: hooks }, (_, index): Delivery => ({
    index,
    state: 'pending',
    attempts: 0,
    firstAt: now,
    nextAt: now,
  }))
  return { ...job, ...end, finishedAt: now, updatedAt: now, deliveries }
}

/** The earliest pending delivery of a finished job, undefined when none is pending. */
export function nextDeliveryAt(job: JobRecord): number | undefined {
  let at: number | undefined
  for (const d of job.deliveries) {
    if (d.state === 'pending' && (at === undefined || d.nextAt < at)) at = d.nextAt
  }
  return at
}
