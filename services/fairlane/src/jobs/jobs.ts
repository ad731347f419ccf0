import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { ConfigStore, Env } from '@fairlane/config'
import type { DestinationPolicy } from '@fairlane/forward'
import { SqliteJobStore, type JobStore } from '@fairlane/jobs'
import { FairlaneError } from '@fairlane/protocol'
import type { Logger } from '@fairlane/telemetry'
import type { JobAttemptDeps } from './job-attempt.ts'
import { JobWorker } from './job-worker.ts'
import type { JobsBackend } from './jobs-api.ts'
import type { WebhookSenderDeps } from './webhook-sender.ts'

export interface JobsOptions {
  readonly config: ConfigStore
  readonly env: Env
  readonly mode: 'embedded' | 'cluster'
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
 * A node's jobs: the embedded store, opened by the first job (a node that never sees one
 * writes nothing to disk) or at start when a store is already there (its jobs carry on),
 * and the worker that runs them. Cluster mode keeps jobs in JetStream, not built yet: the
 * API answers 503 jobs_unavailable there.
 */
export class Jobs implements JobsBackend {
  readonly #o: JobsOptions
  readonly #file: string
  #store: JobStore | undefined
  #worker: JobWorker | undefined

  constructor(options: JobsOptions) {
    this.#o = options
    this.#file = join(dataDirOf(options.config, options.env), STORE_FILE)
    if (options.mode === 'embedded' && existsSync(this.#file)) this.store()
  }

  store(): JobStore {
    if (this.#store) return this.#store
    if (this.#o.mode !== 'embedded') {
      throw new FairlaneError(
        'jobs_unavailable',
        'jobs',
        'jobs are not available in cluster mode yet (embedded mode only)',
      )
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
    this.#worker = new JobWorker({
      config: this.#o.config,
      jobs: store,
      attempt: this.#o.attempt,
      webhook: this.#o.webhook,
      logger: this.#o.logger,
      wallClock: () => Date.now(),
      random: Math.random,
    })
    this.#worker.start()
    return store
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
