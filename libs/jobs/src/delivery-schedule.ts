import type { Delivery } from './job.ts'

/** When webhook deliveries are tried again, and for how long (config jobs.webhooks). */
export interface DeliverySchedule {
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  /** After this long since the first try, a delivery still failing is dead-lettered. */
  readonly maxAgeMs: number
}

/**
 * A delivery after one try: delivered on 2xx; otherwise due again after initialDelayMs × 4^(n−1)
 * (n failures so far), at most maxDelayMs, ±20% jitter so receivers coming back are not hit
 * by every sender at once; dead once the next try would fall past maxAgeMs from the first.
 */
export function afterDelivery(
  delivery: Delivery,
  result: { readonly status?: number; readonly error?: string },
  now: number,
  schedule: DeliverySchedule,
  random: () => number,
): Delivery {
  const attempts = delivery.attempts + 1
  const said = {
    ...(result.status !== undefined ? { lastStatus: result.status } : {}),
    ...(result.error !== undefined ? { lastError: result.error } : {}),
  }
  // What the previous try said is replaced by what this one says, not merged with it.
  const rest: Delivery = { ...delivery }
  delete (rest as { lastStatus?: number }).lastStatus
  delete (rest as { lastError?: string }).lastError
  if (result.status !== undefined && result.status >= 200 && result.status < 300) {
    return { ...rest, ...said, attempts, state: 'delivered', deliveredAt: now }
  }
  const delay =
    Math.min(schedule.initialDelayMs * 4 ** (attempts - 1), schedule.maxDelayMs) *
    (0.8 + 0.4 * random())
  const nextAt = now + Math.round(delay)
  if (nextAt > delivery.firstAt + schedule.maxAgeMs) {
    return { ...rest, ...said, attempts, state: 'dead', nextAt }
  }
  return { ...rest, ...said, attempts, state: 'pending', nextAt }
}
