import type { ConfigStore } from '@fairlane/config'
import {
  afterDelivery,
  attemptVerdict,
  followUpOf,
  jobDocument,
  type AttemptEnd,
  type JobAttempt,
  type JobRecord,
  type JobStore,
} from '@fairlane/jobs'
import type { Logger } from '@fairlane/telemetry'
import { runAttempt, type JobAttemptDeps } from './job-attempt.ts'
import { sendWebhook, type WebhookSenderDeps } from './webhook-sender.ts'

export interface JobWorkerOptions {
  readonly config: ConfigStore
  readonly jobs: JobStore
  readonly attempt: JobAttemptDeps
  readonly webhook: WebhookSenderDeps
  readonly logger: Logger
  /** Wall clock (ms): job times are stored and outlive the process. */
  readonly wallClock: () => number
  readonly random: () => number
}

const SWEEP_EVERY_MS = 60_000
/** Deliveries in flight at once per node. */
export const DELIVERY_SLOTS = 32

/**
 * The worker role: takes due jobs from the store, at most jobs.concurrency at once and
 * jobs.perKeyConcurrency of one key, runs each attempt through its lane, records what came
 * of it, and delivers finished jobs' webhooks. A waiting job holds nothing here: it is a row
 * in the store until its time comes.
 */
export class JobWorker {
  readonly #o: JobWorkerOptions
  readonly #running = new Map<string, { readonly abort: AbortController; readonly key: string }>()
  readonly #perKey = new Map<string, number>()
  readonly #delivering = new Set<string>()
  readonly #stopping = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #ticking = false
  /** The tick under way (or the last one): close() waits for it before the store closes. */
  #tick: Promise<void> = Promise.resolve()
  #again = false
  #lastSweep = 0
  #stopped = false
  readonly #tasks = new Set<Promise<void>>()

  constructor(options: JobWorkerOptions) {
    this.#o = options
  }

  start(): void {
    this.wake()
  }

