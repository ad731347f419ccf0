import type { RateLimitView } from '@fairlane/protocol'
import { unitsOf, type LedgerDownPolicy, type ScopeKind, type ScopeLimit } from '../ledger.ts'

/** What an actor asks of a shared scope's ledger in one round trip. */
export interface ReserveRequest {
  /** Rate and window units to take now for spending later. */
  readonly units: number
  /** Concurrency slots to lease. */
  readonly slots: number
}

export interface Grant {
  readonly units: number
  /** When no unit was granted: the wait until one could be. */
  readonly retryAfterMs: number
  /** Lease ids of the slots granted. */
  readonly slots: readonly string[]
  /** Units the ledger has left after this grant (-1: no rate or window). */
  readonly remaining: number
  readonly resetMs: number
}

/** Where shared scopes live (Redis in a cluster); see RedisLedger. */
export interface Reserver {
  reserve(scope: ScopeLimit, want: ReserveRequest): Promise<Grant>
  /** Gives back unspent rate units and slots. */
  refund(scope: ScopeLimit, units: number, slots: readonly string[]): Promise<void>
  /**
   * Keeps held slots alive; a node that stops renewing loses them after their TTL. Resolves
   * with the slots still held.
   */
  renew(scope: ScopeLimit, slots: readonly string[]): Promise<readonly string[]>
  debit(scopes: readonly ScopeLimit[], cost: number): Promise<void>
  /** Resolves when the ledger answers again. */
  ping(): Promise<void>
}

export type SharedCheck =
  | {
      readonly ok: true
      /** The node's share of scopes whose ledger is down with policy `local`: decide them locally. */
      readonly fallback: readonly ScopeLimit[]
    }
  | {
      readonly ok: false
      readonly refusedBy: ScopeKind
      /** `ledger`: the ledger is down and the scope's policy is `closed`. */
      readonly reason: 'rate' | 'concurrency' | 'ledger'
      /** Never fits the scope, or refused by policy: refuse at once. */
      readonly final: boolean
      /** Waiting for the ledger: `onChange(scope.id)` fires when trying again may help. */
      readonly scopeId: string
      /** The ledger said it has nothing for this long. */
      readonly retryAfterMs?: number
    }

/** Held by an admitted request; gives its slots back to this node's allowance. */
export interface SharedHold {
  release(): void
}

export interface SharedAllowanceOptions {
  readonly reserver: Reserver
  readonly now: () => number
  /** This node's share of a limit when the ledger is down with policy `local` (1 / live nodes). */
  readonly share: () => number
  /** A waiting scope may pass now (a batch arrived, the ledger came back or went away). */
  readonly onChange: (scopeId: string) => void
  /** One decision taken under a scope's `onLedgerDown` policy, for the metric. */
  readonly onLedgerDown?: (scope: ScopeLimit, policy: LedgerDownPolicy) => void
  /** Unspent units and idle slots go back to the ledger after this long. */
  readonly holdMs?: number
  /** A batch is at most this much of the rate's period (and never more than the burst). */
  readonly batchMs?: number
  readonly slotTtlMs?: number
  /** How often a down ledger, or a scope with no free slot anywhere, is tried again. */
  readonly retryMs?: number
}

interface ScopeState {
  scope: ScopeLimit
  /** Reserved rate/window units not spent yet. */
  units: number
  readonly slots: Set<string>
  readonly freeSlots: string[]
  refilling: boolean
  /** A retry is scheduled (the ledger named a wait, or had no slot). */
  retryTimer?: NodeJS.Timeout
  /** What was asked while a batch or a retry was pending, for the next request. */
  pendingUnits: number
  pendingSlot: boolean
  /** When the ledger said it would have units again. */
  retryAt?: number
  lastUsedAt: number
  remote?: { remaining: number; resetMs: number; at: number }
}

const EMPTY: readonly ScopeLimit[] = []

/**
 * A node's local allowance of scopes shared between actors. The queue actor's gate is
 * synchronous (a decision must never wait on the network), so this reserves budget from the
 * shared ledger in batches ahead of use and the gate spends from it locally. Nothing is
 * admitted that the ledger did not grant, so the cluster never over-admits; unspent units
 * and idle slots go back after `holdMs`. When the ledger is unreachable each scope follows
 * its `onLedgerDown` policy until the ledger answers again.
 */
