import type { ShareGrant, SharedAdmission } from '@fairlane/protocol'

export interface LeasedSharesOptions {
  readonly now: () => number
  /** Most admissions one lane asks for at once. */
  readonly max: number
  /**
   * Gives a grant back to the owner reached at `owner`: `used` admissions are now held by
   * requests (each sends its own `done`), `unused` ones are refunded.
   */
  readonly settle: (owner: string, used: readonly string[], unused: readonly string[]) => void
  /** A lent concurrency slot its request held past its grant's end is free now. */
  readonly slotDone: (owner: string, slot: string) => void
  /** Most lanes tracked at once: demand beyond it is simply not leased. */
  readonly maxLanes?: number
}

interface Held {
  /** Admissions the grant came with, and those added to it since. */
  total: number
  readonly owner: string
  readonly partition: string
  expiresAt: number
  readonly admissions: SharedAdmission[]
  readonly used: string[]
  /** Lent concurrency slots no request holds; undefined when the lane has no such limit. */
  readonly slots: string[] | undefined
  /** Slots requests hold now. */
  readonly out: Set<string>
  ended: boolean
}

/** A lent concurrency slot a request holds; `release` hands it on when the request ends. */
export interface HeldSlot {
  release(): void
}

interface Lane {
  /** Arrivals in the current demand window and in each of the windows before it, newest first. */
  readonly arrivals: number[]
  windowStart: number
  held?: Held
  /** When a request for the lane's next grant left, while it is under way. */
  askedAt: number | undefined
}

/** Demand is counted over windows this long: the grant covers about one window of requests. */
const DEMAND_WINDOW_MS = 250
/**
 * Windows remembered: a second's worth, about what a grant lasts (`ttlMs`, 1 s by default).
 * A lane too slow to send 2 in one window is sized by its arrivals over all of them.
 */
const DEMAND_WINDOWS = 4
/** A request for a grant unanswered this long is taken for lost. */
const ASK_TIMEOUT_MS = 5_000

/**
 * Ingress side of leased shares (docs/cluster.md#leased-shares): the admissions owners
 * granted this node, per lane, handed out to its requests without a network hop, and the
 * demand that sizes what a lane asks for next. A grant ends when it expires, when its
 * partition's owner revokes it (a ticket waits there), or when the node stops; what it held
 * goes back at once. Pure state: the clock and the way to the owner are given.
 */
export class LeasedShares {
  readonly #options: LeasedSharesOptions
  readonly #maxLanes: number
  readonly #lanes = new Map<string, Lane>()
  #closed = false

  constructor(options: LeasedSharesOptions) {
    this.#options = options
    this.#maxLanes = options.maxLanes ?? 10_000
  }

