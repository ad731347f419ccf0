import { afterEach, describe, expect, it } from 'vitest'
import type { ScopeLimit } from '@fairlane/limits'
import type { Ticket } from '@fairlane/protocol'
import type { PartitionSettings, QueueActor } from './index.ts'
import { FREE_TIER, testActor } from './test-actor.ts'

const settings: PartitionSettings = {
  ...FREE_TIER,
  bounds: { perLane: 10, perWorkspace: 100, perPartition: 100 },
}

let actor: QueueActor | undefined
afterEach(() => actor?.close())

function actorWith(
  scopes: ScopeLimit[] | ((ticket: Ticket) => ScopeLimit[]),
  onContention?: (partition: string) => void,
): QueueActor {
  const created = testActor({
    scopesOf: typeof scopes === 'function' ? scopes : () => scopes,
    settings: () => settings,
    ...(onContention ? { onContention } : {}),
  }).actor
  actor = created
  return created
}

const ticket = (keyId: string, n = 0): Ticket => ({
  requestId: `${keyId}-${n}`,
  workspace: 'w',
  keyId,
  target: 'echo',
  cost: 1,
})

const perMinute: ScopeLimit = {
  id: 'key:w/a',
  kind: 'key',
  rate: { limit: 5, periodMs: 60_000, burst: 5 },
}

