import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LEASE_BUCKET } from '@fairlane/cluster'
import {
  startNats,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'
import { killAllNodeProcesses, startNodeProcess, type NodeProcess } from './cluster-harness.ts'

/** How long the steady cluster is watched (issue 11.10: five minutes). */
const STEADY_MS = 5 * 60_000
const SHARDS = 256
const EXAMPLE = fileURLToPath(new URL('../../../examples/cluster.yaml', import.meta.url))

let nats: NatsServer
let redis: RedisServer
let upstream: LoopbackUpstream
let nodes: NodeProcess[] = []

beforeAll(async () => {
  ;[nats, redis, upstream] = await Promise.all([startNats(), startRedis(), startUpstream()])
})

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()))
  await killAllNodeProcesses()
  await Promise.all([nats?.stop(), redis?.stop(), upstream?.close()])
})

describe('a steady cluster', () => {
  it(
    `moves no shard for ${STEADY_MS / 60_000} minutes when no node joins or leaves`,
    async () => {
      const env = {
        FAIRLANE_NATS_URL: nats.url,
        FAIRLANE_REDIS_URL: redis.url,
        ECHO_URL: upstream.url,
      }
      nodes = await Promise.all(
        ['node-1', 'node-2', 'node-3'].map((nodeId) =>
          startNodeProcess({ configPath: EXAMPLE, nodeId, env }),
        ),
      )
      const nc = await connect({ servers: nats.url })
      try {
        const kv = await new Kvm(nc).open(LEASE_BUCKET)
        // Every write of every lease, as it happens: its owner, and each change of owner.
        const owner = new Map<number, string>()
        const changes: string[] = []
        let watching = true
        const watch = await kv.watch({ key: 'shard.>' })
        const follow = (async () => {
          for await (const entry of watch) {
            const shard = Number(entry.key.slice('shard.'.length))
            const next = entry.operation === 'PUT' ? entry.string() : '(none)'
            const before = owner.get(shard)
            if (watching && before !== undefined && before !== next) {
              changes.push(`shard ${shard}: ${before} → ${next}`)
            }
            owner.set(shard, next)
          }
        })()
        // Settled: every shard owned, each node at its fair share (⌈256 / 3⌉ at most).
        await expect
          .poll(
            () => {
              const held = new Map<string, number>()
              for (const who of owner.values()) held.set(who, (held.get(who) ?? 0) + 1)
              held.delete('(none)')
              return (
                [...held.values()].reduce((a, b) => a + b, 0) === SHARDS &&
                held.size === 3 &&
                Math.max(...held.values()) <= Math.ceil(SHARDS / 3)
              )
            },
            { timeout: 60_000, interval: 500 },
          )
          .toBe(true)
        changes.length = 0

        await new Promise((resolve) => setTimeout(resolve, STEADY_MS))
        watching = false
        watch.stop()
        await follow

        expect(changes).toEqual([])
        for (const n of nodes) expect(n.ended(), n.output()).toBeNull()
      } finally {
        await nc.close()
      }
    },
    STEADY_MS + 3 * 60_000,
  )
})
