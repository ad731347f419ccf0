import { setTimeout as sleep } from 'node:timers/promises'
import type { KV } from '@nats-io/kv'
import { settleWithin } from '../settle-within.ts'
import { LeaseView } from './lease-view.ts'
import type { NatsLink } from './nats-link.ts'

export interface ShardLeasesOptions {
  /** A KV bucket whose `ttl` (max age) is `ttlMs`: a key not rewritten in time disappears. */
  readonly kv: KV
  /**
   * Rewrites a key of that bucket if its last revision is still the one given (a
   * KeyRewriter's `rewrite`); refused with "wrong last sequence" when it is not.
   */
  readonly rewrite: (key: string, value: string, revision: number) => Promise<number>
  readonly nodeId: string
  /** Shard count of the cluster, the same on every node. */
  readonly shards: number
  readonly ttlMs: number
  /** This node now owns the shard: start serving it. */
  readonly onAcquire: (shard: number) => void
  /** This node no longer owns the shard (given up or lost): stop serving it first. */
  readonly onRelease: (shard: number) => Promise<void> | void
  /** The connection's state: while it is down no round is attempted (each write would time out). */
  readonly link?: NatsLink
  /**
   * Longest the drain waits for the bucket (lease deletions) before it gives up: leases it
   * could not delete expire by themselves within the TTL.
   */
  readonly stopStoreMs?: number
  readonly now?: () => number
}

const shardKey = (shard: number) => `shard.${shard}`
/**
 * Most lease rewrites out at once: a round's rewrites go in groups of this many, spread over
 * half the round (256 sent at once stalled a node's event loop for about 20 ms every round).
 */
const RENEW_GROUP = 8
const NODE_PREFIX = 'node.'
const SHARD_PREFIX = 'shard.'

interface Held {
  readonly revision: number
  /** Local time the last successful write of the lease was sent: it lives until this + TTL. */
  readonly writtenAt: number
}

/** The store refused the write for its revision: someone else holds the key now, or nobody. */
const lost = (err: unknown) => err instanceof Error && /wrong last sequence/i.test(err.message)

/**
 * Ownership of shards through leases in a NATS KV bucket. Every tick (a third of the TTL) a
 * node rewrites its heartbeat and each lease it holds (a few at a time, spread over half the
 * tick) with compare-and-set on the revision it last wrote, so a lease it lost is noticed
 * instead of overwritten; gives up leases above its fair share (⌈shards / live nodes⌉) so a
 * joining node can take them; and takes free shards with `create`, which refuses a key that
 * exists. A node that dies stops rewriting, and its keys vanish with the bucket's TTL, for
 * the others to take. Who is alive and which shards are taken is read from one watch of the
 * bucket (LeaseView).
 */
export class ShardLeases {
  readonly #options: ShardLeasesOptions
  readonly #now: () => number
  readonly #view: LeaseView
  readonly #owned = new Map<number, Held>()
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #stopped = false
  /** Aborted by stop(): a round pausing between groups of rewrites ends at once. */
  readonly #stopping = new AbortController()
  #live = 1

  constructor(options: ShardLeasesOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#view = new LeaseView(options.kv, options.ttlMs, this.#now)
  }

  /** Distinct nodes whose heartbeat was fresh in the last round (at least this one). */
  get liveNodes(): number {
    return this.#live
  }

