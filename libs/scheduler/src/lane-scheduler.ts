import { LinkedList, type Linked } from './linked-list.ts'
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
   * lanes is the costliest step of a decision; a stale value is detected and ignored.
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

interface Blockable extends Timer {
  readonly kind: 'lane' | 'workspace' | 'partition'
  blocked: boolean
  /** Blocked until a release rather than until a time. */
  awaitingRelease: boolean
}

export class QueuedTicket<T> implements Linked<QueuedTicket<T>>, Timer {
  readonly kind = 'ticket'
  readonly payload: T
  readonly identity: LaneIdentity
  readonly cost: number
  readonly enqueuedAt: number
  /** Set when the ticket was dispatched, cancelled or expired. */
  done = false
  prev: QueuedTicket<T> | null = null
  next: QueuedTicket<T> | null = null
  list: object | null = null
  dueAt = 0
  timerPrev: Timer | null = null
  timerNext: Timer | null = null
  timerSlot: Timer['timerSlot'] = null
  /** @internal */
  lane: Lane<T>

  constructor(payload: T, identity: LaneIdentity, cost: number, enqueuedAt: number, lane: Lane<T>) {
    this.payload = payload
    this.identity = identity
    this.cost = cost
    this.enqueuedAt = enqueuedAt
    this.lane = lane
  }

  /** The time after which it is refused with queue_timeout. */
  get deadline(): number {
    return this.dueAt
  }
}

class Lane<T> implements Linked<Lane<T>>, Blockable {
  readonly kind = 'lane'
  readonly owner: LaneScheduler<T>
  /** False once the lane has emptied and been forgotten. */
  live = true
  readonly id: string
  readonly group: Group<T>
  readonly weight: number
  readonly tickets = new LinkedList<QueuedTicket<T>>()
  deficit = 0
  blocked = false
  awaitingRelease = false
  prev: Lane<T> | null = null
  next: Lane<T> | null = null
  list: object | null = null
  dueAt = 0
  timerPrev: Timer | null = null
  timerNext: Timer | null = null
  timerSlot: Timer['timerSlot'] = null

  constructor(owner: LaneScheduler<T>, id: string, group: Group<T>, weight: number) {
    this.owner = owner
    this.id = id
    this.group = group
    this.weight = weight
  }
}

/** A workspace within one tier. */
class Group<T> implements Linked<Group<T>>, Blockable {
  readonly kind = 'workspace'
  readonly id: string
  readonly workspace: string
  readonly tier: Tier<T>
  readonly weight: number
  /** Lanes with tickets that are not blocked: the round-robin ring. */
  readonly active = new LinkedList<Lane<T>>()
  lanes = 0
  deficit = 0
  blocked = false
  awaitingRelease = false
  prev: Group<T> | null = null
  next: Group<T> | null = null
  list: object | null = null
  dueAt = 0
  timerPrev: Timer | null = null
  timerNext: Timer | null = null
  timerSlot: Timer['timerSlot'] = null

  constructor(id: string, workspace: string, tier: Tier<T>, weight: number) {
    this.id = id
    this.workspace = workspace
    this.tier = tier
    this.weight = weight
  }
}

interface Tier<T> {
  readonly spec: TierSpec
  /** Workspaces with an active lane that are not blocked. */
  readonly active: LinkedList<Group<T>>
  queued: number
  credit: number
}

