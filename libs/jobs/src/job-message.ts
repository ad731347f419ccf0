import { FINISHED_STATES, type JobRecord } from './job.ts'
import { nextDeliveryAt } from './job-record.ts'

/**
 * A job as the cluster store keeps it in its KV bucket: the record, and the stream sequence
 * of the "job due" message that claimed it while it runs. Exactly one message drives a job
 * at a time, and that message is acked only once the job has nothing left to do.
 */
export interface StoredJob {
  readonly job: JobRecord
  /**
   * The message whose holder runs the job (state running only): its stream sequence, and
   * the delivery of it that claimed the job, which tells a holder whose message went to
   * another worker from the one that took the job over.
   */
  readonly runBy?: { readonly seq: number; readonly delivery: number }
}

/**
 * What a worker does with a "job due" message, from the job's stored state:
 * - `run`: the job is due (or its holder died mid-attempt): claim it and run an attempt;
 * - `deliver`: the job is finished and a webhook delivery is due now: hold the message
 *   while delivering;
 * - `later`: give the message back with a delay, until the job's or a delivery's time;
 * - `done`: ack, nothing is left to do (gone, delivered, or a stray copy of the message).
 */
export type MessageVerdict =
  | { readonly kind: 'run' }
  | { readonly kind: 'deliver' }
  | { readonly kind: 'later'; readonly delayMs: number }
  | { readonly kind: 'done' }

/**
 * The verdict for message `seq` of a job stored as `stored` (undefined: not in the bucket,
 * removed after its retention) at time `now`.
 */
export function messageVerdict(
  stored: StoredJob | undefined,
  seq: number,
  now: number,
): MessageVerdict {
  if (!stored) return { kind: 'done' }
  const { job } = stored
  if (job.state === 'queued') {
    return job.dueAt > now ? { kind: 'later', delayMs: job.dueAt - now } : { kind: 'run' }
  }
  if (job.state === 'running') {
    // The message that claimed the job comes back only when its holder stopped extending it
    // (the node died or hung): the job runs again. Any other message is a stray copy (a
    // submission replayed, a cancellation's nudge) while the job's own message is held.
    return stored.runBy?.seq === seq ? { kind: 'run' } : { kind: 'done' }
  }
  if (!FINISHED_STATES.has(job.state)) return { kind: 'done' }
  const at = nextDeliveryAt(job)
  if (at === undefined) return { kind: 'done' }
  return at > now ? { kind: 'later', delayMs: at - now } : { kind: 'deliver' }
}
