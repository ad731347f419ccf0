import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LEASE_BUCKET } from '@fairlane/cluster'
import { shardOf } from '@fairlane/protocol'
import {
  startNatsRegions,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsRegions,
  type RedisServer,
} from '@fairlane/testing'
import {
  killAllNodeProcesses,
  offerLoad,
  startNodeProcess,
  type NodeProcess,
} from './cluster-harness.ts'

const EXAMPLE = fileURLToPath(new URL('../../../examples/cluster.yaml', import.meta.url))
const KEY = { authorization: 'Bearer fl_demo_cluster' }

let regions: NatsRegions
let redis: RedisServer
let upstream: LoopbackUpstream
const nodes: NodeProcess[] = []

beforeAll(async () => {
  ;[regions, redis, upstream] = await Promise.all([
    startNatsRegions({ regions: ['a', 'b'] }),
    startRedis(),
    startUpstream(),
  ])
}, 60_000)

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()))
  await killAllNodeProcesses()
  await Promise.all([regions?.stop(), redis?.stop(), upstream?.close()])
})

describe('two regions joined by a NATS gateway', () => {
  it(
    '(e) a lane has one owner across both regions, and ingress in either region reaches it',
    { timeout: 150_000 },
    async () => {
      const placement = [
        ['a', 'a-1'],
        ['b', 'b-1'],
        ['b', 'b-2'],
      ] as const
      nodes.push(
        ...(await Promise.all(
          placement.map(([region, id]) =>
            startNodeProcess({
              configPath: EXAMPLE,
              nodeId: id,
              // Two one-server regions form one JetStream meta group of two: after a start
              // its leader can take a while, and the lease bucket waits for it.
              readyWithinMs: 60_000,
              env: {
                FAIRLANE_REGION: region,
                FAIRLANE_NATS_URL: regions.region(region).url,
                FAIRLANE_REDIS_URL: redis.url,
                ECHO_URL: upstream.url,
              },
            }),
          ),
        )),
      )
      // One lease per shard in one bucket that both regions read: one owner, wherever it is.
      const nc = await connect({ servers: regions.region('b').url })
      const kv = await new Kvm(nc).open(LEASE_BUCKET)
      const shard = shardOf('echo', 0, 256)
      await expect
        .poll(async () => (await kv.get(`shard.${shard}`))?.string() ?? '', { timeout: 10_000 })
        .toMatch(/^(a-1|b-1|b-2)$/)
      const owners = async () => {
        const count = new Map<string, number>()
        for await (const key of await kv.keys('shard.>')) {
          // A lease given back during the rebalance reads as empty.
          const owner = (await kv.get(key))?.string() ?? ''
          if (owner) count.set(owner, (count.get(owner) ?? 0) + 1)
        }
        return count
      }
      // Every shard is held by exactly one node (one key per shard), whichever region it is in.
      // Nodes of both regions hold shards (how evenly is the lease tests' business: here
      // the split settles in 2–20 s depending on the load of the machine).
      await expect
        .poll(async () => [...(await owners()).keys()].sort(), { timeout: 30_000 })
        .toEqual(['a-1', 'b-1', 'b-2'])
      await nc.close()

      // Clients in both regions, 5× the limit for 5 s: one owner holds the limit for both.
      const since = performance.now()
      const load = await offerLoad({
        targets: () => nodes.map((n) => n.proxyUrl),
        path: '/t/echo/regions',
        headers: KEY,
        ratePerSecond: 500,
        durationMs: 5_000,
      })
      const times = upstream.requests.map((r) => r.receivedAt).filter((t) => t >= since)
      const first = Math.min(...times)
      const admitted = times.filter((t) => t < first + 5_000).length
      // 100/s with a burst of 10 admits at most 510 in any 5 s of dispatch. The window is
      // measured at the upstream, so a first arrival late by up to 100 ms of hop jitter lets
      // up to 10 more in; two owners would admit twice the limit.
      expect(admitted).toBeLessThanOrEqual(10 + 100 * 5.1)
      expect(admitted).toBeGreaterThanOrEqual(100 * 5 * 0.9)
      // Every ingress, in either region, got answers from the owner.
      expect(load.statuses.get(0) ?? 0).toBe(0)
      for (const node of nodes) {
        const status = (await fetch(`${node.proxyUrl}/t/echo/each`, { headers: KEY })).status
        expect([200, 429], node.nodeId).toContain(status)
      }
    },
  )
})