  /** Lanes holding a grant now. */
  get granted(): number {
    let count = 0
    for (const lane of this.#lanes.values()) if (lane.held) count++
    return count
  }

  /**
   * A request of `laneKey` arrived: one of the lane's granted admissions and the owner that
   * granted it, or undefined when it has none left and must ask its owner.
   */
  take(
    laneKey: string,
  ):
    | { readonly admission: SharedAdmission; readonly owner: string; readonly slot?: HeldSlot }
    | undefined {
    const now = this.#options.now()
    const lane = this.#lane(laneKey, now)
    if (!lane) return undefined
    lane.arrivals[0] = (lane.arrivals[0] ?? 0) + 1
    const held = lane.held
    if (!held) return undefined
    if (now >= held.expiresAt) {
      this.#end(lane)
      return undefined
    }
    // None left: the grant (and the slots it holds) waits for the next, which this
    // request's own ask brings; it ends if that is refused.
    if (held.admissions.length === 0) return undefined
    // Every lent slot is in use: this request goes through the owner, the grant stays.
    if (held.slots?.length === 0) return undefined
    const admission = held.admissions.pop() as SharedAdmission
    held.used.push(admission.leaseId)
    const slot = held.slots?.pop()
    if (slot === undefined) return { admission, owner: held.owner }
    held.out.add(slot)
    return { admission, owner: held.owner, slot: this.#heldSlot(held, slot) }
  }

  /**
   * How many admissions to ask the lane's owner for now, 0 for none: with a ticket that goes
   * to the owner anyway, or ahead of need when the lane's grant runs low, so that its
   * requests never wait for the next one. Once asked, the lane asks again only after
   * `granted` or `refused`.
   */
  wanted(laneKey: string): number {
    const lane = this.#lanes.get(laneKey)
    if (!lane || lane.askedAt !== undefined) return 0
    const held = lane.held
    const [current = 0, previous = 0] = lane.arrivals
    let demand = Math.max(current, previous)
    // A lane under 2 per window still pays a round trip per request without a share, which
    // is the whole latency of a request whose owner is a region away: it asks for what it
    // sent over the last second, what a grant lasts. One that sent fewer than 2 even then
    // gains little and would only hold units others may want.
    if (demand < 2) demand = lane.arrivals.reduce((sum, n) => sum + n, 0)
    const slotsBusy = held?.slots?.length === 0
    if (held && held.admissions.length * 2 > held.total && !slotsBusy) return 0
    // What the lane still holds is added to, not replaced (see grant).
    const wanted = Math.min(this.#options.max, demand) - (held?.admissions.length ?? 0)
    if (wanted < 2) return 0
    lane.askedAt = this.#options.now()
    return wanted
  }

  /** The owner granted nothing this time. */
  refused(laneKey: string): void {
    const lane = this.#lanes.get(laneKey)
    if (!lane) return
    lane.askedAt = undefined
    if (lane.held?.admissions.length === 0) this.#end(lane)
  }

  /**
   * Keeps a grant for its lane. It replaces the lane's previous grant, which goes back
   * (what is left of it was asked to be replaced, so little is).
   */
  grant(laneKey: string, owner: string, grant: ShareGrant): void {
    const now = this.#options.now()
    const lane = this.#lane(laneKey, now)
    if (lane) lane.askedAt = undefined
    if (!lane || grant.admissions.length === 0) {
      const ids = [
        ...grant.admissions.map((admission) => admission.leaseId),
        ...(grant.slots ?? []),
      ]
      if (ids.length > 0) this.#options.settle(owner, [], ids)
      return
    }
    // Handed out from the end: the last decided has the smallest remaining quota, so
    // the first handed out shows the largest, as admissions in arrival order would.
    const admissions = [...grant.admissions].reverse()
    const held = lane.held
    if (
      held &&
      held.owner === owner &&
      held.partition === grant.partition &&
      now < held.expiresAt &&
      (held.slots === undefined) === (grant.slots === undefined)
    ) {
      // Asked for ahead of need, so the grant still holds some: those go first (they were
      // decided first and expire first), and the whole ends when they expire.
      held.admissions.unshift(...admissions)
      held.total = held.admissions.length
      if (grant.slots) held.slots?.push(...grant.slots)
      // An admission kept past its owner's expiry is harmless (the owner counts it spent);
      // a slot is not, and `sweep` keeps those alive at the owner.
      held.expiresAt = now + grant.ttlMs
      return
    }
    this.#end(lane)
    lane.held = {
      total: grant.admissions.length,
      owner,
      partition: grant.partition,
      expiresAt: now + grant.ttlMs,
      admissions,
      used: [],
      slots: grant.slots ? [...grant.slots] : undefined,
      out: new Set(),
      ended: false,
    }
  }

  /** The owner of `partition` has a ticket waiting: every grant there goes back now. */
  revoke(partition: string): void {
    for (const lane of this.#lanes.values()) {
      if (lane.held?.partition === partition) this.#end(lane)
    }
  }

  /**
   * Ends expired grants, tells owners which admissions requests now hold (an owner frees
   * those it hears nothing of soon after the grant's TTL), and forgets lanes with neither a
   * grant nor recent demand. Call it several times per TTL.
   */
  sweep(): void {
    const now = this.#options.now()
    for (const [key, lane] of this.#lanes) {
      const held = lane.held
      if (held && now >= held.expiresAt) this.#end(lane)
      else if (held) {
        // Slots, free or not, are named too: they outlive the grant they came with.
        const inUse = [...held.used.splice(0), ...(held.slots ?? []), ...held.out]
        if (inUse.length > 0) this.#options.settle(held.owner, inUse, [])
      }
      this.#roll(lane, now)
      // An answer that never came (lost, or its owner died) must not stop the lane asking.
      if (lane.askedAt !== undefined && now - lane.askedAt > ASK_TIMEOUT_MS)
        lane.askedAt = undefined
      if (!lane.held && lane.askedAt === undefined && lane.arrivals.every((n) => n === 0)) {
        this.#lanes.delete(key)
      }
    }
  }

  /** Gives every grant back (the node drains or stops), and any that arrives later. */
  close(): void {
    this.#closed = true
    for (const lane of this.#lanes.values()) if (lane.held) this.#end(lane)
    this.#lanes.clear()
  }

  #lane(key: string, now: number): Lane | undefined {
    let lane = this.#lanes.get(key)
    if (!lane) {
      if (this.#closed || this.#lanes.size >= this.#maxLanes) return undefined
      lane = {
        arrivals: new Array<number>(DEMAND_WINDOWS).fill(0),
        windowStart: now,
        askedAt: undefined,
      }
      this.#lanes.set(key, lane)
    }
    this.#roll(lane, now)
    return lane
  }

  #roll(lane: Lane, now: number): void {
    const elapsed = now - lane.windowStart
    if (elapsed < DEMAND_WINDOW_MS) return
    const passed = Math.min(DEMAND_WINDOWS, Math.floor(elapsed / DEMAND_WINDOW_MS))
    lane.arrivals.unshift(...new Array<number>(passed).fill(0))
    lane.arrivals.length = DEMAND_WINDOWS
    lane.windowStart = now - (elapsed % DEMAND_WINDOW_MS)
  }

  #end(lane: Lane): void {
    const held = lane.held
    if (!held) return
    lane.held = undefined
    held.ended = true
    // Slots in use are held by their requests until they end (then `slotDone`).
    const used = [...held.used, ...held.out]
    const unused = [...held.admissions.map((admission) => admission.leaseId), ...(held.slots ?? [])]
    if (used.length > 0 || unused.length > 0) this.#options.settle(held.owner, used, unused)
  }

  #heldSlot(held: Held, slot: string): HeldSlot {
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        held.out.delete(slot)
        if (held.ended) this.#options.slotDone(held.owner, slot)
        else held.slots?.push(slot)
      },
    }
  }
}
