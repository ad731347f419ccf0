import type { KV } from '@nats-io/kv'

export interface ShardLeasesOptions {
  /** A KV bucket whose `ttl` (max age) is `ttlMs`: a key not rewritten in time disappears. */
  readonly kv: KV
  readonly nodeId: string
  /** Shard count of the cluster, the same on every node. */
  readonly shards: number
  readonly ttlMs: number
  /** This node now owns the shard: start serving it. */
  readonly onAcquire: (shard: number) => void
  /** This node no longer owns the shard (given up or lost): stop serving it first. */
  readonly onRelease: (shard: number) => Promise<void> | void
}

const shardKey = (shard: number) => `shard.${shard}`
const nodeKey = (node: string) => `node.${node}`

async function collect(iterator: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const item of iterator) out.push(item)
  return out
}

/**
 * Ownership of shards through leases in a NATS KV bucket. Every tick (a third of the TTL) a
 * node rewrites its heartbeat and each lease it holds with compare-and-set on the revision it
 * last wrote, so a lease it lost is noticed instead of overwritten; gives up leases above its
 * fair share (⌈shards / live nodes⌉) so a joining node can take them; and takes free shards
 * with `create`, which refuses a key that exists. A node that dies stops rewriting, and its
 * keys vanish with the bucket's TTL, for the others to take.
 */
export class ShardLeases {
  readonly #options: ShardLeasesOptions
  /** Shard → revision of the lease this node last wrote. */
  readonly #owned = new Map<number, number>()
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #stopped = false
  #live = 1

  constructor(options: ShardLeasesOptions) {
    this.#options = options
  }

  /** Nodes whose heartbeat was seen in the last round (at least this one). */
  get liveNodes(): number {
    return this.#live
  }

  get owned(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b)
  }

  async start(): Promise<void> {
    await this.tick()
    this.#timer = setInterval(() => void this.tick(), Math.max(50, this.#options.ttlMs / 3))
  }

  /** One round of heartbeat, refresh, rebalance and acquisition; never overlaps itself. */
  async tick(): Promise<void> {
    if (this.#stopped) return
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined))
    return this.#ticking
  }

  /** Drains: stops serving and gives every lease back, so others take over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#ticking
    const { kv } = this.#options
    for (const shard of this.owned) await this.#release(shard)
    await kv.delete(nodeKey(this.#options.nodeId)).catch(() => undefined)
  }

  async #tick(): Promise<void> {
    const { kv, nodeId, shards } = this.#options
    try {
      await kv.put(nodeKey(nodeId), String(Date.now()))
      for (const [shard, revision] of this.#owned) {
        try {
          this.#owned.set(shard, await kv.update(shardKey(shard), nodeId, revision))
        } catch {
          // Someone else holds it now (ours expired while we were slow): stop serving it.
          this.#owned.delete(shard)
          await this.#options.onRelease(shard)
        }
      }
      const live = Math.max(1, (await collect(await kv.keys('node.>'))).length)
      this.#live = live
      const fair = Math.ceil(shards / live)
      while (this.#owned.size > fair) {
        const extra = this.owned.at(-1) as number
        await this.#release(extra)
      }
      if (this.#owned.size >= fair) return
      const taken = new Set(
        (await collect(await kv.keys('shard.>'))).map((key) => Number(key.slice(6))),
      )
      const free = Array.from({ length: shards }, (_, i) => i).filter((i) => !taken.has(i))
      // Random order, so nodes starting together do not all race for the same keys.
      for (let i = free.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1))
        ;[free[i], free[j]] = [free[j] as number, free[i] as number]
      }
      for (const shard of free) {
        if (this.#owned.size >= fair || this.#stopped) break
        try {
          this.#owned.set(shard, await kv.create(shardKey(shard), nodeId))
          this.#options.onAcquire(shard)
        } catch {
          // Another node created it first.
        }
      }
    } catch {
      // NATS is unreachable this round; leases not refreshed in time are lost to others,
      // which the next successful round notices.
    }
  }

  async #release(shard: number): Promise<void> {
    const revision = this.#owned.get(shard)
    this.#owned.delete(shard)
    await this.#options.onRelease(shard)
    if (revision !== undefined) {
      await this.#options.kv
        .delete(shardKey(shard), { previousSeq: revision })
        .catch(() => undefined)
    }
  }
}
