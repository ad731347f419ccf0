import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import {
  AckPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream'
import { Kvm, type KV, type KvEntry } from '@nats-io/kv'
import { FINISHED_STATES, type Delivery, type JobAttempt, type JobRecord } from './job.ts'
import { messageVerdict, nextDeliveryAt, type StoredJob } from './job-message.ts'
import type { AttemptEnd, JobQuery, JobStore, NewJob, SubmitResult } from './job-store.ts'

/** The job documents, one key per job: `<workspace, base64url>.<job id>`. */
export const JOB_BUCKET = 'fairlane-jobs'
/** Idempotency keys, one per workspace and key, kept for jobs' idempotency window. */
export const JOB_KEY_BUCKET = 'fairlane-job-keys'
/** The work queue of "job due" messages, shared by every worker through one durable consumer. */
export const JOB_STREAM = 'FAIRLANE_JOBS'
const JOB_SUBJECT = 'fairlane.v1.jobs.due'
/** Core NATS (not stored): a job was cancelled, so the worker running it stops. */
const CANCELLED_SUBJECT = 'fairlane.v1.jobs.cancelled'
const CONSUMER = 'workers'

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
    /** Messages held at once: attempts running, deliveries, and due jobs waiting for a slot. */
    readonly prefetch: number
    /** A due job or delivery arrived: the worker looks now rather than at its next poll. */
    readonly onReady: () => void
    /** The queue could not be read (logged by the caller); the store tries again. */
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
/** A submission that took an Idempotency-Key and stored no job this long after is dead. */
const STALE_KEY_MS = 5_000
/** Reads of a listing in flight at once. */
const LIST_READS = 32

const encoder = new TextEncoder()

function bodyHash(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex')
}

function workspaceToken(workspace: string): string {
  return Buffer.from(workspace, 'utf8').toString('base64url')
}

function jobKey(workspace: string, id: string): string {
  return `${workspaceToken(workspace)}.${id}`
}

/** The KV and stream APIs say a create or update lost its race in these words. */
function lostRace(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message)
}

function alreadyThere(err: unknown): boolean {
  return err instanceof Error && /already in use|already exists|exists/i.test(err.message)
}

