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

  it('names every upstream request beyond the first: retry, failover, hedge', async () => {
    const kinds: string[] = []
    const answers = [
      { status: 503, headers: {} }, // a: no time named, so the next endpoint
      { status: 429, headers: { 'retry-after': '0' } }, // b: come back at once
      { status: 200, headers: {} },
    ]
    const result = await resilientCall({
      order: () => [{ id: 'a' }, { id: 'b' }],
      send: () => {
        const answer = answers.shift() as { status: number; headers: Record<string, string> }
        return Promise.resolve({ ...answer, body: Readable.from([]) })
      },
      record: () => undefined,
      p95Ms: () => undefined,
      release: () => undefined,
      admit: () => Promise.resolve(),
      repeatable: true,
      attempts: 5,
      maxRetryMs: 60_000,
      budget: new RetryBudget({ now: () => performance.now(), ratio: 1, perSecond: 10 }),
      hedge: undefined,
      wallClock: () => Date.now(),
      now: () => performance.now(),
      signal: new AbortController().signal,
      onExtraAttempt: (kind) => kinds.push(kind),
    })
    expect(result.response.status).toBe(200)
    expect(result.attempts).toBe(3)
    expect(kinds).toEqual(['failover', 'retry'])

    const hedged: string[] = []
    let slowFirst = true
    const raced = await resilientCall({
      order: () => [{ id: 'a' }, { id: 'b' }],
      send: async () => {
        // The first call is slow, so a hedge races it after 20 ms.
        if (slowFirst) {
          slowFirst = false
          await new Promise((resolve) => setTimeout(resolve, 1_000))
        }
        return { status: 200, headers: {}, body: Readable.from([]) }
      },
      record: () => undefined,
      p95Ms: () => undefined,
      release: () => undefined,
      admit: () => Promise.resolve(),
      repeatable: true,
      attempts: 2,
      maxRetryMs: 0,
      budget: new RetryBudget({ now: () => performance.now(), ratio: 1, perSecond: 10 }),
      hedge: 20,
      wallClock: () => Date.now(),
      now: () => performance.now(),
      signal: new AbortController().signal,
      onExtraAttempt: (kind) => hedged.push(kind),
    })
    expect(raced.attempts).toBe(2)
    expect(hedged).toEqual(['hedge'])
  })
})
