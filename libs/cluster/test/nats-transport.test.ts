import { setTimeout as sleep } from 'node:timers/promises'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import type { QueueActor } from '@fairlane/actor'
import { NatsTransport, ShardServer } from '@fairlane/cluster'
import type { ScopeLimit } from '@fairlane/limits'
import { shardOf, type Ticket } from '@fairlane/protocol'
import { useNats } from './nats-fixture.ts'
import { testActor } from './test-actor.ts'

const SHARDS = 16
const slot: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 1 }

const nats = useNats()
const servers: ShardServer[] = []
const actors: QueueActor[] = []

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
  for (const actor of actors.splice(0)) actor.close()
})

const nc = (): Promise<NatsConnection> => nats.connect()

function actorNode(leaseTtlMs?: number) {
  const { actor, ledger } = testActor({ scopesOf: () => [slot], maxWaitMs: 2000, perLane: 10 })
  actors.push(actor)
  return { actor, ledger, leaseTtlMs }
}

async function serving(node: ReturnType<typeof actorNode>): Promise<ShardServer> {
  const server = new ShardServer({
    nc: await nc(),
    actor: node.actor,
    ...(node.leaseTtlMs ? { leaseTtlMs: node.leaseTtlMs } : {}),
  })
  servers.push(server)
  return server
}

async function ingress(): Promise<NatsTransport> {
  return new NatsTransport({
    nc: await nc(),
    shardFor: (t) => shardOf(t.target, 0, SHARDS),
    requestTimeoutMs: 5000,
    retryForMs: 2000,
  })
}

const ticket = (keyId: string, target = 'echo'): Ticket => ({
  requestId: `${keyId}-${Math.random()}`,
  workspace: 'w',
  keyId,
  target,
  cost: 1,
})