export class SharedAllowance {
  readonly #options: SharedAllowanceOptions
  readonly #states = new Map<string, ScopeState>()
  readonly #holdMs: number
  readonly #batchMs: number
  readonly #slotTtlMs: number
  readonly #retryMs: number
  readonly #sweeper: NodeJS.Timeout
  readonly #renewer: NodeJS.Timeout
  readonly #fallbacks = new Map<string, { share: number; scope: ScopeLimit }>()
  #down = false
  #probe: NodeJS.Timeout | undefined

  constructor(options: SharedAllowanceOptions) {
    this.#options = options
    this.#holdMs = options.holdMs ?? 250
    this.#batchMs = options.batchMs ?? 50
    this.#slotTtlMs = options.slotTtlMs ?? 30_000
    this.#retryMs = options.retryMs ?? 25
    this.#sweeper = setInterval(() => this.#sweep(), this.#holdMs)
    this.#sweeper.unref()
    this.#renewer = setInterval(() => this.#renew(), this.#slotTtlMs / 3)
    this.#renewer.unref()
  }

  /** The shared ledger is unreachable: scopes follow their `onLedgerDown` policy. */
  get down(): boolean {
    return this.#down
  }

  /**
   * Whether `cost` may pass every shared scope now, from what this node holds. Takes
   * nothing: `take` follows in the same turn when every other scope passed too.
   */
  check(scopes: readonly ScopeLimit[], cost: number, cents = 0): SharedCheck {
    let fallback: ScopeLimit[] | undefined
    for (const scope of scopes) {
      const units = unitsOf(scope, cost, cents)
      if ((scope.rate && units > scope.rate.burst) || (scope.window && units > scope.window.limit))
        return this.#refuse(scope, 'rate', true)
      const state = this.#state(scope)
      const needsUnits = (scope.rate || scope.window) && state.units < units
      const needsSlot = scope.concurrency !== undefined && state.freeSlots.length === 0
      if (!needsUnits && !needsSlot) continue
      if (this.#down) {
        const policy = scope.onLedgerDown ?? 'local'
        if (policy === 'closed') {
          this.#options.onLedgerDown?.(scope, policy)
          return this.#refuse(scope, 'ledger', true)
        }
        if (policy === 'local') (fallback ??= []).push(this.#fallback(scope))
        continue
      }
      this.#refill(state, needsUnits ? units : 0, needsSlot)
      const refusal = this.#refuse(scope, needsSlot && !needsUnits ? 'concurrency' : 'rate', false)
      const wait =
        needsUnits && state.retryAt !== undefined ? state.retryAt - this.#options.now() : 0
      return wait > 0 ? { ...refusal, retryAfterMs: wait } : refusal
    }
    return { ok: true, fallback: fallback ?? EMPTY }
  }

  /** Spends what `check` found; call only right after a passing check. */
  take(scopes: readonly ScopeLimit[], cost: number, cents = 0): SharedHold {
    const now = this.#options.now()
    let held: { state: ScopeState; slot: string }[] | undefined
    for (const scope of scopes) {
      const state = this.#state(scope)
      state.lastUsedAt = now
      const units = unitsOf(scope, cost, cents)
      let underPolicy = false
      if (scope.rate || scope.window) {
        if (state.units >= units) state.units -= units
        else underPolicy = true
      }
      if (scope.concurrency !== undefined) {
        const slot = state.freeSlots.pop()
        if (slot !== undefined) (held ??= []).push({ state, slot })
        else underPolicy = true
      }
      if (underPolicy) this.#options.onLedgerDown?.(scope, scope.onLedgerDown ?? 'local')
    }
    if (!held) return NO_HOLD
    let released = false
    const slots = held
    return {
      release: () => {
        if (released) return
        released = true
        const at = this.#options.now()
        for (const { state, slot } of slots) {
          // A slot that expired meanwhile (or was refunded at close) is not reused.
          if (!state.slots.has(slot)) continue
          state.freeSlots.push(slot)
          state.lastUsedAt = at
          this.#options.onChange(state.scope.id)
        }
      },
    }
  }

  /** Units spent beyond what was reserved (a cost known from the response). */
  charge(scopes: readonly ScopeLimit[], cost: number, cents = 0): void {
    for (const [unitScopes, units] of byUnit(scopes, cost, cents)) {
      this.#options.reserver.debit(unitScopes, units).catch(() => this.#markDown())
    }
  }

  /** Units reserved beyond the real cost, given back to the ledger (request-counted scopes keep theirs). */
  credit(scopes: readonly ScopeLimit[], cost: number, cents = 0): void {
    for (const scope of scopes) {
      const units = scope.unit === 'request' ? 0 : unitsOf(scope, cost, cents)
      if (units <= 0 || !(scope.rate || scope.window)) continue
      this.#options.reserver.refund(scope, units, []).catch(() => this.#markDown())
    }
  }

  /** RateLimit views of shared scopes: the ledger's last word plus what this node holds. */
  views(scopes: readonly ScopeLimit[]): RateLimitView[] {
    const views: RateLimitView[] = []
    const now = this.#options.now()
    for (const scope of scopes) {
      const limit = scope.rate ?? scope.window
      const state = this.#states.get(scope.id)
      if (!limit || !state?.remote || state.remote.remaining < 0) continue
      const quota = 'burst' in limit ? limit.limit : limit.limit
      const windowSeconds = ('periodMs' in limit ? limit.periodMs : limit.windowMs) / 1000
      views.push({
        name: scope.kind,
        quota,
        windowSeconds,
        remaining: Math.floor(state.remote.remaining + state.units),
        resetMs: Math.max(0, state.remote.resetMs - (now - state.remote.at)),
      })
    }
    return views
  }

  /** Gives everything back to the ledger and stops; call when the node stops. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    clearInterval(this.#renewer)
    clearTimeout(this.#probe)
    const refunds: Promise<void>[] = []
    for (const state of this.#states.values()) {
      clearTimeout(state.retryTimer)
      refunds.push(this.#giveBack(state, state.units, [...state.freeSlots]))
    }
    this.#states.clear()
    await Promise.all(refunds)
  }

  #refuse(
    scope: ScopeLimit,
    reason: 'rate' | 'concurrency' | 'ledger',
    final: boolean,
  ): SharedCheck & { ok: false } {
    return { ok: false, refusedBy: scope.kind, reason, final, scopeId: scope.id }
  }

  #state(scope: ScopeLimit): ScopeState {
    let state = this.#states.get(scope.id)
    if (!state) {
      state = {
        scope,
        units: 0,
        slots: new Set(),
        freeSlots: [],
        refilling: false,
        pendingUnits: 0,
        pendingSlot: false,
        lastUsedAt: this.#options.now(),
      }
      this.#states.set(scope.id, state)
    }
    // A reload may have changed the scope's numbers; the id stays.
    state.scope = scope
    return state
  }

  /** Asks the ledger for a batch: enough for `units` and a little ahead, bounded by the burst. */
  #refill(state: ScopeState, units: number, slot: boolean): void {
    if (state.refilling || state.retryTimer) {
      // Asked for again while a batch is on its way or a retry waits: the next one asks for
      // this too (a retry for slots must not starve a lane that now needs units).
      state.pendingUnits = Math.max(state.pendingUnits, units)
      state.pendingSlot ||= slot
      return
    }
    units = Math.max(units, state.pendingUnits)
    slot ||= state.pendingSlot
    state.pendingUnits = 0
    state.pendingSlot = false
    const { scope } = state
    let want = 0
    if (units > 0) {
      const ahead = scope.rate
        ? Math.min(
            scope.rate.burst,
            Math.ceil((scope.rate.limit * this.#batchMs) / scope.rate.periodMs),
          )
        : Math.ceil(((scope.window?.limit ?? 1) * this.#batchMs) / (scope.window?.windowMs ?? 1))
      const windowCap = scope.window ? scope.window.limit : Infinity
      want = Math.min(Math.max(units - state.units, ahead), windowCap)
    }
    // Busy scopes lease a quarter of their slots in use ahead, idle ones one at a time.
    const slots = slot ? Math.max(1, Math.ceil((state.slots.size - state.freeSlots.length) / 4)) : 0
    state.refilling = true
    this.#options.reserver.reserve(scope, { units: want, slots }).then(
      (grant) => {
        state.refilling = false
        state.units += grant.units
        for (const id of grant.slots) {
          state.slots.add(id)
          state.freeSlots.push(id)
        }
        state.remote = {
          remaining: grant.remaining,
          resetMs: grant.resetMs,
          at: this.#options.now(),
        }
        const shortOfUnits = want > 0 && grant.units === 0
        const shortOfSlots = slots > 0 && grant.slots.length === 0
        if (shortOfUnits || shortOfSlots) {
          // The ledger has nothing now: try again when it said, or soon for slots (a slot
          // freed on another node sends no word here).
          const wait = shortOfUnits ? Math.max(grant.retryAfterMs, 1) : this.#retryMs
          if (shortOfUnits) state.retryAt = this.#options.now() + wait
          state.retryTimer = setTimeout(() => {
            state.retryTimer = undefined
            state.retryAt = undefined
            this.#refill(state, shortOfUnits ? units : 0, shortOfSlots)
          }, wait)
          state.retryTimer.unref()
          if (this.#down) this.#up()
          return
        }
        if (this.#down) this.#up()
        this.#options.onChange(scope.id)
      },
      () => {
        state.refilling = false
        this.#markDown()
      },
    )
  }

  #fallback(scope: ScopeLimit): ScopeLimit {
    const share = Math.min(1, Math.max(0, this.#options.share()))
    const cached = this.#fallbacks.get(scope.id)
    if (cached && cached.share === share && cached.scope.kind === scope.kind) return cached.scope
    const part = (n: number) => Math.max(1, Math.floor(n * share))
    const local: ScopeLimit = {
      id: `ledger-down:${scope.id}`,
      kind: scope.kind,
      ...(scope.unit ? { unit: scope.unit } : {}),
      ...(scope.rate
        ? {
            rate: { ...scope.rate, limit: scope.rate.limit * share, burst: part(scope.rate.burst) },
          }
        : {}),
      ...(scope.window ? { window: { ...scope.window, limit: part(scope.window.limit) } } : {}),
      ...(scope.concurrency !== undefined ? { concurrency: part(scope.concurrency) } : {}),
    }
    this.#fallbacks.set(scope.id, { share, scope: local })
    return local
  }

  #markDown(): void {
    if (!this.#down) {
      this.#down = true
      for (const id of this.#states.keys()) this.#options.onChange(id)
    }
    this.#probe ??= setTimeout(() => {
      this.#probe = undefined
      this.#options.reserver.ping().then(
        () => this.#up(),
        () => this.#markDown(),
      )
    }, this.#retryMs * 40)
    this.#probe.unref()
  }

  #up(): void {
    if (!this.#down) return
    this.#down = false
    for (const id of this.#states.keys()) this.#options.onChange(id)
  }

  /** Unspent units and idle slots of scopes not used for `holdMs` go back to the ledger. */
  #sweep(): void {
    const now = this.#options.now()
    for (const [id, state] of this.#states) {
      if (now - state.lastUsedAt < this.#holdMs || state.refilling) continue
      const slots = state.freeSlots.splice(0)
      for (const slot of slots) state.slots.delete(slot)
      if (state.units > 0 || slots.length > 0) void this.#giveBack(state, state.units, slots)
      state.units = 0
      if (state.slots.size === 0 && !state.retryTimer) this.#states.delete(id)
    }
  }

  #giveBack(state: ScopeState, units: number, slots: readonly string[]): Promise<void> {
    const whole = Math.floor(units)
    if (whole <= 0 && slots.length === 0) return Promise.resolve()
    // A refund that fails is not lost budget for long: units come back with time, slots
    // with their TTL.
    return this.#options.reserver.refund(state.scope, whole, slots).catch(() => undefined)
  }

  #renew(): void {
    for (const state of this.#states.values()) {
      if (state.slots.size === 0) continue
      this.#options.reserver.renew(state.scope, [...state.slots]).then(
        (kept) => {
          // A slot that expired meanwhile may be another node's now: never use it again.
          if (kept.length === state.slots.size) return
          const still = new Set(kept)
          for (const slot of state.slots) if (!still.has(slot)) state.slots.delete(slot)
          const free = state.freeSlots.filter((slot) => still.has(slot))
          state.freeSlots.splice(0, state.freeSlots.length, ...free)
        },
        () => this.#markDown(),
      )
    }
  }
}

const NO_HOLD: SharedHold = { release() {} }

/** Scopes counted in cost units and in cents, each with what it is charged; none at 0. */
function byUnit(
  scopes: readonly ScopeLimit[],
  cost: number,
  cents: number,
): [readonly ScopeLimit[], number][] {
  const groups: [readonly ScopeLimit[], number][] = []
  if (cost > 0)
    groups.push([scopes.filter((s) => s.unit !== 'request' && s.unit !== 'cents'), cost])
  if (cents > 0) groups.push([scopes.filter((s) => s.unit === 'cents'), cents])
  return groups.filter(([group]) => group.length > 0)
}
