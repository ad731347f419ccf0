import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { LEASE_BUCKET } from '@fairlane/cluster'
import { shardOf } from '@fairlane/protocol'
import {
  startNats,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'
import { offerLoad, startNodeProcess, type NodeProcess } from './cluster-harness.ts'

const EXAMPLE = fileURLToPath(new URL('../../../examples/cluster.yaml', import.meta.url))
const KEY = { authorization: 'Bearer fl_demo_cluster' }

let nats: NatsServer
let redis: RedisServer
let upstream: LoopbackUpstream
const nodes: NodeProcess[] = []

beforeAll(async () => {
  ;[nats, redis, upstream] = await Promise.all([startNats(), startRedis(), startUpstream()])
})

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill()))
})

afterAll(async () => {
  await Promise.all([nats?.stop(), redis?.stop(), upstream?.close()])
})

function clusterEnv(): Record<string, string> {
  return {
    FAIRLANE_NATS_URL: nats.url,
    FAIRLANE_REDIS_URL: redis.url,
    ECHO_URL: upstream.url,
  }
}

async function startCluster(configPath: string, count = 3): Promise<NodeProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startNodeProcess({ configPath, nodeId: `node-${i + 1}`, env: clusterEnv() }),
    ),
  )
  nodes.push(...started)
  return started
}

/** The example config with the lease TTL of a test (so a dead node's shards move quickly). */
async function exampleWith(replace: Record<string, string>): Promise<string> {
  let text = await readFile(EXAMPLE, 'utf8')
  for (const [from, to] of Object.entries(replace)) {
    if (!text.includes(from)) throw new Error(`example has no ${from}`)
    text = text.replace(from, to)
  }
  const path = join(await mkdtemp(join(tmpdir(), 'fairlane-cluster-')), 'cluster.yaml')
  await writeFile(path, text)
  return path
}

/** Upstream hits in the first `ms` after the first one. */
function hitsWithin(since: number, ms: number): number {
  const times = upstream.requests.map((r) => r.receivedAt).filter((t) => t >= since)
  const first = Math.min(...times)
  return times.filter((t) => t < first + ms).length
}

async function shardOwner(shard: number): Promise<string | undefined> {
  const nc = await connect({ servers: nats.url })
  try {
    const kv = await new Kvm(nc).open(LEASE_BUCKET)
    return (await kv.get(`shard.${shard}`))?.string()
  } finally {
    await nc.close()
  }
}

function countOf(statuses: Map<number, number>, ...codes: number[]): number {
  return codes.reduce((n, code) => n + (statuses.get(code) ?? 0), 0)
}

describe('three nodes from examples/cluster.yaml', () => {
  it('(a) hold the target limit across nodes: 10× the limit for 10 s, upstream sees ≤ limit + 1% + burst', async () => {
    const cluster = await startCluster(EXAMPLE)
    const since = performance.now()
    upstream.requests.length = 0
    const load = await offerLoad({
      targets: () => cluster.map((n) => n.proxyUrl),
      path: '/t/echo/accuracy',
      headers: KEY,
      ratePerSecond: 1_000,
      durationMs: 10_000,
    })
    const admitted = hitsWithin(since, 10_000)
    expect(admitted).toBeLessThanOrEqual(100 * 10 * 1.01 + 10)
    // Most of the limit was used: the cluster does not under-admit either.
    expect(admitted).toBeGreaterThanOrEqual(100 * 10 * 0.9)
    // Every request got an answer: served, or refused clearly (queue full / rate limited).
    expect(countOf(load.statuses, 0, 500, 502, 503)).toBe(0)
    expect(countOf(load.statuses, 200, 429)).toBe(load.sent)
  })

  it('(b) survive SIGKILL of the node owning the target: shards move within the TTL, no request lost, accuracy within 2%', async () => {
    const config = await exampleWith({ 'leaseTtlMs: 6000': 'leaseTtlMs: 1500' })
    const cluster = await startCluster(config)
    const shard = shardOf('echo', 0, 256)
    // Wait for the cluster to settle into its fair split, then find the target's owner.
    await expect
      .poll(async () => cluster.map((n) => n.nodeId).includes((await shardOwner(shard)) ?? ''), {
        timeout: 10_000,
      })
      .toBe(true)
    const owner = (await shardOwner(shard)) as string
    const victim = cluster.find((n) => n.nodeId === owner) as NodeProcess
    const survivors = cluster.filter((n) => n !== victim)
    const since = performance.now()
    upstream.requests.length = 0
    const loading = offerLoad({
      targets: () => survivors.map((n) => n.proxyUrl),
      path: '/t/echo/failover',
      headers: KEY,
      ratePerSecond: 300,
      durationMs: 8_000,
    })
    await new Promise((r) => setTimeout(r, 2_500))
    await victim.kill()
    const load = await loading
    await expect
      .poll(async () => (await shardOwner(shard)) ?? '', { timeout: 5_000 })
      .toMatch(/^node-/)
    expect(await shardOwner(shard)).not.toBe(owner)
    expect(countOf(load.statuses, 0, 500, 502)).toBe(0)
    expect(countOf(load.statuses, 200, 429, 503)).toBe(load.sent)
    expect(hitsWithin(since, 8_000)).toBeLessThanOrEqual((100 * 8 + 10) * 1.02)
    expect(load.statuses.get(200) ?? 0).toBeGreaterThan(0)
  })
})
