import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyRewriter, NatsLink, ShardLeases } from '@fairlane/cluster'
import { startNats, type NatsServer } from '@fairlane/testing'

const SHARDS = 12
const TTL_MS = 1200

let nats: NatsServer
const connections: NatsConnection[] = []
const running: ShardLeases[] = []
const rewriters: KeyRewriter[] = []

beforeAll(async () => {
  nats = await startNats({ jetstream: true })
})

afterAll(async () => {
  await Promise.all(running.map((l) => l.stop().catch(() => undefined)))
  for (const rewriter of rewriters) rewriter.close()
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)))
  await nats.stop()
})

let bucketNo = 0
async function bucket(ttlMs = TTL_MS): Promise<string> {
  const name = `shards-${++bucketNo}`
  const nc = await connect({ servers: nats.url })
  connections.push(nc)
  await new Kvm(nc).create(name, { ttl: ttlMs, history: 1 })
  return name
}

async function node(name: string, id: string, server: NatsServer = nats, ttlMs = TTL_MS) {
  const nc = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  })
  connections.push(nc)
  const kv: KV = await new Kvm(nc).open(name)
  const rewriter = new KeyRewriter(nc, name)
  rewriters.push(rewriter)
  const serving = new Set<number>()
  const leases = new ShardLeases({
    kv,
    rewrite: (key, value, revision) => rewriter.rewrite(key, value, revision),
    nodeId: id,
    shards: SHARDS,
    ttlMs,
    link: new NatsLink(nc),
    onAcquire: (shard) => serving.add(shard),
    onRelease: (shard) => void serving.delete(shard),
  })
  running.push(leases)
  return { leases, serving, nc, kv }
}

function disjointCover(nodes: Array<{ serving: Set<number> }>): boolean {
  const all = nodes.flatMap((n) => [...n.serving])
  return all.length === SHARDS && new Set(all).size === SHARDS
}

/**
 * Three nodes on a fresh bucket, started, holding four shards each, and each having counted
 * the other two: a node whose first round saw only itself (or one other) can already hold its
 * four shards when nothing else was free, and counts three only from its next round.
 */
async function settledTrio() {
  const name = await bucket()
  const nodes = [await node(name, 'a'), await node(name, 'b'), await node(name, 'c')]
  await Promise.all(nodes.map((n) => n.leases.start()))
  await expect
    .poll(
      () =>
        disjointCover(nodes) &&
        nodes.every((n) => n.serving.size === 4 && n.leases.liveNodes === 3),
      { timeout: 10_000 },
    )
    .toBe(true)
  return { name, nodes }
}

describe('shard leases in NATS KV', () => {
  it('splits the shards fairly and disjointly between nodes, and hands them over on drain', async () => {
    const { nodes } = await settledTrio()

    await nodes[2]?.leases.stop()
    const rest = nodes.slice(0, 2)
    await expect
      .poll(() => disjointCover(rest) && rest.every((n) => n.serving.size === 6), {
        timeout: 10_000,
      })
      .toBe(true)
  })

  it('rebalances when a node joins', async () => {
    const name = await bucket()
    const first = await node(name, 'a')
    await first.leases.start()
    expect(first.serving.size).toBe(SHARDS)
    const second = await node(name, 'b')
    await second.leases.start()
    await expect
      .poll(() => disjointCover([first, second]) && second.serving.size === 6, { timeout: 10_000 })
      .toBe(true)
  })

  it('moves the shards of a node that died within the lease TTL and a tick', async () => {
    const name = await bucket()
    const survivor = await node(name, 'a')
    const doomed = await node(name, 'b')
    await Promise.all([survivor.leases.start(), doomed.leases.start()])
    await expect.poll(() => disjointCover([survivor, doomed]), { timeout: 10_000 }).toBe(true)
    const died = Date.now()
    // Its connection drops without a word: no release, no more heartbeats.
    await doomed.nc.close()
    await expect.poll(() => survivor.serving.size, { timeout: 10_000 }).toBe(SHARDS)
    expect(Date.now() - died).toBeLessThan(TTL_MS * 3)
  })

  it('stops serving a shard whose lease someone else wrote, at its next rewrite', async () => {
    // Rounds of 3 s in a 9 s TTL: the refused rewrite comes within a round, long before the
    // lease could have expired here (6 s at the soonest), which would also drop it.
    const ttlMs = 9_000
    const name = await bucket(ttlMs)
    const holder = await node(name, 'a', nats, ttlMs)
    await holder.leases.start()
    expect(holder.serving.has(5)).toBe(true)
    // Another writer takes the key (as a node would after this one's lease had expired).
    await holder.kv.put('shard.5', 'intruder')
    await expect.poll(() => holder.serving.has(5), { timeout: 5_000 }).toBe(false)
    expect((await holder.kv.get('shard.5'))?.string()).toBe('intruder')
  })
})

