import { ringPush, ringRemove, type Ringed } from './ring.ts'
import { TimerWheel, type Timer } from './timer-wheel.ts'

/**
 * The queue of one target partition: every caller has its own lane (a FIFO), lanes are
 * grouped by workspace and workspaces by tier. Which ticket goes next is decided by
 *   1. strict priority across tiers, except that a tier with a minimum share is owed that
 *      fraction of the service while it has a backlog, so it is never starved;
 *   2. deficit round robin across the tier's workspaces, by workspace weight;
 *   3. deficit round robin across the workspace's lanes, by key weight.
 * When a ticket may go is decided by the limits, through the injected gate: a limit that
 * refuses blocks its lane, its workspace or the whole partition until the time the limit
 * names (a timer) or until a request in flight completes (a release).
 *
 * Pure: the clock is injected and timers are a timing wheel the host turns into one real
 * timer (`nextWakeAt`). Each decision is O(1) in the number of lanes; a lane exists only
 * while it has tickets queued, so idle callers cost nothing.
 */

export interface TierSpec {
  readonly name: string
  /** Lower is served first. */
  readonly priority: number
  /** Fraction of service (0–1) this tier is owed while it has a backlog, even under higher tiers. */
  readonly minShare: number
  /** Longest a ticket of this tier waits before it is refused with queue_timeout. */
  readonly maxWaitMs: number
}

export interface QueueBounds {
  readonly perLane: number
  readonly perWorkspace: number
  readonly perPartition: number
}

/** Tickets queued in the whole node: shared by every partition's scheduler. */
export class NodeQueueBudget {
  queued = 0
  readonly max: number
  constructor(max: number) {
    this.max = max
  }
}

export interface LaneIdentity {
  /** Unique within the partition: the caller (workspace/key). */
  readonly lane: string
  readonly workspace: string
  readonly tier: string
  readonly laneWeight: number
  readonly workspaceWeight: number
  /**
   * Written by the scheduler: the lane this identity last queued in. A caller that reuses its
   * identity object per caller saves a lookup in a map of every lane, which at a million
   * lanes is the costliest step of a decision; a stale value is detected and ignored. An
   * identity made with this field (undefined) already has its final shape; one made without
   * it grows by a property store (about 40 bytes) the first time it is queued.
   */
  lastLane?: unknown
}

export type GateVerdict =
  | { readonly go: true }
  /** Refuse this ticket now: the limit's wait outlasts its deadline, so waiting is pointless. */
  | { readonly go: false; readonly reject: true }
  | {
      readonly go: false
      /** What the refusing limit belongs to, so that only that much stops. */
      readonly level: 'lane' | 'workspace' | 'partition'
      /** When the limit will allow it; absent means "when something in flight completes". */
      readonly until?: number
    }

/** Which bound a refused enqueue met. */
export type QueueBound = 'lane' | 'workspace' | 'partition' | 'node'

export type Discipline = 'fair' | 'fifo'

export interface SchedulerOptions<T> {
  readonly now: () => number
  readonly tiers: readonly TierSpec[]
  readonly bounds: QueueBounds
  readonly budget: NodeQueueBudget
  /** Cost units a lane or workspace earns per round, times its weight. */
  readonly quantum: number
  /** `fifo` serves tickets in arrival order across all callers: for comparison only. */
  readonly discipline: Discipline
  /** Checks the limits for the head ticket and, on go, takes from them. */
  readonly gate: (ticket: QueuedTicket<T>) => GateVerdict
  readonly onDispatch: (ticket: QueuedTicket<T>) => void
  readonly onExpire: (ticket: QueuedTicket<T>) => void
  readonly onReject: (ticket: QueuedTicket<T>) => void
}

/** Blocked until something in flight completes, not until a time. */
const AWAITING_RELEASE = Object.freeze({ awaitingRelease: true as const })

/** What stops a lane, a workspace or the partition: nothing, a release, or a timer. */
type Block = null | typeof AWAITING_RELEASE | BlockTimer

interface Blockable {
  block: Block
}

/** The timer of a block until a time: made only when a limit names one, so a lane needs no timer fields. */
class BlockTimer implements Timer {
  readonly target: Blockable
  dueAt = 0
  timerPrev: Timer | null = null
  timerNext: Timer | null = null

  constructor(target: Blockable) {
    this.target = target
  }
}

