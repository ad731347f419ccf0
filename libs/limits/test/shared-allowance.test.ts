import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MemoryLedger,
  RedisLedger,
  SharedAllowance,
  type LedgerDownPolicy,
  type ScopeLimit,
} from '@fairlane/limits'
import { startRedis, type RedisServer } from '@fairlane/testing'

let server: RedisServer
const clients: Redis[] = []
const closers: (() => Promise<void> | void)[] = []

beforeAll(async () => {
  server = await startRedis()
})

afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  for (const client of clients) client.disconnect()
  await server.stop()
})

let n = 0
const id = (name: string) => `${name}-${++n}`
const now = () => performance.now()

/** One node's view of the shared ledger: its own Redis client, ledger and allowance. */
async function node(options: { share?: number; holdMs?: number; slotTtlMs?: number } = {}) {
  // Fail fast while Redis is away, as the cluster node configures its client.
  const redis = new Redis(server.url, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => 50,
  })
  redis.on('error', () => undefined)
  clients.push(redis)
  // Until connected, every reservation would fail and the scope would follow its policy.
  await new Promise((resolve) => redis.once('ready', resolve))
  const ledger = new RedisLedger({ redis, leaseTtlMs: 2_000 })
  const changes: string[] = []
  const downDecisions: LedgerDownPolicy[] = []
  const allowance = new SharedAllowance({
    reserver: ledger,
    now,
    share: () => options.share ?? 1 / 3,
    onChange: (scopeId) => changes.push(scopeId),
    onLedgerDown: (_scope, policy) => downDecisions.push(policy),
    ...(options.holdMs ? { holdMs: options.holdMs } : {}),
    ...(options.slotTtlMs ? { slotTtlMs: options.slotTtlMs } : {}),
  })
  closers.push(
    () => allowance.close(),
    () => ledger.close(),
  )
  // What the actor's gate does: shared check, then the local decision, then take.
  const local = new MemoryLedger({ now })
  const attempt = (scopes: readonly ScopeLimit[], cost = 1, cents = 0) => {
    const check = allowance.check(scopes, cost, cents)
    if (!check.ok) return check
    const decision = local.decide(check.fallback, cost, cents)
    if (!decision.allowed) return { ok: false as const, local: true }
    return { ok: true as const, hold: allowance.take(scopes, cost, cents), lease: decision.lease }
  }
  return { allowance, attempt, changes, downDecisions, redis }
}

/** Tries as fast as the event loop allows for `ms`, counting admissions. */
async function drive(attempt: () => { ok: boolean }, ms: number): Promise<number> {
  const until = now() + ms
  let admitted = 0
  while (now() < until) {
    if (attempt().ok) admitted++
    else await sleep(1)
  }
  return admitted
}

