/**
 * GCRA (generic cell rate algorithm): token-bucket semantics kept as one number per scope,
 * the theoretical arrival time (TAT). Pure: the caller owns the state and the clock.
 *
 * With emission interval T = period / limit and tolerance τ = burst · T, a request of `cost`
 * units at time `now` passes when max(TAT, now) + cost · T − now ≤ τ. A refusal leaves TAT
 * untouched, so a refused request costs nothing and the retry time is exact.
 */

export interface GcraParams {
  /** Units per period. */
  readonly limit: number
  readonly periodMs: number
  /** Units that may pass at once from idle. */
  readonly burst: number
}

export interface GcraOutcome {
  readonly allowed: boolean
  /** TAT to store if the request is committed; equal to the old TAT when refused. */
  readonly tat: number
  /** Whole units that could still pass right after this decision. */
  readonly remaining: number
  /** Milliseconds until the bucket is full again (RateLimit `t`). */
  readonly resetMs: number
  /** Milliseconds until this same request could pass; 0 when allowed. */
  readonly retryAfterMs: number
}

// Rates such as 1000/3 ms make T irrational in binary; a tolerance of a nanosecond stops
// float noise from refusing a request that is exactly on time.
const EPSILON_MS = 1e-6

export function emissionIntervalMs(params: GcraParams): number {
  return params.periodMs / params.limit
}

export function gcra(tat: number, now: number, cost: number, params: GcraParams): GcraOutcome {
  const interval = emissionIntervalMs(params)
  const tolerance = params.burst * interval
  const base = Math.max(tat, now)
  const next = base + cost * interval
  const backlog = next - now
  if (backlog <= tolerance + EPSILON_MS) {
    return {
      allowed: true,
      tat: next,
      remaining: Math.max(0, Math.floor((tolerance - backlog + EPSILON_MS) / interval)),
      resetMs: backlog,
      retryAfterMs: 0,
    }
  }
  const held = base - now
  return {
    allowed: false,
    tat,
    remaining: Math.max(0, Math.floor((tolerance - held + EPSILON_MS) / interval)),
    resetMs: held,
    // A cost larger than the burst can never fit; the wait until the bucket is full is then
    // the honest answer (the ledger marks such a refusal as impossible).
    retryAfterMs: cost > params.burst ? held : backlog - tolerance,
  }
}
