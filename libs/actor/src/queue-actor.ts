import {
  AdaptiveLimit,
  SharedAllowance,
  type AdaptiveSettings,
  type AdaptiveState,
  type Ceiling,
  type Decision,
  type LedgerDownPolicy,
  type MemoryLedger,
  type Reserver,
  type ScopeLimit,
  type ScopeSnapshot,
  type SharedCheck,
  type SharedHold,
} from '@fairlane/limits'
import type {
  Actor,
  Admission,
  AdmissionLease,
  LaneSignals,
  RateLimitView,
  Ticket,
} from '@fairlane/protocol'
import {
  LaneScheduler,
  type Discipline,
  type GateVerdict,
  type LaneIdentity,
  type NodeQueueBudget,
  type QueueBounds,
  type QueuedTicket,
  type TierSpec,
} from '@fairlane/scheduler'

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

/** A partition's lane state for its next owner: in-memory limits and what lanes learned upstream. */
export interface PartitionSnapshot {
  readonly scopes: ScopeSnapshot
  readonly lanes?: Readonly<Record<string, AdaptiveState>>
}

/** What the actor's config says about one ticket: its lane, its limits and its queue. */
export interface TicketPolicy {
  readonly identity: LaneIdentity
  /** Limits only this partition touches: decided exactly, in memory. */
  readonly scopes: readonly ScopeLimit[]
  /** Limits other actors spend too (cluster mode): spent from the shared allowance. */
  readonly sharedScopes?: readonly ScopeLimit[]
  readonly maxWaitMs: number
  /** Names the target partition whose scheduler holds the lane. */
  readonly partition: string
  readonly settings: PartitionSettings
}

interface Pending {
  readonly ticket: Ticket
  readonly policy: TicketPolicy
  readonly host: PartitionHost
  readonly resolve: (admission: Admission) => void
  decision?: Decision
  hold?: SharedHold
  /** A shared scope refused for good (a cost that never fits, a closed ledger). */
  sharedRefusal?: SharedCheck & { ok: false }
  detach?: () => void
}

/** Where shared scopes live, and how a node behaves when that ledger is away. */
export interface SharedLedgerOptions {
  readonly reserver: Reserver
  /** This node's share of a limit while the ledger is down (1 / live nodes). */
  readonly share: () => number
  readonly onLedgerDown?: (scope: ScopeLimit, policy: LedgerDownPolicy) => void
}

interface PartitionHost {
  readonly key: string
  readonly settings: PartitionSettings
  readonly scheduler: LaneScheduler<Pending>
  timer?: NodeJS.Timeout
  timerAt?: number
  /** Requests of this partition in flight, in all and per lane (for headroom). */
  inFlight: number
  readonly inFlightByLane: Map<string, number>
  /** Lanes held back by headroom: any release in the partition may let them go. */
  readonly heldBack: Set<string>
}

/** Lanes per partition that may hold what they learned from the upstream. */
const MAX_ADAPTIVE_LANES = 10_000

/** A refusal's scope decides how much of the queue it stops. */
function levelOf(refusedBy: string): 'lane' | 'workspace' | 'partition' {
  if (refusedBy === 'key' || refusedBy === 'client' || refusedBy === 'upstream') return 'lane'
  if (refusedBy === 'workspace') return 'workspace'
  return 'partition'
}

/**
 * The queue actor: owns target partitions, each a LaneScheduler gated by the ledger, and turns
 * the schedulers' wake-up times into real timers, one per partition. Embedded mode runs one
 * actor for every partition; a cluster runs one per shard lease, behind NATS.
 */