/**
 * Times inside a scheduler are milliseconds since it was made, and a ticket's arrival is kept
 * to the millisecond: small integers are stored inline in an object, where a fractional or
 * large clock value would take a separate heap number per field (16 bytes per ticket). Past
 * 24 days of uptime they stop being small, which costs memory, never correctness.
 */
export class QueuedTicket<T> implements Ringed<QueuedTicket<T>>, Timer {
  readonly payload: T
  readonly identity: LaneIdentity
  readonly cost: number
  readonly #arrivedAt: number
  /** Links in its lane's ring of tickets; null once it left the queue. */
  prev: QueuedTicket<T> | null = null
  next: QueuedTicket<T> | null = null
  dueAt = 0
  timerPrev: Timer | null = null
  timerNext: Timer | null = null
  /** @internal */
  readonly lane: Lane<T>

  constructor(payload: T, identity: LaneIdentity, cost: number, arrivedAt: number, lane: Lane<T>) {
    this.payload = payload
    this.identity = identity
    this.cost = cost
    this.#arrivedAt = arrivedAt
    this.lane = lane
  }

  /** When it was queued, on the scheduler's clock, to the millisecond (rounded down). */
  get enqueuedAt(): number {
    return this.lane.group.tier.epoch + this.#arrivedAt
  }

  /** The time after which it is refused with queue_timeout. */
  get deadline(): number {
    return this.lane.group.tier.epoch + this.dueAt
  }

  /** True once the ticket was dispatched, cancelled or expired. */
  get done(): boolean {
    return this.next === null
  }
}

/**
 * One caller's queue. Kept small (a million backlogged callers are a million of these): the
 * tickets are a ring known by its head, the identity gives the name and weight, and a block's
 * timer is made only when a limit names a time.
 */
class Lane<T> implements Ringed<Lane<T>>, Blockable {
  /** The identity the lane was made for: its name is the lane's key. */
  readonly identity: LaneIdentity
  readonly group: Group<T>
  deficit: number
  head: QueuedTicket<T> | null = null
  size = 0
  /** Links in its group's ring of active lanes (queued and not blocked). */
  prev: Lane<T> | null = null
  next: Lane<T> | null = null
  block: Block = null

  constructor(identity: LaneIdentity, group: Group<T>, deficit: number) {
    this.identity = identity
    this.group = group
    this.deficit = deficit
  }
}

/**
 * A workspace within one tier. Its tickets are counted here; a workspace with tickets in
 * several tiers has a group in each, joined in a ring by `sibling`, and its count for the
 * per-workspace bound is the sum around that ring (one group, nearly always).
 */
class Group<T> implements Ringed<Group<T>>, Blockable {
  /** The identity of its first lane: workspace name and weight. */
  readonly identity: LaneIdentity
  readonly tier: Tier<T>
  /** Lanes with tickets that are not blocked: the round-robin ring. */
  head: Lane<T> | null = null
  queued = 0
  deficit: number
  /** Links in its tier's ring of active workspaces. */
  prev: Group<T> | null = null
  next: Group<T> | null = null
  block: Block = null
  sibling: Group<T>

  constructor(identity: LaneIdentity, tier: Tier<T>, deficit: number) {
    this.identity = identity
    this.tier = tier
    this.deficit = deficit
    this.sibling = this
  }
}

interface Tier<T> {
  readonly spec: TierSpec
  /** The scheduler's clock at its start, and the scheduler: a lane proves it belongs through them. */
  readonly epoch: number
  readonly owner: LaneScheduler<T>
  /** Workspaces with an active lane that are not blocked: the round-robin ring. */
  head: Group<T> | null
  queued: number
  credit: number
}

/** Counters of the work done, so that tests can check O(1) by counting rather than timing. */
export interface SchedulerWork {
  decisions: number
  /** Round-robin steps (a rotation at either level) taken to find the next ticket. */
  steps: number
  gateCalls: number
}

const FIFO_IDENTITY = { lane: '(fifo)', workspace: '(fifo)', laneWeight: 1, workspaceWeight: 1 }

