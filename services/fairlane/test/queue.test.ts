import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

let upstream: LoopbackUpstream
let node: TestNode

const keys = {
  a: 'fl_queue_a_1',
  b: 'fl_queue_b_2',
  c: 'fl_queue_c_3',
  paced: 'fl_queue_paced_4',
  flood: 'fl_queue_flood_5',
  quiet: 'fl_queue_quiet_6',
}

beforeAll(async () => {
  upstream = await startUpstream()
  const loopback = { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true }
  node = await startNode({
    queue: { perLane: 3 },
    tiers: {
      paid: { priority: 0, maxWaitMs: 10_000 },
      free: { priority: 1, maxWaitMs: 300 },
    },
    targets: {
      single: { ...loopback, limits: { concurrency: 1 } },
      fair: { ...loopback, limits: { concurrency: 1 } },
      open: loopback,
      tokens: {
        ...loopback,
        limits: { window: { limit: 100, seconds: 60 }, unit: 'cost' },
        cost: { fromHeader: true, maxDeclared: 50, fromResponse: { json: 'usage.total_tokens' } },
      },
    },
    workspaces: {
      one: {
        targets: ['single', 'open', 'tokens'],
        tier: 'free',
        keys: [
          { id: 'a', hash: hashKeySecret(keys.a) },
          { id: 'b', hash: hashKeySecret(keys.b) },
          { id: 'c', hash: hashKeySecret(keys.c) },
          {
            id: 'paced',
            hash: hashKeySecret(keys.paced),
            tier: 'paid',
            limits: { rate: { rps: 10, burst: 1 } },
          },
        ],
      },
      floodws: {
        targets: ['fair'],
        tier: 'paid',
        keys: [{ id: 'flood', hash: hashKeySecret(keys.flood) }],
      },
      quietws: {
        targets: ['fair'],
        tier: 'paid',
        keys: [{ id: 'quiet', hash: hashKeySecret(keys.quiet) }],
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

async function problem(response: Response) {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  return (await response.json()) as Record<string, unknown>
}

describe('fair queueing on the request path', () => {
  it('holds a burst in its lane and releases it at the times the key limit allows', async () => {
    const responses = await Promise.all(
      [0, 1, 2, 3].map((i) => node.proxy(`/t/open/${i}`, { headers: bearer(keys.paced) })),
    )
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200])
    // 10 per second, burst 1: the upstream sees one request every 100 ms, none early.
    const arrivals = upstream.requests.map((r) => r.receivedAt)
    // Dispatch is exact; the hop to the upstream adds jitter (the first one also opens the
    // connection), and loaded CI runs saw single gaps of 48 ms and a span of 289 ms. An
    // unpaced lane would deliver all four within a few milliseconds.
    for (let i = 1; i < arrivals.length; i++) {
      expect((arrivals[i] as number) - (arrivals[i - 1] as number)).toBeGreaterThanOrEqual(40)
    }
    expect((arrivals[3] as number) - (arrivals[0] as number)).toBeGreaterThanOrEqual(250)
    expect(
      Math.max(...responses.map((r) => Number(r.headers.get('x-fairlane-queue-ms')))),
    ).toBeGreaterThan(250)
  })

  it('refuses with 429 queue_full once the lane bound is reached', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 200 }))
    const pending = [0, 1, 2, 3].map((i) =>
      node.proxy(`/t/single/${i}`, { headers: bearer(keys.a) }),
    )
    const fifth = await node.proxy('/t/single/4', { headers: bearer(keys.a) })
    expect(fifth.status).toBe(429)
    expect(fifth.headers.get('retry-after')).toBe('1')
    expect(await problem(fifth)).toMatchObject({
      code: 'queue_full',
      stage: 'queue',
      error: 'Rate limit exceeded',
    })
    await Promise.all(pending)
  })

  it('answers 503 queue_timeout with Retry-After when the wait passes the tier maximum', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 700 }))
    const holder = node.proxy('/t/single/hold', { headers: bearer(keys.b) })
    await expect.poll(() => upstream.inFlight).toBe(1)
    const late = await node.proxy('/t/single/late', { headers: bearer(keys.c) })
    expect(late.status).toBe(503)
    expect(Number(late.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await problem(late)).toMatchObject({ code: 'queue_timeout', stage: 'queue' })
    expect((await holder).status).toBe(200)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/hold'])
  })

  it('cancels a queued request whose client disconnects: nothing reaches the upstream', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 250 }))
    const holder = node.proxy('/t/single/hold', { headers: bearer(keys.b) })
    await expect.poll(() => upstream.inFlight).toBe(1)
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${node.proxyUrl}/t/single/abandoned`, { headers: bearer(keys.c) })
      req.on('error', () => resolve())
      req.end()
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 50)
    })
    const metrics = async () => (await fetch(`${node.adminUrl}/metrics`)).text()
    await expect.poll(metrics).toMatch(/fairlane_queued_requests 0/)
    expect((await holder).status).toBe(200)
    await sleep(100)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/hold'])
  })

  it('serves a quiet caller next, not after a flood that arrived first', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 50 }))
    // One in flight and three queued (the lane bound); under FIFO the quiet request would be fifth.
    const flood = Array.from({ length: 4 }, (_, i) =>
      node.proxy(`/t/fair/flood-${i}`, { headers: bearer(keys.flood) }),
    )
    const metrics = async () => (await fetch(`${node.adminUrl}/metrics`)).text()
    await expect.poll(metrics).toMatch(/fairlane_queued_requests 3\n/)
    const quiet = node.proxy('/t/fair/quiet', { headers: bearer(keys.quiet) })
    await Promise.all([...flood, quiet])
    const order = upstream.requests.map((r) => r.url)
    // At most the request in flight and one more flood request (its turn already begun) go first.
    expect(order.indexOf('/quiet')).toBeLessThanOrEqual(2)
  })
})

describe('client policy and costs', () => {
  it('applies a stricter limit the client asks for, and only to it', async () => {
    const strict = { ...bearer(keys.c), 'fairlane-ratelimit-policy': '2;w=60' }
    const statuses = []
    for (let i = 0; i < 3; i++)
      statuses.push((await node.proxy('/t/open/x', { headers: strict })).status)
    expect(statuses).toEqual([200, 200, 429])
    const refused = await node.proxy('/t/open/x', { headers: strict })
    expect(await problem(refused)).toMatchObject({ code: 'rate_limited', stage: 'limit' })
    expect(refused.headers.get('ratelimit')).toMatch(/^"client";r=0/)
    expect((await node.proxy('/t/open/x', { headers: bearer(keys.c) })).status).toBe(200)
  })

  it('bounds the segment ids one key can hold, leaving the rest of its workspace free', async () => {
    const named = (key: string, segment: string, seconds = 60) =>
      node.proxy('/t/open/s', {
        headers: { ...bearer(key), 'fairlane-ratelimit-policy': `1000;w=${seconds};s=${segment}` },
      })
    const statuses: number[] = []
    for (let i = 0; i < 9; i++) statuses.push((await named(keys.a, `a-${i}`)).status)
    expect(statuses).toEqual([...Array<number>(8).fill(200), 400])
    const refused = await named(keys.a, 'a-8')
    expect(await problem(refused)).toMatchObject({ code: 'bad_request', stage: 'limit' })
    // The key keeps the ids it holds, and another key of the workspace still gets new ones.
    expect((await named(keys.a, 'a-0')).status).toBe(200)
    expect((await named(keys.b, 'b-0')).status).toBe(200)
  })

  it('frees a segment id once its window has passed unused', async () => {
    const named = (segment: string) =>
      node.proxy('/t/open/s', {
        headers: { ...bearer(keys.c), 'fairlane-ratelimit-policy': `1000;w=1;s=${segment}` },
      })
    for (let i = 0; i < 8; i++) expect((await named(`short-${i}`)).status).toBe(200)
    expect((await named('short-8')).status).toBe(400)
    await expect.poll(async () => (await named('short-8')).status, { timeout: 10_000 }).toBe(200)
  })

  it('rejects a malformed policy with 400 bad_request', async () => {
    const response = await node.proxy('/t/open/x', {
      headers: { ...bearer(keys.c), 'fairlane-ratelimit-policy': 'lots' },
    })
    expect(response.status).toBe(400)
    expect(await problem(response)).toMatchObject({ code: 'bad_request', stage: 'limit' })
    expect(upstream.hits).toBe(0)
  })

  it('counts a declared Fairlane-Cost against a cost-unit limit, and rejects a bad one', async () => {
    const bad = await node.proxy('/t/tokens/x', {
      headers: { ...bearer(keys.a), 'fairlane-cost': '51' },
    })
    expect(bad.status).toBe(400)
    const ok = await node.proxy('/t/tokens/x', {
      headers: { ...bearer(keys.a), 'fairlane-cost': '40' },
    })
    expect(ok.headers.get('ratelimit')).toBe('"target";r=60;t=60')
  })

  it('charges the real cost read from the response afterwards', async () => {
    upstream.behave(() => ({
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ usage: { total_tokens: 55 } }),
    }))
    // 40 units were spent above; this response reports 55 more than its declared 1.
    expect(await (await node.proxy('/t/tokens/y', { headers: bearer(keys.b) })).json()).toEqual({
      usage: { total_tokens: 55 },
    })
    const refused = await node.proxy('/t/tokens/z', {
      headers: { ...bearer(keys.b), 'fairlane-cost': '10' },
    })
    expect(refused.status).toBe(429)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/y'])
  })
})