function decode(entry: KvEntry | null): { stored: StoredJob; revision: number } | undefined {
  if (!entry || entry.operation !== 'PUT') return undefined
  return { stored: entry.json<StoredJob>(), revision: entry.revision }
}

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
  readonly #jobs: KV
  readonly #keys: KV
  readonly #held = new Map<string, Held>()
  #closed = false
  #fetching: ConsumerMessages | undefined
  #pulling: Promise<void> = Promise.resolve()
  #room: (() => void) | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #cancellations: Subscription | undefined

  private constructor(options: JetStreamJobStoreOptions, js: JetStreamClient, jobs: KV, keys: KV) {
    this.#o = options
    this.#js = js
    this.#jobs = jobs
    this.#keys = keys
  }

  /** Creates (or opens) the buckets, the stream and the consumer, and starts taking work. */
  static async open(options: JetStreamJobStoreOptions): Promise<JetStreamJobStore> {
    const giveUpAt = Date.now() + options.openWaitMs
    for (;;) {
      try {
        return await JetStreamJobStore.#open(options)
      } catch (err) {
        // JetStream elects its meta leader a few seconds after the servers start.
        if (Date.now() > giveUpAt) throw err
        await sleep(250)
      }
    }
  }

  static async #open(o: JetStreamJobStoreOptions): Promise<JetStreamJobStore> {
    const jsm = await jetstreamManager(o.nc, { timeout: 2_000 })
    const kvm = new Kvm(o.nc)
    const bucket = async (name: string, maxAgeMs: number): Promise<KV> => {
      const settings = { history: 1, replicas: o.replicas, storage: StorageType.File }
      try {
        return await kvm.create(name, { ...settings, ttl: maxAgeMs })
      } catch (err) {
        if (!alreadyThere(err)) throw err
        // Made by a node with other settings: this node's max age wins (the last to start
        // has the newest config).
        await jsm.streams.update(`KV_${name}`, { max_age: maxAgeMs * 1_000_000 })
        return kvm.open(name)
      }
    }
    const jobs = await bucket(JOB_BUCKET, o.keepMs)
    const keys = await bucket(JOB_KEY_BUCKET, o.idempotencyMs)
    try {
      await jsm.streams.add({
        name: JOB_STREAM,
        subjects: [JOB_SUBJECT],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: o.replicas,
      })
    } catch (err) {
      if (!alreadyThere(err)) throw err
    }
    const consumer = {
      ack_wait: o.ackWaitMs * 1_000_000,
      max_deliver: -1,
      // Jobs waiting for a retry or a delivery are messages given back with a delay, still
      // pending on the consumer: no bound, or waiting jobs would stop new ones.
      max_ack_pending: -1,
    }
    try {
      await jsm.consumers.add(JOB_STREAM, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ...consumer,
      })
    } catch (err) {
      if (!alreadyThere(err)) throw err
      await jsm.consumers.update(JOB_STREAM, CONSUMER, consumer)
    }
    const store = new JetStreamJobStore(o, jetstream(o.nc), jobs, keys)
    if (o.work) store.#startWork()
    return store
  }

  async submit(job: NewJob): Promise<SubmitResult> {
    const hash = bodyHash(job.body)
    const id = this.#o.newId()
    if (job.idempotencyKey !== undefined) {
      const held = await this.#takeIdempotencyKey(job, id, hash)
      if (held) return held
    }
    const record = this.#newRecord(job, id)
    await this.#jobs.create(jobKey(job.workspace, id), JSON.stringify({ job: record }))
    await this.#publish(id, job.workspace, id)
    return { kind: 'created', job: record }
  }

  async get(workspace: string, id: string): Promise<JobRecord | undefined> {
    return (await this.#read(workspace, id))?.stored.job
  }

  /**
   * Newest first by id (ids sort by creation time). The cost is a listing of every key the
   * workspace holds in the bucket, then reads of as many documents as the page needs (more
   * when filtered by state): meant for inspection, not for polling.
   */
  async list(workspace: string, query: JobQuery): Promise<{ jobs: JobRecord[]; cursor?: string }> {
    const prefix = `${workspaceToken(workspace)}.`
    const ids = new Set<string>()
    // The server may list a key twice (2.9): a set counts each once.
    for await (const key of await this.#jobs.keys(`${prefix}>`)) ids.add(key.slice(prefix.length))
    const older = [...ids]
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
    const changed = await this.#change(workspace, id, (stored) =>
      FINISHED_STATES.has(stored.job.state)
        ? undefined
        : // Its holder, if running, still owns the message (see endAttempt).
          { ...stored, job: this.#finished(stored.job, { state: 'cancelled' }) },
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
      const read = decode(await this.#jobs.get(held.key))
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
          followUps = end.followUps.map((f) => this.#newRecord(f, this.#o.newId()))
          // Stored before the outcome that names them: a crash between the two leaves at
          // worst an extra follow-up, never a finished job missing its own.
          await Promise.all(followUps.map((f) => this.#storeNew(f)))
        }
        next = {
          job: this.#finished(
            { ...stored.job, attempts },
            {
              state: end.state,
              ...(end.response ? { response: end.response } : {}),
              ...(end.error ? { error: end.error } : {}),
              ...(followUps.length ? { followUps: followUps.map((f) => f.id) } : {}),
            },
          ),
        }
      }
      let written: number
      try {
        written = await this.#jobs.update(held.key, JSON.stringify(next), revision)
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
      const read = decode(await this.#jobs.get(held.key))
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
        const written = await this.#jobs.update(held.key, JSON.stringify({ job }), revision)
        this.#settle(held, job, written)
        return
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }

  async redeliver(workspace: string, id: string): Promise<JobRecord | undefined> {
    const changed = await this.#change(workspace, id, (stored) => {
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
    while (!this.#closed) {
      const room = work.prefetch - this.#held.size
      if (room <= 0) {
        await this.#waitForRoom(FETCH_EXPIRES_MS)
        continue
      }
      try {
        consumer ??= await this.#js.consumers.get(JOB_STREAM, CONSUMER)
        const messages = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS })
        this.#fetching = messages
        let useful = false
        for await (const msg of messages) {
          if (await this.#arrive(msg)) useful = true
        }
        // A round that brought only jobs to give back (a key at its share) waits before the
        // next, rather than cycle through that key's backlog as fast as the server sends it.
        if (!useful && !this.#closed) await this.#waitForRoom(REFUSED_DELAY_MS)
      } catch (err) {
        if (this.#closed) return
        consumer = undefined
        work.onError(err)
        await sleep(1_000)
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
    const key = jobKey(workspace, id)
    const already = this.#held.get(id)
    if (already) {
      // The message this node holds, back after a missed extension: keep the newer delivery.
      if (already.msg.seq === msg.seq) already.msg = msg
      else msg.ack()
      return false
    }
    const read = decode(await this.#jobs.get(key))
    const verdict = messageVerdict(read?.stored, msg.seq, this.#o.now())
    if (!read || verdict.kind === 'done') {
      msg.ack()
      return false
    }
    if (verdict.kind === 'later') {
      msg.nak(verdict.delayMs)
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

  /** Marks a held due job running under its message; undefined when it changed meanwhile. */
  async #claim(held: Held): Promise<JobRecord | undefined> {
    const now = this.#o.now()
    const job: JobRecord = { ...held.job, state: 'running', updatedAt: now }
    const runBy = { seq: held.msg.seq, delivery: held.msg.info.deliveryCount }
    try {
      held.revision = await this.#jobs.update(
        held.key,
        JSON.stringify({ job, runBy } satisfies StoredJob),
        held.revision,
      )
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

  // --- documents ---

  async #read(
    workspace: string,
    id: string,
  ): Promise<{ stored: StoredJob; revision: number } | undefined> {
    const read = decode(await this.#jobs.get(jobKey(workspace, id)))
    return read?.stored.job.workspace === workspace ? read : undefined
  }

  /** A compare-and-set loop on one job; `change` returns undefined to leave it as it is. */
  async #change(
    workspace: string,
    id: string,
    change: (stored: StoredJob) => StoredJob | undefined,
  ): Promise<{ job: JobRecord; changed: boolean } | undefined> {
    for (;;) {
      const read = await this.#read(workspace, id)
      if (!read) return undefined
      const next = change(read.stored)
      if (!next) return { job: read.stored.job, changed: false }
      try {
        await this.#jobs.update(jobKey(workspace, id), JSON.stringify(next), read.revision)
        return { job: next.job, changed: true }
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }

  /**
   * Takes the job's Idempotency-Key for `id`, or answers with the job that holds it. A key
   * whose submission died before storing its job is taken over once that is clear.
   */
  async #takeIdempotencyKey(
    job: NewJob,
    id: string,
    hash: string,
  ): Promise<SubmitResult | undefined> {
    const name = `${workspaceToken(job.workspace)}.${createHash('sha256')
      .update(job.idempotencyKey ?? '')
      .digest('hex')}`
    const value = JSON.stringify({ id, hash })
    for (;;) {
      try {
        await this.#keys.create(name, value)
        return undefined
      } catch (err) {
        if (!lostRace(err)) throw err
      }
      const entry = await this.#keys.get(name)
      if (!entry || entry.operation !== 'PUT') continue
      const taken = entry.json<{ id: string; hash: string }>()
      const existing = await this.#read(job.workspace, taken.id)
      if (existing) {
        // Its submission may have died between storing the job and queueing its message:
        // the copy is harmless (the stream drops a repeat within its window, a later copy
        // finds the job claimed and is acked).
        if (existing.stored.job.state === 'queued' && existing.stored.job.attempts.length === 0) {
          await this.#publish(taken.id, job.workspace, taken.id)
        }
        return { kind: taken.hash === hash ? 'replayed' : 'conflict', job: existing.stored.job }
      }
      if (this.#o.now() - entry.created.getTime() < STALE_KEY_MS) {
        await sleep(100)
        continue
      }
      try {
        await this.#keys.update(name, value, entry.revision)
        return undefined
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }

  #newRecord(job: NewJob, id: string): JobRecord {
    const now = this.#o.now()
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
      deliveries: [],
    }
  }

  async #storeNew(job: JobRecord): Promise<void> {
    await this.#jobs.create(jobKey(job.workspace, job.id), JSON.stringify({ job }))
    await this.#publish(job.id, job.workspace, job.id)
  }

  /** A job's end: its webhooks become due now. */
  #finished(job: JobRecord, end: Partial<JobRecord> & Pick<JobRecord, 'state'>): JobRecord {
    const now = this.#o.now()
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

  /** A "job due" message; `msgID` lets the stream drop a repeat within its window. */
  async #publish(msgID: string, workspace: string, id: string): Promise<void> {
    await this.#js.publish(JOB_SUBJECT, encoder.encode(JSON.stringify({ id, workspace })), {
      msgID,
    })
  }
}