  get owned(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b)
  }

  async start(): Promise<void> {
    this.#view.start()
    await this.tick()
    this.#timer = setInterval(() => {
      this.#expire()
      void this.tick()
    }, this.#roundMs)
  }

  get #roundMs(): number {
    return Math.max(50, this.#options.ttlMs / 3)
  }

  /** One round of heartbeat, refresh, rebalance and acquisition; never overlaps itself. */
  async tick(): Promise<void> {
    if (this.#stopped) return
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined))
    return this.#ticking
  }

  /**
   * Drains: stops serving every shard at once and gives the leases back, so others take over
   * at once. The bucket gets at most `stopStoreMs` (none while NATS is down): a lease not
   * deleted expires within the TTL.
   */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#stopping.abort()
    clearInterval(this.#timer)
    const storeMs = this.#options.stopStoreMs ?? 2_000
    if (this.#ticking) await settleWithin(this.#ticking, storeMs)
    const held = [...this.#owned]
    this.#owned.clear()
    await Promise.all(held.map(([shard]) => this.#options.onRelease(shard)))
    if (this.#options.link?.connected !== false) {
      const { kv, nodeId } = this.#options
      const deletions = held.map(([shard, { revision }]) =>
        kv.delete(shardKey(shard), { previousSeq: revision }),
      )
      deletions.push(kv.delete(NODE_PREFIX + nodeId))
      await settleWithin(Promise.allSettled(deletions), storeMs)
    }
    this.#view.stop()
  }

  async #tick(): Promise<void> {
    const { kv, nodeId, shards, link } = this.#options
    if (link && !link.connected) return
    try {
      const beat = await kv.put(NODE_PREFIX + nodeId, String(Date.now()))
      await this.#refreshAll()
      // Decide on a view that has seen at least this node's own heartbeat, so on every
      // write made before it: an older view would miss a joining node or count a gone one.
      if (!(await this.#view.caughtUp(beat, this.#options.ttlMs))) return
      const live = this.#view.live(NODE_PREFIX)
      live.add(nodeId)
      this.#live = live.size
      const fair = Math.ceil(shards / live.size)
      while (this.#owned.size > fair) {
        const extra = this.owned.at(-1) as number
        await this.#release(extra)
      }
      if (this.#owned.size >= fair) return
      const taken = new Set(
        [...this.#view.entries(SHARD_PREFIX).keys()].map((key) =>
          Number(key.slice(SHARD_PREFIX.length)),
        ),
      )
      const free = Array.from({ length: shards }, (_, i) => i).filter(
        (i) => !taken.has(i) && !this.#owned.has(i),
      )
      // Random order, so nodes starting together do not all race for the same keys.
      for (let i = free.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1))
        ;[free[i], free[j]] = [free[j] as number, free[i] as number]
      }
      for (const shard of free) {
        if (this.#owned.size >= fair || this.#stopped) break
        const writtenAt = this.#now()
        try {
          const revision = await kv.create(shardKey(shard), nodeId)
          if (this.#stopped) {
            await kv.delete(shardKey(shard), { previousSeq: revision }).catch(() => undefined)
            break
          }
          this.#owned.set(shard, { revision, writtenAt })
          this.#options.onAcquire(shard)
        } catch {
          // Another node created it first.
        }
      }
    } catch {
      // NATS is unreachable this round; leases not refreshed in time are dropped by #expire
      // and lost to others, which the next successful round notices.
    }
  }

  /**
   * Rewrites every held lease in groups of RENEW_GROUP, one group after the other, the groups
   * spread evenly over half a round: each lease is rewritten once a round (a third of the TTL)
   * as before, at the same point of every round, and a late group still has half a round of
   * slack before the next round. Stops between groups when the node drains.
   */
  async #refreshAll(): Promise<void> {
    const held = [...this.#owned]
    const groups = Math.ceil(held.length / RENEW_GROUP)
    const started = this.#now()
    const step = this.#roundMs / 2 / groups
    for (let g = 0; g < groups && !this.#stopped; g++) {
      const wait = started + g * step - this.#now()
      if (wait > 0)
        await sleep(wait, undefined, { signal: this.#stopping.signal }).catch(() => undefined)
      if (this.#stopped) return
      // A lease dropped since the round began (expired, given up, lost) is not written again.
      const group = held
        .slice(g * RENEW_GROUP, (g + 1) * RENEW_GROUP)
        .filter(([shard, lease]) => this.#owned.get(shard) === lease)
      await Promise.all(group.map(([shard, lease]) => this.#refresh(shard, lease)))
    }
  }

  async #refresh(shard: number, held: Held): Promise<void> {
    const writtenAt = this.#now()
    try {
      const revision = await this.#options.rewrite(
        shardKey(shard),
        this.#options.nodeId,
        held.revision,
      )
      // Dropped meanwhile (expired or given up): a late success does not bring it back.
      if (this.#owned.get(shard) === held) this.#owned.set(shard, { revision, writtenAt })
    } catch (err) {
      // Someone else holds it now (ours expired while we were slow): stop serving it. Any
      // other failure (a timeout) keeps it until its lease runs out (#expire).
      if (lost(err) && this.#owned.get(shard) === held) {
        this.#owned.delete(shard)
        await this.#options.onRelease(shard)
      }
    }
  }

  /**
   * Drops the leases this node could not refresh in time: another node may hold them now,
   * and the metrics must count what this node really holds.
   */
  #expire(): void {
    const oldest = this.#now() - this.#options.ttlMs
    for (const [shard, held] of this.#owned) {
      if (held.writtenAt > oldest) continue
      this.#owned.delete(shard)
      void Promise.resolve(this.#options.onRelease(shard)).catch(() => undefined)
    }
  }

  async #release(shard: number): Promise<void> {
    const held = this.#owned.get(shard)
    this.#owned.delete(shard)
    await this.#options.onRelease(shard)
    if (held !== undefined) {
      await this.#options.kv
        .delete(shardKey(shard), { previousSeq: held.revision })
        .catch(() => undefined)
    }
  }
}
