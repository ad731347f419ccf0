import type { RateLimitView, ShareGrant } from '@fairlane/protocol'

/** Where one grant's admissions stand here; see the `grant-state` item of the wire. */
export interface GrantState {
  readonly grant: string
  readonly unused: number
  readonly open: boolean
}

export interface LeasedSharesOptions {
  readonly now: () => number
  /** Most admissions one lane asks for at once. */
  readonly max: number
  /** Tells the owner reached at `owner` where one of its grants stands. */
  readonly grantState: (owner: string, state: GrantState) => void
  /** Lent concurrency slots: `used` ones are held here, `unused` ones go back. */
  readonly settleSlots: (owner: string, used: readonly string[], unused: readonly string[]) => void
  /** A lent concurrency slot its request held past its grant's end is free now. */
  readonly slotDone: (owner: string, slot: string) => void
  /** Most lanes tracked at once: demand beyond it is simply not leased. */
  readonly maxLanes?: number
  /**
   * Longest a grant stays open after it stopped handing out admissions, for requests that
   * hold one: the owner's longest request (its shard server's lease TTL, 15 minutes by
   * default). A request that has not ended by then is taken for lost, and the grant closed.
   */
  readonly maxHoldMs?: number
}

/**
 * One grant's admissions: handed out in order, and told to its owner until none is left
 * here, neither to hand out nor held by a request.
 */
interface Part {
  readonly owner: string
  readonly grant: ShareGrant
  /** Handed out so far. */
  handed: number
  /** Given back to the owner unused. */
  returned: number
  /** Handed out to requests that have not ended. */
  inFlight: number
  /** When it stopped handing out (its lane's grant ended, or none was left), if it did. */
  doneAt: number | undefined
}

interface Held {
  readonly owner: string
  readonly partition: string
  expiresAt: number
  /** Grants with admissions to hand out, oldest first (they were decided first). */
  readonly parts: Part[]
  /** Admissions left to hand out over all parts. */
  left: number
  /** What `left` was when the newest grant came. */
  total: number
  /** Lent concurrency slots no request holds; undefined when the lane has no such limit. */
  readonly slots: string[] | undefined
  /** Slots requests hold now. */
  readonly out: Set<string>
  /** Most slots requests held at once since the last grant came. */
  peak: number
  ended: boolean
}

/** A lent concurrency slot a request holds; `release` hands it on when the request ends. */
export interface HeldSlot {
  release(): void
}

/** An admission handed to a request from a grant. */
export interface LocalAdmission {
  /** Where the grant's owner is reached. */
  readonly owner: string
  /** The grant's id, for news of the request (`grant-used`). */
  readonly grant: string
  readonly views: readonly RateLimitView[]
  readonly slot?: HeldSlot
  /** The request ended (its slot, if any, is released apart); once is enough. */
  end(): void
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
/** The shard server's default lease TTL: see `maxHoldMs`. */
const MAX_HOLD_MS = 15 * 60_000
/** Slots a lane with a concurrency limit asks for before it has seen its own concurrency. */
const FIRST_SLOTS = 8

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
  readonly #maxHoldMs: number
  readonly #lanes = new Map<string, Lane>()
  /** Grants not yet closed at their owner: some of their admissions are still here. */
  readonly #open = new Set<Part>()
  #closed = false

  constructor(options: LeasedSharesOptions) {
    this.#options = options
    this.#maxLanes = options.maxLanes ?? 10_000
    this.#maxHoldMs = options.maxHoldMs ?? MAX_HOLD_MS
  }

