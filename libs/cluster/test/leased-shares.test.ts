import { performance } from 'node:perf_hooks'
import { createInbox, type NatsConnection } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import { NatsTransport, ShardServer } from '@fairlane/cluster'
import type { ScopeLimit } from '@fairlane/limits'
import {
  decodeReplyBatch,
  decodeShardBatch,
  encodeReplyBatch,
  encodeShardBatch,
  shardOf,
  shardSubject,
  type ShardMessage,
  type ShareGrant,
  type Ticket,
} from '@fairlane/protocol'
import { useNats } from './nats-fixture.ts'
import { testActor } from './test-actor.ts'

const SHARDS = 16
const SHARD = shardOf('echo', 0, SHARDS)
const nats = useNats()
const closers: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

const nc = (): Promise<NatsConnection> => nats.connect()

type ShareEvent = 'lent' | 'returned' | 'revoked'

/** A shard's owner lending shares, with the scopes each ticket gets. */
async function owner(scopesOf: (ticket: Ticket) => ScopeLimit[], ttlMs: number, shard = SHARD) {
  const events: Record<ShareEvent, number> = { lent: 0, returned: 0, revoked: 0 }
  const { actor, ledger } = testActor({
    scopesOf,
    onContention: (partition) => server.revoke(partition),
  })
  const server: ShardServer = new ShardServer({
    nc: await nc(),
    actor,
    shares: { ttlMs, max: 16 },
    onShares: (event, count) => (events[event] += count),
  })
  server.serve(shard)
  closers.push(
    () => actor.close(),
    () => server.close(),
  )
  return { events, ledger, server }
}

/** An ingress node with shares on; counts where its admissions came from. */
async function ingress(ttlMs: number) {
  const paths = { local: 0, owner: 0 }
  const transport = new NatsTransport({
    nc: await nc(),
    shardFor: (t) => shardOf(t.target, 0, SHARDS),
    requestTimeoutMs: 10_000,
    retryForMs: 5_000,
    shares: { max: 16, ttlMs },
    onAdmission: (path) => paths[path]++,
  })
  closers.push(() => transport.close())
  return { transport, paths }
}

/** Key a's limit of `limit` an hour, all of it at once: nothing refills during a test. */
const hourly = (limit: number): ScopeLimit => ({
  id: 'key:w/a',
  kind: 'key',
  rate: { limit, periodMs: 3_600_000, burst: limit },
})

let n = 0
const ticket = (keyId: string): Ticket => ({
  requestId: `r${++n}`,
  workspace: 'w',
  keyId,
  target: 'echo',
  cost: 1,
})

