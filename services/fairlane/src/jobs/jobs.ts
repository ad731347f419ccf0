import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { NatsConnection } from '@nats-io/transport-node'
import type { ConfigStore, Env } from '@fairlane/config'
import type { DestinationPolicy } from '@fairlane/forward'
import { JetStreamJobStore, SqliteJobStore, sortableJobId, type JobStore } from '@fairlane/jobs'
import { FairlaneError } from '@fairlane/protocol'
import type { Logger } from '@fairlane/telemetry'
import type { JobAttemptDeps } from './job-attempt.ts'
import { DELIVERY_SLOTS, JobWorker } from './job-worker.ts'
import type { JobsBackend } from './jobs-api.ts'
import type { WebhookSenderDeps } from './webhook-sender.ts'

export interface JobsOptions {
  readonly config: ConfigStore
  readonly env: Env
  /** Cluster mode: the node's NATS connection, where JetStream keeps the jobs. */
  readonly cluster?: {
    readonly nc: NatsConnection
    /** The worker role: this node runs jobs; without it, it only accepts and serves them. */
    readonly work: boolean
  }
  readonly attempt: JobAttemptDeps
  readonly webhook: WebhookSenderDeps
  readonly logger: Logger
}

const IDEMPOTENCY_MS = 24 * 3_600_000
const STORE_FILE = 'jobs.sqlite'

/** Where the embedded store lives: FAIRLANE_DATA_DIR, jobs.dataDir, or ./fairlane-data. */
function dataDirOf(config: ConfigStore, env: Env): string {
  return resolve(env['FAIRLANE_DATA_DIR'] || config.current().jobs.dataDir || 'fairlane-data')
}

/**
 * A node's jobs. Embedded: the SQLite store, opened by the first job (a node that never sees
 * one writes nothing to disk) or at start when a store is already there (its jobs carry
 * on), and the worker that runs them. Cluster: the JetStream store, opened at start by
 * `openCluster`, and the worker on nodes with the worker role.
 */
export class Jobs implements JobsBackend {
  readonly #o: JobsOptions
  readonly #file: string
  #store: JobStore | undefined
  #worker: JobWorker | undefined

  constructor(options: JobsOptions) {
    this.#o = options
    this.#file = join(dataDirOf(options.config, options.env), STORE_FILE)
    if (!options.cluster && existsSync(this.#file)) this.store()
  }

  /**
   * Cluster mode: creates or opens the job buckets and stream, waiting up to `waitMs` for
   * JetStream, and starts the worker on a worker node.
   */
  async openCluster(waitMs: number): Promise<void> {
    const cluster = this.#o.cluster
    if (!cluster) return
    const settings = this.#o.config.current().jobs
    let worker: JobWorker | undefined
    const store = await JetStreamJobStore.open({
      nc: cluster.nc,
      now: () => Date.now(),
      newId: () => sortableJobId(Date.now(), randomBytes(10).toString('hex')),
      // Every job is rewritten at least this often while it lives: at each attempt (a retry
      // falls before the deadline) and delivery try, so only finished jobs age out.
      keepMs: Math.max(settings.retentionMs, settings.maxDeadlineMs, settings.webhooks.maxDelayMs),
      idempotencyMs: IDEMPOTENCY_MS,
      replicas: settings.cluster.replicas,
      ackWaitMs: settings.cluster.ackWaitMs,
      openWaitMs: waitMs,
      ...(cluster.work
        ? {
            work: {
              slots: () => this.#o.config.current().jobs.concurrency,
              deliveries: DELIVERY_SLOTS,
              onReady: () => worker?.wake(),
              onError: (err: unknown) =>
                this.#o.logger.error({ err }, 'job queue could not be read; trying again'),
              onCancelled: (id: string) => worker?.cancel(id),
            },
          }
        : {}),
    })
    this.#o.logger.info(
      { replicas: settings.cluster.replicas, worker: cluster.work },
      'job store opened (JetStream)',
    )
    this.#store = store
    if (cluster.work) {
      worker = this.#startWorker(store)
      this.#worker = worker
    }
  }

  store(): JobStore {
    if (this.#store) return this.#store
    if (this.#o.cluster) {
      throw new FairlaneError('jobs_unavailable', 'jobs', 'the job store is not open yet')
    }
    let store: JobStore
    try {
      store = new SqliteJobStore({
        file: this.#file,
        now: () => Date.now(),
        newId: () => `job_${randomUUID().replaceAll('-', '')}`,
        retentionMs: this.#o.config.current().jobs.retentionMs,
        idempotencyMs: IDEMPOTENCY_MS,
      })
    } catch (err) {
      this.#o.logger.error({ err, file: this.#file }, 'job store could not be opened')
      throw new FairlaneError('jobs_unavailable', 'jobs', 'the job store could not be opened', {
        cause: err,
      })
    }
    this.#o.logger.info({ file: this.#file }, 'job store opened')
    this.#store = store
    this.#worker = this.#startWorker(store)
    return store
  }

  #startWorker(store: JobStore): JobWorker {
    const worker = new JobWorker({
      config: this.#o.config,
      jobs: store,
      attempt: this.#o.attempt,
      webhook: this.#o.webhook,
      logger: this.#o.logger,
      wallClock: () => Date.now(),
      random: Math.random,
    })
    worker.start()
    return worker
  }

  get policy(): DestinationPolicy {
    return this.#o.attempt.policy
  }

  submitted(): void {
    this.#worker?.wake()
  }

  cancelled(id: string): void {
    this.#worker?.cancel(id)
  }

  /** After the grace period for attempts in flight, the store closes; see JobWorker.close. */
  async close(graceMs: number): Promise<void> {
    await this.#worker?.close(graceMs)
    await this.#store?.close()
  }
}
