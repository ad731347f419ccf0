import type { RateLimitView } from '@fairlane/protocol'
import { emissionIntervalMs, gcra, type GcraOutcome } from './gcra.ts'
import {
  unitsOf,
  type Decision,
  type Lease,
  type Ledger,
  type ScopeGroup,
  type ScopeKind,
  type ScopeLimit,
  type WindowLimit,
} from './ledger.ts'
import {
  newWindowState,
  windowCheck,
  windowCommit,
  windowDebit,
  windowRefund,
  resizeWindow,
  type WindowOutcome,
  type WindowState,
} from './sliding-window.ts'

interface ScopeState {
  tat: number
  inFlight: number
  window?: WindowState
  windowMs?: number
  /** The group whose bound the state counts against (ScopeLimit.group). */
  group?: string
}

/**
 * States looked at, in a walk over all of them, each time a state is made: more than one, so
 * the walk outpaces the states made and a lap ends while what it forgets is still young.
 */
const STEPS_PER_NEW_STATE = 2

/**
 * A concurrency refusal has no exact retry time: a slot frees when some request finishes.
 * One second is the usual client back-off when a caller is refused rather than queued.
 */
const CONCURRENCY_RETRY_MS = 1000

type Refusal = {
  retryAfterMs: number
  refusedBy: ScopeKind
  reason: 'rate' | 'concurrency'
  impossible?: boolean
}

/**
 * The refusal a decision reports: the first impossible one (no wait lets it pass), else the
 * one that waits longest (an earlier retry would be refused again).
 */
function reportedRefusal(refusal: Refusal | undefined, candidate: Refusal): Refusal {
  if (refusal?.impossible) return refusal
  if (!refusal || candidate.impossible || candidate.retryAfterMs > refusal.retryAfterMs)
    return candidate
  return refusal
}

/**
 * The ledger of embedded mode and of lane-local scopes: exact, in process memory. A decision
 * is synchronous, so checking every scope and then committing is atomic without locks.
 */
export class MemoryLedger implements Ledger {
  readonly #states = new Map<string, ScopeState>()
  /** The states of each group, in the order they were made: the oldest go first. */
  readonly #groups = new Map<string, Map<string, ScopeState>>()
  readonly #now: () => number
  readonly #maxStates: () => number
  /** Where the walk of #forgetSome stands; a new walk starts when it reaches the end. */
  #walk: Iterator<[string, ScopeState]> | undefined

  /**
   * `maxStates` bounds the states held (read at each new scope, so a reload applies): a
   * flood of distinct callers cannot grow the ledger without bound.
   */
  constructor(options: { now: () => number; maxStates?: () => number }) {
    this.#now = options.now
    this.#maxStates = options.maxStates ?? (() => Infinity)
  }

  acquire(scopes: readonly ScopeLimit[], cost: number): Promise<Decision> {
    return Promise.resolve(this.decide(scopes, cost))
  }

  debit(scopes: readonly ScopeLimit[], cost: number): Promise<void> {
    this.charge(scopes, cost)
    return Promise.resolve()
  }

