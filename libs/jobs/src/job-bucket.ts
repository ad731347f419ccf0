import type { KV, KvEntry } from '@nats-io/kv'
import type { JobRecord } from './job.ts'
import type { StoredJob } from './job-message.ts'

/** A document as read, with the revision a compare-and-set writes against. */
export interface ReadJob {
  readonly stored: StoredJob
  readonly revision: number
}

/** A workspace name as one KV key token (any name, only the characters keys allow). */
export function workspaceToken(workspace: string): string {
  return Buffer.from(workspace, 'utf8').toString('base64url')
}

/** KV says a create or an update lost its race (the key exists, or moved on) in these words. */
export function lostRace(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message)
}

function decode(entry: KvEntry | null): ReadJob | undefined {
  if (!entry || entry.operation !== 'PUT') return undefined
  return { stored: entry.json<StoredJob>(), revision: entry.revision }
}

/**
 * The job documents in their KV bucket, one key per job: `<workspace token>.<job id>`, so a
 * workspace's jobs are the keys under its token. Every write but the first is a
 * compare-and-set on the revision read.
 */
export class JobBucket {
  readonly #kv: KV

  constructor(kv: KV) {
    this.#kv = kv
  }

  static key(workspace: string, id: string): string {
    return `${workspaceToken(workspace)}.${id}`
  }

  async read(workspace: string, id: string): Promise<ReadJob | undefined> {
    const read = await this.readKey(JobBucket.key(workspace, id))
    return read?.stored.job.workspace === workspace ? read : undefined
  }

  async readKey(key: string): Promise<ReadJob | undefined> {
    return decode(await this.#kv.get(key))
  }

  /** Stores a new job; refused (lostRace) if its id is taken. */
  async create(job: JobRecord): Promise<void> {
    await this.#kv.create(JobBucket.key(job.workspace, job.id), JSON.stringify({ job }))
  }

  /** Writes `stored` if the document is still at `revision`; the new revision. */
  async update(key: string, stored: StoredJob, revision: number): Promise<number> {
    return this.#kv.update(key, JSON.stringify(stored), revision)
  }

  /** A compare-and-set loop on one job; `change` returns undefined to leave it as it is. */
  async change(
    workspace: string,
    id: string,
    change: (stored: StoredJob) => StoredJob | undefined,
  ): Promise<{ job: JobRecord; changed: boolean } | undefined> {
    for (;;) {
      const read = await this.read(workspace, id)
      if (!read) return undefined
      const next = change(read.stored)
      if (!next) return { job: read.stored.job, changed: false }
      try {
        await this.update(JobBucket.key(workspace, id), next, read.revision)
        return { job: next.job, changed: true }
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }

  /** The ids of a workspace's jobs, each once (the server may list a key twice on 2.9). */
  async ids(workspace: string): Promise<string[]> {
    const prefix = `${workspaceToken(workspace)}.`
    const ids = new Set<string>()
    for await (const key of await this.#kv.keys(`${prefix}>`)) ids.add(key.slice(prefix.length))
    return [...ids]
  }
}
