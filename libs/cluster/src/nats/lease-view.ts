import type { KV, KvWatchEntry } from '@nats-io/kv'

interface Seen {
  readonly value: string
  /** Local time the key was last written, as far as this node knows. */
  readonly at: number
}

/**
 * This node's picture of the lease bucket, kept by one watch for the node's lifetime.
 *
 * Listing keys (`kv.keys()`) each round cost an ephemeral consumer per listing, which the
 * server keeps for minutes, and a key rewritten during a listing came back twice (the listing
 * reads until nothing is pending, and the rewrite is pending too): a phantom node. A watch
 * is one consumer, and a map cannot hold a key twice. nats-server 2.9 sends no marker when
 * a key ages out of the bucket, so freshness is judged here: a key not rewritten within the
 * bucket's TTL is gone.
 */
export class LeaseView {
  readonly #kv: KV
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #keys = new Map<string, Seen>()
  #revision = 0
  #waiters: Array<{ readonly revision: number; readonly resolve: () => void }> = []
  #watch: Awaited<ReturnType<KV['watch']>> | undefined
  #stopped = false

  constructor(kv: KV, ttlMs: number, now: () => number = Date.now) {
    this.#kv = kv
    this.#ttlMs = ttlMs
    this.#now = now
  }

  start(): void {
    void this.#follow()
  }

  stop(): void {
    this.#stopped = true
    this.#watch?.stop()
    for (const waiter of this.#waiters) waiter.resolve()
    this.#waiters = []
  }

  /** Resolves true once the view has seen the bucket up to `revision`, false after `ms`. */
  caughtUp(revision: number, ms: number): Promise<boolean> {
    if (this.#revision >= revision) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        resolve(false)
      }, ms)
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer)
          resolve(this.#revision >= revision)
        },
      }
      this.#waiters.push(waiter)
    })
  }

  /** Distinct ids of the nodes whose heartbeat (`<prefix><id>`) is fresh. */
  live(prefix: string): Set<string> {
    const ids = new Set<string>()
    for (const [key] of this.#fresh()) if (key.startsWith(prefix)) ids.add(key.slice(prefix.length))
    return ids
  }

  /** Fresh keys under `prefix`, with their values. */
  entries(prefix: string): Map<string, string> {
    const out = new Map<string, string>()
    for (const [key, seen] of this.#fresh()) if (key.startsWith(prefix)) out.set(key, seen.value)
    return out
  }

  *#fresh(): Iterable<[string, Seen]> {
    const oldest = this.#now() - this.#ttlMs
    for (const entry of this.#keys) if (entry[1].at > oldest) yield entry
  }

  /** Follows the bucket until stopped; a watch that ends (NATS closed it) is opened again. */
  async #follow(): Promise<void> {
    for (let backoff = 100; !this.#stopped; backoff = Math.min(backoff * 2, 2_000)) {
      try {
        this.#watch = await this.#kv.watch({ key: '>' })
        if (this.#stopped) this.#watch.stop()
        for await (const entry of this.#watch) {
          backoff = 100
          this.#apply(entry)
        }
      } catch {
        // NATS away or JetStream not answering: try again below.
      }
      if (!this.#stopped) await new Promise((resolve) => setTimeout(resolve, backoff))
    }
  }

  #apply(entry: KvWatchEntry): void {
    if (entry.operation === 'PUT') {
      // Entries of the first pass may be old: their age counts from when they were written.
      const now = this.#now()
      const at = entry.isUpdate ? now : Math.min(now, entry.created.getTime())
      this.#keys.set(entry.key, { value: entry.string(), at })
    } else {
      this.#keys.delete(entry.key)
    }
    this.#revision = Math.max(this.#revision, entry.revision)
    const due = this.#waiters.filter((w) => w.revision <= this.#revision)
    if (due.length === 0) return
    this.#waiters = this.#waiters.filter((w) => w.revision > this.#revision)
    for (const waiter of due) waiter.resolve()
  }
}
