import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KV } from '@nats-io/kv'
import { lostRace, workspaceToken } from './job-bucket.ts'

/** The job an Idempotency-Key names, and the hash of the body it was taken for. */
export interface KeyHolder {
  readonly id: string
  readonly hash: string
}

/** A submission that took a key and stored no job this long after is taken to have died. */
const STALE_KEY_MS = 5_000

/**
 * Idempotency-Keys in their KV bucket (its max age is the keys' window), one key per
 * workspace and Idempotency-Key (hashed: any text, only the characters keys allow).
 */
export class IdempotencyKeys {
  readonly #kv: KV
  readonly #now: () => number

  constructor(kv: KV, now: () => number) {
    this.#kv = kv
    this.#now = now
  }

  /**
   * Takes `key` for `holder`, or returns the holder that has it with its job (`find`). A key
   * whose submission died before storing its job is taken over once that is clear.
   */
  async take<T>(
    workspace: string,
    key: string,
    holder: KeyHolder,
    find: (id: string) => Promise<T | undefined>,
  ): Promise<{ holder: KeyHolder; job: T } | undefined> {
    const name = `${workspaceToken(workspace)}.${createHash('sha256').update(key).digest('hex')}`
    const value = JSON.stringify(holder)
    for (;;) {
      try {
        await this.#kv.create(name, value)
        return undefined
      } catch (err) {
        if (!lostRace(err)) throw err
      }
      const entry = await this.#kv.get(name)
      if (!entry || entry.operation !== 'PUT') continue
      const taken = entry.json<KeyHolder>()
      const job = await find(taken.id)
      if (job !== undefined) return { holder: taken, job }
      if (this.#now() - entry.created.getTime() < STALE_KEY_MS) {
        await sleep(100)
        continue
      }
      try {
        await this.#kv.update(name, value, entry.revision)
        return undefined
      } catch (err) {
        if (!lostRace(err)) throw err
      }
    }
  }
}