describe('QueueActor leased shares', () => {
  it('prefetches at most half of what a limit has left, and they count as admitted', async () => {
    const perHour: ScopeLimit = {
      id: 'key:w/a',
      kind: 'key',
      rate: { limit: 9, periodMs: 3_600_000, burst: 9 },
    }
    const queue = actorWith([perHour])
    expect((await queue.admit(ticket('a'))).allowed).toBe(true)
    // 8 left: 4 lent, 4 stay for the lane's other nodes.
    const share = queue.prefetch(ticket('a', 1), 10)
    expect(share.admissions).toBe(4)
    expect(share.views[0]).toMatchObject({ quota: 9, remaining: 7 })
    expect(share.lastViews[0]).toMatchObject({ quota: 9, remaining: 4 })
    expect(queue.prefetch(ticket('a', 2), 10).admissions).toBe(2)
    expect(queue.prefetch(ticket('a', 3), 10).admissions).toBe(1)
    expect(queue.prefetch(ticket('a', 4), 10).admissions).toBe(1)
    // The limit is spent: the next ticket would wait an hour, far beyond its 2 s tier wait.
    const refused = await queue.admit(ticket('a', 5))
    expect(refused).toMatchObject({ allowed: false, code: 'rate_limited' })
  })

  it('refunds the units of a share given back unused, and only of that one', async () => {
    const queue = actorWith([perMinute])
    // Of 5, 3 are lent (the third leaves 2, fewer than the 3 lent), 2 stay.
    const share = queue.prefetch(ticket('a'), 5)
    expect(share.admissions).toBe(3)
    // Two go back unused; the third was used, and its request's news costs nothing more.
    share.lent?.refund(2)
    share.lent?.ended({ upstream: { status: 200 } })
    // 4 left again: 2 lent.
    expect(queue.prefetch(ticket('a', 1), 5).admissions).toBe(2)
  })

  it('lends concurrency slots apart from admissions: half of those free, held until released', () => {
    const slots: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 8 }
    const queue = actorWith([slots])
    // No rate limit: admissions as many as asked; slots half of the 8 free. Lending all 8
    // would leave the lane's next ticket waiting at the owner, which revokes the share.
    const first = queue.prefetch(ticket('a'), 10)
    expect(first.admissions).toBe(10)
    expect(first.slots).toHaveLength(4)
    // Admissions hold no slot: giving them back frees none.
    first.lent?.refund(10)
    expect(queue.prefetch(ticket('b'), 10).slots).toHaveLength(2)
    expect(queue.prefetch(ticket('b'), 10).slots).toHaveLength(1)
    // One slot free: half of it is none, so nothing is lent with a ticket; a node topping up
    // a grant holds slots already, and is lent admissions alone.
    expect(queue.prefetch(ticket('b'), 10)).toEqual({
      partition: 'echo#0',
      admissions: 0,
      views: [],
      lastViews: [],
    })
    const topUp = queue.prefetch(ticket('b'), 10, true)
    expect(topUp.admissions).toBe(10)
    expect(topUp.slots).toEqual([])
    first.slots?.[0]?.release()
    first.slots?.[1]?.release()
    expect(queue.prefetch(ticket('b'), 10).slots).toHaveLength(1)
  })

  it('lends no more slots than the node asks for, and admissions alone to one that holds enough', () => {
    const many: ScopeLimit = { id: 'key:w/a', kind: 'key', concurrency: 1_000_000 }
    const queue = actorWith([many])
    // Half of a million free would be lent with every grant, far beyond a node's requests.
    const share = queue.prefetch(ticket('a'), 10, false, 3)
    expect(share.admissions).toBe(10)
    expect(share.slots).toHaveLength(3)
    const enough = queue.prefetch(ticket('a', 1), 10, false, 0)
    expect(enough.admissions).toBe(10)
    expect(enough.slots).toEqual([])
  })

  it('lends no more slots than admissions, and none for a lane without a concurrency limit', () => {
    const both: ScopeLimit = {
      id: 'key:w/a',
      kind: 'key',
      rate: { limit: 4, periodMs: 3_600_000, burst: 4 },
      concurrency: 64,
    }
    const queue = actorWith((t) => (t.keyId === 'a' ? [both] : []))
    const share = queue.prefetch(ticket('a'), 10)
    expect(share.admissions).toBe(2)
    expect(share.slots).toHaveLength(2)
    // Giving a slot back refunds no rate unit: 2 left, 1 lent.
    share.slots?.[0]?.release()
    expect(queue.prefetch(ticket('a', 1), 10).admissions).toBe(1)
    expect(queue.prefetch(ticket('c'), 3)).not.toHaveProperty('slots')
  })

  it('refunds a learned upstream limit too when a share goes back unused', async () => {
    const adaptiveSettings: PartitionSettings = {
      ...settings,
      adaptive: { enabled: true, decrease: 0.5, increasePerSecond: 0 },
    }
    const queue = testActor({ scopesOf: () => [], settings: () => adaptiveSettings }).actor
    actor = queue
    const first = await queue.admit(ticket('a'))
    if (!first.allowed) throw new Error('refused')
    // The upstream says 4 a second: the lane learns it as a limit of its own.
    first.lease.release({ upstream: { status: 200, rps: 4 } })
    const share = queue.prefetch(ticket('a', 1), 10)
    expect(share.admissions).toBeGreaterThan(0)
    share.lent?.refund(share.admissions)
    // Everything came back: the same share can be lent again.
    expect(queue.prefetch(ticket('a', 2), 10).admissions).toBe(share.admissions)
  })

  it('grants nothing while the partition has a waiting ticket, and says when one starts waiting', async () => {
    const backlogged: string[] = []
    // Key b may go once per 100 ms; key c has no limit of its own.
    const paced: ScopeLimit = {
      id: 'key:w/b',
      kind: 'key',
      rate: { limit: 10, periodMs: 1000, burst: 1 },
    }
    const queue = actorWith(
      (t) => (t.keyId === 'b' ? [paced] : []),
      (partition) => backlogged.push(partition),
    )
    expect((await queue.admit(ticket('b'))).allowed).toBe(true)
    expect(backlogged).toEqual([])
    const waiting = queue.admit(ticket('b', 1))
    expect(backlogged).toEqual(['echo#0'])
    expect(queue.prefetch(ticket('c'), 1).admissions).toBe(0)
    expect((await waiting).allowed).toBe(true)
    expect(queue.prefetch(ticket('c'), 1).admissions).toBe(1)
  })
})
