import { setTimeout as delay } from 'node:timers/promises'

/**
 * Waits for `work` at most `ms`; true when it settled (resolved or rejected) in time. What
 * was given up on keeps running: the caller only stops waiting for it, which is what a
 * bounded shutdown needs when NATS or Redis do not answer.
 */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController()
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      delay(ms, false, { signal: timer.signal }),
    ])
  } finally {
    timer.abort()
  }
}
