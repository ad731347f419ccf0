import { describe, expect, it } from 'vitest'
import { LuaScript } from '@fairlane/limits'
import { useRedis } from './redis-fixture.ts'

// Each of the ledger's scripts on its own, against a real Redis: what it answers and what it
// leaves in the keys. The ledger contract test covers them through RedisLedger.

const db = useRedis()

const script = (name: string) =>
  new LuaScript(new URL(`../src/redis/scripts/${name}.lua`, import.meta.url))
const acquire = script('acquire')
const release = script('release')
const renew = script('renew')
const debit = script('debit')
const reserve = script('reserve-3')
const refund = script('refund-2')
const renewSlots = script('renew-slots-1')

let n = 0
/** The three keys of a fresh scope: gcra state, window log, concurrency leases. */
const scopeKeys = () => {
  const id = `scripts-${++n}`
  return { gcra: `{${id}}:gcra`, win: `{${id}}:win`, conc: `{${id}}:conc` }
}

async function serverNowMs(): Promise<number> {
  const [s, us] = await db.client().time()
  return Number(s) * 1000 + Number(us) / 1000
}

/** ARGV of acquire for one scope: 10 per second with a burst of 2, 3 per minute, 1 at once. */
const oneScope = (leaseId: string) => [1, leaseId, 60_000, 1, 1, 10, 1000, 2, 3, 60_000, 1, 0]

describe('the ledger scripts', () => {
  it('acquire takes from every limit when all pass, and nothing when one refuses', async () => {
    const k = scopeKeys()
    const keys = [k.gcra, k.win, k.conc]
    const before = await serverNowMs()
    const first = (await acquire.run(db.client(), keys, oneScope('lease-1'))) as (string | number)[]
    expect(first.slice(0, 4)).toEqual([1, 0, '0', 0])
    // One of a burst of 2 left; 2 of 3 in the window left.
    expect(Number(first[4])).toBe(1)
    expect(Number(first[6])).toBe(2)
    expect(Number(await db.client().get(k.gcra))).toBeGreaterThanOrEqual(before + 100)
    expect(await db.client().zcard(k.win)).toBe(1)
    expect(await db.client().zrange(k.conc, 0, -1)).toEqual(['lease-1'])

    // The concurrency slot is taken: refused, reason 2, and no key changes.
    const tat = await db.client().get(k.gcra)
    const second = (await acquire.run(db.client(), keys, oneScope('lease-2'))) as (
      string | number
    )[]
    expect(second.slice(0, 2)).toEqual([0, 1])
    expect(second[3]).toBe(2)
    expect(await db.client().get(k.gcra)).toBe(tat)
    expect(await db.client().zcard(k.win)).toBe(1)
    expect(await db.client().zrange(k.conc, 0, -1)).toEqual(['lease-1'])
  })

  it('acquire calls a cost above the burst impossible (reason 3)', async () => {
    const k = scopeKeys()
    const args = [5, 'big', 60_000, 1, 5, 10, 1000, 2, 0, 0, 0, 0]
    const reply = (await acquire.run(db.client(), [k.gcra, k.win, k.conc], args)) as (
      string | number
    )[]
    expect(reply.slice(0, 2)).toEqual([0, 1])
    expect(reply[3]).toBe(3)
    expect(await db.client().exists(k.gcra)).toBe(0)
  })

  it('release frees the lease in every set it was given; renew extends only a lease still held', async () => {
    const a = scopeKeys()
    const b = scopeKeys()
    const now = await serverNowMs()
    await db.client().zadd(a.conc, now + 1000, 'lease')
    await db.client().zadd(b.conc, now + 1000, 'lease', now + 1000, 'other')
    expect(await renew.run(db.client(), [a.conc, b.conc], ['lease', 60_000])).toBe(2)
    expect(Number(await db.client().zscore(b.conc, 'lease'))).toBeGreaterThan(now + 30_000)
    expect(await db.client().pttl(b.conc)).toBeGreaterThan(30_000)
    expect(await renew.run(db.client(), [a.conc], ['gone', 60_000])).toBe(0)
    expect(await db.client().zscore(a.conc, 'gone')).toBeNull()

    expect(await release.run(db.client(), [a.conc, b.conc], ['lease'])).toBe(2)
    expect(await db.client().zrange(a.conc, 0, -1)).toEqual([])
    expect(await db.client().zrange(b.conc, 0, -1)).toEqual(['other'])
  })

  it('debit moves the TAT on by the units and logs them in the window', async () => {
    const a = scopeKeys()
    const before = await serverNowMs()
    // 5 units on a scope of 10 per second: the TAT moves 500 ms ahead of now.
    expect(await debit.run(db.client(), [a.gcra, a.win], [5, 'debit-1', 1, 10, 1000, 60_000])).toBe(
      1,
    )
    const tat = Number(await db.client().get(a.gcra))
    expect(tat).toBeGreaterThanOrEqual(before + 500)
    expect(tat).toBeLessThan(before + 500 + 5_000)
    expect(await db.client().pttl(a.gcra)).toBeGreaterThan(0)
    const [member] = await db.client().zrange(a.win, 0, -1)
    expect(member).toMatch(/:debit-1:5$/)
  })

  it('reserve grants what is there, up to what was asked, and refund gives back units and slots', async () => {
    const k = scopeKeys()
    const keys = [k.gcra, k.win, k.conc]
    // 10 per second, burst 4, no window, 2 at once; ask for 6 units and 3 slots.
    const limits = [10, 1000, 4, 0, 0, 2]
    const granted = (
      (await reserve.run(db.client(), keys, [6, 3, ...limits, 'h', 60_000])) as string[]
    ).map(Number)
    expect(granted.slice(0, 4)).toEqual([4, 0, 2, 0])
    expect(await db.client().zrange(k.conc, 0, -1)).toEqual(['h:1', 'h:2'])

    const empty = (
      (await reserve.run(db.client(), keys, [1, 1, ...limits, 'g', 60_000])) as string[]
    ).map(Number)
    expect(empty[0]).toBe(0)
    expect(empty[1]).toBeGreaterThan(0)
    expect(empty[2]).toBe(0)

    expect(await refund.run(db.client(), [k.gcra, k.conc], [4, 10, 1000, 'h:1', 'h:2'])).toBe(1)
    expect(await db.client().exists(k.gcra)).toBe(0)
    expect(await db.client().zcard(k.conc)).toBe(0)
    const again = (
      (await reserve.run(db.client(), keys, [4, 2, ...limits, 'i', 60_000])) as string[]
    ).map(Number)
    expect(again.slice(0, 3)).toEqual([4, 0, 2])
  })

  it('renew-slots keeps the slots still held and drops those that expired', async () => {
    const k = scopeKeys()
    const now = await serverNowMs()
    await db.client().zadd(k.conc, now + 10_000, 'held', now - 1, 'expired')
    expect(
      await renewSlots.run(db.client(), [k.conc], [60_000, 'held', 'expired', 'never']),
    ).toEqual(['held'])
    expect(await db.client().zrange(k.conc, 0, -1)).toEqual(['held'])
    expect(Number(await db.client().zscore(k.conc, 'held'))).toBeGreaterThan(now + 30_000)
  })
})
