import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryLedger, RedisLedger, type Ledger, type ScopeLimit } from '@fairlane/limits'
import { startRedis, type RedisServer } from '@fairlane/testing'

let server: RedisServer
let redis: Redis
const ledgers: RedisLedger[] = []

beforeAll(async () => {
  server = await startRedis()
  redis = new Redis(server.url, { lazyConnect: false })
})

afterAll(async () => {
  for (const ledger of ledgers) ledger.close()
  redis.disconnect()
  await server.stop()
})

let n = 0
/** Fresh scope ids per test, so tests sharing one Redis never see each other's state. */
const id = (name: string) => `${name}-${++n}`

const implementations: Array<[string, () => Ledger]> = [
  ['MemoryLedger', () => new MemoryLedger({ now: () => performance.now() })],
  [
    'RedisLedger',
    () => {
      const ledger = new RedisLedger({ redis, leaseTtlMs: 300 })
      ledgers.push(ledger)
      return ledger
    },
  ],
]

describe.each(implementations)('%s (the ledger contract)', (_name, make) => {
  it('lets a burst through, then refuses with the time until the next unit', async () => {
    const ledger = make()
    const rate: ScopeLimit = {
      id: id('key'),
      kind: 'key',
      rate: { limit: 10, periodMs: 1000, burst: 3 },
    }
    for (let i = 0; i < 3; i++) expect((await ledger.acquire([rate], 1)).allowed).toBe(true)
    const refused = await ledger.acquire([rate], 1)
    expect(refused.allowed).toBe(false)
    if (!refused.allowed) {
      expect(refused.refusedBy).toBe('key')
      expect(refused.retryAfterMs).toBeGreaterThan(50)
      expect(refused.retryAfterMs).toBeLessThanOrEqual(100)
    }
    await sleep(110)
    expect((await ledger.acquire([rate], 1)).allowed).toBe(true)
  })

  it('takes nothing from any scope when one refuses', async () => {
    const ledger = make()
    const open: ScopeLimit = {
      id: id('ws'),
      kind: 'workspace',
      rate: { limit: 1, periodMs: 60_000, burst: 2 },
      concurrency: 5,
    }
    const shut: ScopeLimit = {
      id: id('key'),
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
    }
    expect((await ledger.acquire([shut], 1)).allowed).toBe(true)
    for (let i = 0; i < 10; i++) expect((await ledger.acquire([open, shut], 1)).allowed).toBe(false)
    const views = (await ledger.acquire([open], 1)).views
    expect(views[0]).toMatchObject({ name: 'workspace', remaining: 1 })
    expect((await ledger.acquire([open], 1)).allowed).toBe(true)
    expect((await ledger.acquire([open], 1)).allowed).toBe(false)
  })

  it('holds a concurrency slot until released', async () => {
    const ledger = make()
    const slots: ScopeLimit = { id: id('target'), kind: 'target', concurrency: 2 }
    const a = await ledger.acquire([slots], 1)
    const b = await ledger.acquire([slots], 1)
    const c = await ledger.acquire([slots], 1)
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false])
    if (!c.allowed) expect(c.reason).toBe('concurrency')
    if (a.allowed) a.lease.release()
    await sleep(20)
    expect((await ledger.acquire([slots], 1)).allowed).toBe(true)
  })

  it('keeps a sliding window without a boundary burst, and reports it', async () => {
    const ledger = make()
    const window: ScopeLimit = {
      id: id('global'),
      kind: 'global',
      window: { limit: 3, windowMs: 200 },
    }
    for (let i = 0; i < 3; i++) expect((await ledger.acquire([window], 1)).allowed).toBe(true)
    const refused = await ledger.acquire([window], 1)
    expect(refused.allowed).toBe(false)
    expect(refused.views[0]).toMatchObject({ name: 'global', quota: 3, remaining: 0 })
    await sleep(220)
    expect((await ledger.acquire([window], 1)).allowed).toBe(true)
  })

  it('counts cost units where the scope counts cost, and requests where it counts requests', async () => {
    const ledger = make()
    const tokens: ScopeLimit = {
      id: id('t'),
      kind: 'target',
      window: { limit: 10, windowMs: 60_000 },
      unit: 'cost',
    }
    const requests: ScopeLimit = {
      id: id('r'),
      kind: 'key',
      window: { limit: 2, windowMs: 60_000 },
      unit: 'request',
    }
    expect((await ledger.acquire([tokens, requests], 6)).allowed).toBe(true)
    const refused = await ledger.acquire([tokens, requests], 6)
    expect(refused).toMatchObject({ allowed: false, refusedBy: 'target' })
    expect((await ledger.acquire([tokens, requests], 4)).allowed).toBe(true)
    expect((await ledger.acquire([requests], 1)).allowed).toBe(false)
  })

  it('refuses at once what can never fit', async () => {
    const ledger = make()
    const rate: ScopeLimit = {
      id: id('k'),
      kind: 'key',
      rate: { limit: 5, periodMs: 1000, burst: 5 },
    }
    expect(await ledger.acquire([rate], 6)).toMatchObject({ allowed: false, impossible: true })
  })

  it('charges a debit to later requests', async () => {
    const ledger = make()
    const window: ScopeLimit = {
      id: id('w'),
      kind: 'target',
      window: { limit: 10, windowMs: 60_000 },
    }
    expect((await ledger.acquire([window], 1)).allowed).toBe(true)
    await ledger.debit([window], 9)
    expect((await ledger.acquire([window], 1)).allowed).toBe(false)
  })
})

describe('RedisLedger only', () => {
  it('frees the slots of a node that stopped renewing them after the lease TTL', async () => {
    const crashed = new RedisLedger({ redis, leaseTtlMs: 200 })
    const slots: ScopeLimit = { id: id('target'), kind: 'target', concurrency: 1 }
    expect((await crashed.acquire([slots], 1)).allowed).toBe(true)
    crashed.close()
    const survivor = new RedisLedger({ redis, leaseTtlMs: 200 })
    ledgers.push(survivor)
    expect((await survivor.acquire([slots], 1)).allowed).toBe(false)
    await sleep(260)
    expect((await survivor.acquire([slots], 1)).allowed).toBe(true)
  })

  it('keeps the slots of a live node beyond the TTL by renewing them', async () => {
    const live = new RedisLedger({ redis, leaseTtlMs: 150 })
    ledgers.push(live)
    const slots: ScopeLimit = { id: id('target'), kind: 'target', concurrency: 1 }
    const held = await live.acquire([slots], 1)
    await sleep(400)
    expect((await live.acquire([slots], 1)).allowed).toBe(false)
    if (held.allowed) held.lease.release()
  })

  it('spends a shared budget exactly once across many concurrent callers', async () => {
    const callers = Array.from({ length: 4 }, () => {
      const ledger = new RedisLedger({ redis: new Redis(server.url), leaseTtlMs: 1000 })
      ledgers.push(ledger)
      return ledger
    })
    const rate: ScopeLimit = {
      id: id('global'),
      kind: 'global',
      rate: { limit: 1, periodMs: 60_000, burst: 50 },
    }
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (callers[i % 4] as RedisLedger).acquire([rate], 1)),
    )
    expect(results.filter((r) => r.allowed)).toHaveLength(50)
  })
})
