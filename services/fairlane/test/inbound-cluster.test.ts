import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  startNats,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const ADMIN_TOKEN = 'inbound-cluster-admin-token-0123456789'

let redis: RedisServer
let nats: NatsServer
let upstream: LoopbackUpstream
let nodes: TestNode[] = []

beforeAll(async () => {
  ;[redis, nats, upstream] = await Promise.all([startRedis(), startNats(), startUpstream()])
  const config = {
    tiers: { reserved: { priority: 0, maxWaitMs: 0 }, free: { priority: 1, maxWaitMs: 0 } },
    cluster: { shards: 8 },
    targets: {
      api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true, partitions: 4 },
    },
    routes: {
      api: {
        target: 'api',
        callers: { header: 'authorization' },
        limits: { rate: { rps: 0.01, burst: 2 } },
        forwardTier: true,
      },
    },
    customers: { big: { credential: hashKeySecret('cust_big'), tier: 'reserved', limits: {} } },
  }
  nodes = await Promise.all(
    ['a', 'b'].map((id) =>
      startNode(config, {
        env: {
          FAIRLANE_NATS_URL: nats.url,
          FAIRLANE_REDIS_URL: redis.url,
          FAIRLANE_NODE_ID: `inbound-${id}`,
          FAIRLANE_ADMIN_TOKEN: ADMIN_TOKEN,
        },
      }),
    ),
  )
}, 120_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()))
  await Promise.all([upstream.close(), redis.stop(), nats.stop()])
})

describe('inbound routes in cluster mode', () => {
  it('gives a caller one lane across ingress nodes: its limit holds whichever node it calls', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })
    expect((await a.proxy('/v1/x', as('cust_one'))).status).toBe(200)
    expect((await b.proxy('/v1/x', as('cust_one'))).status).toBe(200)
    expect((await a.proxy('/v1/x', as('cust_one'))).status).toBe(429)
    expect((await b.proxy('/v1/x', as('cust_one'))).status).toBe(429)
    expect((await b.proxy('/v1/x', as('cust_two'))).status).toBe(200)
    for (let i = 0; i < 4; i++) {
      const node = i % 2 ? b : a
      expect((await node.proxy('/v1/x', as('cust_big'))).status).toBe(200)
    }
    expect(upstream.requests.at(-1)?.headers['x-fairlane-tier']).toBe('reserved')
  }, 60_000)

  it('applies a customer added through the admin API on one node to the caller’s lane on every node', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const headers = { authorization: 'Bearer cust_new' }
    expect((await b.proxy('/v1/n', { headers })).status).toBe(200)
    expect(upstream.requests.at(-1)?.headers['x-fairlane-tier']).toBe('free')
    const put = await fetch(`${a.adminUrl}/admin/v1/customers/newbie`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ credential: hashKeySecret('cust_new'), tier: 'reserved' }),
    })
    expect(put.status).toBe(201)
    await expect
      .poll(
        async () => {
          await b.proxy('/v1/n', { headers })
          return upstream.requests.at(-1)?.headers['x-fairlane-tier']
        },
        { timeout: 5000, interval: 100 },
      )
      .toBe('reserved')
  }, 60_000)
})
