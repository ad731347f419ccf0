import { performance } from 'node:perf_hooks'
import type { NatsConnection } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import { NatsTransport, ShardServer } from '@fairlane/cluster'
import type { ScopeLimit } from '@fairlane/limits'
import {
  shardOf,
  shardSubject,
  v1ShardSubject,
  type AdmissionReply,
  type Ticket,
  type WireRefusal,
} from '@fairlane/protocol'
import { useNats } from './nats-fixture.ts'
import { testActor } from './test-actor.ts'

const SHARDS = 16
const SHARD = shardOf('echo', 0, SHARDS)
const roomy: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 1000 }

const nats = useNats()
const closers: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

const nc = (): Promise<NatsConnection> => nats.connect()

function owner(
  options: { onRefused?: (r: WireRefusal) => void; onBatchSent?: (n: number) => void } = {},
) {
  const { actor } = testActor({ scopesOf: () => [roomy] })
  return async () => {
    const server = new ShardServer({ nc: await nc(), actor, ...options })
    closers.push(
      () => server.close(),
      () => actor.close(),
    )
    return server
  }
}

async function ingress(extra: Partial<ConstructorParameters<typeof NatsTransport>[0]> = {}) {
  const transport = new NatsTransport({
    nc: await nc(),
    shardFor: (t) => shardOf(t.target, 0, SHARDS),
    requestTimeoutMs: 10_000,
    retryForMs: 5_000,
    ...extra,
  })
  closers.push(() => transport.close())
  return transport
}

const ticket = (i: number): Ticket => ({
  requestId: `r${i}`,
  workspace: 'w',
  keyId: `k${i % 7}`,
  target: 'echo',
  cost: 1,
})

/**
 * Counts the messages on a subject, as `nats sub` would see them, until the test ends (a
 * listener on a shard subject is a responder: no tickets there would meet "no responders").
 */
async function countMessages(subject: string): Promise<{ readonly messages: number }> {
  const watcher = await nc()
  const counter = { messages: 0 }
  const subscription = watcher.subscribe(subject, {
    callback: () => {
      counter.messages++
    },
  })
  await watcher.flush()
  closers.push(() => subscription.unsubscribe())
  return counter
}

describe('batched tickets', () => {
  it('carries many concurrent tickets from one ingress in fewer messages, and answers them all', async () => {
    const server = await owner()()
    server.serve(SHARD)
    const sizes: number[] = []
    const roundTrips: number[] = []
    const transport = await ingress({
      onBatchSent: (n) => sizes.push(n),
      onRoundTrip: (ms) => roundTrips.push(ms),
    })
    const onShard = await countMessages(shardSubject(SHARD))
    const TICKETS = 200
    const admissions = await Promise.all(
      Array.from({ length: TICKETS }, (_, i) => transport.submit(ticket(i))),
    )
    expect(admissions.every((a) => a.allowed)).toBe(true)
    await expect.poll(() => onShard.messages).toBeGreaterThan(0)
    expect(onShard.messages).toBeLessThan(TICKETS / 2)
    // At most 64 a batch (the default), every ticket in one.
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(TICKETS)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64)
    expect(roundTrips).toHaveLength(TICKETS)
    expect(Math.min(...roundTrips)).toBeGreaterThanOrEqual(0)

    const before = onShard.messages
    for (const a of admissions) if (a.allowed) a.lease.release()
    await expect.poll(() => server.leases).toBe(0)
    expect(onShard.messages - before).toBeLessThan(TICKETS / 2)
  })

  it('sends the owner its answers to one ingress in batches too', async () => {
    const sizes: number[] = []
    const server = await owner({ onBatchSent: (n) => sizes.push(n) })()
    server.serve(SHARD)
    const transport = await ingress({ batch: { maxItems: 10 } })
    const admissions = await Promise.all(
      Array.from({ length: 100 }, (_, i) => transport.submit(ticket(i))),
    )
    expect(admissions.every((a) => a.allowed)).toBe(true)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100)
    expect(sizes.length).toBeLessThan(100)
    for (const a of admissions) if (a.allowed) a.lease.release()
  })

  it('resends every ticket of a batch that met no responder, until an owner serves the shard', async () => {
    const start = owner()
    // Only NATS's no-responders notice can send a ticket again before this silence.
    const transport = await ingress({ silenceMs: 20_000, requestTimeoutMs: 30_000 })
    const startedAt = performance.now()
    const pending = Array.from({ length: 50 }, (_, i) => transport.submit(ticket(i)))
    setTimeout(() => void start().then((server) => server.serve(SHARD)), 300)
    const admissions = await Promise.all(pending)
    expect(admissions.every((a) => a.allowed)).toBe(true)
    expect(performance.now() - startedAt).toBeLessThan(15_000)
    for (const a of admissions) if (a.allowed) a.lease.release()
  }, 30_000)
})

