import { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { RetryBudget, resilientCall } from '@fairlane/forward'

describe('resilientCall', () => {
  it('stops waiting for a retry as soon as the client leaves', async () => {
    const client = new AbortController()
    let sent = 0
    let admitted = 0
    const call = resilientCall({
      order: () => [{ id: 'a' }],
      // The upstream asks for 30 s before the next call.
      send: () => {
        sent++
        setTimeout(() => client.abort(), 50)
        return Promise.resolve({
          status: 429,
          headers: { 'retry-after': '30' },
          body: Readable.from([]),
        })
      },
      record: () => undefined,
      p95Ms: () => undefined,
      release: () => undefined,
      admit: () => {
        admitted++
        return Promise.resolve()
      },
      repeatable: true,
      attempts: 3,
      maxRetryMs: 60_000,
      budget: new RetryBudget({ now: () => performance.now(), ratio: 1, perSecond: 10 }),
      hedge: undefined,
      wallClock: () => Date.now(),
      now: () => performance.now(),
      signal: client.signal,
    })
    const started = performance.now()
    await expect(call).rejects.toMatchObject({ name: 'AbortError' })
    // Far below the 30 s asked for: the wait ended with the client.
    expect(performance.now() - started).toBeLessThan(10_000)
    expect(sent).toBe(1)
    expect(admitted).toBe(0)
  })
})