export class QueueActor implements Actor {
  readonly #ledger: MemoryLedger
  readonly #now: () => number
  readonly #policyFor: (ticket: Ticket) => TicketPolicy
  readonly #budget: NodeQueueBudget
  readonly #hosts = new Map<string, PartitionHost>()
  /** Schedulers replaced by a config reload that still hold tickets; they drain, then go. */
  readonly #draining = new Set<PartitionHost>()
  readonly #shared: SharedAllowance | undefined
  /** Lanes waiting for a shared scope's next batch, by scope id. */
  readonly #awaiting = new Map<
    string,
    Map<string, { host: PartitionHost; lane: string; workspace: string }>
  >()
  /** What lanes learned from their upstream, by partition and lane. */
  readonly #adaptive = new Map<string, Map<string, AdaptiveLimit>>()
  /**
   * Admissions per lane in the current and the previous second: the base of a 429's cut.
   * Keyed by the lane's identity object (one per key and target, so one partition): no key
   * string is built on the hot path.
   */
  #admissions = {
    second: 0,
    current: new Map<LaneIdentity, number>(),
    previous: new Map<LaneIdentity, number>(),
  }
  /** Ids of the in-memory scopes each partition has used: what its checkpoint holds. */
  readonly #localScopes = new Map<string, Set<string>>()
  /** Partitions whose in-memory limit state changed since their last checkpoint. */
  readonly #dirty = new Set<string>()
  /** Tickets that do not queue, waiting for a shared scope's first batch. */
  readonly #awaitingNow = new Map<string, Set<() => void>>()
  readonly #checkpoints: boolean

  constructor(options: {
    ledger: MemoryLedger
    now: () => number
    policyFor: (ticket: Ticket) => TicketPolicy
    budget: NodeQueueBudget
    shared?: SharedLedgerOptions
    /** Lane state is saved for a next owner (cluster mode): keep track of what changed. */
    checkpoints?: boolean
  }) {
    this.#checkpoints = options.checkpoints ?? false
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
  }

  /**
   * The limit state of a partition's in-memory scopes, for whoever owns it next (a cluster
   * checkpoints it to Redis). `dirtyOnly`: only if it changed since the last call.
   */
  snapshot(partition: string, dirtyOnly = false): PartitionSnapshot | undefined {
    if (dirtyOnly && !this.#dirty.has(partition)) return undefined
    this.#dirty.delete(partition)
    const ids = this.#localScopes.get(partition)
    const scopes = this.#ledger.snapshot(ids ?? [])
    // A scope back to full holds nothing worth saving; forget it until it is used again.
    for (const id of ids ?? []) if (!(id in scopes)) ids?.delete(id)
    const now = this.#now()
    const lanes: Record<string, AdaptiveState> = {}
    for (const [lane, limit] of this.#adaptive.get(partition) ?? []) {
      if (!limit.idle(now)) lanes[lane] = limit.save(now)
    }
    return Object.keys(lanes).length > 0 ? { scopes, lanes } : { scopes }
  }

  /** Partitions with changes since their last snapshot. */
  get changedPartitions(): readonly string[] {
    return [...this.#dirty]
  }

  /** Resumes a partition's limit state saved by its previous owner `ageMs` ago. */
  restore(partition: string, snapshot: PartitionSnapshot, ageMs: number): void {
    this.#ledger.restore(snapshot.scopes, ageMs)
    const ids = this.#localScopes.get(partition) ?? new Set()
    for (const id of Object.keys(snapshot.scopes)) ids.add(id)
    this.#localScopes.set(partition, ids)
    if (!snapshot.lanes) return
    const now = this.#now()
    let lanes = this.#adaptive.get(partition)
    if (!lanes) this.#adaptive.set(partition, (lanes = new Map()))
    for (const [lane, state] of Object.entries(snapshot.lanes)) {
      lanes.set(lane, AdaptiveLimit.restore(`upstream:${partition}/${lane}`, state, now, ageMs))
    }
  }

  #touched(policy: TicketPolicy, scopes: readonly ScopeLimit[]): void {
    if (!this.#checkpoints) return
    let ids = this.#localScopes.get(policy.partition)
    if (!ids) this.#localScopes.set(policy.partition, (ids = new Set()))
    for (const scope of scopes) if (scope.rate || scope.window) ids.add(scope.id)
    this.#dirty.add(policy.partition)
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
    const host = this.#host(policy)
    return new Promise<Admission>((resolve) => {
      const pending: Pending = { ticket, policy, host, resolve }
      const queued = host.scheduler.enqueue(pending, policy.identity, ticket.cost, policy.maxWaitMs)
      if (typeof queued === 'string') {
        resolve({
          allowed: false,
          code: 'queue_full',
          refusedBy: queued,
          reason: 'bound',
          retryAfterMs: 1000,
          views: [],
        })
        return
      }
      if (signal) {
        const cancel = () => {
          if (host.scheduler.cancel(queued)) {
            resolve({
              allowed: false,
              code: 'cancelled',
              refusedBy: 'client',
              reason: 'client',
              retryAfterMs: 0,
              views: [],
            })
            this.#rearm(host)
          }
        }
        if (signal.aborted) {
          cancel()
          return
        }
        signal.addEventListener('abort', cancel, { once: true })
        pending.detach = () => signal.removeEventListener('abort', cancel)
      }
      this.#pump(host)
    })
  }

  /**
   * Stops every timer and gives what it holds of shared scopes back. Call after ingress has
   * drained: a ticket still waiting then waits forever.
   */
  async close(): Promise<void> {
    for (const host of [...this.#hosts.values(), ...this.#draining]) clearTimeout(host.timer)
    this.#hosts.clear()
    this.#draining.clear()
    await this.#shared?.close()
  }

  /**
   * A tier that does not queue: the ledger's answer is final. Only a shared scope's first
   * batch is waited for (one ledger round trip), never a limit.
   */
  async #decideNow(ticket: Ticket, policy: TicketPolicy, signal?: AbortSignal): Promise<Admission> {
    const shared = policy.sharedScopes ?? []
    let check: SharedCheck | undefined
    for (let tries = 0; this.#shared && shared.length > 0; tries++) {
      check = this.#shared.check(shared, ticket.cost)
      if (check.ok || check.final || check.retryAfterMs !== undefined) break
      if (tries === 1 || signal?.aborted) break
      await this.#nextChange(check.scopeId)
    }
    if (check && !check.ok) return sharedRefusal(check, 'rate_limited', [])
    const learned = this.#learned(policy, this.#now())
    if (learned && 'until' in learned) return learned.refusal as Admission
    const fallback = check?.ok ? check.fallback : []
    const extra = learned ? [...fallback, learned.scope] : fallback
    const decision = this.#ledger.decide(
      extra.length ? [...policy.scopes, ...extra] : policy.scopes,
      ticket.cost,
    )
    if (!decision.allowed) {
      return {
        allowed: false,
        code: 'rate_limited',
        refusedBy: decision.refusedBy,
        reason: decision.impossible ? 'cost' : decision.reason,
        retryAfterMs: decision.retryAfterMs,
        views: decision.views,
      }
    }
    const hold = shared.length ? this.#shared?.take(shared, ticket.cost) : undefined
    this.#touched(policy, policy.scopes)
    return {
      allowed: true,
      lease: this.#lease(ticket, policy, decision, undefined, hold),
      views: this.#views(decision, policy),
      waitedMs: 0,
    }
  }

  /**
   * What the lane learned from its upstream: blocked until a time (refused when that is past
   * the ticket's deadline), or a scope to decide with the others.
   */
  #learned(
    policy: TicketPolicy,
    deadline: number,
  ):
    | { readonly until: number; readonly refusal?: Decision & { allowed: false } }
    | { readonly scope: ScopeLimit }
    | undefined {
    const lanes = this.#adaptive.get(policy.partition)
    const limit = lanes?.get(policy.identity.lane)
    const settings = policy.settings.adaptive
    if (!limit || !settings) return undefined
    // Turned off by a reload: what was learned no longer applies.
    if (!settings.enabled) {
      lanes?.delete(policy.identity.lane)
      return undefined
    }
    const now = this.#now()
    if (limit.blockedUntil > now) {
      if (limit.blockedUntil <= deadline) return { until: limit.blockedUntil }
      const refusal = {
        allowed: false,
        refusedBy: 'upstream',
        reason: 'rate',
        retryAfterMs: limit.blockedUntil - now,
        views: [],
      } as const
      return { until: limit.blockedUntil, refusal }
    }
    const scope = limit.scope(now, settings)
    if (scope) return { scope }
    if (limit.idle(now)) lanes?.delete(policy.identity.lane)
    return undefined
  }

  /** Takes in what the upstream said in the answer to one of the lane's requests. */
  #observe(policy: TicketPolicy, word: LaneSignals): void {
    const settings = policy.settings.adaptive
    if (!settings?.enabled) return
    const said = word.status === 429 || word.retryAfterMs !== undefined
    if (!said && word.rps === undefined && word.maxConcurrent === undefined) return
    let lanes = this.#adaptive.get(policy.partition)
    const lane = policy.identity.lane
    let limit = lanes?.get(lane)
    const ceiling = ceilingOf(
      policy.sharedScopes ? [...policy.scopes, ...policy.sharedScopes] : policy.scopes,
    )
    // A stated limit no tighter than the configured one changes nothing: no state for it,
    // so lanes of upstreams that always send their limits cost nothing here.
    const restricts =
      said ||
      (word.rps !== undefined && word.rps < (ceiling.rps ?? Infinity)) ||
      (word.maxConcurrent !== undefined && word.maxConcurrent < (ceiling.concurrency ?? Infinity))
    if (!limit && !restricts) return
    if (!lanes) this.#adaptive.set(policy.partition, (lanes = new Map()))
    if (!limit) {
      // Bounded like the queues: under a flood of distinct callers the oldest learning goes.
      if (lanes.size >= MAX_ADAPTIVE_LANES) lanes.delete(lanes.keys().next().value as string)
      lanes.set(lane, (limit = new AdaptiveLimit(`upstream:${policy.partition}/${lane}`)))
    }
    const changed = limit.observe(
      this.#now(),
      word,
      settings,
      ceiling,
      this.#observedRps(policy.identity),
    )
    if (!changed) return
    this.#dirty.add(policy.partition)
    // A lane blocked by the upstream wakes at the named time; a lower rate applies at its next decision.
    const host = this.#hosts.get(policy.partition)
    if (host) this.#pump(host)
  }

  #countAdmission(lane: LaneIdentity): void {
    const second = Math.floor(this.#now() / 1000)
    const window = this.#admissions
    if (second !== window.second) {
      window.previous = second === window.second + 1 ? window.current : new Map()
      window.current = new Map()
      window.second = second
    }
    window.current.set(lane, (window.current.get(lane) ?? 0) + 1)
  }

  #observedRps(key: LaneIdentity): number {
    const window = this.#admissions
    const second = Math.floor(this.#now() / 1000)
    if (second !== window.second)
      return second === window.second + 1 ? (window.current.get(key) ?? 0) : 0
    return Math.max(window.previous.get(key) ?? 0, window.current.get(key) ?? 0)
  }

  #views(decision: Decision, policy: TicketPolicy): Decision['views'] {
    if (!this.#shared || !policy.sharedScopes?.length) return decision.views
    return [...decision.views, ...this.#shared.views(policy.sharedScopes)]
  }

  #nextChange(scopeId: string): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#awaitingNow.get(scopeId)
      if (!waiters) this.#awaitingNow.set(scopeId, (waiters = new Set()))
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        resolve()
      }
      // Bounded: a ledger that never answers turns into its onLedgerDown policy meanwhile.
      const timer = setTimeout(done, 1_000)
      waiters.add(done)
    })
  }

  /** A shared scope may pass again: wake the lanes and tickets that waited for it. */
  #sharedChanged(scopeId: string): void {
    const waiters = this.#awaitingNow.get(scopeId)
    if (waiters) {
      this.#awaitingNow.delete(scopeId)
      for (const wake of waiters) wake()
    }
    const lanes = this.#awaiting.get(scopeId)
    if (!lanes) return
    this.#awaiting.delete(scopeId)
    const hosts = new Set<PartitionHost>()
    for (const { host, lane, workspace } of lanes.values()) {
      host.scheduler.released(lane, workspace)
      hosts.add(host)
    }
    for (const host of hosts) this.#pump(host)
  }

  #host(policy: TicketPolicy): PartitionHost {
    const existing = this.#hosts.get(policy.partition)
    if (existing?.settings === policy.settings) return existing
    // New settings (a config reload, maybe with new tiers) get a new scheduler at once; the
    // old one keeps its tickets, timers and order until it has drained.
    if (existing) {
      if (existing.scheduler.queued > 0) this.#draining.add(existing)
      else clearTimeout(existing.timer)
    }
    const settings = policy.settings
    const host: PartitionHost = {
      key: policy.partition,
      settings,
      inFlight: 0,
      inFlightByLane: new Map(),
      heldBack: new Set(),
      scheduler: new LaneScheduler<Pending>({
        now: this.#now,
        tiers: settings.tiers,
        bounds: settings.bounds,
        budget: this.#budget,
        quantum: settings.quantum,
        discipline: settings.discipline,
        gate: (queued) => this.#gate(queued),
        onDispatch: (queued) => this.#dispatched(queued),
        onExpire: (queued) => this.#refused(queued, 'queue_timeout'),
        onReject: (queued) => this.#refused(queued, 'rate_limited'),
      }),
    }
    this.#hosts.set(policy.partition, host)
    return host
  }

  /** Headroom: a lane with requests in flight may not take the partition's last free slots. */
  #heldBack(host: PartitionHost, lane: string): boolean {
    const { capacity, headroom } = host.settings
    if (!capacity || !headroom) return false
    if ((host.inFlightByLane.get(lane) ?? 0) === 0) return false
    return host.inFlight >= capacity - headroom
  }

  #gate(queued: QueuedTicket<Pending>): GateVerdict {
    const pending = queued.payload
    const lane = pending.policy.identity.lane
    if (this.#heldBack(pending.host, lane)) {
      pending.host.heldBack.add(lane)
      return { go: false, level: 'lane' }
    }
    const learned = this.#learned(pending.policy, queued.deadline)
    if (learned && 'until' in learned) {
      if (learned.refusal) {
        pending.decision = learned.refusal
        return { go: false, reject: true }
      }
      return { go: false, level: 'lane', until: learned.until }
    }
    const shared = pending.policy.sharedScopes
    let fallback: readonly ScopeLimit[] = []
    if (this.#shared && shared?.length) {
      const check = this.#shared.check(shared, queued.cost)
      if (!check.ok) {
        if (check.final) {
          pending.sharedRefusal = check
          return { go: false, reject: true }
        }
        const key = `${pending.host.key}\u0000${lane}`
        let lanes = this.#awaiting.get(check.scopeId)
        if (!lanes) this.#awaiting.set(check.scopeId, (lanes = new Map()))
        lanes.set(key, { host: pending.host, lane, workspace: pending.policy.identity.workspace })
        return { go: false, level: levelOf(check.refusedBy) }
      }
      fallback = check.fallback
    }
    const scopes = pending.policy.scopes
    const extra = learned ? [...fallback, learned.scope] : fallback
    const decision = this.#ledger.decide(extra.length ? [...scopes, ...extra] : scopes, queued.cost)
    pending.decision = decision
    if (decision.allowed) {
      if (this.#shared && shared?.length) pending.hold = this.#shared.take(shared, queued.cost)
      this.#touched(pending.policy, scopes)
      return { go: true }
    }
    if (decision.impossible) return { go: false, reject: true }
    if (decision.reason === 'concurrency') return { go: false, level: levelOf(decision.refusedBy) }
    const until = this.#now() + decision.retryAfterMs
    // Waiting past the deadline would only turn a clear 429 into a late 503.
    if (until > queued.deadline) return { go: false, reject: true }
    return { go: false, level: levelOf(decision.refusedBy), until }
  }

  #dispatched(queued: QueuedTicket<Pending>): void {
    const pending = queued.payload
    pending.detach?.()
    const decision = pending.decision as Decision & { allowed: true }
    const host = pending.host
    const lane = pending.policy.identity.lane
    host.inFlight++
    host.inFlightByLane.set(lane, (host.inFlightByLane.get(lane) ?? 0) + 1)
    if (host.settings.adaptive?.enabled) this.#countAdmission(pending.policy.identity)
    pending.resolve({
      allowed: true,
      lease: this.#lease(pending.ticket, pending.policy, decision, pending.host, pending.hold),
      views: this.#views(decision, pending.policy),
      waitedMs: this.#now() - queued.enqueuedAt,
    })
  }

  #refused(queued: QueuedTicket<Pending>, code: 'queue_timeout' | 'rate_limited'): void {
    const pending = queued.payload
    pending.detach?.()
    if (pending.sharedRefusal) {
      pending.resolve(sharedRefusal(pending.sharedRefusal, code, []))
      return
    }
    const decision = pending.decision
    const refused = decision && !decision.allowed ? decision : undefined
    pending.resolve({
      allowed: false,
      code,
      refusedBy: refused?.refusedBy ?? 'queue',
      reason:
        code === 'queue_timeout'
          ? 'deadline'
          : refused?.impossible
            ? 'cost'
            : (refused?.reason ?? 'rate'),
      retryAfterMs: refused ? refused.retryAfterMs : 1000,
      views: decision?.views ?? [],
    })
  }

  #lease(
    ticket: Ticket,
    policy: TicketPolicy,
    decision: Decision & { allowed: true },
    host: PartitionHost | undefined,
    hold: SharedHold | undefined,
  ): AdmissionLease {
    let released = false
    return {
      release: (outcome) => {
        if (released) return
        released = true
        decision.lease.release()
        hold?.release()
        let wakeHost = false
        if (host) {
          host.inFlight--
          const lane = policy.identity.lane
          const left = (host.inFlightByLane.get(lane) ?? 1) - 1
          if (left === 0) host.inFlightByLane.delete(lane)
          else host.inFlightByLane.set(lane, left)
          for (const held of host.heldBack) wakeHost = host.scheduler.released(held) || wakeHost
          host.heldBack.clear()
        }
        if (outcome?.upstream) this.#observe(policy, outcome.upstream)
        const extra = (outcome?.cost ?? ticket.cost) - ticket.cost
        const { identity } = policy
        if (extra > 0) {
          this.#ledger.charge(policy.scopes, extra)
          this.#dirty.add(policy.partition)
          if (policy.sharedScopes) this.#shared?.charge(policy.sharedScopes, extra)
          host?.scheduler.charge(identity.lane, identity.workspace, identity.tier, extra)
        }
        // A slot freed here may be what this key's or workspace's lane waits for in another
        // partition too (a key or workspace concurrency spans targets), or what a whole
        // partition waits for (a shared global concurrency).
        for (const other of [...this.#hosts.values(), ...this.#draining]) {
          const unblocked = other.scheduler.released(identity.lane, identity.workspace)
          if (unblocked || (other === host && wakeHost)) this.#pump(other)
        }
      },
    }
  }

  #pump(host: PartitionHost): void {
    host.scheduler.pump()
    this.#rearm(host)
    if (host.scheduler.queued === 0 && this.#draining.delete(host)) clearTimeout(host.timer)
  }

  #rearm(host: PartitionHost): void {
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
        this.#pump(host)
      },
      Math.max(0, next - this.#now()),
    )
  }
}

