import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { FileConfigStore } from '@fairlane/config'
import { LogCapture, freePort, startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { startNode as startFairlaneNode } from '../src/node/node.ts'
import { nodeSettingsFrom } from '../src/node/node-settings.ts'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_resilience_1'
const running: { close(): Promise<void> }[] = []

afterEach(async () => {
  for (const thing of running.splice(0).reverse()) await thing.close()
})

async function upstream(): Promise<LoopbackUpstream> {
  const started = await startUpstream()
  running.push(started)
  return started
}

/** A node in region a with one target `api` over the given endpoints. */
async function node(
  endpoints: { url: string; region: string }[],
  target: Record<string, unknown> = {},
): Promise<TestNode> {
  const started = await startNode(
    {
      logging: { level: 'warn' },
      targets: {
        api: {
          endpoints,
          allowPrivateAddresses: true,
          timeouts: { connectMs: 500, headersMs: 5_000 },
          ...target,
        },
      },
      workspaces: {
        w: { targets: ['api'], keys: [{ id: 'k', hash: hashKeySecret(KEY) }] },
      },
    },
    { env: { FAIRLANE_REGION: 'a' } },
  )
  running.push(started)
  return started
}

const get = (n: TestNode, path = '/t/api/x', init: RequestInit = {}) =>
  n.proxy(path, { ...init, headers: { ...bearer(KEY), ...(init.headers ?? {}) } })

describe('429 and 503 that name a time', () => {
  it('waits at least the named time, and not much more, then succeeds', async () => {
    const a = await upstream()
    let calls = 0
    a.behave(() =>
      ++calls === 1
        ? { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: 'slow down' }
        : { kind: 'echo' },
    )
    const n = await node([{ url: a.url, region: 'a' }])
    const response = await get(n)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-fairlane-attempts')).toBe('2')
    const [first, second] = a.requests.map((r) => r.receivedAt) as [number, number]
    expect(second - first).toBeGreaterThanOrEqual(1_000)
    expect(second - first).toBeLessThan(1_000 + 300)
  })

  it('a 503 with Retry-After waits too; one that outlasts maxRetryMs goes to the client as it is', async () => {
    const a = await upstream()
    a.behave(() => ({ kind: 'respond', status: 503, headers: { 'retry-after': '5' } }))
    const n = await node([{ url: a.url, region: 'a' }], { retry: { maxRetryMs: 2_000 } })
    const response = await get(n)
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
    expect(a.hits).toBe(1)
  })

  it('the lane adopts the upstream’s stated rate for its next requests', async () => {
    const a = await upstream()
    a.behave(() => ({ kind: 'respond', status: 200, headers: { 'x-fairlane-rps': '2' } }))
    const n = await node([{ url: a.url, region: 'a' }])
    expect((await get(n)).status).toBe(200)
    a.clear()
    const started = performance.now()
    await Promise.all(Array.from({ length: 6 }, () => get(n)))
    // 6 requests at 2 per second with a burst of 1: the last starts about 2.5 s later.
    const spread = Math.max(...a.requests.map((r) => r.receivedAt)) - started
    expect(spread).toBeGreaterThanOrEqual(2_000)
  })
})

describe('failover between regions', () => {
  it('prefers the node’s region and answers which region served', async () => {
    const [a, b] = [await upstream(), await upstream()]
    const n = await node([
      { url: b.url, region: 'b' },
      { url: a.url, region: 'a' },
    ])
    const response = await get(n)
    expect(response.headers.get('x-fairlane-region')).toBe('a')
    expect([a.hits, b.hits]).toEqual([1, 0])
  })

  it('moves to the next endpoint within one request when connections are reset', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'reset' }))
    const n = await node([
      { url: a.url, region: 'a' },
      { url: b.url, region: 'b' },
    ])
    const response = await get(n)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-fairlane-attempts')).toBe('2')
    expect(response.headers.get('x-fairlane-region')).toBe('b')
  })

  it('a region that is down: requests succeed from the other, and its circuit opens', async () => {
    const b = await upstream()
    const down = `http://127.0.0.1:${await freePort()}`
    const n = await node(
      [
        { url: down, region: 'a' },
        { url: b.url, region: 'b' },
      ],
      { health: { consecutiveFailures: 3, openMs: 60_000 } },
    )
    const statuses: number[] = []
    const attempts: string[] = []
    for (let i = 0; i < 8; i++) {
      const response = await get(n)
      statuses.push(response.status)
      attempts.push(response.headers.get('x-fairlane-attempts') ?? '')
    }
    expect(statuses.every((s) => s === 200)).toBe(true)
    // Once the circuit is open, requests go straight to region b.
    expect(attempts.slice(0, 3)).toEqual(['2', '2', '2'])
    expect(attempts.slice(-3)).toEqual(['1', '1', '1'])
    const health = (await (await fetch(`${n.adminUrl}/upstreams`)).json()) as {
      endpoint: string
      state: string
    }[]
    expect(health.find((h) => h.endpoint === down)?.state).toBe('open')
    const text = await (await fetch(`${n.adminUrl}/metrics`)).text()
    expect(text).toMatch(
      /fairlane_endpoint_circuit_open\{target="api",endpoint="http:\/\/127\.0\.0\.1:\d+",region="a"\} 1/,
    )
    expect(text).toMatch(
      /fairlane_endpoint_circuit_state\{target="api",endpoint="http:\/\/127\.0\.0\.1:\d+",region="a",state="open"\} 1/,
    )
    expect(text).toMatch(
      /fairlane_endpoint_circuit_state\{target="api",endpoint="http:\/\/127\.0\.0\.1:\d+",region="a",state="closed"\} 0/,
    )
    // The three requests that met region a's connect error each failed over once.
    expect(text).toContain('fairlane_upstream_extra_attempts_total{target="api",kind="failover"} 3')
    expect(text).toContain('fairlane_upstream_extra_attempts_total{target="api",kind="hedge"} 0')
    expect(text).toMatch(/fairlane_upstream_duration_seconds_count\{target="api",region="b"\} 8/)
  })

  it('a 503 that names no time fails over; a 503 region recovering is used again later', async () => {
    const [a, b] = [await upstream(), await upstream()]
    let failing = true
    a.behave(() => (failing ? { kind: 'respond', status: 503 } : { kind: 'echo' }))
    const n = await node([
      { url: a.url, region: 'a' },
      { url: b.url, region: 'b' },
    ])
    const response = await get(n)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-fairlane-region')).toBe('b')
    failing = false
    expect((await get(n)).headers.get('x-fairlane-region')).toBe('a')
  })
})