  /** Lanes holding a grant now. */
  get granted(): number {
    let count = 0
    for (const lane of this.#lanes.values()) if (lane.held) count++
    return count
  }

  /** Grants their owners keep for this node: some of their admissions are still here. */
  get openGrants(): number {
    return this.#open.size
  }

  /**
   * A request of `laneKey` arrived: one of the lane's granted admissions, or undefined when
   * it has none left and must ask its owner.
   */
  take(laneKey: string): LocalAdmission | undefined {
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
    const part = held.parts[0]
    if (!part) return undefined
    // Every lent slot is in use: this request goes through the owner, the grant stays.
    if (held.slots?.length === 0) return undefined
    const index = part.handed++
    part.inFlight++
    held.left--
    if (part.handed === part.grant.admissions) {
      held.parts.shift()
      part.doneAt = now
    }
    const slot = held.slots?.pop()
    if (slot !== undefined) {
      held.out.add(slot)
      if (held.out.size > held.peak) held.peak = held.out.size
    }
    let ended = false
    return {
      owner: part.owner,
      grant: part.grant.id,
      views: viewsOf(part.grant, index),
      ...(slot !== undefined ? { slot: this.#heldSlot(held, slot) } : {}),
      end: () => {
        if (ended) return
        ended = true
        this.#ended(part)
      },
    }
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
    if (held && held.left * 2 > held.total && !slotsBusy) return 0
    // What the lane still holds is added to, not replaced (see grant).
    const wanted = Math.min(this.#options.max, demand) - (held?.left ?? 0)
    if (wanted < 2) return 0
    lane.askedAt = this.#options.now()
    return wanted
  }

  /**
   * How many concurrency slots to ask for with the admissions `wanted` gave: up to twice
   * the most the lane's requests held at once lately, less what it holds. Slots go back to
   * the grant, not to the owner, so a node needs only as many as its requests in flight: a
   * key allowed a million in flight would otherwise be lent more with every grant, and the
   * node would name every one of them to the owner four times a second.
   */
  slotsWanted(laneKey: string): number {
    const held = this.#lanes.get(laneKey)?.held
    if (!held?.slots) return FIRST_SLOTS
    const holding = held.slots.length + held.out.size
    return Math.max(0, Math.max(2 * held.peak, FIRST_SLOTS) - holding)
  }

  /** The owner granted nothing this time. */
  refused(laneKey: string): void {
    const lane = this.#lanes.get(laneKey)
    if (!lane) return
    lane.askedAt = undefined
    if (lane.held?.left === 0) this.#end(lane)
  }

  /**
   * Keeps a grant for its lane. It replaces the lane's previous grant, which goes back
   * (what is left of it was asked to be replaced, so little is).
   */
  grant(laneKey: string, owner: string, grant: ShareGrant): void {
    const now = this.#options.now()
    const lane = this.#lane(laneKey, now)
    if (lane) lane.askedAt = undefined
    const part: Part = { owner, grant, handed: 0, returned: 0, inFlight: 0, doneAt: undefined }
    if (!lane || grant.admissions === 0) {
      if (grant.admissions > 0) this.#close(part)
      if (grant.slots?.length) this.#options.settleSlots(owner, [], grant.slots)
      return
    }
    this.#open.add(part)
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
      held.parts.push(part)
      held.left += grant.admissions
      held.total = held.left
      if (grant.slots) held.slots?.push(...grant.slots)
      held.peak = held.out.size
      // An admission kept past its owner's expiry is harmless (the owner counts it spent);
      // a slot is not, and `sweep` keeps those alive at the owner.
      held.expiresAt = now + grant.ttlMs
      return
    }
    this.#end(lane)
    lane.held = {
      owner,
      partition: grant.partition,
      expiresAt: now + grant.ttlMs,
      parts: [part],
      left: grant.admissions,
      total: grant.admissions,
      slots: grant.slots ? [...grant.slots] : undefined,
      out: new Set(),
      peak: 0,
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
   * Ends expired grants, tells owners which grants and slots are still held here (an owner
   * forgets those it hears nothing of soon after the grant's TTL), and forgets lanes with
   * neither a grant nor recent demand. Call it several times per TTL.
   */
  sweep(): void {
    const now = this.#options.now()
    for (const [key, lane] of this.#lanes) {
      const held = lane.held
      if (held && now >= held.expiresAt) this.#end(lane)
      else if (held) {
        // Slots, free or not, are named: they outlive the grant they came with.
        const slots = [...(held.slots ?? []), ...held.out]
        if (slots.length > 0) this.#options.settleSlots(held.owner, slots, [])
      }
      this.#roll(lane, now)
      // An answer that never came (lost, or its owner died) must not stop the lane asking.
      if (lane.askedAt !== undefined && now - lane.askedAt > ASK_TIMEOUT_MS)
        lane.askedAt = undefined
      if (!lane.held && lane.askedAt === undefined && lane.arrivals.every((n) => n === 0)) {
        this.#lanes.delete(key)
      }
    }
    for (const part of this.#open) {
      if (part.doneAt !== undefined && now - part.doneAt > this.#maxHoldMs) this.#close(part)
      else this.#options.grantState(part.owner, { grant: part.grant.id, unused: 0, open: true })
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
    const now = this.#options.now()
    for (const part of held.parts) {
      part.doneAt = now
      if (part.inFlight === 0) this.#close(part)
      else this.#giveBack(part, true)
    }
    // Slots in use are held by their requests until they end (then `slotDone`).
    const unused = held.slots ?? []
    if (held.out.size > 0 || unused.length > 0)
      this.#options.settleSlots(held.owner, [...held.out], unused)
  }

  /** A request admitted from `part` ended. */
  #ended(part: Part): void {
    part.inFlight--
    if (part.inFlight === 0 && part.doneAt !== undefined && this.#open.has(part)) this.#close(part)
  }

  /** Nothing of the grant is left here: what was not handed out goes back, and it is forgotten. */
  #close(part: Part): void {
    this.#open.delete(part)
    this.#giveBack(part, false)
  }

  /** Tells the owner where the grant stands, giving back (once) what was not handed out. */
  #giveBack(part: Part, open: boolean): void {
    const unused = part.grant.admissions - part.handed - part.returned
    part.returned += unused
    this.#options.grantState(part.owner, { grant: part.grant.id, unused, open })
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

/**
 * The limits as the grant's admission number `index` left them. The grant's admissions were
 * decided one after another at one moment, so each leaves a limit where the first and the
 * last put it, in line between them.
 */
function viewsOf(grant: ShareGrant, index: number): readonly RateLimitView[] {
  const last = grant.lastViews
  if (index === 0 || !last) return grant.views
  if (index === grant.admissions - 1) return last
  const along = index / (grant.admissions - 1)
  return grant.views.map((first, i) => {
    const end = last[i]
    if (end?.name !== first.name) return first
    return {
      ...first,
      remaining: Math.round(first.remaining + (end.remaining - first.remaining) * along),
      resetMs: Math.round(first.resetMs + (end.resetMs - first.resetMs) * along),
    }
  })
}
