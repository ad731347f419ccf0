import type { RateConfig } from './schema.ts'

/** A configured rate in the units the limit algorithms use. */
export interface RateSpec {
  readonly limit: number
  readonly periodMs: number
  readonly burst: number
}

/**
 * `rps` counts per second and `rpm` per minute; the burst defaults to one second of the
 * rate, rounded up and at least 1, so `rpm: 60` allows 1 at once and `rps: 5` allows 5.
 */
export function rateSpec(rate: RateConfig): RateSpec {
  const [limit, periodMs] = rate.rps !== undefined ? [rate.rps, 1000] : [rate.rpm ?? 0, 60_000]
  const perSecond = (limit * 1000) / periodMs
  return { limit, periodMs, burst: rate.burst ?? Math.max(1, Math.ceil(perSecond)) }
}