describe('leased shares over NATS', () => {
  it('admit most of a busy lane without a round trip, and the limit holds exactly across two ingress nodes', async () => {
    // 60 an hour: nothing refills during the test, so every admission is counted once.
    const perHour = hourly(60)
    const { events } = await owner(() => [perHour], 1000)
    const one = await ingress(1000)
    const two = await ingress(1000)
    // 40 of the 60 are asked for: the nodes end holding shares they have not handed out.
    let admitted = 0
    for (let i = 0; i < 40; i++) {
      const admission = await (i % 2 ? one : two).transport.submit(ticket('a'))
      if (admission.allowed) {
        admitted++
        admission.lease.release()
      }
    }
    expect(admitted).toBe(40)
    expect(one.paths.local + two.paths.local).toBeGreaterThan(20)
    expect(events.lent).toBeGreaterThan(0)
    // What the two nodes still hold goes back when they stop (refunded); then exactly what
    // is left of the hour's 60 passes, and no more.
    await one.transport.close()
    await two.transport.close()
    const third = await ingress(1000)
    let after = 0
    for (let i = 0; i < 80; i++) {
      const admission = await third.transport.submit(ticket('a'))
      if (admission.allowed) after++
    }
    expect(events.returned).toBeGreaterThan(0)
    expect(admitted + after).toBe(60)
  })

  it('reuses lent concurrency slots request after request, never holds more than the limit, and leaks none', async () => {
    const slots: ScopeLimit = { id: 'key:w/a', kind: 'key', concurrency: 8 }
    const { ledger } = await owner(() => [slots], 1000)
    const one = await ingress(1000)
    const two = await ingress(1000)
    // One request at a time per node: a lent slot goes on from request to request.
    for (let i = 0; i < 40; i++) {
      const admission = await (i % 2 ? one : two).transport.submit(ticket('a'))
      if (admission.allowed) admission.lease.release()
    }
    expect(one.paths.local + two.paths.local).toBeGreaterThan(20)
    // Twenty at once over both nodes: never more than 8 hold a slot, lent or not.
    let holding = 0
    let most = 0
    const all = Array.from({ length: 20 }, async (_, i) => {
      const admission = await (i % 2 ? one : two).transport.submit(ticket('a'))
      if (!admission.allowed) return false
      most = Math.max(most, ++holding)
      expect(ledger.inFlight('key:w/a')).toBeLessThanOrEqual(8)
      await new Promise((resolve) => setTimeout(resolve, 20))
      holding--
      admission.lease.release()
      return true
    })
    expect(await Promise.all(all)).toEqual(new Array(20).fill(true))
    expect(most).toBeLessThanOrEqual(8)
    // Both nodes stop: every slot they were lent is free again.
    await one.transport.close()
    await two.transport.close()
    await expect.poll(() => ledger.inFlight('key:w/a')).toBe(0)
  })

  it('tops up the admissions of a node that holds slots although the owner has none left to lend', async () => {
    const slots: ScopeLimit = { id: 'key:w/a', kind: 'key', concurrency: 8 }
    const { events, ledger } = await owner(() => [slots], 30_000)
    const busy = await ingress(30_000)
    // One request at a time: the node's first slots are all it needs, but each ask for more
    // admissions halves what the owner has free (4, 2, 1) until it has no slot to lend.
    for (let i = 0; i < 200; i++) {
      const admission = await busy.transport.submit(ticket('a'))
      if (admission.allowed) admission.lease.release()
      // Requests a few ms apart, so an ask made ahead of need is answered before the need.
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    expect(events.lent).toBeGreaterThan(150)
    expect(ledger.inFlight('key:w/a')).toBeLessThanOrEqual(8)
    // Only the first requests, before the node held a grant, asked the owner.
    expect(busy.paths.owner).toBeLessThanOrEqual(3)
    expect(busy.paths.local).toBeGreaterThanOrEqual(197)
  })

  it('takes a share back as soon as a ticket of its partition waits, long before it expires', async () => {
    const slots: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 4 }
    const { events, ledger } = await owner(() => [slots], 30_000)
    const busy = await ingress(30_000)
    // Lane a builds demand and takes a share of the target's four slots.
    for (let i = 0; i < 8; i++) {
      const admission = await busy.transport.submit(ticket('a'))
      if (admission.allowed) admission.lease.release()
    }
    expect(events.lent).toBeGreaterThan(0)
    const quiet = await ingress(30_000)
    const held = await Promise.all([0, 1, 2, 3].map(() => busy.transport.submit(ticket('a'))))
    const started = performance.now()
    const late = quiet.transport.submit(ticket('b'))
    // Every slot is held by a's four requests: b waits, and the owner takes a's share back
    // (if it did not already while a's four waited for slots it had lent).
    await expect.poll(() => events.revoked).toBeGreaterThan(0)
    for (const admission of held) if (admission.allowed) admission.lease.release()
    const answer = await late
    expect(answer.allowed).toBe(true)
    expect(performance.now() - started).toBeLessThan(5_000)
    // Everything busy was lent went back: the slots of the ended grant, free or freed by
    // their requests' `done`; only b's admission holds one.
    await expect.poll(() => ledger.inFlight('target:echo')).toBe(1)
  })

  it("sends nothing for a local admission's request that ends without news, and the upstream's word at once", async () => {
    const { events } = await owner(() => [], 4000)
    const busy = await ingress(4000)
    // Every item about a grant the shard's owner receives, in batches as they arrive.
    const batches: ShardMessage[][] = []
    const spy = await nc()
    spy.subscribe(shardSubject(SHARD), {
      callback: (_, msg) => {
        const batch = decodeShardBatch(msg.string())
        const words =
          'items' in batch ? batch.items.filter((item) => item.kind.startsWith('grant-')) : []
        if (words.length > 0) batches.push(words)
      },
    })
    await spy.flush()
    const local = []
    for (let i = 0; local.length < 10 && i < 40; i++) {
      const before = busy.paths.local
      const admission = await busy.transport.submit(ticket('a'))
      if (!admission.allowed) continue
      if (busy.paths.local > before) local.push(admission)
      else admission.lease.release()
    }
    expect(events.lent).toBeGreaterThan(0)
    expect(local).toHaveLength(10)
    // Each request ends in a turn of the event loop of its own, as at a few hundred a second.
    for (const admission of local.slice(0, 9)) {
      if (admission.allowed) admission.lease.release({ upstream: { status: 200 } })
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    expect(batches).toEqual([])
    const refused = local[9]
    if (refused?.allowed) refused.lease.release({ upstream: { status: 429, retryAfterMs: 1000 } })
    await expect.poll(() => batches.length).toBe(1)
    expect(batches[0]).toEqual([
      expect.objectContaining({
        kind: 'grant-used',
        upstream: { status: 429, retryAfterMs: 1000 },
      }),
    ])
    // The grant's state follows with the sweep, without the requests' word.
    await expect.poll(() => batches.length, { timeout: 5000 }).toBeGreaterThan(1)
    expect(
      batches
        .slice(1)
        .flat()
        .every((word) => word.kind === 'grant-state'),
    ).toBe(true)
  })

  it('forgets a grant once its ingress node holds nothing of it, and keeps it while it does', async () => {
    const perHour = hourly(100)
    // Grants last 200 ms; one the owner hears nothing of is forgotten 1.4 s after it was lent.
    const { server } = await owner(() => [perHour], 200)
    const busy = await ingress(200)
    const held = []
    for (let i = 0; i < 12; i++) {
      const admission = await busy.transport.submit(ticket('a'))
      if (admission.allowed) held.push(admission)
    }
    expect(server.grants).toBeGreaterThan(0)
    // Long past that: requests still hold some, ingress says so, and the owner keeps them.
    await new Promise((resolve) => setTimeout(resolve, 2000))
    expect(server.grants).toBeGreaterThan(0)
    // Their requests end: ingress closes them, long before the owner's 15 minutes.
    for (const admission of held) if (admission.allowed) admission.lease.release()
    await expect.poll(() => server.grants, { timeout: 3000 }).toBe(0)
  })

  it('refunds no more than a grant lent, however often or however much it hears back', async () => {
    const perHour = hourly(10)
    await owner(() => [perHour], 1000)
    const client = await nc()
    const inbox = createInbox()
    const answers = client.subscribe(inbox, { max: 1 })
    const asking = { requestId: 'r-refund', workspace: 'w', keyId: 'a', target: 'echo', cost: 1 }
    client.publish(
      shardSubject(SHARD),
      encodeShardBatch(inbox, [{ kind: 'ticket', token: '1', ticket: asking, want: 4 }]),
    )
    let grant: ShareGrant | undefined
    for await (const msg of answers) {
      const batch = decodeReplyBatch(msg.string())
      const reply = 'items' in batch ? batch.items[0]?.reply : undefined
      if (reply && 'allowed' in reply && reply.allowed) grant = reply.grant
    }
    expect(grant?.admissions).toBeGreaterThan(0)
    // Everything lent back, twice, and far more than was lent.
    const back: ShardMessage = {
      kind: 'grant-state',
      grant: grant?.id ?? '',
      unused: 9,
      open: true,
    }
    client.publish(shardSubject(SHARD), encodeShardBatch(undefined, [back, back]))
    await client.flush()
    // The ticket's own admission stays spent: 9 of the hour's 10 are left, not 10. Asked
    // one by one, without shares, so that what passes is what the owner's ledger holds.
    const plain = new NatsTransport({
      nc: await nc(),
      shardFor: (t) => shardOf(t.target, 0, SHARDS),
      requestTimeoutMs: 10_000,
    })
    closers.push(() => plain.close())
    let passed = 0
    for (let i = 0; i < 12; i++) if ((await plain.submit(ticket('b'))).allowed) passed++
    expect(passed).toBe(9)
  })

  it('gives back a grant whose answer came after it gave up asking', async () => {
    // An owner slow to answer share asks (a link between regions): its ticket answers lend
    // 4 admissions, its share answers lend 5 and come 600 ms late.
    const slow = await nc()
    const heard: ShardMessage[] = []
    slow.subscribe(shardSubject(SHARD), {
      callback: (_, msg) => {
        const batch = decodeShardBatch(msg.string())
        if (!('items' in batch) || !batch.replyTo) {
          if ('items' in batch) heard.push(...batch.items)
          return
        }
        const replyTo = batch.replyTo
        for (const item of batch.items) {
          const grant = (id: string, admissions: number) => ({
            partition: 'echo#0',
            ttlMs: 10_000,
            id,
            admissions,
            views: [],
          })
          if (item.kind === 'ticket') {
            const reply = { allowed: true as const, leaseId: 'l', views: [], waitedMs: 0 }
            const answer = [{ token: item.token, reply: { ...reply, grant: grant('first', 4) } }]
            slow.publish(replyTo, encodeReplyBatch(answer))
          } else if (item.kind === 'share') {
            const answer = [{ token: item.token, reply: { grant: grant('late', 5) } }]
            setTimeout(() => slow.publish(replyTo, encodeReplyBatch(answer)), 600)
          } else heard.push(item)
        }
      },
    })
    await slow.flush()
    const transport = new NatsTransport({
      nc: await nc(),
      shardFor: (t) => shardOf(t.target, 0, SHARDS),
      requestTimeoutMs: 10_000,
      silenceMs: 200,
      shares: { max: 16, ttlMs: 10_000 },
    })
    closers.push(() => transport.close())
    // The fourth takes the grant's last but one, and asks for more.
    for (let i = 0; i < 4; i++) await transport.submit(ticket('a'))
    await expect
      .poll(() => heard.find((item) => item.kind === 'grant-state' && item.grant === 'late'), {
        timeout: 3000,
      })
      .toEqual({ kind: 'grant-state', grant: 'late', unused: 5, open: false })
  })

  it('names what it lends apart from another owner, even one in the same process', async () => {
    const OTHER = shardOf('other', 0, SHARDS)
    expect(OTHER).not.toBe(SHARD)
    await owner(() => [], 1000)
    await owner(() => [], 1000, OTHER)
    // A ticket asking for 4, straight on the wire: the ids its grant names.
    const lentFor = async (target: string): Promise<string[]> => {
      const client = await nc()
      const inbox = createInbox()
      const answers = client.subscribe(inbox, { max: 1 })
      const ticket = { requestId: `ids-${target}`, workspace: 'w', keyId: 'a', target, cost: 1 }
      client.publish(
        shardSubject(shardOf(target, 0, SHARDS)),
        encodeShardBatch(inbox, [{ kind: 'ticket', token: '1', ticket, want: 4 }]),
      )
      for await (const msg of answers) {
        const batch = decodeReplyBatch(msg.string())
        const reply = 'items' in batch ? batch.items[0]?.reply : undefined
        if (reply && 'allowed' in reply && reply.allowed && reply.grant) {
          return [reply.grant.id, ...(reply.grant.slots ?? [])]
        }
      }
      return []
    }
    const here = await lentFor('echo')
    const there = await lentFor('other')
    expect(here).toHaveLength(1)
    expect(there).toHaveLength(1)
    // A settle or done for one owner's admissions that reaches the other (the shard moved)
    // must not release the other's own.
    expect(here.filter((id) => there.includes(id))).toEqual([])
  })
})