describe('tickets over NATS request/reply', () => {
  it('reaches the owner of the shard and releases through a done message', async () => {
    const node = actorNode()
    const server = await serving(node)
    server.serve(shardOf('echo', 0, SHARDS))
    const transport = await ingress()
    const first = await transport.submit(ticket('a'))
    expect(first.allowed).toBe(true)
    expect(node.ledger.inFlight('target:echo')).toBe(1)
    const second = transport.submit(ticket('b'))
    await sleep(50)
    if (first.allowed) first.lease.release()
    expect((await second).allowed).toBe(true)
    await expect.poll(() => server.leases).toBe(1)
  })

  it('carries a ticket’s price and its real price in the done message to the owner', async () => {
    const cents: ScopeLimit = {
      id: 'key:w/priced',
      kind: 'key',
      unit: 'cents',
      rate: { limit: 1, periodMs: 86_400_000, burst: 10 },
    }
    const { actor, ledger } = testActor({ scopesOf: () => [cents], maxWaitMs: 0, perLane: 10 })
    actors.push(actor)
    const server = await serving({ actor, ledger, leaseTtlMs: undefined })
    server.serve(shardOf('echo', 0, SHARDS))
    const transport = await ingress()
    const priced = (n: number): Ticket => ({ ...ticket('priced'), cents: n })
    const first = await transport.submit(priced(2))
    expect(first.allowed).toBe(true)
    // Reserved 2, used 9: the owner charges 7 more.
    if (first.allowed) first.lease.release({ cents: 9 })
    await expect.poll(() => server.leases).toBe(0)
    expect((await transport.submit(priced(2))).allowed).toBe(false)
    expect((await transport.submit(priced(1))).allowed).toBe(true)
  })

  it('keeps apart two tickets that carry the same request id (clients choose it)', async () => {
    const node = actorNode()
    const server = await serving(node)
    server.serve(shardOf('echo', 0, SHARDS))
    const transport = await ingress()
    const same: Ticket = { ...ticket('a'), requestId: 'chosen-by-the-client' }
    const first = await transport.submit(same)
    const second = transport.submit({ ...same, keyId: 'b' })
    await expect.poll(() => node.actor.queued).toBe(1)
    const third = transport.submit({ ...same, keyId: 'c' })
    await expect.poll(() => node.actor.queued).toBe(2)
    if (first.allowed) first.lease.release()
    const admitted = await second
    expect(admitted.allowed).toBe(true)
    if (admitted.allowed) admitted.lease.release()
    expect((await third).allowed).toBe(true)
  })

  it('cancels a waiting ticket when the ingress side aborts', async () => {
    const node = actorNode()
    const server = await serving(node)
    server.serve(shardOf('echo', 0, SHARDS))
    const transport = await ingress()
    const holder = await transport.submit(ticket('a'))
    const controller = new AbortController()
    const waiting = transport.submit(ticket('b'), controller.signal)
    await expect.poll(() => node.actor.queued).toBe(1)
    controller.abort()
    expect(await waiting).toMatchObject({ allowed: false, code: 'cancelled' })
    expect(node.actor.queued).toBe(0)
    if (holder.allowed) holder.lease.release()
  })

  it('resubmits a ticket that meets no responder until an owner serves the shard', async () => {
    const node = actorNode()
    const server = await serving(node)
    const transport = await ingress()
    setTimeout(() => server.serve(shardOf('late', 0, SHARDS)), 300)
    const admission = await transport.submit(ticket('a', 'late'))
    expect(admission.allowed).toBe(true)
  })

  it('hands waiting tickets to the next owner when a shard is given up', async () => {
    const shard = shardOf('echo', 0, SHARDS)
    const first = actorNode()
    const firstServer = await serving(first)
    firstServer.serve(shard)
    const transport = await ingress()
    const holder = await transport.submit(ticket('a'))
    const waiting = transport.submit(ticket('b'))
    await expect.poll(() => first.actor.queued).toBe(1)
    const second = actorNode()
    const secondServer = await serving(second)
    secondServer.serve(shard)
    await firstServer.stopServing(shard)
    // The waiting ticket hears `moved` and is admitted by the new owner, long before any
    // silence (5 s here) could have made the ingress resubmit it.
    const admitted = await waiting
    expect(admitted.allowed).toBe(true)
    expect(second.ledger.inFlight('target:echo')).toBe(1)
    if (holder.allowed) holder.lease.release()
  })

  it('resubmits a waiting ticket whose owner went silent to the next owner', async () => {
    const shard = shardOf('echo', 0, SHARDS)
    const dead = actorNode()
    const deadConnection = await connect({ servers: nats.url() })
    const deadServer = new ShardServer({ nc: deadConnection, actor: dead.actor })
    deadServer.serve(shard)
    const transport = new NatsTransport({
      nc: await nc(),
      shardFor: () => shard,
      requestTimeoutMs: 10_000,
      retryForMs: 3_000,
      silenceMs: 400,
    })
    const holder = await transport.submit(ticket('a'))
    const waiting = transport.submit(ticket('b'))
    await expect.poll(() => dead.actor.queued).toBe(1)
    // The owner's process "dies": its connection goes, with no goodbye to anyone.
    await deadConnection.close()
    const next = actorNode()
    ;(await serving(next)).serve(shard)
    expect((await waiting).allowed).toBe(true)
    expect(next.ledger.inFlight('target:echo')).toBe(1)
    await deadServer.close()
    if (holder.allowed) holder.lease.release()
  })

  it('frees the slot of a request whose ingress died, after the lease TTL', async () => {
    const node = actorNode(200)
    const server = await serving(node)
    server.serve(shardOf('echo', 0, SHARDS))
    const transport = await ingress()
    expect((await transport.submit(ticket('a'))).allowed).toBe(true)
    // No done ever comes; after the TTL the owner gives the slot back.
    const next = await transport.submit(ticket('b'))
    expect(next.allowed).toBe(true)
    if (next.allowed) expect(next.waitedMs).toBeGreaterThanOrEqual(100)
  })

  it('serves only the shards it was given, and stops on request', async () => {
    const node = actorNode()
    const server = await serving(node)
    const shard = shardOf('echo', 0, SHARDS)
    server.serve(shard)
    expect(server.shards).toEqual([shard])
    await server.stopServing(shard)
    const transport = new NatsTransport({
      nc: await nc(),
      shardFor: () => shard,
      requestTimeoutMs: 1000,
      retryForMs: 100,
    })
    await expect(transport.submit(ticket('a'))).rejects.toThrow()
  })
})