export class LaneScheduler<T> {
  readonly #options: SchedulerOptions<T>
  readonly #fifo: boolean
  readonly #tiers: Tier<T>[]
  readonly #tierByName = new Map<string, Tier<T>>()
  readonly #lanes = new Map<string, Lane<T>>()
  /** A group of each workspace with tickets queued; its siblings are the other tiers'. */
  readonly #groups = new Map<string, Group<T>>()
  /**
   * Tickets per caller and per workspace in fifo discipline, where every ticket shares one
   * lane. In fair discipline the lanes and groups count their own: no map to consult.
   */
  readonly #fifoPerLane = new Map<string, number>()
  readonly #fifoPerWorkspace = new Map<string, number>()
  readonly #epoch: number
  readonly #wheel: TimerWheel
  /** Made once: a closure per pump would be garbage per decision. */
  readonly #onDue = (timer: Timer): void => this.#fire(timer)
  readonly #partition: Blockable = { block: null }
  #queued = 0
  #pumping = false
  /** The time of the pump under way: what a ticket queued by one of its callbacks is stamped with. */
  #pumpNow = 0
  readonly work: SchedulerWork = { decisions: 0, steps: 0, gateCalls: 0 }

  constructor(options: SchedulerOptions<T>) {
    if (options.tiers.length === 0) throw new Error('a scheduler needs at least one tier')
    this.#options = options
    this.#fifo = options.discipline === 'fifo'
    this.#epoch = options.now()
    this.#tiers = [...options.tiers]
      .sort((a, b) => a.priority - b.priority)
      .map((spec) => ({ spec, epoch: this.#epoch, owner: this, head: null, queued: 0, credit: 0 }))
    for (const tier of this.#tiers) this.#tierByName.set(tier.spec.name, tier)
    this.#wheel = new TimerWheel(0)
  }

  /** Tickets waiting in this partition. */
  get queued(): number {
    return this.#queued
  }

  /** Lanes that exist right now (only those with tickets queued). */
  get lanes(): number {
    return this.#lanes.size
  }

  queuedIn(lane: string): number {
    if (this.#fifo) return this.#fifoPerLane.get(lane) ?? 0
    return this.#lanes.get(lane)?.size ?? 0
  }

  /**
   * Queues a ticket at the tail of its lane, or says which bound is full. Call `pump` after,
   * so a ticket that may go at once goes at once.
   */
  enqueue(
    payload: T,
    identity: LaneIdentity,
    cost: number,
    maxWaitMs?: number,
  ): QueuedTicket<T> | QueueBound {
    const { bounds, budget } = this.#options
    if (this.#fifo) return this.#enqueueFifo(payload, identity, cost, maxWaitMs)
    const existing = this.#liveLane(identity)
    const tier = existing?.group.tier ?? this.#tierByName.get(identity.tier)
    if (!tier) throw new Error(`unknown tier ${identity.tier}`)
    if (budget.queued >= budget.max) return 'node'
    if (this.#queued >= bounds.perPartition) return 'partition'
    const group = existing?.group ?? this.#groupOf(tier, identity.workspace)
    if (group && workspaceQueued(group) >= bounds.perWorkspace) return 'workspace'
    if ((existing?.size ?? 0) >= bounds.perLane) return 'lane'

    const lane = existing ?? this.#newLane(identity, tier, group)
    identity.lastLane = lane
    return this.#push(lane, payload, identity, cost, maxWaitMs ?? tier.spec.maxWaitMs)
  }

  /**
   * Whether a ticket of this identity may be decided at once instead of queued: nothing waits
   * in the partition (so nothing is ahead of it in any order), nothing holds the partition,
   * and queueing it would pass every bound. With nothing queued no lane, workspace or timer
   * exists, so the host may ask its limits itself and, when they allow, record the dispatch
   * with `dispatchedAtOnce`: the scheduler is then left as enqueue + pump would leave it.
   */
  idle(identity: LaneIdentity): boolean {
    const { bounds, budget } = this.#options
    return (
      this.#queued === 0 &&
      this.#partition.block === null &&
      budget.queued < budget.max &&
      bounds.perPartition > 0 &&
      bounds.perWorkspace > 0 &&
      bounds.perLane > 0 &&
      this.#tierByName.has(identity.tier)
    )
  }

  /**
   * A ticket the host let go at once while `idle`: the minimum-share credits move as its
   * dispatch from an otherwise empty partition would move them (its tier the only one with a
   * backlog, every other tier's credit cleared), and the work counters count one decision.
   */
  dispatchedAtOnce(identity: LaneIdentity, cost: number): void {
    const served = this.#tierByName.get(identity.tier)
    for (const tier of this.#tiers) {
      if (tier.spec.minShare <= 0) continue
      if (tier !== served) {
        tier.credit = 0
        continue
      }
      const cap = 2 * Math.max(this.#options.quantum, cost)
      // Served by priority (it is the top tier with a backlog): the service repays no debt.
      tier.credit = Math.max(0, Math.min(cap, tier.credit + tier.spec.minShare * cost) - cost)
    }
    this.work.gateCalls++
    this.work.decisions++
  }

  /** Removes a waiting ticket (its client went away). False if it was no longer waiting. */
  cancel(ticket: QueuedTicket<T>): boolean {
    if (ticket.done) return false
    this.#remove(ticket)
    return true
  }

  /**
   * Fires the timers that are due and dispatches every ticket the limits let go now. Each
   * refusal blocks something, so the loop ends.
   */
  pump(): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      this.#pumpNow = this.#options.now() - this.#epoch
      this.#wheel.advance(this.#pumpNow, this.#onDue)
      while (this.#partition.block === null) {
        const ticket = this.#peek()
        if (!ticket) break
        this.work.gateCalls++
        const verdict = this.#options.gate(ticket)
        if (verdict.go) {
          this.#dispatch(ticket)
          continue
        }
        if ('reject' in verdict) {
          this.work.decisions++
          this.#remove(ticket)
          this.#options.onReject(ticket)
          continue
        }
        const level = this.#fifo ? 'partition' : verdict.level
        const target: Blockable =
          level === 'lane'
            ? ticket.lane
            : level === 'workspace'
              ? ticket.lane.group
              : this.#partition
        this.#block(target, verdict.until)
      }
    } finally {
      this.#pumping = false
    }
  }

  /** When the host should call `pump` next, if nothing else happens first. */
  nextWakeAt(): number | undefined {
    const due = this.#wheel.nextDueAt()
    return due === undefined ? undefined : this.#epoch + due
  }

  /**
   * A request of `lane` completed and gave back concurrency: whatever waits for a release in
   * that lane, its workspace or the partition may try again. Returns whether anything was
   * unblocked, so the host pumps only where it helps.
   */
  released(lane?: string, workspace?: string): boolean {
    let unblocked = false
    if (lane !== undefined) {
      const l = this.#lanes.get(lane)
      if (l?.block === AWAITING_RELEASE) {
        this.#unblock(l)
        unblocked = true
      }
    }
    if (workspace !== undefined) {
      const first = this.#groups.get(workspace)
      let group = first
      while (group) {
        if (group.block === AWAITING_RELEASE) {
          this.#unblock(group)
          unblocked = true
        }
        group = group.sibling === first ? undefined : group.sibling
      }
    }
    if (this.#partition.block === AWAITING_RELEASE) {
      this.#unblock(this.#partition)
      unblocked = true
    }
    return unblocked
  }

  /**
   * Charges units spent beyond the ticket's cost once the real cost is known; the lane and its
   * workspace then wait longer for their next turn. Forgotten if the lane has emptied.
   */
  charge(lane: string, workspace: string, tier: string, extra: number): void {
    const l = this.#lanes.get(lane)
    if (l) l.deficit -= extra
    const t = this.#tierByName.get(tier)
    const group = t && this.#groupOf(t, workspace)
    if (group) group.deficit -= extra
  }

  #enqueueFifo(
    payload: T,
    identity: LaneIdentity,
    cost: number,
    maxWaitMs: number | undefined,
  ): QueuedTicket<T> | QueueBound {
    const { bounds, budget } = this.#options
    const tier = this.#tierByName.get(identity.tier)
    if (!tier) throw new Error(`unknown tier ${identity.tier}`)
    if (budget.queued >= budget.max) return 'node'
    if (this.#queued >= bounds.perPartition) return 'partition'
    const inWorkspace = this.#fifoPerWorkspace.get(identity.workspace) ?? 0
    if (inWorkspace >= bounds.perWorkspace) return 'workspace'
    const inLane = this.#fifoPerLane.get(identity.lane) ?? 0
    if (inLane >= bounds.perLane) return 'lane'
    // Every caller shares one lane, made in the tier of whoever queued first.
    const lane =
      this.#lanes.get(FIFO_IDENTITY.lane) ??
      this.#newLane({ ...identity, ...FIFO_IDENTITY }, tier, undefined)
    this.#fifoPerLane.set(identity.lane, inLane + 1)
    this.#fifoPerWorkspace.set(identity.workspace, inWorkspace + 1)
    return this.#push(lane, payload, identity, cost, maxWaitMs ?? tier.spec.maxWaitMs)
  }

  #push(
    lane: Lane<T>,
    payload: T,
    identity: LaneIdentity,
    cost: number,
    maxWaitMs: number,
  ): QueuedTicket<T> {
    // Inside a pump (a host that queues from onDispatch) its time is the decision's: one
    // clock read less per decision, where a clock read costs as much as a tenth of one.
    const now = this.#pumping ? this.#pumpNow : this.#options.now() - this.#epoch
    const ticket = new QueuedTicket(payload, identity, cost, Math.floor(now), lane)
    lane.head = ringPush(lane.head, ticket)
    lane.size++
    this.#wheel.schedule(ticket, now + maxWaitMs)
    lane.group.queued++
    this.#queued++
    this.#tierOf(ticket).queued++
    this.#options.budget.queued++
    if (lane.size === 1) this.#activateLane(lane)
    return ticket
  }

  /** The ticket's own tier: in fifo discipline every ticket sits in one lane of one tier. */
  #tierOf(ticket: QueuedTicket<T>): Tier<T> {
    if (!this.#fifo) return ticket.lane.group.tier
    return this.#tierByName.get(ticket.identity.tier) as Tier<T>
  }

  /** The identity's lane if it exists: from the identity's own memory when still valid. */
  #liveLane(identity: LaneIdentity): Lane<T> | undefined {
    const remembered = identity.lastLane
    if (
      remembered instanceof Lane &&
      remembered.size > 0 &&
      remembered.group.tier.owner === this &&
      (remembered.identity === identity || remembered.identity.lane === identity.lane)
    ) {
      return remembered as Lane<T>
    }
    return this.#lanes.get(identity.lane)
  }

  #groupOf(tier: Tier<T>, workspace: string): Group<T> | undefined {
    const first = this.#groups.get(workspace)
    let group = first
    while (group && group.tier !== tier) {
      group = group.sibling === first ? undefined : group.sibling
    }
    return group
  }

  #newLane(identity: LaneIdentity, tier: Tier<T>, found: Group<T> | undefined): Lane<T> {
    // A newcomer starts with one quantum, as if its turn had come: joining at the tail of the
    // ring is its wait, and it must not wait a second round to earn its first service.
    const { quantum } = this.#options
    let group = found
    if (!group) {
      group = new Group(identity, tier, quantum * identity.workspaceWeight)
      const first = this.#groups.get(identity.workspace)
      if (first) {
        group.sibling = first.sibling
        first.sibling = group
      } else {
        this.#groups.set(identity.workspace, group)
      }
    }
    const lane = new Lane(identity, group, quantum * identity.laneWeight)
    this.#lanes.set(identity.lane, lane)
    return lane
  }

  #activateLane(lane: Lane<T>): void {
    if (lane.block !== null || lane.next !== null) return
    const group = lane.group
    group.head = ringPush(group.head, lane)
    if (group.block === null && group.next === null)
      group.tier.head = ringPush(group.tier.head, group)
  }

  #deactivateLane(lane: Lane<T>): void {
    const group = lane.group
    if (lane.next === null || !group.head) return
    group.head = ringRemove(group.head, lane)
    if (!group.head) this.#deactivateGroup(group)
  }

