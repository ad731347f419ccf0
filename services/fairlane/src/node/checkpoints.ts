import type { Redis } from 'ioredis'
import type { FairlaneConfig } from '@fairlane/config'
import type { PartitionSnapshot, QueueActor } from '@fairlane/actor'
import { shardOfPartition } from '@fairlane/protocol'
import { URL_TARGET } from '../limits/scopes.ts'

interface Saved extends PartitionSnapshot {
  /** Wall-clock time of the snapshot, to age it on another node. */
  readonly at: number
}

/** Checkpoints outlive any limit period that matters; a partition idle this long starts fresh. */
const KEEP_MS = 24 * 3600_000

/** Every partition of the config that lives on a shard: what its new owner must resume. */
export function partitionsOfShard(config: FairlaneConfig, shard: number, shards: number): string[] {
  const all = [`${URL_TARGET}#0`]
  for (const [name, target] of Object.entries(config.targets)) {
    for (let p = 0; p < target.partitions; p++) all.push(`${name}#${p}`)
  }
  return all.filter((partition) => shardOfPartition(partition, shards) === shard)
}

/**
 * Lane state (the in-memory limits of each partition) saved to Redis every `everyMs` while
 * it changes and when a shard is given up, and resumed by the shard's next owner before it
 * serves. After a crash the next owner misses at most what passed in the last interval.
 */
export class PartitionCheckpoints {
  readonly #redis: Redis
  readonly #actor: QueueActor
  readonly #prefix: string
  readonly #timer: NodeJS.Timeout
  #writing = false

  constructor(options: { redis: Redis; actor: QueueActor; everyMs: number; prefix?: string }) {
    this.#redis = options.redis
    this.#actor = options.actor
    this.#prefix = options.prefix ?? 'fairlane:'
    this.#timer = setInterval(() => void this.#saveChanged(), options.everyMs)
    this.#timer.unref()
  }

  #key(partition: string): string {
    return `${this.#prefix}checkpoint:{${partition}}`
  }

  /** Saves the partitions of a shard this node is giving up. */
  async save(partitions: readonly string[]): Promise<void> {
    const pipeline = this.#redis.pipeline()
    for (const partition of partitions) {
      const snapshot = this.#actor.snapshot(partition)
      if (snapshot) this.#write(pipeline, partition, snapshot)
    }
    await pipeline.exec().catch(() => undefined)
  }

  /** Resumes the partitions of a shard this node just took. A missing checkpoint is no error. */
  async restore(partitions: readonly string[]): Promise<void> {
    if (partitions.length === 0) return
    const values = await this.#redis
      .mget(partitions.map((p) => this.#key(p)))
      .catch(() => partitions.map(() => null))
    partitions.forEach((partition, i) => {
      const text = values[i]
      if (!text) return
      let saved: Saved
      try {
        saved = JSON.parse(text) as Saved
      } catch {
        // Not ours to read (a foreign writer, a truncated value): start this partition fresh.
        return
      }
      this.#actor.restore(partition, saved, Math.max(0, Date.now() - saved.at))
    })
  }

  close(): void {
    clearInterval(this.#timer)
  }

  async #saveChanged(): Promise<void> {
    if (this.#writing) return
    const changed = this.#actor.changedPartitions
    if (changed.length === 0) return
    this.#writing = true
    try {
      const pipeline = this.#redis.pipeline()
      for (const partition of changed) {
        const snapshot = this.#actor.snapshot(partition, true)
        if (snapshot) this.#write(pipeline, partition, snapshot)
      }
      // Redis away: the next round writes the state as it is then.
      await pipeline.exec().catch(() => undefined)
    } finally {
      this.#writing = false
    }
  }

  #write(
    pipeline: ReturnType<Redis['pipeline']>,
    partition: string,
    snapshot: PartitionSnapshot,
  ): void {
    const saved: Saved = { at: Date.now(), ...snapshot }
    pipeline.set(this.#key(partition), JSON.stringify(saved), 'PX', KEEP_MS)
  }
}
