/** Refusal codes a lane's admission can end with, in the order of the record's columns. */
export const LANE_REFUSALS = [
  'rate_limited',
  'queue_full',
  'queue_timeout',
  'cluster_unavailable',
] as const
export type LaneRefusal = (typeof LANE_REFUSALS)[number]

/** Upper bounds (ms) of the queue wait buckets; a last bucket takes everything above. */
export const WAIT_BUCKETS_MS = [
  1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
] as const
const BUCKETS = WAIT_BUCKETS_MS.length + 1

function bump(counts: Uint32Array, at: number): void {
  counts[at] = (counts[at] as number) + 1
}

/** Caller name under which lanes beyond `maxLanes` are counted together. */
export const OTHER_CALLERS = '(others)'

/** One lane as `GET /lanes` shows it: what its requests did over the window. */
export interface LaneView {
  readonly workspace: string
  readonly caller: string
  readonly target: string
  readonly tier: string
  /** Requests waiting for admission at this node right now. */
  readonly queued: number
  readonly admitted: number
  readonly refused: Partial<Record<LaneRefusal, number>>
  /** Admitted requests by queue wait, one count per WAIT_BUCKETS_MS bound and one above. */
  readonly wait: readonly number[]
}

export interface LaneActivityOptions {
  /** Monotonic clock, ms. */
  readonly now: () => number
  readonly windowMs?: number
  readonly slotMs?: number
  /** Lanes followed one by one; more are counted under OTHER_CALLERS per workspace and target. */
  readonly maxLanes?: number
}

/**
 * What one lane's requests did recently, in a ring of time slots: the request path writes
 * into the current slot (a few array increments), a reader sums the slots still inside the
 * window. Held by the request from admission to its end, so the path looks it up once.
 */
export class LaneRecord {
  readonly workspace: string
  readonly caller: string
  readonly target: string
  tier: string
  queued = 0
  // The ring is made when a second slot is written or the first refusal or wait comes: until
  // then the record counts the admissions of one slot. Most lanes of a flood of new callers
  // see one admission without a wait, and a record lives for the whole window, so what it
  // allocates outlives the young generation.
  /** Slot number (now / slotMs) each ring position holds, or -1. */
  #epochs: Float64Array | undefined
  #admitted: Uint32Array | undefined
  #refused: Uint32Array | undefined
  /** Admissions by wait, the buckets above the first (the first is what admitted leaves). */
  #wait: Uint32Array | undefined
  /** Before the ring: the one slot written (-1 for none) and its admissions. */
  #onlyEpoch = -1
  #onlyAdmitted = 0
  readonly #slots: number
  readonly #activity: LaneActivity
  lastActive = 0

  constructor(
    activity: LaneActivity,
    slots: number,
    names: { workspace: string; caller: string; target: string; tier: string },
  ) {
    this.#activity = activity
    this.#slots = slots
    this.workspace = names.workspace
    this.caller = names.caller
    this.target = names.target
    this.tier = names.tier
  }

  enter(): void {
    this.queued++
    this.lastActive = this.#activity.now()
  }

  leave(): void {
    this.queued--
  }