describe('only repeatable requests go twice', () => {
  it('never sends a POST twice', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'respond', status: 503 }))
    const n = await node([
      { url: a.url, region: 'a' },
      { url: b.url, region: 'b' },
    ])
    const response = await get(n, '/t/api/charge', { method: 'POST', body: 'pay 10' })
    expect(response.status).toBe(503)
    expect([a.hits, b.hits]).toEqual([1, 0])
  })

  it('retries a POST with an Idempotency-Key, with the same body', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'reset' }))
    const n = await node([
      { url: a.url, region: 'a' },
      { url: b.url, region: 'b' },
    ])
    const response = await get(n, '/t/api/charge', {
      method: 'POST',
      body: 'pay 10',
      headers: { 'idempotency-key': 'order-1' },
    })
    expect(response.status).toBe(200)
    expect(b.requests[0]?.body.toString()).toBe('pay 10')
  })

  it('streams a body larger than replayBodyBytes once and does not retry it', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'reset' }))
    const n = await node(
      [
        { url: a.url, region: 'a' },
        { url: b.url, region: 'b' },
      ],
      { retry: { replayBodyBytes: 4 } },
    )
    const response = await get(n, '/t/api/doc', { method: 'PUT', body: 'longer than four' })
    expect(response.status).toBe(502)
    expect(b.hits).toBe(0)
  })
})

describe('racing', () => {
  it('hedging to a second region cuts the p99 when the first is slow', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'delay', ms: 1_500 }))
    const p99 = async (hedge: Record<string, unknown>) => {
      const n = await node(
        [
          { url: a.url, region: 'a' },
          { url: b.url, region: 'b' },
        ],
        { hedge },
      )
      const times: number[] = []
      for (let i = 0; i < 5; i++) {
        const started = performance.now()
        expect((await get(n)).status).toBe(200)
        times.push(performance.now() - started)
      }
      return Math.max(...times)
    }
    expect(await p99({ enabled: false })).toBeGreaterThanOrEqual(1_500)
    const hedged = await p99({ enabled: true, delayMs: 100 })
    expect(hedged).toBeLessThan(1_000)
    // The slow calls lost and were aborted rather than left to finish.
    await expect.poll(() => a.inFlight).toBe(0)
  })

  it('a client may ask for a race where the target allows it', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'delay', ms: 1_500 }))
    const n = await node(
      [
        { url: a.url, region: 'a' },
        { url: b.url, region: 'b' },
      ],
      { hedge: { allowHeader: true, delayMs: 50 } },
    )
    const started = performance.now()
    const response = await get(n, '/t/api/x', { headers: { 'x-fairlane-hedge': 'on' } })
    expect(response.headers.get('x-fairlane-region')).toBe('b')
    expect(response.headers.get('x-fairlane-attempts')).toBe('2')
    expect(performance.now() - started).toBeLessThan(1_000)
  })
})

describe('when every region fails', () => {
  it('retries stay within the budget: no retry storm', async () => {
    const [a, b] = [await upstream(), await upstream()]
    a.behave(() => ({ kind: 'respond', status: 500 }))
    b.behave(() => ({ kind: 'respond', status: 500 }))
    const n = await node(
      [
        { url: a.url, region: 'a' },
        { url: b.url, region: 'b' },
      ],
      { retry: { attempts: 5, budgetRatio: 0.2, budgetPerSecond: 0 } },
    )
    const requests = 50
    for (let i = 0; i < requests; i++) expect((await get(n)).status).toBe(500)
    // Without a budget 5 attempts each would make 250 upstream calls.
    expect(a.hits + b.hits).toBeLessThanOrEqual(requests * 1.2 + 1)
  })
})

describe('examples/failover.yaml', () => {
  it('serves from region b while region a is down, and says so', async () => {
    const b = await upstream()
    const down = `http://127.0.0.1:${await freePort()}`
    const store = await FileConfigStore.open(
      fileURLToPath(new URL('../../../examples/failover.yaml', import.meta.url)),
      { PRIMARY_URL: down, SECONDARY_URL: b.url },
    )
    const n = await startFairlaneNode({
      store,
      port: 0,
      adminPort: 0,
      settings: nodeSettingsFrom({ FAIRLANE_REGION: 'a' }),
      env: {},
      logDestination: new LogCapture(),
    })
    running.push(n)
    const response = await fetch(`${n.proxyUrl}/t/echo/hello`, {
      headers: bearer('fl_demo_failover'),
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-fairlane-region')).toBe('b')
  })
})
