import type { RateLimitView } from '@fairlane/protocol'
import { gcra, type GcraOutcome } from './gcra.ts'
import type { Decision, Lease, Ledger, ScopeKind, ScopeLimit } from './ledger.ts'

interface ScopeState {
  tat: number
  inFlight: number
}

/**
 * A concurrency refusal has no exact retry time: a slot frees when some request finishes.
 * One second is the usual client back-off and matches what the queue (issue 3) replaces it with.
 */
const CONCURRENCY_RETRY_MS = 1000

/**
 * The ledger of embedded mode and of lane-local scopes: exact, in process memory. A decision
 * is synchronous, so checking every scope and then committing is atomic without locks.
 */
export class MemoryLedger implements Ledger {
  readonly #states = new Map<string, ScopeState>()
  readonly #now: () => number

  constructor(options: { now: () => number }) {
    this.#now = options.now
  }

  acquire(scopes: readonly ScopeLimit[], cost: number): Promise<Decision> {
    return Promise.resolve(this.decide(scopes, cost))
  }

  /** The synchronous decision, for callers that own the event loop turn (the scheduler). */
  decide(scopes: readonly ScopeLimit[], cost: number): Decision {
    const now = this.#now()
    const views: RateLimitView[] = []
    const outcomes: (GcraOutcome | undefined)[] = []
    let refusal:
      { retryAfterMs: number; refusedBy: ScopeKind; reason: 'rate' | 'concurrency' } | undefined

    for (const scope of scopes) {
      const state = this.#states.get(scope.id)
      let outcome: GcraOutcome | undefined
      if (scope.rate) {
        outcome = gcra(state?.tat ?? now, now, cost, scope.rate)
        views.push({
          name: scope.kind,
          quota: scope.rate.limit,
          windowSeconds: scope.rate.periodMs / 1000,
          remaining: outcome.remaining,
          resetMs: outcome.resetMs,
        })
        if (!outcome.allowed && (!refusal || outcome.retryAfterMs > refusal.retryAfterMs)) {
          refusal = { retryAfterMs: outcome.retryAfterMs, refusedBy: scope.kind, reason: 'rate' }
        }
      }
      outcomes.push(outcome)
      if (scope.concurrency !== undefined && (state?.inFlight ?? 0) + 1 > scope.concurrency) {
        if (!refusal || CONCURRENCY_RETRY_MS > refusal.retryAfterMs) {
          refusal = {
            retryAfterMs: CONCURRENCY_RETRY_MS,
            refusedBy: scope.kind,
            reason: 'concurrency',
          }
        }
      }
    }

    if (refusal) return { allowed: false, ...refusal, views }

    const held: ScopeState[] = []
    scopes.forEach((scope, i) => {
      let state = this.#states.get(scope.id)
      if (!state) {
        state = { tat: now, inFlight: 0 }
        this.#states.set(scope.id, state)
      }
      const outcome = outcomes[i]
      if (outcome) state.tat = outcome.tat
      if (scope.concurrency !== undefined) {
        state.inFlight += 1
        held.push(state)
      }
    })
    return { allowed: true, lease: leaseOf(held), views }
  }

  /** Requests in flight for a scope; for metrics and tests. */
  inFlight(scopeId: string): number {
    return this.#states.get(scopeId)?.inFlight ?? 0
  }
}

const NO_LEASE: Lease = { release() {} }

function leaseOf(held: ScopeState[]): Lease {
  if (held.length === 0) return NO_LEASE
  let released = false
  return {
    release() {
      if (released) return
      released = true
      for (const state of held) state.inFlight -= 1
    },
  }
}
