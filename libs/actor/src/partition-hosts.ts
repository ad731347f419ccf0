import type { AdaptiveSettings } from '@fairlane/limits'
import {
  LaneScheduler,
  type Discipline,
  type GateVerdict,
  type NodeQueueBudget,
  type QueueBounds,
  type QueuedTicket,
  type TierSpec,
} from '@fairlane/scheduler'
import { Headroom } from './headroom.ts'

/** How one target partition queues; a new object means new settings. */
export interface PartitionSettings {
  readonly tiers: readonly TierSpec[]
  readonly bounds: QueueBounds
  readonly quantum: number
  readonly discipline: Discipline
  /** The partition's concurrency (the target's limit), when it has one. */
  readonly capacity?: number
  /**
   * Slots of `capacity` kept for lanes with nothing in flight: a lane that already has a
   * request in flight may not take the last `headroom` slots. A new caller then finds a slot
   * at once instead of waiting for the next one to free; a lone flood gives up that many.
   */
  readonly headroom?: number
  /** Lanes adopt what the upstream says about its limits (adaptive lane limits). */
  readonly adaptive?: AdaptiveSettings
}

/** One target partition: its scheduler, its wake-up timer and its requests in flight. */
export interface PartitionHost<P> {
  readonly key: string
  readonly settings: PartitionSettings
  readonly scheduler: LaneScheduler<P>
  readonly headroom: Headroom
  timer?: NodeJS.Timeout
  timerAt?: number
}

/** What a partition's scheduler asks of its owner. */
export interface PartitionEvents<P> {
  gate(queued: QueuedTicket<P>): GateVerdict
  dispatched(queued: QueuedTicket<P>): void
  refused(queued: QueuedTicket<P>, code: 'queue_timeout' | 'rate_limited'): void
}

/**
 * The partitions an actor hosts: a LaneScheduler each, whose wake-up times become one real
 * timer per partition. A config reload gets a new scheduler at once; the old one keeps its
 * tickets, timers and order until it has drained.
 */
export class PartitionHosts<P> {
  readonly #now: () => number
  readonly #budget: NodeQueueBudget
  readonly #events: PartitionEvents<P>
  readonly #live = new Map<string, PartitionHost<P>>()
  /** Schedulers replaced by a config reload that still hold tickets; they drain, then go. */
  readonly #draining = new Set<PartitionHost<P>>()

  constructor(options: { now: () => number; budget: NodeQueueBudget; events: PartitionEvents<P> }) {
    this.#now = options.now
    this.#budget = options.budget
    this.#events = options.events
  }

  /** The partition's current host, if it has one. */
  get(partition: string): PartitionHost<P> | undefined {
    return this.#live.get(partition)
  }

  /** Every host, those draining after a reload included. */
  all(): PartitionHost<P>[] {
    return [...this.#live.values(), ...this.#draining]
  }

  /** The partition's host for these settings: new settings get a new scheduler. */
  host(partition: string, settings: PartitionSettings): PartitionHost<P> {
    const existing = this.#live.get(partition)
    if (existing?.settings === settings) return existing
    if (existing) {
      if (existing.scheduler.queued > 0) this.#draining.add(existing)
      else clearTimeout(existing.timer)
    }
    const events = this.#events
    const host: PartitionHost<P> = {
      key: partition,
      settings,
      headroom: new Headroom(settings.capacity, settings.headroom),
      scheduler: new LaneScheduler<P>({
        now: this.#now,
        tiers: settings.tiers,
        bounds: settings.bounds,
        budget: this.#budget,
        quantum: settings.quantum,
        discipline: settings.discipline,
        gate: (queued) => events.gate(queued),
        onDispatch: (queued) => events.dispatched(queued),
        onExpire: (queued) => events.refused(queued, 'queue_timeout'),
        onReject: (queued) => events.refused(queued, 'rate_limited'),
      }),
    }
    this.#live.set(partition, host)
    return host
  }

  /** Lets the host's scheduler dispatch what may go, then waits for its next wake-up. */
  pump(host: PartitionHost<P>): void {
    host.scheduler.pump()
    this.rearm(host)
    if (host.scheduler.queued === 0 && this.#draining.delete(host)) clearTimeout(host.timer)
  }

  /** Sets the host's timer to its scheduler's next wake-up (after a cancel, for one). */
  rearm(host: PartitionHost<P>): void {
    const next = host.scheduler.nextWakeAt()
    if (next === host.timerAt) return
    clearTimeout(host.timer)
    host.timer = undefined
    host.timerAt = next
    if (next === undefined) return
    host.timer = setTimeout(
      () => {
        host.timer = undefined
        host.timerAt = undefined
        this.pump(host)
      },
      Math.max(0, next - this.#now()),
    )
  }

  /** Stops every timer; a ticket still waiting then waits forever. */
  close(): void {
    for (const host of this.all()) clearTimeout(host.timer)
    this.#live.clear()
    this.#draining.clear()
  }
}
