import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

let upstream: LoopbackUpstream
let node: TestNode

const keys = {
  a: 'fl_limits_a_0001',
  b: 'fl_limits_b_0002',
  c: 'fl_limits_c_0003',
  slow: 'fl_limits_slow_04',
  free: 'fl_limits_free_05',
}

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode({
    limits: { global: { rate: { rpm: 6000, burst: 1000 } } },
    targets: {
      echo: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true },
      narrow: {
        endpoints: [{ url: upstream.url }],
        allowPrivateAddresses: true,
        limits: { concurrency: 2 },
      },
      tiny: {
        endpoints: [{ url: upstream.url }],
        allowPrivateAddresses: true,
        limits: { rate: { rpm: 3 } },
      },
    },
    workspaces: {
      team: {
        targets: ['echo', 'narrow', 'tiny'],
        limits: { rate: { rps: 0.01, burst: 6 } },
        keys: [
          { id: 'a', hash: hashKeySecret(keys.a), limits: { rate: { rps: 0.01, burst: 2 } } },
          { id: 'b', hash: hashKeySecret(keys.b) },
        ],
      },
      other: {
        targets: ['echo', 'narrow', 'tiny'],
        keys: [
          { id: 'c', hash: hashKeySecret(keys.c) },
          { id: 'slow', hash: hashKeySecret(keys.slow) },
          { id: 'free', hash: hashKeySecret(keys.free) },
        ],
      },
    },
  })
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

afterEach(() => {
  upstream.behave(() => ({ kind: 'echo' }))
  upstream.clear()
})

async function statuses(key: string, path: string, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await node.proxy(path, { headers: bearer(key) })).status)
  return out
}

describe('limits', () => {
  it('answers 429 with every rate-limit header and a problem body', async () => {
    expect(await statuses(keys.a, '/t/echo/x', 2)).toEqual([200, 200])
    const refused = await node.proxy('/t/echo/x', { headers: bearer(keys.a) })
    expect(refused.status).toBe(429)
    const h = refused.headers
    expect(Number(h.get('retry-after'))).toBeGreaterThanOrEqual(99)
    expect(h.get('ratelimit-policy')).toBe(
      '"key";q=1;w=100, "workspace";q=1;w=100, "global";q=6000;w=60',
    )
    expect(h.get('ratelimit')).toMatch(/^"key";r=0;t=\d+$/)
    expect(h.get('x-ratelimit-limit')).toBe('1')
    expect(h.get('x-ratelimit-remaining')).toBe('0')
    expect(Number(h.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000)
    expect(h.get('x-request-id')).toBeTruthy()
    expect(await refused.json()).toMatchObject({
      status: 429,
      code: 'rate_limited',
      stage: 'limit',
      error: 'Rate limit exceeded',
      type: 'https://fairlane.dev/errors/rate-limited',
    })
    expect(upstream.hits).toBe(2)
  })

  it('puts the rate-limit headers on successful responses too', async () => {
    const ok = await node.proxy('/t/echo/x', { headers: bearer(keys.c) })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('ratelimit-policy')).toBe('"global";q=6000;w=60')
    expect(ok.headers.get('ratelimit')).toMatch(/^"global";r=\d+;t=\d+$/)
    expect(Number(ok.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(900)
  })

  it('checks the workspace scope across its keys, and a refused request takes nothing from it', async () => {
    // Key a is exhausted by the first test; its refusals must leave the workspace budget
    // (burst 6, 2 spent by a) for key b.
    expect(await statuses(keys.a, '/t/echo/x', 20)).toEqual(Array(20).fill(429))
    expect(await statuses(keys.b, '/t/echo/x', 5)).toEqual([200, 200, 200, 200, 429])
    const refused = await node.proxy('/t/echo/x', { headers: bearer(keys.b) })
    expect(refused.headers.get('ratelimit')).toMatch(/^"workspace";r=0/)
  })

  it('applies a target scope to every workspace', async () => {
    expect(await statuses(keys.c, '/t/tiny/x', 1)).toEqual([200])
    expect(await statuses(keys.free, '/t/tiny/x', 1)).toEqual([429])
  })

  it('queues beyond a concurrency limit instead of refusing, and never exceeds it', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 200 }))
    const responses = await Promise.all(
      [keys.slow, keys.c, keys.free].map((key, i) =>
        node.proxy(`/t/narrow/${i}`, { headers: bearer(key) }),
      ),
    )
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200])
    expect(upstream.maxInFlight).toBe(2)
    const waited = responses.map((r) => Number(r.headers.get('x-fairlane-queue-ms')))
    expect(Math.max(...waited)).toBeGreaterThanOrEqual(150)
  })

  it('counts refusals by scope in the metrics', async () => {
    const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
    expect(text).toMatch(/fairlane_limit_refusals_total\{scope="key",reason="rate"\} \d+/)
    expect(text).toMatch(/fairlane_limit_refusals_total\{scope="workspace",reason="rate"\} \d+/)
    expect(text).toMatch(/fairlane_limit_refusals_total\{scope="target",reason="rate"\} 1/)
    const waits = [
      ...text.matchAll(/fairlane_queue_wait_seconds_count\{target="narrow",tier="\w+"\} (\d+)/g),
    ]
    expect(waits.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(3)
    expect(text).toMatch(/fairlane_requests_total\{target="echo",status="429",stage="limit"\} \d+/)
  })
})