describe('shared allowance over the Redis ledger', () => {
  it('three nodes spending one rate together never exceed it, and use most of it', async () => {
    const scope: ScopeLimit = {
      id: id('target:shared'),
      kind: 'target',
      rate: { limit: 100, periodMs: 1000, burst: 10 },
    }
    const nodes = await Promise.all([node(), node(), node()])
    const counts = await Promise.all(nodes.map((nd) => drive(() => nd.attempt([scope]), 2_000)))
    const total = counts.reduce((a, b) => a + b, 0)
    // 2 s of 100/s plus the burst, taken from one GCRA in Redis: never more.
    expect(total).toBeLessThanOrEqual(2 * 100 + 10)
    expect(total).toBeGreaterThanOrEqual(0.9 * 200)
    for (const count of counts) expect(count).toBeGreaterThan(0)
  })

  it('shares a concurrency limit: never more slots held than the limit, freed slots serve others', async () => {
    const scope: ScopeLimit = { id: id('workspace:conc'), kind: 'workspace', concurrency: 4 }
    const [a, b] = await Promise.all([node(), node()])
    const held: { release(): void }[] = []
    const deadline = now() + 2_000
    while (held.length < 4 && now() < deadline) {
      for (const nd of [a, b]) {
        const result = nd.attempt([scope])
        if (result.ok && 'hold' in result) held.push(result.hold)
      }
      await sleep(5)
    }
    expect(held).toHaveLength(4)
    await sleep(100)
    expect(a.attempt([scope]).ok || b.attempt([scope]).ok).toBe(false)
    for (const hold of held.splice(0)) hold.release()
    // The slots went back to the nodes that held them; after the hold time, to Redis.
    await sleep(600)
    let admitted = false
    for (let i = 0; i < 100 && !admitted; i++) {
      admitted = b.attempt([scope]).ok
      await sleep(5)
    }
    expect(admitted).toBe(true)
  })

  it('never uses again a slot that expired in Redis, which another node may hold now', async () => {
    const scope: ScopeLimit = { id: id('workspace:expired'), kind: 'workspace', concurrency: 1 }
    const a = await node({ slotTtlMs: 300, holdMs: 60_000 })
    const b = await node({ slotTtlMs: 300, holdMs: 60_000 })
    let held: { release(): void } | undefined
    await expect
      .poll(() => {
        const result = a.attempt([scope])
        if (result.ok && 'hold' in result) held = result.hold
        return held !== undefined
      })
      .toBe(true)
    // Redis loses a's lease (as after an outage longer than the TTL); b takes the slot.
    await a.redis.del(`fairlane:{${scope.id}}:conc`)
    await expect.poll(() => b.attempt([scope]).ok).toBe(true)
    // a's next renewal finds its slot gone; releasing the request must not free it locally.
    await sleep(250)
    held?.release()
    await sleep(50)
    expect(a.attempt([scope]).ok).toBe(false)
  })

  it('gives unspent units back, so an idle node does not sit on the budget', async () => {
    const scope: ScopeLimit = {
      id: id('key:refund'),
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 10 },
    }
    const [a, b] = await Promise.all([node({ holdMs: 100 }), node({ holdMs: 100 })])
    await expect.poll(() => a.attempt([scope]).ok).toBe(true)
    await sleep(400)
    // a reserved a batch of up to the burst and spent one; the rest went back.
    expect(await drive(() => b.attempt([scope]), 300)).toBe(9)
  })

  it('gives back to the ledger what a request reserved beyond its real cost', async () => {
    const scope: ScopeLimit = {
      id: id('key:credit'),
      kind: 'key',
      unit: 'cost',
      rate: { limit: 1, periodMs: 600_000, burst: 10 },
    }
    const [a, b] = await Promise.all([node({ holdMs: 100 }), node({ holdMs: 100 })])
    await expect.poll(() => a.attempt([scope], 8).ok).toBe(true)
    // 8 reserved, 2 used.
    a.allowance.credit([scope], 6)
    await sleep(400)
    expect(await drive(() => b.attempt([scope]), 300)).toBe(8)
  })

  it('charges cents to cents scopes and cost units to the others', async () => {
    const tokens: ScopeLimit = {
      id: id('key:tokens'),
      kind: 'key',
      unit: 'cost',
      rate: { limit: 1, periodMs: 600_000, burst: 10 },
    }
    const cents: ScopeLimit = {
      id: id('key:cents'),
      kind: 'key',
      unit: 'cents',
      rate: { limit: 1, periodMs: 600_000, burst: 10 },
    }
    const [a, b] = await Promise.all([node({ holdMs: 100 }), node({ holdMs: 100 })])
    a.allowance.charge([tokens, cents], 3, 7)
    await sleep(200)
    expect(await drive(() => b.attempt([tokens]), 300)).toBe(7)
    expect(await drive(() => b.attempt([cents], 0, 1), 300)).toBe(3)
  })

  it('refuses at once a cost that can never fit the burst', async () => {
    const scope: ScopeLimit = {
      id: id('key:big'),
      kind: 'key',
      unit: 'cost',
      rate: { limit: 10, periodMs: 1000, burst: 5 },
    }
    expect((await node()).attempt([scope], 6)).toMatchObject({
      ok: false,
      final: true,
      reason: 'rate',
    })
  })
})

describe('when Redis goes away', () => {
  it('follows each scope’s onLedgerDown policy, counts it, and recovers when Redis returns', async () => {
    const rate = { limit: 30, periodMs: 1000, burst: 3 }
    const local: ScopeLimit = { id: id('global'), kind: 'global', rate, onLedgerDown: 'local' }
    const open: ScopeLimit = {
      id: id('workspace:o'),
      kind: 'workspace',
      rate,
      onLedgerDown: 'open',
    }
    const closed: ScopeLimit = { id: id('target:c'), kind: 'target', rate, onLedgerDown: 'closed' }
    const nd = await node({ share: 1 / 3, holdMs: 50 })
    // Normal service first.
    expect(await drive(() => nd.attempt([local]), 100)).toBeGreaterThan(0)
    await server.stop()
    await sleep(200)
    await drive(() => nd.attempt([local, open, closed]), 100)
    await expect.poll(() => nd.allowance.down).toBe(true)

    // local: a third of 30/s with a burst of 1 over one second: about 10, never 30.
    const localAdmitted = await drive(() => nd.attempt([local]), 1_000)
    expect(localAdmitted).toBeGreaterThanOrEqual(5)
    expect(localAdmitted).toBeLessThanOrEqual(12)
    // open: not enforced at all.
    expect(await drive(() => nd.attempt([open]), 200)).toBeGreaterThan(100)
    // closed: refused, finally.
    expect(nd.attempt([closed])).toMatchObject({ ok: false, reason: 'ledger', final: true })
    expect(new Set(nd.downDecisions)).toEqual(new Set(['local', 'open', 'closed']))

    await server.start()
    await expect.poll(() => nd.allowance.down, { timeout: 5_000 }).toBe(false)
    const before = nd.downDecisions.length
    expect(await drive(() => nd.attempt([closed]), 300)).toBeGreaterThan(0)
    expect(nd.downDecisions.length).toBe(before)
  })
})