  /** Look for work now (a job was submitted or finished). */
  wake(): void {
    if (this.#stopped) return
    if (this.#ticking) {
      this.#again = true
      return
    }
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#startTick(), 0)
  }

  /** Stops a running attempt of a job just cancelled. */
  cancel(id: string): void {
    this.#running.get(id)?.abort.abort()
  }

  /**
   * Stops taking work, lets attempts and deliveries in flight finish for up to `graceMs`, then
   * aborts the rest: their jobs stay running in the store, and run again when the store is
   * next opened (at least once).
   */
  async close(graceMs: number): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    // A tick inside a claim starts its attempts once the claim returns: they join the tasks
    // below, rather than start on a store already closed.
    await this.#tick
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.#tasks]),
      new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
    ])
    clearTimeout(timer)
    this.#stopping.abort()
    for (const { abort } of this.#running.values()) abort.abort()
    await Promise.allSettled([...this.#tasks])
  }

  #startTick(): void {
    this.#tick = this.#runTick()
  }

  async #runTick(): Promise<void> {
    this.#ticking = true
    try {
      await this.#claim()
      await this.#deliver()
      const now = this.#o.wallClock()
      if (now - this.#lastSweep > SWEEP_EVERY_MS) {
        this.#lastSweep = now
        await this.#o.jobs.sweep()
      }
    } catch (err) {
      this.#o.logger.error({ err }, 'job worker could not reach its store')
    } finally {
      this.#ticking = false
      if (!this.#stopped) {
        const again = this.#again
        this.#again = false
        this.#timer = setTimeout(
          () => this.#startTick(),
          again ? 0 : this.#o.config.current().jobs.pollMs,
        )
      }
    }
  }

  async #claim(): Promise<void> {
    if (this.#stopped) return
    const settings = this.#o.config.current().jobs
    const free = settings.concurrency - this.#running.size
    if (free <= 0) return
    const taken = new Map<string, number>()
    const claimed = await this.#o.jobs.claim(free, settings.perKeyConcurrency, (job) => {
      const key = laneKey(job)
      const held = (this.#perKey.get(key) ?? 0) + (taken.get(key) ?? 0)
      if (held >= settings.perKeyConcurrency) return false
      taken.set(key, (taken.get(key) ?? 0) + 1)
      return true
    })
    for (const job of claimed) this.#track(this.#run(job))
  }

  async #run(job: JobRecord): Promise<void> {
    const key = laneKey(job)
    const abort = new AbortController()
    this.#running.set(job.id, { abort, key })
    this.#perKey.set(key, (this.#perKey.get(key) ?? 0) + 1)
    try {
      const config = this.#o.config.current()
      const startedAt = this.#o.wallClock()
      if (startedAt > job.deadlineAt) {
        await this.#o.jobs.endAttempt(
          job.id,
          { startedAt, finishedAt: startedAt, error: 'job_deadline' },
          this.#finish(job, {
            next: 'finish',
            state: 'failed',
            error: {
              code: 'job_deadline',
              message: 'the deadline passed before the job could start',
            },
          }),
        )
        return
      }
      const result = await runAttempt(
        job,
        config,
        this.#o.attempt,
        abort.signal,
        config.jobs.resultMaxBytes,
      )
      // Stopping: the attempt is not recorded and the job runs again after the restart.
      if (this.#stopping.signal.aborted) return
      const finishedAt = this.#o.wallClock()
      const verdict = attemptVerdict(job, result, finishedAt, this.#o.random)
      const attempt: JobAttempt = {
        startedAt,
        finishedAt,
        ...(result.response ? { status: result.response.status } : {}),
        ...(result.region ? { region: result.region } : {}),
        calls: result.calls,
        ...(result.error ? { error: result.error.code } : {}),
        ...(verdict.next === 'retry' ? { retryAt: verdict.at } : {}),
      }
      const end =
        verdict.next === 'retry'
          ? verdict
          : this.#finish({ ...job, attempts: [...job.attempts, attempt] }, verdict)
      const recorded = await this.#o.jobs.endAttempt(job.id, attempt, end)
      if (recorded && recorded.state !== 'queued' && recorded.state !== 'running') {
        this.#o.logger.info(
          {
            jobId: job.id,
            workspace: job.workspace,
            state: recorded.state,
            attempts: recorded.attempts.length,
          },
          'job finished',
        )
      }
    } catch (err) {
      this.#o.logger.error({ err, jobId: job.id }, 'job attempt could not be recorded')
    } finally {
      this.#running.delete(job.id)
      const left = (this.#perKey.get(key) ?? 1) - 1
      if (left > 0) this.#perKey.set(key, left)
      else this.#perKey.delete(key)
      this.wake()
    }
  }

  /** The end of a job with its follow-up, whose templates read the finished job's document. */
  #finish(
    job: JobRecord,
    verdict:
      | Extract<AttemptEnd, { next: 'finish' }>
      | Omit<Extract<AttemptEnd, { next: 'finish' }>, 'followUps'>,
  ): AttemptEnd {
    const settings = this.#o.config.current().jobs
    const previous = jobDocument({
      ...job,
      state: verdict.state,
      ...(verdict.response ? { response: verdict.response } : {}),
      ...(verdict.error ? { error: verdict.error } : {}),
    })
    const followUp = followUpOf(job, verdict.state, previous, (body) =>
      Math.min(body.deadlineMs ?? settings.defaultDeadlineMs, settings.maxDeadlineMs),
    )
    return { ...verdict, followUps: followUp ? [followUp] : [] }
  }

  async #deliver(): Promise<void> {
    if (this.#stopped || this.#delivering.size >= DELIVERY_SLOTS) return
    // A delivery in flight keeps its job due until it is recorded, and the oldest due jobs
    // come first: so the rows fetched are the free slots plus one per delivery in flight
    // (DELIVERY_SLOTS in all), and behind slow receivers the free slots still find new work.
    const due = await this.#o.jobs.dueDeliveries(DELIVERY_SLOTS)
    const now = this.#o.wallClock()
    for (const job of due) {
      for (const delivery of job.deliveries) {
        const name = `${job.id}#${delivery.index}`
        if (delivery.state !== 'pending' || delivery.nextAt > now || this.#delivering.has(name)) {
          continue
        }
        if (this.#delivering.size >= DELIVERY_SLOTS) return
        this.#delivering.add(name)
        this.#track(
          (async () => {
            try {
              const config = this.#o.config.current()
              const tried = await sendWebhook(
                job,
                delivery.index,
                config,
                this.#o.webhook,
                this.#stopping.signal,
              )
              if (this.#stopping.signal.aborted) return
              const next = afterDelivery(
                delivery,
                tried,
                this.#o.wallClock(),
                config.jobs.webhooks,
                this.#o.random,
              )
              await this.#o.jobs.recordDelivery(job.id, next)
              if (next.state !== 'pending') {
                this.#o.logger[next.state === 'dead' ? 'warn' : 'info'](
                  {
                    jobId: job.id,
                    webhook: delivery.index,
                    state: next.state,
                    attempts: next.attempts,
                    ...(next.lastStatus !== undefined ? { status: next.lastStatus } : {}),
                    ...(next.lastError !== undefined ? { error: next.lastError } : {}),
                  },
                  next.state === 'dead' ? 'webhook dead-lettered' : 'webhook delivered',
                )
              }
            } catch (err) {
              this.#o.logger.error({ err, jobId: job.id }, 'webhook delivery could not be recorded')
            } finally {
              this.#delivering.delete(name)
            }
          })(),
        )
      }
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task)
    void task.finally(() => this.#tasks.delete(task))
  }
}

/** A job's lane as far as the worker's share goes: its workspace and key. */
function laneKey(job: JobRecord): string {
  return `${job.workspace}\u0000${job.keyId}`
}