describe('wire versions in a mixed cluster', () => {
  it('answers a version 1 ticket with a refusal version 1 reads as 503 cluster_unavailable', async () => {
    const refusals: WireRefusal[] = []
    const server = await owner({ onRefused: (r) => refusals.push(r) })()
    server.serve(SHARD)
    const v1Ingress = await nc()
    // Exactly what a version 1 ingress publishes: one ticket, answered on the reply subject.
    const reply = await v1Ingress.request(
      v1ShardSubject(SHARD),
      JSON.stringify({ kind: 'ticket', ticket: ticket(1) }),
      { timeout: 2000 },
    )
    expect(reply.json<AdmissionReply>()).toMatchObject({
      allowed: false,
      code: 'cluster_unavailable',
    })
    expect(refusals).toEqual([expect.objectContaining({ refused: 'version' })])
  })

  it('refuses, and does not act on, a version 1, 2 or 3 or a garbled message on a version 4 subject', async () => {
    const refusals: WireRefusal[] = []
    const server = await owner({ onRefused: (r) => refusals.push(r) })()
    server.serve(SHARD)
    const other = await nc()
    for (const body of [
      JSON.stringify({ kind: 'ticket', ticket: ticket(1) }),
      JSON.stringify({ v: 2, items: [{ kind: 'ticket', token: '1', ticket: ticket(2) }] }),
      JSON.stringify({ v: 3, items: [{ kind: 'ticket', token: '1', ticket: ticket(3) }] }),
      '{"v":4,"items":[{"kind":"ticket","token":"1","ticket":{}},{"kind":"bogus"}]',
    ]) {
      other.publish(shardSubject(SHARD), body, { reply: '_INBOX.nobody' })
    }
    await expect.poll(() => refusals.length).toBe(4)
    expect(refusals.map((r) => r.refused)).toEqual(['version', 'version', 'version', 'garbled'])
    expect(server.leases).toBe(0)
  })

  it('an ingress refuses a reply of another version: the ticket waits for a real answer', async () => {
    const refusals: WireRefusal[] = []
    const transport = await ingress({
      onRefused: (r) => refusals.push(r),
      requestTimeoutMs: 1500,
      retryForMs: 1000,
      silenceMs: 300,
    })
    // A version 1 owner answers the reply subject of each message it gets with a bare reply.
    const v1Owner = await nc()
    v1Owner.subscribe(shardSubject(SHARD), {
      callback: (_err, msg) => {
        const { replyTo } = msg.json<{ replyTo: string }>()
        v1Owner.publish(
          replyTo,
          JSON.stringify({ allowed: true, leaseId: 'x', views: [], waitedMs: 0 }),
        )
      },
    })
    await v1Owner.flush()
    await expect(transport.submit(ticket(1))).rejects.toThrow(/no queue actor answered/)
    expect(refusals.length).toBeGreaterThan(0)
    expect(refusals[0]).toMatchObject({ refused: 'version' })
  })
})
