import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

/** New callers the flooded route lets in at once; it (practically) never refills here. */
const BURST = 5
const FLOOD = 40

let upstream: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode({
    targets: { api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
    routes: {
      api: {
        target: 'api',
        pathPrefix: '/v1',
        callers: {
          header: 'authorization',
          newCallers: { perSecond: 0.001, burst: BURST },
        },
        limits: { rate: { rps: 50, burst: 50 } },
      },
      other: { target: 'api', pathPrefix: '/v2', callers: { header: 'authorization' } },
    },
    customers: { vip: { credential: hashKeySecret('vip-token') } },
  })
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

async function call(token: string, path = '/v1/orders') {
  const response = await node.proxy(path, { headers: { authorization: `Bearer ${token}` } })
  const text = await response.text()
  return { response, text }
}

async function refusals(): Promise<number> {
  const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
  const line = text
    .split('\n')
    .find((l) => l.startsWith('fairlane_limit_refusals_total{scope="route",reason="new_caller"}'))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

describe('a route’s bound on new callers', () => {
  it('refuses new callers beyond it with 429 before any upstream call, and never an established caller, a customer or another route’s caller', async () => {
    expect((await call('established')).response.status).toBe(200)
    const hitsBefore = upstream.hits

    const statuses: number[] = []
    for (let i = 0; i < FLOOD; i++) {
      const { response, text } = await call(`flood-${i}`)
      statuses.push(response.status)
      if (response.status !== 200) {
        expect(response.status).toBe(429)
        expect(response.headers.get('content-type')).toBe('application/problem+json')
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect(response.headers.get('x-request-id')).toBeTruthy()
        const problem = JSON.parse(text) as Record<string, unknown>
        expect(problem).toMatchObject({ status: 429, code: 'rate_limited', stage: 'limit' })
        expect(problem['detail']).toContain('new callers per second')
      }
      // The established caller goes through between any two of them.
      expect((await call('established')).response.status).toBe(200)
    }
    // The established caller took one of the burst's tokens.
    const admitted = statuses.filter((s) => s === 200).length
    expect(admitted).toBe(BURST - 1)
    expect(statuses.slice(0, BURST - 1).every((s) => s === 200)).toBe(true)
    // Nothing of a refused caller reached the API: only the admitted ones and the established caller's.
    expect(upstream.hits - hitsBefore).toBe(admitted + FLOOD)
    expect(await refusals()).toBe(FLOOD - admitted)

    // A refused caller stays refused while the bucket is empty; one let in stays in.
    expect((await call(`flood-${FLOOD - 1}`)).response.status).toBe(429)
    expect((await call('flood-0')).response.status).toBe(200)
    // A customer is known by the config, never new.
    expect((await call('vip-token')).response.status).toBe(200)
    // Another route has its own bound.
    expect((await call('flood-new', '/v2/orders')).response.status).toBe(200)
  })
})
