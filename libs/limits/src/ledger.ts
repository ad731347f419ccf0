import type { RateLimitView } from '@fairlane/protocol'

/**
 * The ledger is the seam between the request path and wherever limit state lives: the
 * in-memory ledger in embedded mode, the Redis ledger in a cluster. Both give the same
 * guarantee: a request passes only if every scope passes, and a refused request takes
 * nothing from any scope.
 */

/**
 * `client` is a limit the client asked for itself (Fairlane-RateLimit-Policy); `upstream` one
 * a lane adopted from what the upstream said (adaptive lane limits).
 */
export type ScopeKind = 'key' | 'workspace' | 'target' | 'global' | 'client' | 'upstream'

/** `limit` units per `periodMs`, with up to `burst` passing at once from idle. */
interface RateLimit {
  readonly limit: number
  readonly periodMs: number
  readonly burst: number
}

/** At most `limit` units in any sliding window of `windowMs`. */
export interface WindowLimit {
  readonly limit: number
  readonly windowMs: number
}

export interface ScopeLimit {
  /** Stable identity of the scope instance: `key:<ws>/<id>`, `workspace:<name>`, `target:<name>`, `global`. */
  readonly id: string
  readonly kind: ScopeKind
  readonly rate?: RateLimit
  readonly window?: WindowLimit
  readonly concurrency?: number
  /**
   * `request` counts each request as 1 whatever its cost; `cost` (the default) counts cost
   * units; `cents` counts the price in cents of priced requests (0 for others).
   */
  readonly unit?: 'request' | 'cost' | 'cents'
  /** What a shared scope does while its ledger (Redis) is unreachable; `local` by default. */
  readonly onLedgerDown?: LedgerDownPolicy
  /**
   * A bound on the states of one family of scopes (the callers of one route), below the
   * ledger's own bound: a flood into one route forgets that route's idle callers first.
   */
  readonly group?: ScopeGroup
}

export interface ScopeGroup {
  readonly id: string
  /** Most states of the group held at once; the idle ones beyond it are forgotten. */
  readonly maxStates: number
}

/**
 * `local`: each node enforces its share of the limit (limit ÷ live nodes) in memory;
 * `open`: the scope is not enforced; `closed`: requests the scope covers are refused (503).
 */
export type LedgerDownPolicy = 'local' | 'open' | 'closed'

/** Held while a granted request is in flight; releasing it frees its concurrency slots. */
export interface Lease {
  /** Idempotent: a second call does nothing. */
  release(): void
}

export type Decision =
  | { readonly allowed: true; readonly lease: Lease; readonly views: readonly RateLimitView[] }
  | {
      readonly allowed: false
      /** Earliest time, from now, at which the same request could pass. */
      readonly retryAfterMs: number
      /** The scope that refused (the one with the longest wait when several do). */
      readonly refusedBy: ScopeKind
      readonly reason: 'rate' | 'concurrency'
      /** The cost is more than the refusing limit allows at once: waiting would never help. */
      readonly impossible?: boolean
      readonly views: readonly RateLimitView[]
    }

export interface Ledger {
  /** Checks every scope at once and, only if all pass, takes `cost` from each. */
  acquire(scopes: readonly ScopeLimit[], cost: number): Promise<Decision>
  /**
   * Charges units spent beyond what was acquired, once the real cost is known (tokens in a
   * response). Never refuses: the request already happened; later requests wait for it.
   */
  debit(scopes: readonly ScopeLimit[], cost: number): Promise<void>
}

/** What one request takes from a scope: 1, its cost, or its price in cents, by the scope's unit. */
export function unitsOf(scope: ScopeLimit, cost: number, cents: number): number {
  return scope.unit === 'request' ? 1 : scope.unit === 'cents' ? cents : cost
}