/** A shared scope's refusal as the ticket's answer. */
function sharedRefusal(
  check: SharedCheck & { ok: false },
  code: 'rate_limited' | 'queue_timeout',
  views: readonly RateLimitView[],
): Admission {
  if (check.reason === 'ledger') {
    return {
      allowed: false,
      code: 'cluster_unavailable',
      refusedBy: check.refusedBy,
      reason: 'ledger',
      retryAfterMs: 1000,
      views,
    }
  }
  return {
    allowed: false,
    code,
    refusedBy: check.refusedBy,
    reason: check.final ? 'cost' : check.reason,
    retryAfterMs: check.retryAfterMs ?? 1000,
    views,
  }
}

/** The configured limits a lane's adopted ones may never exceed: the tightest of its scopes. */
function ceilingOf(scopes: readonly ScopeLimit[]): Ceiling {
  let rps: number | undefined
  let concurrency: number | undefined
  for (const scope of scopes) {
    if (scope.rate) {
      const perSecond = (scope.rate.limit * 1000) / scope.rate.periodMs
      rps = Math.min(rps ?? Infinity, perSecond)
    }
    if (scope.concurrency !== undefined)
      concurrency = Math.min(concurrency ?? Infinity, scope.concurrency)
  }
  return {
    ...(rps !== undefined ? { rps } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
  }
}
