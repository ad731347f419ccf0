import {
  SharedAllowance,
  type Decision,
  type LedgerDownPolicy,
  type MemoryLedger,
  type Reserver,
  type ScopeLimit,
  type SharedHold,
} from '@fairlane/limits'
import type {
  Actor,
  Admission,
  AdmissionLease,
  LaneSignals,
  LeaseOutcome,
  LentAdmissions,
  PrefetchedShare,
  RateLimitView,
  Ticket,
} from '@fairlane/protocol'
import type { NodeQueueBudget, QueuedTicket } from '@fairlane/scheduler'
import { AdaptiveLanes } from './adaptive-lanes.ts'
import { AllowanceWaiters } from './allowance-waiters.ts'
import { CheckpointBook, type PartitionSnapshot } from './checkpoint-book.ts'
import { LedgerGate } from './ledger-gate.ts'
import { splitConcurrency } from './lent-scopes.ts'
import { PartitionHosts, type PartitionHost } from './partition-hosts.ts'
import type { Pending } from './pending.ts'
import { CANCELLED, queueFull, queueRefusal, sharedRefusal } from './refusals.ts'
import type { TicketPolicy } from './ticket-policy.ts'

/** Where shared scopes live, and how a node behaves when that ledger is away. */
export interface SharedLedgerOptions {
  readonly reserver: Reserver
  /** This node's share of a limit while the ledger is down (1 / live nodes). */
  readonly share: () => number
  readonly onLedgerDown?: (scope: ScopeLimit, policy: LedgerDownPolicy) => void
}

/**
 * The queue actor: owns target partitions, each a LaneScheduler gated by the ledger, and
 * answers each ticket when it may go. Embedded mode runs one actor for every partition; a
 * cluster runs one per node for the shards it leases, behind NATS.
 */
export class QueueActor implements Actor {
  readonly #ledger: MemoryLedger
  readonly #now: () => number
  readonly #policyFor: (ticket: Ticket) => TicketPolicy
  readonly #budget: NodeQueueBudget
  readonly #shared: SharedAllowance | undefined
  readonly #hosts: PartitionHosts<Pending>
  readonly #waiters = new AllowanceWaiters<Pending>()
  readonly #lanes: AdaptiveLanes
  readonly #book: CheckpointBook
  readonly #gate: LedgerGate
  readonly #onContention: ((partition: string) => void) | undefined