  admitted(waitedMs: number): void {
    const epoch = this.#epoch()
    let bucket = 0
    while (bucket < WAIT_BUCKETS_MS.length && waitedMs > (WAIT_BUCKETS_MS[bucket] as number))
      bucket++
    if (bucket === 0 && !this.#epochs && (this.#onlyEpoch === -1 || this.#onlyEpoch === epoch)) {
      this.#onlyEpoch = epoch
      this.#onlyAdmitted++
      return
    }
    const slot = this.#slot(epoch)
    bump(this.#admitted as Uint32Array, slot)
    if (bucket === 0) return
    this.#wait ??= new Uint32Array(this.#slots * (BUCKETS - 1))
    bump(this.#wait, slot * (BUCKETS - 1) + bucket - 1)
  }

  refused(code: LaneRefusal): void {
    const slot = this.#slot(this.#epoch())
    this.#refused ??= new Uint32Array(this.#slots * LANE_REFUSALS.length)
    bump(this.#refused, slot * LANE_REFUSALS.length + LANE_REFUSALS.indexOf(code))
  }

  /** The slot number of now; the lane is active now. */
  #epoch(): number {
    const now = this.#activity.now()
    this.lastActive = now
    return Math.floor(now / this.#activity.slotMs)
  }

  /**
   * The ring position of `epoch`, emptied when it last held an older slot; makes the ring,
   * with the one slot counted before it, on first use.
   */
  #slot(epoch: number): number {
    let epochs = this.#epochs
    if (!epochs) {
      epochs = new Float64Array(this.#slots).fill(-1)
      this.#epochs = epochs
      this.#admitted = new Uint32Array(this.#slots)
      if (this.#onlyEpoch !== -1) {
        const only = this.#onlyEpoch % this.#slots
        epochs[only] = this.#onlyEpoch
        this.#admitted[only] = this.#onlyAdmitted
      }
    }
    const slot = epoch % epochs.length
    if (epochs[slot] !== epoch) {
      epochs[slot] = epoch
      ;(this.#admitted as Uint32Array)[slot] = 0
      this.#refused?.fill(0, slot * LANE_REFUSALS.length, (slot + 1) * LANE_REFUSALS.length)
      this.#wait?.fill(0, slot * (BUCKETS - 1), (slot + 1) * (BUCKETS - 1))
    }
    return slot
  }

  view(oldestEpoch: number): LaneView {
    let admitted = 0
    const refused: Partial<Record<LaneRefusal, number>> = {}
    const wait = new Array<number>(BUCKETS).fill(0)
    const epochs = this.#epochs
    if (!epochs && this.#onlyEpoch >= oldestEpoch) {
      admitted = this.#onlyAdmitted
      wait[0] = admitted
    }
    for (let slot = 0; epochs && slot < epochs.length; slot++) {
      if ((epochs[slot] as number) < oldestEpoch) continue
      const inSlot = this.#admitted?.[slot] ?? 0
      admitted += inSlot
      LANE_REFUSALS.forEach((code, i) => {
        const n = this.#refused?.[slot * LANE_REFUSALS.length + i] ?? 0
        if (n > 0) refused[code] = (refused[code] ?? 0) + n
      })
      let waited = 0
      for (let b = 1; b < BUCKETS; b++) {
        const n = this.#wait?.[slot * (BUCKETS - 1) + b - 1] ?? 0
        wait[b] = (wait[b] as number) + n
        waited += n
      }
      wait[0] = (wait[0] as number) + inSlot - waited
    }
    return {
      workspace: this.workspace,
      caller: this.caller,
      target: this.target,
      tier: this.tier,
      queued: this.queued,
      admitted,
      refused,
      wait,
    }
  }
}

/**
 * The busiest lanes seen by this node's ingress over a short window (10 s by default), for
 * `GET /lanes` and `fairlane top`. Memory is bounded: idle lanes are dropped once outside
 * the window, and beyond `maxLanes` new lanes share one record per workspace and target.
 */
export class LaneActivity {
  readonly now: () => number
  readonly slotMs: number
  readonly windowMs: number
  readonly #slots: number
  readonly #maxLanes: number
  readonly #startedAt: number
  /** workspace → caller → target → record: no key string built per request. */
  readonly #lanes = new Map<string, Map<string, Map<string, LaneRecord>>>()
  #count = 0
  #sweptAt = -Infinity

  constructor(options: LaneActivityOptions) {
    this.now = options.now
    this.slotMs = options.slotMs ?? 1_000
    this.windowMs = options.windowMs ?? 10_000
    // One slot more than the window, so the slot being written never holds a whole slot's loss.
    this.#slots = Math.ceil(this.windowMs / this.slotMs) + 1
    this.#maxLanes = options.maxLanes ?? 10_000
    this.#startedAt = this.now()
  }

  /** The record of a lane, made on first use. */
  lane(workspace: string, caller: string, target: string, tier: string): LaneRecord {
    let record = this.#lanes.get(workspace)?.get(caller)?.get(target)
    if (record) {
      record.tier = tier
      return record
    }
    // Full: sweep at most once a slot, so a flood of new callers costs no scan per request.
    if (this.#count >= this.#maxLanes && this.now() - this.#sweptAt >= this.slotMs) this.sweep()
    if (this.#count >= this.#maxLanes && caller !== OTHER_CALLERS)
      return this.lane(workspace, OTHER_CALLERS, target, tier)
    let callers = this.#lanes.get(workspace)
    if (!callers) {
      callers = new Map()
      this.#lanes.set(workspace, callers)
    }
    let targets = callers.get(caller)
    if (!targets) {
      targets = new Map()
      callers.set(caller, targets)
    }
    record = new LaneRecord(this, this.#slots, { workspace, caller, target, tier })
    targets.set(target, record)
    this.#count++
    return record
  }

  /** Drops lanes with nothing waiting and no request within the window. */
  sweep(): void {
    this.#sweptAt = this.now()
    const idleSince = this.#sweptAt - this.windowMs - this.slotMs
    for (const [workspace, callers] of this.#lanes) {
      for (const [caller, targets] of callers) {
        for (const [target, record] of targets) {
          if (record.queued === 0 && record.lastActive < idleSince) {
            targets.delete(target)
            this.#count--
          }
        }
        if (targets.size === 0) callers.delete(caller)
      }
      if (callers.size === 0) this.#lanes.delete(workspace)
    }
  }

  /** The lanes active within the window, and the window's length (shorter just after start). */
  snapshot(): { windowSeconds: number; lanes: LaneView[] } {
    this.sweep()
    const now = this.now()
    const oldestEpoch = Math.floor((now - this.windowMs) / this.slotMs) + 1
    const lanes: LaneView[] = []
    for (const callers of this.#lanes.values())
      for (const targets of callers.values())
        for (const record of targets.values()) lanes.push(record.view(oldestEpoch))
    const covered = now - Math.max(this.#startedAt, oldestEpoch * this.slotMs)
    return { windowSeconds: Math.max(covered, this.slotMs) / 1000, lanes }
  }
}