  /** The synchronous decision, for callers that own the event loop turn (the queue actor). */
  decide(scopes: readonly ScopeLimit[], cost: number, cents = 0): Decision {
    const now = this.#now()
    const views: RateLimitView[] = []
    // Views of scopes that passed, as pairs of the view's index and the units it counted: if
    // another scope refuses, nothing is taken, so they report what remains without this request.
    const passed: number[] = []
    const rates: (GcraOutcome | undefined)[] = []
    let refusal: Refusal | undefined

    for (const scope of scopes) {
      const state = this.#states.get(scope.id)
      const units = unitsOf(scope, cost, cents)
      let outcome: GcraOutcome | undefined
      if (scope.rate) {
        outcome = gcra(state?.tat ?? now, now, units, scope.rate)
        views.push({
          name: scope.kind,
          quota: scope.rate.limit,
          windowSeconds: scope.rate.periodMs / 1000,
          remaining: outcome.remaining,
          resetMs: outcome.resetMs,
        })
        if (units > scope.rate.burst) {
          refusal = reportedRefusal(refusal, {
            retryAfterMs: scope.rate.periodMs,
            refusedBy: scope.kind,
            reason: 'rate',
            impossible: true,
          })
        } else if (!outcome.allowed && units > 0) {
          // A request that takes nothing from a spent scope (free in cents) is not its to refuse.
          refusal = reportedRefusal(refusal, {
            retryAfterMs: outcome.retryAfterMs,
            refusedBy: scope.kind,
            reason: 'rate',
          })
        } else {
          passed.push(views.length - 1, units)
        }
      }
      rates.push(outcome)
      if (scope.window) {
        const window: WindowOutcome = state?.window
          ? windowCheck(this.#window(state, scope), now, units, scope.window)
          : {
              allowed: units <= scope.window.limit,
              remaining: Math.max(0, scope.window.limit - units),
              resetMs: scope.window.windowMs,
              retryAfterMs: 0,
            }
        views.push({
          name: scope.kind,
          quota: scope.window.limit,
          windowSeconds: scope.window.windowMs / 1000,
          remaining: window.remaining,
          resetMs: window.resetMs,
        })
        if (window.allowed) passed.push(views.length - 1, units)
        if (units > scope.window.limit) {
          refusal = reportedRefusal(refusal, {
            retryAfterMs: scope.window.windowMs,
            refusedBy: scope.kind,
            reason: 'rate',
            impossible: true,
          })
        } else if (!window.allowed) {
          refusal = reportedRefusal(refusal, {
            retryAfterMs: window.retryAfterMs || scope.window.windowMs,
            refusedBy: scope.kind,
            reason: 'rate',
          })
        }
      }
      if (scope.concurrency !== undefined && (state?.inFlight ?? 0) + 1 > scope.concurrency) {
        refusal = reportedRefusal(refusal, {
          retryAfterMs: CONCURRENCY_RETRY_MS,
          refusedBy: scope.kind,
          reason: 'concurrency',
        })
      }
    }

    if (refusal) {
      for (let i = 0; i < passed.length; i += 2) {
        const index = passed[i] as number
        const view = views[index] as RateLimitView
        views[index] = { ...view, remaining: view.remaining + (passed[i + 1] as number) }
      }
      return { allowed: false, ...refusal, views }
    }

    // Made only for a scope that counts requests in flight: most hold nothing.
    let held: ScopeState[] | undefined
    for (let i = 0; i < scopes.length; i++) {
      const scope = scopes[i] as ScopeLimit
      const state = this.#state(scope, now)
      const outcome = rates[i]
      if (outcome) state.tat = outcome.tat
      if (scope.window) windowCommit(this.#window(state, scope), now, unitsOf(scope, cost, cents))
      if (scope.concurrency !== undefined) {
        state.inFlight += 1
        ;(held ??= []).push(state)
      }
    }
    return { allowed: true, lease: held ? leaseOf(held) : NO_LEASE, views }
  }

  /** Synchronous debit; see Ledger.debit. */
  charge(scopes: readonly ScopeLimit[], cost: number, cents = 0): void {
    if (cost <= 0 && cents <= 0) return
    const now = this.#now()
    for (const scope of scopes) {
      if (scope.unit === 'request') continue
      const units = unitsOf(scope, cost, cents)
      if (units <= 0) continue
      const state = this.#state(scope, now)
      if (scope.rate) state.tat = Math.max(state.tat, now) + units * emissionIntervalMs(scope.rate)
      if (scope.window) windowDebit(this.#window(state, scope), now, units)
    }
  }

  /**
   * Gives back the rate and window units of an admission that was never used (a leased
   * share returned unused). A rate bucket is never filled above its burst: the theoretical
   * arrival time does not go back past now. Concurrency is the lease's to give back.
   */
  refund(scopes: readonly ScopeLimit[], cost: number, cents = 0): void {
    if (cost <= 0 && cents <= 0) return
    const now = this.#now()
    for (const scope of scopes) {
      const state = this.#states.get(scope.id)
      if (!state) continue
      const units = unitsOf(scope, cost, cents)
      if (scope.rate) state.tat = Math.max(now, state.tat - units * emissionIntervalMs(scope.rate))
      if (scope.window && state.window) windowRefund(state.window, units)
    }
  }

  /**
   * Forgets scopes whose state no longer limits anything (bucket full again, window empty,
   * nothing in flight), so memory follows the active callers rather than every caller ever.
   */
  sweep(): number {
    const now = this.#now()
    let removed = 0
    for (const [id, state] of this.#states) {
      if (!limitsNothing(state, now)) continue
      this.#forget(id, state)
      removed++
    }
    return removed
  }

  get size(): number {
    return this.#states.size
  }

  /**
   * The rate and window state of some scopes, with times relative to now, so another process
   * (the next owner of a partition) can resume it. Concurrency is not included: the requests
   * in flight belong to the node that admitted them.
   */
  snapshot(scopeIds: Iterable<string>): ScopeSnapshot {
    const now = this.#now()
    const out: Record<string, { tat: number; window?: number[] }> = {}
    for (const id of scopeIds) {
      const state = this.#states.get(id)
      if (!state) continue
      const entry: { tat: number; window?: number[] } = { tat: Math.max(0, state.tat - now) }
      if (state.window && state.window.size > 0) {
        const { times, head, size } = state.window
        entry.window = Array.from(
          { length: size },
          (_, i) => (times[(head + i) % times.length] as number) - now,
        )
      }
      if (entry.tat > 0 || entry.window) out[id] = entry
    }
    return out
  }

  /** Resumes a snapshot taken `ageMs` ago elsewhere; state already here is kept where stricter. */
  restore(snapshot: ScopeSnapshot, ageMs: number): void {
    const now = this.#now()
    for (const [id, entry] of Object.entries(snapshot)) {
      const state = this.#states.get(id) ?? { tat: now, inFlight: 0 }
      state.tat = Math.max(state.tat, now + entry.tat - ageMs)
      if (entry.window && entry.window.length > 0 && !state.window) {
        const times = new Float64Array(entry.window.length)
        entry.window.forEach((t, i) => (times[i] = now + t - ageMs))
        state.window = { times, head: 0, size: times.length }
      }
      this.#states.set(id, state)
    }
  }

  /** Requests in flight for a scope; for metrics and tests. */
  inFlight(scopeId: string): number {
    return this.#states.get(scopeId)?.inFlight ?? 0
  }

  #state(scope: ScopeLimit, now: number): ScopeState {
    let state = this.#states.get(scope.id)
    if (!state) {
      this.#forgetSome(now)
      if (this.#states.size >= this.#maxStates()) this.#evict()
      state = { tat: now, inFlight: 0 }
      if (scope.group) this.#join(scope.id, state, scope.group, now)
      this.#states.set(scope.id, state)
    }
    return state
  }

  /**
   * Forgets what no longer limits among the next few states of a walk that every new state
   * moves on. A flood of callers with one request each is then forgotten within a few
   * milliseconds of its buckets refilling, while its states are young (the GC's young
   * generation frees them at no cost), not at the next sweep, when they have been copied and
   * promoted and the sweep scans them all at once; the walk costs O(1) per new state.
   */
  #forgetSome(now: number): void {
    for (let step = 0; step < STEPS_PER_NEW_STATE; step++) {
      this.#walk ??= this.#states.entries()
      const next = this.#walk.next()
      if (next.done) {
        this.#walk = undefined
        return
      }
      const [id, state] = next.value
      if (limitsNothing(state, now)) this.#forget(id, state)
    }
  }

  #join(id: string, state: ScopeState, group: ScopeGroup, now: number): void {
    let members = this.#groups.get(group.id)
    if (!members) {
      members = new Map()
      this.#groups.set(group.id, members)
    }
    if (members.size >= group.maxStates) this.#evictFrom(members, group.maxStates, now)
    // A bound below 2 can empty the group, which #forget then drops from the groups.
    this.#groups.set(group.id, members)
    members.set(id, state)
    state.group = group.id
  }

  /**
   * Makes room in one group as #evict does in the whole ledger, looking at that group's
   * states only: what no longer limits first, then the oldest with nothing in flight.
   */
  #evictFrom(members: Map<string, ScopeState>, max: number, now: number): void {
    const floor = Math.floor(max * 0.9)
    for (const [id, state] of members) {
      if (members.size <= floor) return
      if (limitsNothing(state, now)) this.#forget(id, state)
    }
    for (const [id, state] of members) {
      if (members.size <= floor) return
      if (state.inFlight === 0) this.#forget(id, state)
    }
  }

