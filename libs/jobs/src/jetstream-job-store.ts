import { setTimeout as sleep } from 'node:timers/promises'
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import {
  jetstream,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream'
import { FINISHED_STATES, type Delivery, type JobAttempt, type JobRecord } from './job.ts'
import { JobBucket, lostRace } from './job-bucket.ts'
import { messageVerdict, type StoredJob } from './job-message.ts'
import { bodyHash, finishedJob, newJobRecord, nextDeliveryAt } from './job-record.ts'
import type { AttemptEnd, JobQuery, JobStore, NewJob, SubmitResult } from './job-store.ts'
import { JOB_CONSUMER, JOB_STREAM, JOB_SUBJECT, openJobStreams } from './job-streams.ts'
import { IdempotencyKeys } from './idempotency-keys.ts'

/** Core NATS (not stored): a job was cancelled, so the worker running it stops. */
const CANCELLED_SUBJECT = 'fairlane.v1.jobs.cancelled'

export interface JetStreamJobStoreOptions {
  readonly nc: NatsConnection
  /** Wall clock (ms): job times are stored and read by other nodes. */
  readonly now: () => number
  /** Ids must sort by creation time (sortableJobId): listings sort by id. */
  readonly newId: () => string
  /** How long a job document stays after its last change: the job bucket's max age. */
  readonly keepMs: number
  /** How long an Idempotency-Key names the same job: the key bucket's max age. */
  readonly idempotencyMs: number
  /** JetStream replicas of the buckets and the stream (1, or 3 on a cluster of 3+ servers). */
  readonly replicas: number
  /** A message not acked nor extended this long goes to another worker. */
  readonly ackWaitMs: number
  /**
   * Whether this node takes work from the queue (the worker role); without it the store only
   * submits, reads and changes jobs.
   */
  readonly work?: {
    /** Attempts this node runs at once (jobs.concurrency): due jobs are held for these. */
    readonly slots: () => number
    /** Finished jobs held at once beside them, for their webhook deliveries. */
    readonly deliveries: number
    /** A due job or delivery arrived: the worker looks now rather than at its next poll. */
    readonly onReady: () => void
    /**
     * The queue could not be read (the first failure of a run of them: one line per outage);
     * the store tries again every second.
     */
    readonly onError: (err: unknown) => void
    /** A job was cancelled on any node: its attempt running here, if any, stops. */
    readonly onCancelled: (id: string) => void
  }
  /** How long opening waits for the JetStream API (its leader is elected after start). */
  readonly openWaitMs: number
}

/** A message this node holds, and the job it drives as last read or written. */
interface Held {
  msg: JsMsg
  readonly key: string
  phase: 'due' | 'running' | 'delivering'
  /** The delivery of the message that claimed the job, once claimed. */
  runAs?: number
  job: JobRecord
  revision: number
}

/** A due job another key's share refused waits this long before it is fetched again. */
const REFUSED_DELAY_MS = 1_000
/** The long poll of one fetch; new messages come at once, this only bounds an idle wait. */
const FETCH_EXPIRES_MS = 5_000
/** Reads of a listing in flight at once. */
const LIST_READS = 32

const encoder = new TextEncoder()

/**
 * The cluster job store, in NATS JetStream (file storage):
 * - each job is one document in the KV bucket `fairlane-jobs`, and every change of it is a
 *   compare-and-set on the key's revision, so of two nodes changing a job one wins and the
 *   other reads again (two workers never both claim a job);
 * - each job has one "job due" message in the work-queue stream `FAIRLANE_JOBS`, read by
 *   the durable pull consumer `workers` that every worker shares. The message is held
 *   (extended with `working()`) while the job runs or its webhooks are delivered, given
 *   back with a delay (`nak`) until a retry or a delivery is due, and acked only when the
 *   job has nothing left to do, after its outcome is written. A worker that dies stops
 *   extending its messages: after the ack wait they go to another worker, which finds the
 *   job running under that same message and runs it again (at least once);
 * - Idempotency-Keys are keys of the bucket `fairlane-job-keys`, taken with create().
 * Documents leave the bucket `keepMs` after their last change (the bucket's max age), so
 * `sweep` has nothing to do.
 */
export class JetStreamJobStore implements JobStore {
  readonly #o: JetStreamJobStoreOptions
  readonly #js: JetStreamClient
  readonly #jobs: JobBucket
  readonly #keys: IdempotencyKeys
  readonly #held = new Map<string, Held>()
  #closed = false
  #fetching: ConsumerMessages | undefined
  #pulling: Promise<void> = Promise.resolve()
  #room: (() => void) | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #cancellations: Subscription | undefined

  private constructor(options: JetStreamJobStoreOptions, jobs: JobBucket, keys: IdempotencyKeys) {
    this.#o = options
    this.#js = jetstream(options.nc)
    this.#jobs = jobs
    this.#keys = keys
  }

  /** Creates (or opens) the buckets, the stream and the consumer, and starts taking work. */
  static async open(options: JetStreamJobStoreOptions): Promise<JetStreamJobStore> {
    const giveUpAt = Date.now() + options.openWaitMs
    for (;;) {
      try {
        const { jobs, keys } = await openJobStreams(options.nc, options)
        const store = new JetStreamJobStore(
          options,
          new JobBucket(jobs),
          new IdempotencyKeys(keys, options.now),
        )
        if (options.work) store.#startWork()
        return store
      } catch (err) {
        // JetStream elects its meta leader a few seconds after the servers start.
        if (Date.now() > giveUpAt) throw err
        await sleep(250)
      }
    }
  }

  async submit(job: NewJob): Promise<SubmitResult> {
    const hash = bodyHash(job.body)
    const id = this.#o.newId()
    if (job.idempotencyKey !== undefined) {
      const held = await this.#keys.take(
        job.workspace,
        job.idempotencyKey,
        { id, hash },
        async (heldBy) => (await this.#jobs.read(job.workspace, heldBy))?.stored.job,
      )
      if (held) {
        const existing = held.job
        // Its submission may have died between storing the job and queueing its message:
        // the copy is harmless (the stream drops a repeat within its window, a later copy
        // finds the job claimed and is acked).
        if (existing.state === 'queued' && existing.attempts.length === 0) {
          await this.#publish(existing.id, existing.workspace, existing.id)
        }
        return { kind: held.holder.hash === hash ? 'replayed' : 'conflict', job: existing }
      }
    }
    const record = newJobRecord(job, id, this.#o.now())
    await this.#storeNew(record)
    return { kind: 'created', job: record }
  }

  async get(workspace: string, id: string): Promise<JobRecord | undefined> {
    return (await this.#jobs.read(workspace, id))?.stored.job
  }

  /**
   * Newest first by id (ids sort by creation time). The cost is a listing of every key the
   * workspace holds in the bucket, then reads of as many documents as the page needs (more
   * when filtered by state): meant for inspection, not for polling.
   */
  async list(workspace: string, query: JobQuery): Promise<{ jobs: JobRecord[]; cursor?: string }> {
    const ids = await this.#jobs.ids(workspace)
    const older = ids
      .filter((id) => query.cursor === undefined || id < query.cursor)
      .sort()
      .reverse()
    const jobs: JobRecord[] = []
    let next = 0
    while (jobs.length <= query.limit && next < older.length) {
      const batch = older.slice(next, next + LIST_READS)
      next += batch.length
      const read = await Promise.all(batch.map((id) => this.get(workspace, id)))
      for (const job of read) {
        if (job && (!query.state || job.state === query.state)) jobs.push(job)
      }
    }
    const page = jobs.slice(0, query.limit)
    const last = page.at(-1)
    return { jobs: page, ...(jobs.length > query.limit && last ? { cursor: last.id } : {}) }
  }

  async cancel(workspace: string, id: string): Promise<JobRecord | undefined> {
    const changed = await this.#jobs.change(workspace, id, (stored) =>
      FINISHED_STATES.has(stored.job.state)
        ? undefined
        : // Its holder, if running, still owns the message (see endAttempt).
          { ...stored, job: finishedJob(stored.job, { state: 'cancelled' }, this.#o.now()) },
    )
    // A job waiting for a retry has its message away until then: a fresh one delivers the
    // cancellation's webhooks now (the other finds nothing left to do).
    if (changed?.changed && changed.job.deliveries.length > 0) {
      await this.#publish(`${id}.cancelled`, workspace, id)
    }
    // Its outcome is dropped whoever runs it; this stops the attempt itself (not stored: a
    // worker that misses it only finishes an attempt for nothing).
    if (changed?.changed) this.#o.nc.publish(CANCELLED_SUBJECT, encoder.encode(id))
    return changed?.job
  }

  async claim(
    limit: number,
    _perLane: number,
    accept: (job: JobRecord) => boolean,
  ): Promise<JobRecord[]> {
    const due = [...this.#held.values()]
      .filter((h) => h.phase === 'due')
      .sort((a, b) => a.job.dueAt - b.job.dueAt)
    const taken: Held[] = []
    for (const held of due) {
      if (taken.length === limit) break
      if (accept(held.job)) {
        taken.push(held)
        held.phase = 'running'
      } else {
        // The worker holds as many of this key as it may: the job goes back for a while, so
        // one key's backlog does not fill this node's messages and hide other keys' jobs.
        this.#release(held, () => held.msg.nak(REFUSED_DELAY_MS))
      }
    }
    const claimed = await Promise.all(taken.map((held) => this.#claim(held)))
    return claimed.filter((job): job is JobRecord => job !== undefined)
  }

  async endAttempt(
    id: string,
    attempt: JobAttempt,
    end: AttemptEnd,
  ): Promise<JobRecord | undefined> {
    const held = this.#held.get(id)
    if (held?.phase !== 'running') return undefined
    try {
      return await this.#endAttempt(held, attempt, end)
    } catch (err) {
      // Not recorded: the message goes back, and its next holder runs the job again.
      this.#release(held, () => held.msg.nak())
      throw err
    }
  }

  async #endAttempt(
    held: Held,
    attempt: JobAttempt,
    end: AttemptEnd,
  ): Promise<JobRecord | undefined> {
    const runBy = { seq: held.msg.seq, delivery: held.runAs }
    // Made once: a write that loses its race is tried again with the same follow-ups.
    let followUps: JobRecord[] | undefined
    for (;;) {
      const read = await this.#jobs.readKey(held.key)
      if (!read) {
        this.#release(held, () => held.msg.ack())
        return undefined
      }
      const { stored, revision } = read
      if (stored.runBy?.seq !== runBy.seq || stored.runBy.delivery !== runBy.delivery) {
        // Another worker took the job over (this node stopped extending the message): its
        // outcome counts, not this one. The message is its now: neither ack nor nak.
        this.#release(held)
        return stored.job
      }
      if (stored.job.state !== 'running') {
        // Cancelled meanwhile: the outcome is dropped; the cancellation's webhooks are due.
        this.#settle(held, stored.job, revision)
        return stored.job
      }
      const now = this.#o.now()
      const attempts = [...stored.job.attempts, attempt]
      let next: StoredJob
      if (end.next === 'retry') {
        next = { job: { ...stored.job, state: 'queued', attempts, dueAt: end.at, updatedAt: now } }
      } else {
        if (!followUps) {
          followUps = end.followUps.map((f) => newJobRecord(f, this.#o.newId(), now))
          // Stored before the outcome that names them: a crash between the two leaves at
          // worst an extra follow-up, never a finished job missing its own.
          await Promise.all(followUps.map((f) => this.#storeNew(f)))
        }
        next = {
          job: finishedJob(
            { ...stored.job, attempts },
            {
              state: end.state,
              ...(end.response ? { response: end.response } : {}),
              ...(end.error ? { error: end.error } : {}),
              ...(followUps.length ? { followUps: followUps.map((f) => f.id) } : {}),
            },
            now,
          ),
        }
      }
      let written: number
      try {
        written = await this.#jobs.update(held.key, next, revision)
      } catch (err) {
        if (lostRace(err)) continue
        throw err
      }
      this.#settle(held, next.job, written)
      return next.job
    }
  }

  async dueDeliveries(limit: number): Promise<JobRecord[]> {
    const now = this.#o.now()
    const due: JobRecord[] = []
    for (const held of this.#held.values()) {
      if (due.length === limit) break
      if (held.phase !== 'delivering') continue
      const at = nextDeliveryAt(held.job)
      if (at !== undefined && at <= now) due.push(held.job)
    }
    return due
  }

  async recordDelivery(id: string, delivery: Delivery): Promise<void> {
    const held = this.#held.get(id)
    if (held?.phase !== 'delivering') return
    for (;;) {
      const read = await this.#jobs.readKey(held.key)
      if (!read) {
        this.#release(held, () => held.msg.ack())
        return
      }
      const { stored, revision } = read
      const job: JobRecord = {
        ...stored.job,
        deliveries: stored.job.deliveries.map((d) => (d.index === delivery.index ? delivery : d)),
        updatedAt: this.#o.now(),
      }
      try {
        const written = await this.#jobs.update(held.key, { job }, revision)
        this.#settle(held, job, written)
        return
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }

  async redeliver(workspace: string, id: string): Promise<JobRecord | undefined> {
    const changed = await this.#jobs.change(workspace, id, (stored) => {
      if (!FINISHED_STATES.has(stored.job.state)) return undefined
      const now = this.#o.now()
      const deliveries = stored.job.deliveries.map((d): Delivery =>
        d.state === 'delivered' ? d : { ...d, state: 'pending', firstAt: now, nextAt: now },
      )
      return { job: { ...stored.job, deliveries, updatedAt: now } }
    })
    if (changed?.changed) await this.#publish(`${id}.redeliver.${this.#o.now()}`, workspace, id)
    return changed?.job
  }

  /** The job bucket's max age removes documents: nothing to sweep. */
  async sweep(): Promise<number> {
    return 0
  }

  /**
   * Stops taking work and gives every held message back at once, so other workers take its
   * jobs without waiting for the ack wait (a job left running is run again by its message's
   * next holder). Call after the worker stopped its attempts.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#heartbeat)
    this.#cancellations?.unsubscribe()
    this.#room?.()
    this.#fetching?.stop()
    await this.#pulling
    for (const held of [...this.#held.values()]) this.#release(held, () => held.msg.nak())
  }

  // --- work: messages in, verdicts, holding ---

  #startWork(): void {
    // Three extensions per ack wait: one lost or late still leaves the message held.
    this.#heartbeat = setInterval(
      () => {
        for (const held of this.#held.values()) held.msg.working()
      },
      Math.max(100, Math.floor(this.#o.ackWaitMs / 3)),
    )
    this.#heartbeat.unref()
    const work = this.#o.work
    if (work) {
      this.#cancellations = this.#o.nc.subscribe(CANCELLED_SUBJECT, {
        callback: (err, msg) => {
          if (!err) work.onCancelled(msg.string())
        },
      })
    }
    this.#pulling = this.#pull()
  }

  async #pull(): Promise<void> {
    const work = this.#o.work
    if (!work) return
    let consumer: Consumer | undefined
    let failing = false
    while (!this.#closed) {
      const room = work.slots() + work.deliveries - this.#held.size
      if (room <= 0) {
        await this.#waitForRoom(FETCH_EXPIRES_MS)
        continue
      }
      try {
        consumer ??= await this.#js.consumers.get(JOB_STREAM, JOB_CONSUMER)
        const messages = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS })
        this.#fetching = messages
        let arrived = 0
        let useful = false
        for await (const msg of messages) {
          arrived++
          if (await this.#arrive(msg)) useful = true
        }
        // A round that brought only jobs to give back (no free slot, a key at its share) waits
        // before the next, rather than cycle through the backlog as fast as the server sends it.
        failing = false
        if (arrived > 0 && !useful && !this.#closed) await this.#waitForRoom(REFUSED_DELAY_MS)
      } catch (err) {
        if (this.#closed) return
        consumer = undefined
        if (!failing) work.onError(err)
        failing = true
        await sleep(1_000)
        // Removed behind the cluster's back (an operator, a JetStream store lost): made again,
        // so jobs submitted from now on run.
        if (err instanceof Error && /not found/i.test(err.message)) {
          await openJobStreams(this.#o.nc, this.#o).catch(() => undefined)
        }
      } finally {
        this.#fetching = undefined
      }
    }
  }

  /** Until a held message is let go (or `ms` pass). */
  async #waitForRoom(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.#room = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    this.#room = undefined
  }

  /** A message in: held as due work or a delivery, or given back, or acked. True if held. */
  async #arrive(msg: JsMsg): Promise<boolean> {
    const { id, workspace } = JSON.parse(new TextDecoder().decode(msg.data)) as {
      id: string
      workspace: string
    }
    const key = JobBucket.key(workspace, id)
    const already = this.#held.get(id)
    if (already) {
      // The message this node holds, back after a missed extension: keep the newer delivery.
      if (already.msg.seq === msg.seq) already.msg = msg
      else msg.ack()
      return false
    }
    const read = await this.#jobs.readKey(key)
    const verdict = messageVerdict(read?.stored, msg.seq, this.#o.now())
    if (!read || verdict.kind === 'done') {
      msg.ack()
      return false
    }
    if (verdict.kind === 'later') {
      msg.nak(verdict.delayMs)
      return false
    }
    if (verdict.kind === 'run' && this.#unfinished() >= (this.#o.work?.slots() ?? 0)) {
      // Every slot taken: the job goes back for a worker with a free one (or this one later)
      // rather than wait here.
      msg.nak(REFUSED_DELAY_MS)
      return false
    }
    this.#held.set(id, {
      msg,
      key,
      phase: verdict.kind === 'run' ? 'due' : 'delivering',
      job: read.stored.job,
      revision: read.revision,
    })
    this.#o.work?.onReady()
    return true
  }

  /** Jobs held to run or running: what takes the worker's slots. */
  #unfinished(): number {
    let count = 0
    for (const held of this.#held.values()) if (held.phase !== 'delivering') count++
    return count
  }

  /** Marks a held due job running under its message; undefined when it changed meanwhile. */
  async #claim(held: Held): Promise<JobRecord | undefined> {
    const now = this.#o.now()
    const job: JobRecord = { ...held.job, state: 'running', updatedAt: now }
    const runBy = { seq: held.msg.seq, delivery: held.msg.info.deliveryCount }
    try {
      held.revision = await this.#jobs.update(held.key, { job, runBy }, held.revision)
      held.runAs = runBy.delivery
      held.job = job
      return job
    } catch (err) {
      if (!lostRace(err)) {
        this.#release(held, () => held.msg.nak())
        throw err
      }
      // Changed since it was read (cancelled, or run elsewhere from a stray copy): look again.
      this.#release(held, () => held.msg.nak())
      return undefined
    }
  }

  /** After a write: hold the message for deliveries due now, or give it back, or ack it. */
  #settle(held: Held, job: JobRecord, revision: number): void {
    const verdict = messageVerdict({ job }, held.msg.seq, this.#o.now())
    held.job = job
    held.revision = revision
    if (verdict.kind === 'deliver') {
      if (held.phase !== 'delivering') {
        held.phase = 'delivering'
        this.#o.work?.onReady()
      }
      return
    }
    if (verdict.kind === 'later') this.#release(held, () => held.msg.nak(verdict.delayMs))
    else this.#release(held, () => held.msg.ack())
  }

  #release(held: Held, answer?: () => void): void {
    answer?.()
    this.#held.delete(held.job.id)
    this.#room?.()
  }

  async #storeNew(job: JobRecord): Promise<void> {
    await this.#jobs.create(job)
    await this.#publish(job.id, job.workspace, job.id)
  }

  /** A "job due" message; `msgID` lets the stream drop a repeat within its window. */
  async #publish(msgID: string, workspace: string, id: string): Promise<void> {
    await this.#js.publish(JOB_SUBJECT, encoder.encode(JSON.stringify({ id, workspace })), {
      msgID,
    })
  }
}
