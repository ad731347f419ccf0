import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'

let upstream: LoopbackUpstream

beforeAll(async () => {
  upstream = await startUpstream()
})

afterAll(async () => {
  await upstream.close()
})

describe('loopback upstream', () => {
  it('echoes and records what it received', async () => {
    const response = await fetch(`${upstream.url}/a?b=1`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-t': '1' },
    })
    expect(await response.json()).toMatchObject({ method: 'POST', url: '/a?b=1', bodyBytes: 5 })
    expect(upstream.requests[0]?.headers['x-t']).toBe('1')
    expect(upstream.requests[0]?.body.toString()).toBe('hello')
    expect(upstream.hits).toBe(1)
  })

  it('answers as told: a status, a delay, a reset', async () => {
    upstream.behave((r) =>
      r.url === '/429'
        ? { kind: 'respond', status: 429, headers: { 'retry-after': '2' } }
        : r.url === '/slow'
          ? { kind: 'delay', ms: 150 }
          : { kind: 'reset' },
    )
    const limited = await fetch(`${upstream.url}/429`)
    expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '2'])
    const started = Date.now()
    await fetch(`${upstream.url}/slow`)
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
    await expect(fetch(`${upstream.url}/reset`)).rejects.toThrow()
  })

  it('tracks requests in flight', async () => {
    upstream.clear()
    upstream.behave(() => ({ kind: 'delay', ms: 100 }))
    await Promise.all([fetch(upstream.url), fetch(upstream.url), fetch(upstream.url)])
    expect(upstream.maxInFlight).toBe(3)
    expect(upstream.inFlight).toBe(0)
  })
})