interface PartitionGate extends Blockable {
  readonly kind: 'partition'
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
  readonly #tiers: Tier<T>[]
  readonly #tierByName = new Map<string, Tier<T>>()
  readonly #lanes = new Map<string, Lane<T>>()
  readonly #groups = new Map<string, Group<T>>()
  /**
   * Tickets per caller in fifo discipline, where every ticket shares one lane. In fair
   * discipline a lane's own list is the count: no second million-key map to consult.
   */
  readonly #fifoPerLane = new Map<string, number>()
  readonly #perWorkspace = new Map<string, number>()
  readonly #wheel: TimerWheel
  readonly #partition: PartitionGate = {
    kind: 'partition',
    blocked: false,
    awaitingRelease: false,
    dueAt: 0,
    timerPrev: null,
    timerNext: null,
    timerSlot: null,
  }
  #queued = 0
  #pumping = false
  readonly work: SchedulerWork = { decisions: 0, steps: 0, gateCalls: 0 }

  constructor(options: SchedulerOptions<T>) {
    if (options.tiers.length === 0) throw new Error('a scheduler needs at least one tier')
    this.#options = options
    this.#tiers = [...options.tiers]
      .sort((a, b) => a.priority - b.priority)
      .map((spec) => ({ spec, active: new LinkedList<Group<T>>(), queued: 0, credit: 0 }))
    for (const tier of this.#tiers) this.#tierByName.set(tier.spec.name, tier)
    this.#wheel = new TimerWheel(options.now())
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
    if (this.#options.discipline === 'fifo') return this.#fifoPerLane.get(lane) ?? 0
    return this.#lanes.get(lane)?.tickets.size ?? 0
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
    const tier = this.#tierByName.get(identity.tier)
    if (!tier) throw new Error(`unknown tier ${identity.tier}`)
    if (budget.queued >= budget.max) return 'node'
    if (this.#queued >= bounds.perPartition) return 'partition'
    const inWorkspace = this.#perWorkspace.get(identity.workspace) ?? 0
    if (inWorkspace >= bounds.perWorkspace) return 'workspace'
    const fifo = this.#options.discipline === 'fifo'
    const existing = fifo ? undefined : this.#liveLane(identity)
    const inLane = fifo
      ? (this.#fifoPerLane.get(identity.lane) ?? 0)
      : (existing?.tickets.size ?? 0)
    if (inLane >= bounds.perLane) return 'lane'

    const now = this.#options.now()
    const lane =
      existing ?? this.#laneFor(fifo ? { ...identity, ...FIFO_IDENTITY } : identity, tier)
    if (!fifo) identity.lastLane = lane
    const ticket = new QueuedTicket(payload, identity, cost, now, lane)
    lane.tickets.push(ticket)
    this.#wheel.schedule(ticket, now + (maxWaitMs ?? tier.spec.maxWaitMs))
    if (fifo) this.#fifoPerLane.set(identity.lane, inLane + 1)
    this.#perWorkspace.set(identity.workspace, inWorkspace + 1)
    this.#queued++
    tier.queued++
    budget.queued++
    if (lane.tickets.size === 1) this.#activateLane(lane)
    return ticket
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
      this.#wheel.advance(this.#options.now(), (timer) =>
        this.#fire(timer as QueuedTicket<T> | Blockable),
      )
      while (!this.#partition.blocked) {
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
        const level = this.#options.discipline === 'fifo' ? 'partition' : verdict.level
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
    return this.#wheel.nextDueAt()
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
      if (l?.awaitingRelease) {
        this.#unblock(l)
        unblocked = true
      }
    }
    if (workspace !== undefined) {
      for (const tier of this.#tiers) {
        const group = this.#groups.get(groupId(tier.spec.name, workspace))
        if (group?.awaitingRelease) {
          this.#unblock(group)
          unblocked = true
        }
      }
    }
    if (this.#partition.awaitingRelease) {
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
    const group = this.#groups.get(groupId(tier, workspace))
    if (group) group.deficit -= extra
  }

  /** The identity's lane if it exists: from the identity's own memory when still valid. */
  #liveLane(identity: LaneIdentity): Lane<T> | undefined {
    const remembered = identity.lastLane
    if (
      remembered instanceof Lane &&
      remembered.owner === this &&
      remembered.live &&
      remembered.id === identity.lane
    ) {
      return remembered as Lane<T>
    }
    return this.#lanes.get(identity.lane)
  }

  #laneFor(identity: LaneIdentity, tier: Tier<T>): Lane<T> {
    let lane = this.#lanes.get(identity.lane)
    if (lane) return lane
    const id = groupId(tier.spec.name, identity.workspace)
    let group = this.#groups.get(id)
    // A newcomer starts with one quantum, as if its turn had come: joining at the tail of the
    // ring is its wait, and it must not wait a second round to earn its first service.
    const { quantum } = this.#options
    if (!group) {
      group = new Group(id, identity.workspace, tier, identity.workspaceWeight)
      group.deficit = quantum * group.weight
      this.#groups.set(id, group)
    }
    lane = new Lane(this, identity.lane, group, identity.laneWeight)
    lane.deficit = quantum * lane.weight
    group.lanes++
    this.#lanes.set(identity.lane, lane)
    return lane
  }

  #activateLane(lane: Lane<T>): void {
    if (lane.blocked || lane.list) return
    const group = lane.group
    group.active.push(lane)
    if (!group.blocked && !group.list) group.tier.active.push(group)
  }

  #deactivateLane(lane: Lane<T>): void {
    const group = lane.group
    group.active.remove(lane)
    if (group.active.size === 0) group.tier.active.remove(group)
  }

  /** Picks the tier to serve: strict priority, unless a lower tier is owed its minimum share. */
  #pickTier(): Tier<T> | undefined {
    let top: Tier<T> | undefined
    let owed: Tier<T> | undefined
    for (const tier of this.#tiers) {
      if (tier.active.size === 0) continue
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
    let group = tier.active.head as Group<T>
    while (group.deficit <= 0) {
      group.deficit += quantum * group.weight
      tier.active.rotate()
      group = tier.active.head as Group<T>
      this.work.steps++
    }
    let lane = group.active.head as Lane<T>
    while (lane.deficit <= 0) {
      lane.deficit += quantum * lane.weight
      group.active.rotate()
      lane = group.active.head as Lane<T>
      this.work.steps++
    }
    return lane.tickets.head as QueuedTicket<T>
  }

  #dispatch(ticket: QueuedTicket<T>): void {
    const lane = ticket.lane
    const group = lane.group
    const served = group.tier
    lane.deficit -= ticket.cost
    group.deficit -= ticket.cost
    const top = this.#tiers.find((t) => t.active.size > 0)
    for (const tier of this.#tiers) {
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
    ticket.done = true
    this.#wheel.cancel(ticket)
    const lane = ticket.lane
    lane.tickets.remove(ticket)
    const id = ticket.identity
    if (this.#options.discipline === 'fifo') {
      const inLane = (this.#fifoPerLane.get(id.lane) ?? 1) - 1
      if (inLane === 0) this.#fifoPerLane.delete(id.lane)
      else this.#fifoPerLane.set(id.lane, inLane)
    }
    const inWorkspace = (this.#perWorkspace.get(id.workspace) ?? 1) - 1
    if (inWorkspace === 0) this.#perWorkspace.delete(id.workspace)
    else this.#perWorkspace.set(id.workspace, inWorkspace)
    this.#queued--
    // The ticket's own tier: in fifo discipline every ticket sits in one lane of one tier.
    const tier = this.#tierByName.get(id.tier)
    if (tier) tier.queued--
    this.#options.budget.queued--
    if (lane.tickets.size === 0) this.#dropLane(lane)
  }

  /** An empty lane is forgotten, with its timer and deficit: idle callers cost nothing. */
  #dropLane(lane: Lane<T>): void {
    lane.live = false
    this.#deactivateLane(lane)
    this.#wheel.cancel(lane)
    this.#lanes.delete(lane.id)
    const group = lane.group
    group.lanes--
    if (group.lanes === 0) {
      group.tier.active.remove(group)
      this.#wheel.cancel(group)
      this.#groups.delete(group.id)
    }
  }

  #block(target: Blockable, until: number | undefined): void {
    target.blocked = true
    target.awaitingRelease = until === undefined
    if (until !== undefined) this.#wheel.schedule(target, until)
    if (target.kind === 'lane') this.#deactivateLane(target as Lane<T>)
    else if (target.kind === 'workspace')
      (target as Group<T>).tier.active.remove(target as Group<T>)
  }

  #unblock(target: Blockable): void {
    target.blocked = false
    target.awaitingRelease = false
    this.#wheel.cancel(target)
    if (target.kind === 'lane') {
      const lane = target as Lane<T>
      if (lane.tickets.size > 0) this.#activateLane(lane)
    } else if (target.kind === 'workspace') {
      const group = target as Group<T>
      if (group.active.size > 0 && !group.list) group.tier.active.push(group)
    }
  }

  #fire(timer: QueuedTicket<T> | Blockable): void {
    if (timer.kind === 'ticket') {
      this.#remove(timer)
      this.#options.onExpire(timer)
    } else {
      this.#unblock(timer)
    }
  }
}

function groupId(tier: string, workspace: string): string {
  return `${tier}\u0000${workspace}`
}
