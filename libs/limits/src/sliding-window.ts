/**
 * Sliding-window log: at most `limit` units in any window of `windowMs`, exactly, so a
 * per-minute limit has no burst at a minute boundary. Pure: the caller owns state and clock.
 *
 * The log keeps one timestamp per unit in a ring buffer of `limit` slots, so memory is fixed
 * per scope (8 bytes × limit) and eviction of expired units is O(1) amortised.
 */

export interface WindowParams {
  readonly limit: number
  readonly windowMs: number
}

export interface WindowState {
  readonly times: Float64Array
  head: number
  size: number
}

export interface WindowOutcome {
  readonly allowed: boolean
  readonly remaining: number
  /** Milliseconds until every unit in the window has expired. */
  readonly resetMs: number
  /** Milliseconds until this request could pass; 0 when allowed. */
  readonly retryAfterMs: number
}

export function newWindowState(params: WindowParams): WindowState {
  return { times: new Float64Array(Math.max(1, Math.ceil(params.limit))), head: 0, size: 0 }
}

function evict(state: WindowState, now: number, windowMs: number): void {
  const capacity = state.times.length
  while (state.size > 0 && (state.times[state.head] as number) <= now - windowMs) {
    state.head = (state.head + 1) % capacity
    state.size--
  }
}

/** Checks without taking anything (expired units are dropped, which changes no outcome). */
export function windowCheck(
  state: WindowState,
  now: number,
  cost: number,
  params: WindowParams,
): WindowOutcome {
  evict(state, now, params.windowMs)
  const capacity = state.times.length
  const newest = state.size
    ? (state.times[(state.head + state.size - 1) % capacity] as number)
    : now
  const resetMs = state.size ? newest + params.windowMs - now : 0
  const limit = capacity
  if (state.size + cost <= limit) {
    return {
      allowed: true,
      remaining: limit - state.size - cost,
      resetMs: Math.max(resetMs, params.windowMs),
      retryAfterMs: 0,
    }
  }
  // The request fits once enough of the oldest units expire; a cost above the limit never
  // fits, and then the honest answer is the time until the window is empty.
  const mustExpire = Math.min(state.size, state.size + cost - limit)
  const freedAt = state.times[(state.head + mustExpire - 1) % capacity] as number
  return {
    allowed: false,
    remaining: Math.max(0, limit - state.size),
    resetMs,
    retryAfterMs: cost > limit ? resetMs : freedAt + params.windowMs - now,
  }
}

/** Records `cost` units at `now`; call only after windowCheck allowed them. */
export function windowCommit(state: WindowState, now: number, cost: number): void {
  const capacity = state.times.length
  for (let i = 0; i < cost && state.size < capacity; i++) {
    state.times[(state.head + state.size) % capacity] = now
    state.size++
  }
}

/**
 * Records units spent after the fact (a cost known only from the response). The window
 * cannot hold more than `limit` units, so an overspend is capped there: the scope then stays
 * closed for a full window, which is the strictest reading available.
 */
export function windowDebit(state: WindowState, now: number, cost: number): void {
  const capacity = state.times.length
  for (let i = 0; i < cost; i++) {
    if (state.size === capacity) {
      state.head = (state.head + 1) % capacity
      state.size--
    }
    state.times[(state.head + state.size) % capacity] = now
    state.size++
  }
}

/**
 * Takes back the newest `cost` units: units taken for an admission that was never used (a
 * leased share given back unused) were the last ones recorded for their scope, or close to it.
 */
export function windowRefund(state: WindowState, cost: number): void {
  // Whole units only (a fraction of a cent was recorded as a whole one): the log's size indexes it.
  state.size -= Math.min(Math.floor(cost), state.size)
}

/**
 * A window whose limit changed (a config reload, a client policy that changed its number):
 * keeps the newest units that fit, so the history survives and memory matches the new limit.
 */
export function resizeWindow(state: WindowState, limit: number): WindowState {
  const capacity = Math.max(1, Math.ceil(limit))
  if (capacity === state.times.length) return state
  const next: WindowState = { times: new Float64Array(capacity), head: 0, size: 0 }
  const keep = Math.min(state.size, capacity)
  for (let i = state.size - keep; i < state.size; i++) {
    next.times[next.size++] = state.times[(state.head + i) % state.times.length] as number
  }
  return next
}
