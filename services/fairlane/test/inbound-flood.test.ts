import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const CALLERS = 100_000
const FLOOD_CONNECTIONS = 64
const MAX_STATES = 5_000
/** The flooded route's own bound, well below the node's: the flood meets it first. */
const ROUTE_MAX_IDLE = 1_000

let upstream: LoopbackUpstream
let node: TestNode
const agent = new Agent({ connections: FLOOD_CONNECTIONS + 4 })

beforeAll(async () => {
  upstream = await startUpstream({ record: false })
  node = await startNode({
    logging: { level: 'warn' },
    limits: { maxStates: MAX_STATES },
    targets: { api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
    routes: {
      api: {
        target: 'api',
        pathPrefix: '/v1',
        // Every flood caller gets in: what is measured is the bound on their states
        // (inbound-new-callers.test.ts has the bound on new callers).
        callers: {
          header: 'authorization',
          maxIdle: ROUTE_MAX_IDLE,
          newCallers: { enabled: false },
        },
        // A flood caller's bucket takes 10 s to refill after its one request: its state
        // limits all that time, so the flood meets the route's bound rather than a ledger
        // that forgets each caller as soon as its bucket is full again.
        limits: { rate: { rpm: 6, burst: 50 } },
      },
      // One request per caller per hour: a caller that spent it is refused for as long as
      // its state is kept.
      quiet: {
        target: 'api',
        pathPrefix: '/v2',
        callers: { header: 'authorization' },
        limits: { window: { limit: 1, seconds: 3600 } },
      },
    },
    // The good caller, a known customer, sends 40 requests a second.
    customers: {
      good: { credential: hashKeySecret('good-caller'), limits: { rate: { rps: 1000 } } },
    },
  })
})

afterAll(async () => {
  await agent.close()
  await node.close()
  await upstream.close()
})

async function call(token: string, path = '/v1/x'): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  const response = await request(`${node.proxyUrl}${path}`, {
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}` },
  })
  await response.body.dump()
  return { status: response.statusCode, ms: performance.now() - started }
}

async function gauge(name: string): Promise<number> {
  const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1])
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length * 0.99)] ?? NaN
}

describe('a flood of distinct callers', () => {
  it(`${CALLERS} distinct tokens into one route keep its limit state under the route's callers.maxIdle, leave another route's callers alone, and a good caller is never refused`, async () => {
    expect((await call('quiet-caller', '/v2/x')).status).toBe(200)
    expect((await call('quiet-caller', '/v2/x')).status).toBe(429)
    const alone: number[] = []
    for (let i = 0; i < 40; i++) alone.push((await call('good-caller')).ms)

    let next = 0
    let refused = 0
    let flooding = true
    const flood = Array.from({ length: FLOOD_CONNECTIONS }, async () => {
      while (next < CALLERS) {
        const { status } = await call(`flood-${next++}`)
        if (status !== 200) refused++
      }
    })
    const good: { status: number; ms: number }[] = []
    const goodCaller = (async () => {
      while (flooding) {
        good.push(await call('good-caller'))
        await sleep(25)
      }
    })()
    let maxStates = 0
    const sampler = (async () => {
      while (flooding) {
        maxStates = Math.max(maxStates, await gauge('fairlane_limit_states'))
        await sleep(250)
      }
    })()
    await Promise.all(flood)
    flooding = false
    await Promise.all([goodCaller, sampler])

    expect(refused).toBe(0)
    // Two states per caller of the flooded route (its in-flight cap and its limits), a few
    // more for the good and the quiet caller.
    expect(maxStates).toBeGreaterThan(ROUTE_MAX_IDLE)
    expect(maxStates).toBeLessThanOrEqual(2 * ROUTE_MAX_IDLE + 4)
    expect(await gauge('fairlane_limit_states')).toBeLessThanOrEqual(2 * ROUTE_MAX_IDLE + 4)
    // The other route's caller kept its state through the flood: still refused.
    expect((await call('quiet-caller', '/v2/x')).status).toBe(429)
    expect(await gauge('fairlane_queued_requests')).toBe(0)
    expect(good.length).toBeGreaterThan(10)
    expect(good.every((g) => g.status === 200)).toBe(true)
    // The good caller shares two cores with the flood's client and the node; it must not
    // queue behind the flood. The bound is generous: CPU contention, never a queue.
    expect(p99(good.map((g) => g.ms))).toBeLessThan(Math.max(20 * p99(alone), 500))
  }, 300_000)
})
