/**
 * Codec for the rate-limit response headers: the IETF httpapi draft fields `RateLimit-Policy`
 * and `RateLimit` (structured-field lists, one item per policy), the legacy `X-RateLimit-*`
 * trio and `Retry-After`. Pure: the caller passes the clock.
 */

/** One limit as a client sees it: `quota` units per `windowSeconds`, `remaining` now. */
export interface RateLimitView {
  /** Policy name: the scope that owns the limit (`key`, `workspace`, `target`, `global`, …). */
  readonly name: string
  readonly quota: number
  readonly windowSeconds: number
  readonly remaining: number
  /** Milliseconds until the quota is whole again. */
  readonly resetMs: number
}

/**
 * The view the client should pace itself by: the one with the fewest remaining units, and
 * among equals the one that takes longest to reset.
 */
export function tightest(views: readonly RateLimitView[]): RateLimitView | undefined {
  let best: RateLimitView | undefined
  for (const view of views) {
    if (
      !best ||
      view.remaining < best.remaining ||
      (view.remaining === best.remaining && view.resetMs > best.resetMs)
    ) {
      best = view
    }
  }
  return best
}

/** Quoted policy names: a handful of scope names, quoted again for every response. */
const quoted = new Map<string, string>()
const MAX_QUOTED = 64

function sfString(value: string): string {
  let text = quoted.get(value)
  if (text === undefined) {
    text = `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
    // Bounded: names come from the config's scopes, but nothing here may grow per request.
    if (quoted.size < MAX_QUOTED) quoted.set(value, text)
  }
  return text
}

/**
 * Header fields carry whole numbers, so a fractional rate is restated over a longer window:
 * 0.01 per second becomes 1 per 100 seconds, 2.5 per second 5 per 2 seconds.
 */
export function wholePolicy(
  quota: number,
  windowSeconds: number,
): { quota: number; windowSeconds: number } {
  if (Number.isInteger(quota))
    return { quota, windowSeconds: Math.max(1, Math.round(windowSeconds)) }
  for (const scale of [2, 4, 5, 10, 100, 1000]) {
    const scaled = quota * scale
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 && Math.round(scaled) >= 1) {
      return {
        quota: Math.round(scaled),
        windowSeconds: Math.max(1, Math.round(windowSeconds * scale)),
      }
    }
  }
  if (quota < 1) return { quota: 1, windowSeconds: Math.max(1, Math.ceil(windowSeconds / quota)) }
  return { quota: Math.floor(quota), windowSeconds: Math.max(1, Math.round(windowSeconds)) }
}

/** Whole seconds, rounded up so a client that waits that long is never early. */
function ceilSeconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000))
}

/**
 * Headers for a response whose request was checked against `views`. `nowMs` is wall-clock
 * time, used only for the legacy absolute `X-RateLimit-Reset`.
 */
export function rateLimitHeaders(
  views: readonly RateLimitView[],
  nowMs: number,
): Record<string, string> {
  const tight = tightest(views)
  if (!tight) return {}
  const remaining = Math.max(0, Math.floor(tight.remaining))
  return {
    'ratelimit-policy': views
      .map((v) => {
        const policy = wholePolicy(v.quota, v.windowSeconds)
        return `${sfString(v.name)};q=${policy.quota};w=${policy.windowSeconds}`
      })
      .join(', '),
    ratelimit: `${sfString(tight.name)};r=${remaining};t=${ceilSeconds(tight.resetMs)}`,
    'x-ratelimit-limit': String(wholePolicy(tight.quota, tight.windowSeconds).quota),
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': String(Math.ceil((nowMs + tight.resetMs) / 1000)),
  }
}

/** `Retry-After` in delta-seconds, never 0 for a refusal (a client would retry at once). */
export function retryAfterHeader(retryAfterMs: number): string {
  return String(Math.max(1, ceilSeconds(retryAfterMs)))
}
