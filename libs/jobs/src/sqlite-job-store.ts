import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { FINISHED_STATES, type Delivery, type JobAttempt, type JobRecord } from './job.ts'
import { bodyHash, finishedJob, newJobRecord, nextDeliveryAt } from './job-record.ts'
import type { AttemptEnd, JobQuery, JobStore, NewJob, SubmitResult } from './job-store.ts'

export interface SqliteJobStoreOptions {
  /** The database file; its directory is made when missing. */
  readonly file: string
  readonly now: () => number
  readonly newId: () => string
  /** How long a finished job stays readable. */
  readonly retentionMs: number
  /** How long an Idempotency-Key names the same job. */
  readonly idempotencyMs: number
}

interface Row {
  readonly doc: string
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  workspace TEXT NOT NULL,
  lane TEXT NOT NULL,
  state TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  delivery_at INTEGER,
  expires_at INTEGER,
  idem_key TEXT,
  idem_until INTEGER,
  body_hash TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, lane, due_at);
CREATE INDEX IF NOT EXISTS jobs_delivery ON jobs (delivery_at) WHERE delivery_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_workspace ON jobs (workspace, seq);
CREATE INDEX IF NOT EXISTS jobs_idem ON jobs (workspace, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;
`

/**
 * The embedded job store: one SQLite file (node:sqlite, no native addon) in WAL mode with
 * full sync, so a job is on disk when `submit` resolves and survives SIGKILL. Each job is one
 * row (its record as JSON, with the columns queries need beside it); every change rewrites
 * the row in one statement. Calls are synchronous underneath: within one process no two
 * changes of a job interleave.
 */
export class SqliteJobStore implements JobStore {
  readonly #db: DatabaseSync
  readonly #options: SqliteJobStoreOptions
  readonly #insert: StatementSync
  readonly #update: StatementSync
  readonly #byId: StatementSync
  readonly #byIdem: StatementSync
  readonly #due: StatementSync
  readonly #dueLanes: StatementSync
  readonly #deliveries: StatementSync

  constructor(options: SqliteJobStoreOptions) {
    this.#options = options
    mkdirSync(dirname(options.file), { recursive: true })
    const db = new DatabaseSync(options.file)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;')
    db.exec(SCHEMA)
    this.#db = db
    this.#insert = db.prepare(
      `INSERT INTO jobs (id, workspace, lane, state, due_at, delivery_at, expires_at, idem_key, idem_until, body_hash, doc)
       VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)`,
    )
    this.#update = db.prepare(
      'UPDATE jobs SET state = ?, due_at = ?, delivery_at = ?, expires_at = ?, doc = ? WHERE id = ?',
    )
    this.#byId = db.prepare('SELECT doc FROM jobs WHERE id = ?')
    this.#byIdem = db.prepare(
      'SELECT doc, body_hash FROM jobs WHERE workspace = ? AND idem_key = ? AND idem_until > ? ORDER BY seq DESC LIMIT 1',
    )
    // Keys with a due job, the longest due first; then each key's oldest due jobs, from the
    // index (state, lane, due_at) without sorting the whole backlog.
    this.#dueLanes = db.prepare(
      `SELECT lane, MIN(due_at) AS first FROM jobs WHERE state = 'queued'
       GROUP BY lane HAVING first <= ? ORDER BY first LIMIT ? OFFSET ?`,
    )
    this.#due = db.prepare(
      "SELECT doc FROM jobs WHERE state = 'queued' AND lane = ? AND due_at <= ? ORDER BY due_at LIMIT ?",
    )
    this.#deliveries = db.prepare(
      'SELECT doc FROM jobs WHERE delivery_at IS NOT NULL AND delivery_at <= ? ORDER BY delivery_at LIMIT ?',
    )
    // A process that died mid-attempt left its jobs running: they run again (at least once).
    const now = options.now()
    for (const row of db.prepare("SELECT doc FROM jobs WHERE state = 'running'").all()) {
      const job = JSON.parse((row as unknown as Row).doc) as JobRecord
      this.#write({ ...job, state: 'queued', dueAt: now, updatedAt: now })
    }
  }

  async submit(job: NewJob): Promise<SubmitResult> {
    return this.#transaction(() => this.#submit(job))
  }

  async get(workspace: string, id: string): Promise<JobRecord | undefined> {
    const job = this.#read(id)
    return job?.workspace === workspace ? job : undefined
  }

  async list(workspace: string, query: JobQuery): Promise<{ jobs: JobRecord[]; cursor?: string }> {
    const before = query.cursor !== undefined ? Number(query.cursor) : Number.MAX_SAFE_INTEGER
    const rows = (query.state
      ? this.#db
          .prepare(
            'SELECT seq, doc FROM jobs WHERE workspace = ? AND seq < ? AND state = ? ORDER BY seq DESC LIMIT ?',
          )
          .all(workspace, before, query.state, query.limit + 1)
      : this.#db
          .prepare(
            'SELECT seq, doc FROM jobs WHERE workspace = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
          )
          .all(workspace, before, query.limit + 1)) as unknown as { seq: number; doc: string }[]
    const page = rows.slice(0, query.limit)
    const last = page.at(-1)
    return {
      jobs: page.map((r) => JSON.parse(r.doc) as JobRecord),
      ...(rows.length > query.limit && last ? { cursor: String(last.seq) } : {}),
    }
  }

  async cancel(workspace: string, id: string): Promise<JobRecord | undefined> {
    return this.#transaction(() => {
      const job = this.#read(id)
      if (job?.workspace !== workspace) return undefined
      if (FINISHED_STATES.has(job.state)) return job
      return this.#finish(job, { state: 'cancelled' })
    })
  }

  async claim(
    limit: number,
    perLane: number,
    accept: (job: JobRecord) => boolean,
  ): Promise<JobRecord[]> {
    return this.#transaction(() => {
      const now = this.#options.now()
      const claimed: JobRecord[] = []
      // A key's backlog cannot hide another key's job: at most `perLane` of each are looked
      // at, key by key in the order of their longest due job, until enough are taken.
      for (let offset = 0; claimed.length < limit; offset += limit) {
        const lanes = this.#dueLanes.all(now, limit, offset) as unknown as { lane: string }[]
        if (lanes.length === 0) break
        const due = lanes
          .flatMap(({ lane }) => this.#due.all(lane, now, perLane) as unknown as Row[])
          .map((row) => JSON.parse(row.doc) as JobRecord)
          .sort((a, b) => a.dueAt - b.dueAt)
        for (const job of due) {
          if (claimed.length === limit) break
          if (!accept(job)) continue
          const running: JobRecord = { ...job, state: 'running', updatedAt: now }
          this.#write(running)
          claimed.push(running)
        }
      }
      return claimed
    })
  }

  async endAttempt(
    id: string,
    attempt: JobAttempt,
    end: AttemptEnd,
  ): Promise<JobRecord | undefined> {
    return this.#transaction(() => {
      const job = this.#read(id)
      if (job?.state !== 'running') return job
      const now = this.#options.now()
      const attempts = [...job.attempts, attempt]
      if (end.next === 'retry') {
        return this.#write({ ...job, state: 'queued', attempts, dueAt: end.at, updatedAt: now })
      }
      const followUps = end.followUps.map((f) => this.#submit(f).job.id)
      return this.#finish(
        { ...job, attempts },
        {
          state: end.state,
          ...(end.response ? { response: end.response } : {}),
          ...(end.error ? { error: end.error } : {}),
          ...(followUps.length ? { followUps } : {}),
        },
      )
    })
  }

  async dueDeliveries(limit: number): Promise<JobRecord[]> {
    const rows = this.#deliveries.all(this.#options.now(), limit) as unknown as Row[]
    return rows.map((r) => JSON.parse(r.doc) as JobRecord)
  }

  async recordDelivery(id: string, delivery: Delivery): Promise<void> {
    this.#transaction(() => {
      const job = this.#read(id)
      if (!job) return
      const deliveries = job.deliveries.map((d) => (d.index === delivery.index ? delivery : d))
      this.#write({ ...job, deliveries, updatedAt: this.#options.now() })
    })
  }

  async redeliver(workspace: string, id: string): Promise<JobRecord | undefined> {
    return this.#transaction(() => {
      const job = this.#read(id)
      if (job?.workspace !== workspace) return undefined
      if (!FINISHED_STATES.has(job.state)) return job
      const now = this.#options.now()
      const deliveries = job.deliveries.map((d): Delivery =>
        d.state === 'delivered' ? d : { ...d, state: 'pending', firstAt: now, nextAt: now },
      )
      return this.#write({ ...job, deliveries, updatedAt: now })
    })
  }

  async sweep(): Promise<number> {
    const result = this.#db
      .prepare('DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?')
      .run(this.#options.now())
    return Number(result.changes)
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close()
  }

  #submit(job: NewJob): SubmitResult {
    const now = this.#options.now()
    const hash = bodyHash(job.body)
    if (job.idempotencyKey !== undefined) {
      const held = this.#byIdem.get(job.workspace, job.idempotencyKey, now) as
        { doc: string; body_hash: string } | undefined
      if (held) {
        const existing = JSON.parse(held.doc) as JobRecord
        return { kind: held.body_hash === hash ? 'replayed' : 'conflict', job: existing }
      }
    }
    const id = this.#options.newId()
    const record = newJobRecord(job, id, now)
    this.#insert.run(
      id,
      job.workspace,
      `${job.workspace}\u0000${job.keyId}`,
      'queued',
      now,
      job.idempotencyKey ?? null,
      job.idempotencyKey !== undefined ? now + this.#options.idempotencyMs : null,
      hash,
      JSON.stringify(record),
    )
    return { kind: 'created', job: record }
  }

  /** A job's end: its webhooks become due now, and it expires after the retention. */
  #finish(job: JobRecord, end: Partial<JobRecord> & Pick<JobRecord, 'state'>): JobRecord {
    return this.#write(finishedJob(job, end, this.#options.now()))
  }

  #read(id: string): JobRecord | undefined {
    const row = this.#byId.get(id) as Row | undefined
    return row ? (JSON.parse(row.doc) as JobRecord) : undefined
  }

  #write(job: JobRecord): JobRecord {
    this.#update.run(
      job.state,
      job.dueAt,
      // The deliverer looks at a finished job at its earliest pending delivery.
      nextDeliveryAt(job) ?? null,
      job.finishedAt !== undefined ? job.finishedAt + this.#options.retentionMs : null,
      JSON.stringify(job),
      job.id,
    )
    return job
  }

  #transaction<T>(work: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const result = work()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }
}