describe('shard leases in a steady cluster', () => {
  it('count each live node once, keep one watcher per node and move no shard, even while heartbeats are rewritten during every round', async () => {
    const { name, nodes } = await settledTrio()
    const settled = nodes.map((n) => [...n.serving].sort((x, y) => x - y))

    // A key rewritten while a listing runs was listed twice: rewrite the heartbeats as fast
    // as the server takes them, so every round of every node meets rewrites.
    const kv = await new Kvm(connections[0] as NatsConnection).open(name)
    let rewriting = true
    const rewriter = (async () => {
      while (rewriting) {
        await Promise.all(['a', 'b', 'c'].map((id) => kv.put(`node.${id}`, String(Date.now()))))
      }
    })()
    const seen = new Set<number>()
    const sampler = setInterval(() => {
      for (const n of nodes) seen.add(n.leases.liveNodes)
    }, 10)
    // About fifteen rounds of each node.
    await new Promise((r) => setTimeout(r, 15 * (TTL_MS / 3)))
    clearInterval(sampler)
    rewriting = false
    await rewriter

    expect([...seen]).toEqual([3])
    expect(nodes.map((n) => [...n.serving].sort((x, y) => x - y))).toEqual(settled)
    // One watch per node, not a consumer per listing.
    const { streamInfo } = await kv.status()
    expect(streamInfo.state.consumer_count).toBeLessThanOrEqual(nodes.length)
  })
})

describe('lease renewals of many shards', () => {
  it('are sent a few at a time, spread over the round, and every lease is still rewritten well within the TTL', async () => {
    const shards = 256
    const name = await bucket()
    const nc = await connect({ servers: nats.url })
    connections.push(nc)
    const kv = await new Kvm(nc).open(name)
    const rewriter = new KeyRewriter(nc, name)
    rewriters.push(rewriter)
    const rewrites = new Map<number, number[]>()
    let inFlight = 0
    let mostInFlight = 0
    // Every compare-and-set rewrite counted while it is out.
    const rewrite = async (key: string, data: string, revision: number) => {
      const shard = Number(key.slice('shard.'.length))
      rewrites.set(shard, [...(rewrites.get(shard) ?? []), Date.now()])
      mostInFlight = Math.max(mostInFlight, ++inFlight)
      try {
        return await rewriter.rewrite(key, data, revision)
      } finally {
        inFlight--
      }
    }
    const leases = new ShardLeases({
      kv,
      rewrite,
      nodeId: 'many',
      shards,
      ttlMs: TTL_MS,
      onAcquire: () => undefined,
      onRelease: () => undefined,
    })
    running.push(leases)
    await leases.start()
    expect(leases.owned).toHaveLength(shards)
    const from = Date.now()
    // About six rounds.
    await new Promise((r) => setTimeout(r, 6 * (TTL_MS / 3)))
    const to = Date.now()
    await leases.stop()

    // All 256 at once stalled a node's event loop for 20 ms every round.
    expect(mostInFlight).toBeLessThanOrEqual(8)
    expect(leases.owned).toHaveLength(0)
    for (let shard = 0; shard < shards; shard++) {
      const times = [from, ...(rewrites.get(shard) ?? []).filter((t) => t >= from), to]
      const longest = Math.max(...times.slice(1).map((t, i) => t - (times[i] as number)))
      // A round every third of the TTL: generous slack for a busy machine, never the TTL.
      expect(longest, `shard ${shard}`).toBeLessThan(TTL_MS * 0.9)
    }
  })
})

describe('shard leases while NATS is away', () => {
  let own: NatsServer
  beforeAll(async () => {
    own = await startNats({ jetstream: true })
  })
  afterAll(async () => {
    await own.stop()
  })

  it('drops the leases it cannot refresh, takes them again when NATS is back, and drains at once while it is away', async () => {
    const nc = await connect({ servers: own.url })
    connections.push(nc)
    const name = `away-${++bucketNo}`
    await new Kvm(nc).create(name, { ttl: TTL_MS, history: 1 })
    const a = await node(name, 'a', own)
    await a.leases.start()
    expect(a.leases.owned).toHaveLength(SHARDS)

    await own.stop()
    const stopped = Date.now()
    // What it holds is what it could refresh: nothing, after the TTL.
    await expect.poll(() => a.leases.owned.length, { timeout: 10_000 }).toBe(0)
    expect(a.serving.size).toBe(0)
    expect(Date.now() - stopped).toBeLessThan(TTL_MS * 4)

    await own.start()
    await expect.poll(() => a.leases.owned.length, { timeout: 20_000 }).toBe(SHARDS)
    expect(a.serving.size).toBe(SHARDS)

    await own.stop()
    const draining = Date.now()
    await a.leases.stop()
    // Sequential deletions waited for a NATS timeout each (5 s × 12 here).
    expect(Date.now() - draining).toBeLessThan(3_000)
    expect(a.serving.size).toBe(0)
    await own.start()
  })
})