  #deactivateGroup(group: Group<T>): void {
    const tier = group.tier
    if (group.next !== null && tier.head) tier.head = ringRemove(tier.head, group)
  }

  /** Picks the tier to serve: strict priority, unless a lower tier is owed its minimum share. */
  #pickTier(): Tier<T> | undefined {
    let top: Tier<T> | undefined
    let owed: Tier<T> | undefined
    for (const tier of this.#tiers) {
      if (!tier.head) continue
      if (!top) {
        top = tier
        continue
      }
      if (tier.spec.minShare > 0 && tier.credit > 0 && (!owed || tier.credit > owed.credit))
        owed = tier
    }
    return owed ?? top
  }

  #peek(): QueuedTicket<T> | undefined {
    const tier = this.#pickTier()
    if (!tier) return undefined
    const { quantum } = this.#options
    let group = tier.head as Group<T>
    while (group.deficit <= 0) {
      group.deficit += quantum * group.identity.workspaceWeight
      group = tier.head = group.next as Group<T>
      this.work.steps++
    }
    let lane = group.head as Lane<T>
    while (lane.deficit <= 0) {
      lane.deficit += quantum * lane.identity.laneWeight
      lane = group.head = lane.next as Lane<T>
      this.work.steps++
    }
    return lane.head as QueuedTicket<T>
  }

  #dispatch(ticket: QueuedTicket<T>): void {
    const lane = ticket.lane
    const group = lane.group
    const served = group.tier
    lane.deficit -= ticket.cost
    group.deficit -= ticket.cost
    let top: Tier<T> | undefined
    for (const tier of this.#tiers) {
      if (!top && tier.head) top = tier
      if (tier.spec.minShare <= 0) continue
      if (tier.queued === 0) {
        tier.credit = 0
        continue
      }
      const cap = 2 * Math.max(this.#options.quantum, ticket.cost)
      tier.credit = Math.min(cap, tier.credit + tier.spec.minShare * ticket.cost)
    }
    if (served.spec.minShare > 0) {
      served.credit -= ticket.cost
      // Served by priority, not by what it is owed: that service repays no debt.
      if (served === top) served.credit = Math.max(0, served.credit)
    }
    this.work.decisions++
    this.#remove(ticket)
    this.#options.onDispatch(ticket)
  }

  /** Takes a ticket out of every structure, for whatever reason it leaves. */
  #remove(ticket: QueuedTicket<T>): void {
    const tier = this.#tierOf(ticket)
    this.#wheel.cancel(ticket)
    const lane = ticket.lane
    lane.head = ringRemove(lane.head as QueuedTicket<T>, ticket)
    lane.size--
    lane.group.queued--
    if (this.#fifo) {
      const id = ticket.identity
      decrement(this.#fifoPerLane, id.lane)
      decrement(this.#fifoPerWorkspace, id.workspace)
    }
    this.#queued--
    tier.queued--
    this.#options.budget.queued--
    if (lane.size === 0) this.#dropLane(lane)
  }

  /** An empty lane is forgotten, with its timer and deficit: idle callers cost nothing. */
  #dropLane(lane: Lane<T>): void {
    this.#deactivateLane(lane)
    this.#cancelBlock(lane)
    this.#lanes.delete(lane.identity.lane)
    const group = lane.group
    if (group.queued > 0) return
    this.#deactivateGroup(group)
    this.#cancelBlock(group)
    const workspace = group.identity.workspace
    if (group.sibling === group) {
      this.#groups.delete(workspace)
      return
    }
    let before = group.sibling
    while (before.sibling !== group) before = before.sibling
    before.sibling = group.sibling
    if (this.#groups.get(workspace) === group) this.#groups.set(workspace, before)
  }

  #cancelBlock(target: Blockable): void {
    if (target.block instanceof BlockTimer) this.#wheel.cancel(target.block)
  }

  #block(target: Blockable, until: number | undefined): void {
    if (until === undefined) {
      this.#cancelBlock(target)
      target.block = AWAITING_RELEASE
    } else {
      const timer = target.block instanceof BlockTimer ? target.block : new BlockTimer(target)
      target.block = timer
      this.#wheel.schedule(timer, until - this.#epoch)
    }
    if (target instanceof Lane) this.#deactivateLane(target as Lane<T>)
    else if (target instanceof Group) this.#deactivateGroup(target as Group<T>)
  }

  #unblock(target: Blockable): void {
    this.#cancelBlock(target)
    target.block = null
    if (target instanceof Lane) {
      const lane = target as Lane<T>
      if (lane.size > 0) this.#activateLane(lane)
    } else if (target instanceof Group) {
      const group = target as Group<T>
      if (group.head && group.next === null) group.tier.head = ringPush(group.tier.head, group)
    }
  }

  #fire(timer: Timer): void {
    if (timer instanceof QueuedTicket) {
      this.#remove(timer as QueuedTicket<T>)
      this.#options.onExpire(timer as QueuedTicket<T>)
    } else {
      this.#unblock((timer as BlockTimer).target)
    }
  }
}

/** Tickets of the group's workspace, in every tier. */
function workspaceQueued<T>(group: Group<T>): number {
  let queued = group.queued
  for (let g = group.sibling; g !== group; g = g.sibling) queued += g.queued
  return queued
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1
  if (left === 0) counts.delete(key)
  else counts.set(key, left)
}