  constructor(options: {
    ledger: MemoryLedger
    now: () => number
    policyFor: (ticket: Ticket) => TicketPolicy
    budget: NodeQueueBudget
    shared?: SharedLedgerOptions
    /** Lane state is saved for a next owner (cluster mode): keep track of what changed. */
    checkpoints?: boolean
    /**
     * A ticket of this partition waits, or was refused by a limit: leased shares of it must
     * come back (cluster mode), so that the queue decides again.
     */
    onContention?: (partition: string) => void
  }) {
    this.#onContention = options.onContention
    this.#ledger = options.ledger
    this.#now = options.now
    this.#policyFor = options.policyFor
    this.#budget = options.budget
    if (options.shared) {
      this.#shared = new SharedAllowance({
        ...options.shared,
        now: options.now,
        onChange: (scopeId) => this.#sharedChanged(scopeId),
      })
    }
    this.#lanes = new AdaptiveLanes(options.now)
    this.#book = new CheckpointBook({
      ledger: options.ledger,
      lanes: this.#lanes,
      tracking: options.checkpoints ?? false,
    })
    this.#gate = new LedgerGate({
      ledger: options.ledger,
      now: options.now,
      shared: this.#shared,
      lanes: this.#lanes,
      waiters: this.#waiters,
      book: this.#book,
    })
    this.#hosts = new PartitionHosts<Pending>({
      now: options.now,
      budget: options.budget,
      events: {
        gate: (queued) => this.#gate.verdict(queued),
        dispatched: (queued) => this.#dispatched(queued),
        refused: (queued, code) => this.#refused(queued, code),
      },
    })
  }

  /**
   * The limit state of a partition's in-memory scopes, for whoever owns it next (a cluster
   * checkpoints it to Redis). `dirtyOnly`: only if it changed since the last call.
   */
  snapshot(partition: string, dirtyOnly = false): PartitionSnapshot | undefined {
    return this.#book.snapshot(partition, dirtyOnly)
  }

  /** Partitions with changes since their last snapshot. */
  get changedPartitions(): readonly string[] {
    return this.#book.changedPartitions
  }

  /** Resumes a partition's limit state saved by its previous owner `ageMs` ago. */
  restore(partition: string, snapshot: PartitionSnapshot, ageMs: number): void {
    this.#book.restore(partition, snapshot, ageMs)
  }

  /** The shared ledger is unreachable; scopes follow their onLedgerDown policy. */
  get ledgerDown(): boolean {
    return this.#shared?.down ?? false
  }

  /** Tickets waiting in every partition of this actor. */
  get queued(): number {
    return this.#budget.queued
  }

  admit(ticket: Ticket, signal?: AbortSignal): Promise<Admission> {
    const policy = this.#policyFor(ticket)
    if (policy.maxWaitMs === 0) return this.#decideNow(ticket, policy, signal)
    const host = this.#hosts.host(policy.partition, policy.settings)
    const atOnce = this.#atOnce(ticket, policy, host, signal)
    if (atOnce) return Promise.resolve(atOnce)
    return new Promise<Admission>((resolve) => {
      const pending: Pending = { ticket, policy, host, resolve }
      const queued = host.scheduler.enqueue(pending, policy.identity, ticket.cost, policy.maxWaitMs)
      if (typeof queued === 'string') {
        resolve(queueFull(queued))
        return
      }
      if (signal) {
        const cancel = () => {
          if (host.scheduler.cancel(queued)) {
            resolve(CANCELLED)
            this.#hosts.rearm(host)
          }
        }
        if (signal.aborted) {
          cancel()
          return
        }
        signal.addEventListener('abort', cancel, { once: true })
        pending.detach = () => signal.removeEventListener('abort', cancel)
      }
      this.#hosts.pump(host)
      if (this.#onContention && !queued.done) this.#onContention(policy.partition)
    })
  }

  /**
   * A leased share (docs/cluster.md#leased-shares): up to `count` more admissions of this
   * ticket's kind, decided now as a tier that does not queue would be, for the ingress node
   * that sent it to hand out without asking again. None while the ticket's partition has
   * tickets waiting (they go first), for a lane that spends shared scopes (the shared ledger
   * decides those one by one) or a lane the upstream holds back; about half of what a limit
   * of the lane has left, at most. A lane with a concurrency limit and no slot to lend is
   * lent admissions only as a `topUp`: the asker holds slots to use them with.
   */
  prefetch(ticket: Ticket, count: number, topUp = false, slotsWanted = count): PrefetchedShare {
    const policy = this.#policyFor(ticket)
    const none = { partition: policy.partition, admissions: 0, views: [], lastViews: [] }
    if (count <= 0 || policy.sharedScopes?.length) return none
    const host = this.#hosts.get(policy.partition)
    if (host && host.scheduler.queued > 0) return none
    const learned = this.#lanes.learned(policy, this.#now())
    if (learned && 'until' in learned) return none
    const { units, slots } = splitConcurrency(
      learned ? [...policy.scopes, learned.scope] : policy.scopes,
    )
    const slotCount =
      slots.length > 0 ? Math.min(count, slotsWanted, this.#halfOfSlotsLeft(slots)) : 0
    // A node with slots needs only admissions: refusing it those because the rest of the
    // slots are lent too (their halving runs out after a few grants) made it ask again at
    // every request until its grant ran dry and gave its slots back.
    if (slots.length > 0 && slotCount === 0 && slotsWanted > 0 && !topUp) return none
    let admissions = 0
    let views: readonly RateLimitView[] = []
    let lastViews: readonly RateLimitView[] = []
    while (admissions < count) {
      // Decided on rate and window units alone, so its lease holds nothing to release.
      const decision = this.#ledger.decide(units, ticket.cost, ticket.cents)
      if (!decision.allowed) break
      if (++admissions === 1) views = decision.views
      lastViews = decision.views
      // About half of what a limit had left: the rest stays for the lane’s other nodes.
      if (decision.views.some((view) => view.remaining <= admissions)) break
    }
    if (admissions === 0) return none
    this.#book.touched(policy.partition, policy.scopes)
    const lent = this.#lent(ticket, policy, units)
    const share = { partition: policy.partition, admissions, views, lastViews, lent }
    if (slots.length === 0) return share
    const lentSlots: AdmissionLease[] = []
    for (let i = 0; i < Math.min(slotCount, admissions); i++) {
      const decision = this.#ledger.decide(slots, 1)
      if (!decision.allowed) break
      lentSlots.push(this.#slotLease(ticket, policy, decision))
    }
    return { ...share, slots: lentSlots }
  }

  /**
   * Half the concurrency slots the tightest of `slots` has free. A lent slot is held until
   * the grant ends, so lending every slot a key has (64 by default) would leave the lane's
   * next ticket waiting at the owner, which revokes the share: lending half leaves the
   * owner's queue room to keep moving.
   */
  #halfOfSlotsLeft(slots: readonly ScopeLimit[]): number {
    let left = Infinity
    for (const scope of slots) {
      left = Math.min(left, (scope.concurrency ?? Infinity) - this.#ledger.inFlight(scope.id))
    }
    return Math.floor(left / 2)
  }

  /**
   * Stops every timer and gives what it holds of shared scopes back. Call after ingress has
   * drained: a ticket still waiting then waits forever.
   */
  async close(): Promise<void> {
    this.#hosts.close()
    await this.#shared?.close()
  }

  async #decideNow(ticket: Ticket, policy: TicketPolicy, signal?: AbortSignal): Promise<Admission> {
    const granted = await this.#gate.decideNow(ticket, policy, signal)
    if ('allowed' in granted) return granted
    const { decision, hold } = granted
    return {
      allowed: true,
      lease: this.#lease(ticket, policy, decision, undefined, hold),
      views: this.#gate.views(decision, policy),
      waitedMs: 0,
    }
  }

  /**
   * An uncontended ticket is admitted without queueing: nothing waits in its partition, so
   * the queue would dispatch it at once, and the gate's checks (headroom, what the lane
   * learned, the ledger) allow it now. Anything else, and a ticket with shared scopes (whose
   * checks may register waiters), goes through the queue, which decides it again.
   */
  #atOnce(
    ticket: Ticket,
    policy: TicketPolicy,
    host: PartitionHost<Pending>,
    signal: AbortSignal | undefined,
  ): Admission | undefined {
    if (signal?.aborted || policy.sharedScopes?.length) return undefined
    const { identity } = policy
    if (!host.scheduler.idle(identity)) return undefined
    const decision = this.#gate.atOnce(ticket, policy, host, this.#now() + policy.maxWaitMs)
    if (!decision) return undefined
    host.scheduler.dispatchedAtOnce(identity, ticket.cost)
    host.headroom.took(identity.lane)
    if (host.settings.adaptive?.enabled) this.#lanes.admitted(identity)
    return {
      allowed: true,
      lease: this.#lease(ticket, policy, decision, host, undefined),
      views: decision.views,
      waitedMs: 0,
    }
  }

  /** A shared scope may pass again: wake the lanes and tickets that waited for it. */
  #sharedChanged(scopeId: string): void {
    for (const host of this.#waiters.changed(scopeId)) this.#hosts.pump(host)
  }

  #dispatched(queued: QueuedTicket<Pending>): void {
    const pending = queued.payload
    pending.detach?.()
    const decision = pending.decision as Decision & { allowed: true }
    const host = pending.host
    host.headroom.took(pending.policy.identity.lane)
    if (host.settings.adaptive?.enabled) this.#lanes.admitted(pending.policy.identity)
    pending.resolve({
      allowed: true,
      lease: this.#lease(pending.ticket, pending.policy, decision, host, pending.hold),
      views: this.#gate.views(decision, pending.policy),
      waitedMs: this.#now() - queued.enqueuedAt,
    })
  }

  #refused(queued: QueuedTicket<Pending>, code: 'queue_timeout' | 'rate_limited'): void {
    const pending = queued.payload
    if (code === 'rate_limited') this.#onContention?.(pending.policy.partition)
    pending.detach?.()
    if (pending.sharedRefusal) pending.resolve(sharedRefusal(pending.sharedRefusal, code, []))
    else pending.resolve(queueRefusal(pending.decision, code))
  }

  #lease(
    ticket: Ticket,
    policy: TicketPolicy,
    decision: Decision & { allowed: true },
    host: PartitionHost<Pending> | undefined,
    hold: SharedHold | undefined,
  ): AdmissionLease {
    let released = false
    return {
      release: (outcome) => {
        if (released) return
        released = true
        decision.lease.release()
        hold?.release()
        this.#released(ticket, policy, host, outcome)
      },
    }
  }

  /**
   * The admissions of one leased share, decided on `decided` (a learned limit among them):
   * refunded by count, and told of a request's news as a released lease would be.
   */
  #lent(ticket: Ticket, policy: TicketPolicy, decided: readonly ScopeLimit[]): LentAdmissions {
    return {
      refund: (count) => {
        if (count <= 0) return
        // One by one: a request-counted scope took 1 from each, whatever the cost.
        for (let i = 0; i < count; i++) this.#ledger.refund(decided, ticket.cost, ticket.cents)
        this.#book.changed(policy.partition)
        this.#released(ticket, policy, undefined, undefined)
      },
      ended: (outcome) => this.#released(ticket, policy, undefined, outcome),
    }
  }

  /** A lent concurrency slot: releasing it frees the slot, whether it was used or not. */
  #slotLease(
    ticket: Ticket,
    policy: TicketPolicy,
    decision: Decision & { allowed: true },
  ): AdmissionLease {
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        decision.lease.release()
        this.#released(ticket, policy, undefined, undefined)
      },
    }
  }

  /** A request is done: its slots free, what its upstream said is learned, its cost settled. */
  #released(
    ticket: Ticket,
    policy: TicketPolicy,
    host: PartitionHost<Pending> | undefined,
    outcome: LeaseOutcome | undefined,
  ): void {
    const { identity } = policy
    let wakeHost = false
    if (host) {
      for (const held of host.headroom.gaveBack(identity.lane))
        wakeHost = host.scheduler.released(held) || wakeHost
    }
    if (outcome?.upstream) this.#observe(policy, outcome.upstream)
    // Settled in both dimensions: a cost or price above the ticket's is charged, one below
    // it (an estimate reserved at admission) is given back, so a budget converges on what
    // the upstream reported. Request-counted scopes took 1 whatever the cost, and keep it.
    const extra = (outcome?.cost ?? ticket.cost) - ticket.cost
    const extraCents = (outcome?.cents ?? ticket.cents ?? 0) - (ticket.cents ?? 0)
    if (extra > 0 || extraCents > 0) {
      const cost = Math.max(0, extra)
      const cents = Math.max(0, extraCents)
      this.#ledger.charge(policy.scopes, cost, cents)
      this.#book.changed(policy.partition)
      if (policy.sharedScopes) this.#shared?.charge(policy.sharedScopes, cost, cents)
      if (cost > 0) host?.scheduler.charge(identity.lane, identity.workspace, identity.tier, cost)
    }
    if (extra < 0 || extraCents < 0) {
      const cost = Math.max(0, -extra)
      const cents = Math.max(0, -extraCents)
      const metered = policy.scopes.filter((scope) => scope.unit !== 'request')
      this.#ledger.refund(metered, cost, cents)
      this.#book.changed(policy.partition)
      if (policy.sharedScopes) this.#shared?.credit(policy.sharedScopes, cost, cents)
      if (cost > 0) host?.scheduler.charge(identity.lane, identity.workspace, identity.tier, -cost)
    }
    // A slot freed here may be what this key's or workspace's lane waits for in another
    // partition too (a key or workspace concurrency spans targets), or what a whole
    // partition waits for (a shared global concurrency).
    for (const other of this.#hosts.all()) {
      const unblocked = other.scheduler.released(identity.lane, identity.workspace)
      if (unblocked || (other === host && wakeHost)) this.#hosts.pump(other)
    }
  }

  /** Takes in what the upstream said in the answer to one of the lane's requests. */
  #observe(policy: TicketPolicy, word: LaneSignals): void {
    if (!this.#lanes.observe(policy, word)) return
    this.#book.changed(policy.partition)
    // A lane blocked by the upstream wakes at the named time; a lower rate applies at its next decision.
    const host = this.#hosts.get(policy.partition)
    if (host) this.#hosts.pump(host)
  }
}