  #forget(id: string, state: ScopeState): void {
    this.#states.delete(id)
    if (state.group === undefined) return
    const members = this.#groups.get(state.group)
    members?.delete(id)
    if (members?.size === 0) this.#groups.delete(state.group)
  }

  /**
   * Makes room below the cap: first what no longer limits anything (as the sweep does), then,
   * oldest first, states with nothing in flight, whose callers may then start afresh (a
   * forgotten bucket is a full one). A state with a request in flight is never dropped, so
   * concurrency stays exact. Down to 90% of the cap, so the scan runs once per many scopes.
   */
  #evict(): void {
    const floor = Math.floor(this.#maxStates() * 0.9)
    this.sweep()
    for (const [id, state] of this.#states) {
      if (this.#states.size <= floor) return
      if (state.inFlight === 0) this.#forget(id, state)
    }
  }

  /** The scope's window log, created on first use and resized when its limit changed. */
  #window(state: ScopeState, scope: ScopeLimit): WindowState {
    const params = scope.window as WindowLimit
    state.window = state.window ? resizeWindow(state.window, params.limit) : newWindowState(params)
    state.windowMs = params.windowMs
    return state.window
  }
}

/** Bucket full again, window empty, nothing in flight: forgetting the state loosens nothing. */
function limitsNothing(state: ScopeState, now: number): boolean {
  if (state.inFlight > 0 || state.tat > now) return false
  if (state.window && state.windowMs !== undefined) {
    windowCheck(state.window, now, 0, {
      limit: state.window.times.length,
      windowMs: state.windowMs,
    })
    if (state.window.size > 0) return false
  }
  return true
}

/** Rate and window state by scope id, times in ms relative to when it was taken. */
export type ScopeSnapshot = Readonly<
  Record<string, { readonly tat: number; readonly window?: readonly number[] }>
>

const NO_LEASE: Lease = { release() {} }

function leaseOf(held: readonly ScopeState[]): Lease {
  let released = false
  return {
    release() {
      if (released) return
      released = true
      for (const state of held) state.inFlight -= 1
    },
  }
}
