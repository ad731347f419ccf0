import type { NatsConnection } from '@nats-io/nats-core'
import { AckPolicy, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'

/** The job documents. */
const JOB_BUCKET = 'fairlane-jobs'
/** Idempotency-Keys. */
const JOB_KEY_BUCKET = 'fairlane-job-keys'
/** The work queue of "job due" messages. */
export const JOB_STREAM = 'FAIRLANE_JOBS'
export const JOB_SUBJECT = 'fairlane.v1.jobs.due'
/** The durable pull consumer every worker shares. */
export const JOB_CONSUMER = 'workers'

export interface JobStreamsSettings {
  /** The job bucket's max age. */
  readonly keepMs: number
  /** The key bucket's max age. */
  readonly idempotencyMs: number
  readonly replicas: number
  readonly ackWaitMs: number
}

function alreadyThere(err: unknown): boolean {
  return err instanceof Error && /already in use|already exists|exists/i.test(err.message)
}

/**
 * Creates the job buckets, the work-queue stream and its consumer (file storage), or opens
 * them as another node made them. This node's max ages and ack wait win: the last node to
 * start has the newest config. Replicas are those of the first.
 */
export async function openJobStreams(
  nc: NatsConnection,
  settings: JobStreamsSettings,
): Promise<{ jobs: KV; keys: KV }> {
  const jsm = await jetstreamManager(nc, { timeout: 2_000 })
  const kvm = new Kvm(nc)
  const bucket = async (name: string, maxAgeMs: number): Promise<KV> => {
    try {
      return await kvm.create(name, {
        history: 1,
        replicas: settings.replicas,
        storage: StorageType.File,
        ttl: maxAgeMs,
      })
    } catch (err) {
      if (!alreadyThere(err)) throw err
      await jsm.streams.update(`KV_${name}`, { max_age: maxAgeMs * 1_000_000 })
      return kvm.open(name)
    }
  }
  const jobs = await bucket(JOB_BUCKET, settings.keepMs)
  const keys = await bucket(JOB_KEY_BUCKET, settings.idempotencyMs)
  try {
    await jsm.streams.add({
      name: JOB_STREAM,
      subjects: [JOB_SUBJECT],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: settings.replicas,
    })
  } catch (err) {
    if (!alreadyThere(err)) throw err
  }
  const consumer = {
    ack_wait: settings.ackWaitMs * 1_000_000,
    max_deliver: -1,
    // Jobs waiting for a retry or a delivery are messages given back with a delay, still
    // pending on the consumer: no bound, or waiting jobs would stop new ones.
    max_ack_pending: -1,
  }
  try {
    await jsm.consumers.add(JOB_STREAM, {
      durable_name: JOB_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ...consumer,
    })
  } catch (err) {
    if (!alreadyThere(err)) throw err
    await jsm.consumers.update(JOB_STREAM, JOB_CONSUMER, consumer)
  }
  return { jobs, keys }
}
