import { describe, expect, it } from 'vitest'
import type { ShareGrant } from '@fairlane/protocol'
import { LeasedShares } from './leased-shares.ts'

function setup(max = 8) {
  let now = 0
  const settled: { owner: string; used: string[]; unused: string[] }[] = []
  const slotsDone: string[] = []
  const shares = new LeasedShares({
    now: () => now,
    max,
    settle: (owner, used, unused) => settled.push({ owner, used: [...used], unused: [...unused] }),
    slotDone: (owner, slot) => slotsDone.push(`${owner}:${slot}`),
  })
  return { shares, settled, slotsDone, advance: (ms: number) => (now += ms) }
}

function grantOf(ids: string[], partition = 'echo#0', ttlMs = 1000, slots?: string[]): ShareGrant {
  return {
    partition,
    ttlMs,
    ...(slots ? { slots } : {}),
    admissions: ids.map((leaseId, i) => ({
      leaseId,
      views: [
        { name: 'key', quota: 10, windowSeconds: 1, remaining: ids.length - 1 - i, resetMs: 0 },
      ],
    })),
  }
}

describe('LeasedShares', () => {
  it('asks only for a lane with demand, sized by it and capped', () => {
    const { shares } = setup(3)
    expect(shares.take('a')).toBeUndefined()
    expect(shares.wanted('a')).toBe(0)
    for (let i = 0; i < 5; i++) shares.take('a')
    expect(shares.wanted('a')).toBe(3)
    // Asked once: not again until the answer.
    expect(shares.wanted('a')).toBe(0)
    shares.refused('a')
    expect(shares.wanted('a')).toBe(3)
  })

  it('asks for a slow lane what it sent over the last second, not for one slower still', () => {
    const { shares, advance } = setup()
    // 4 a second: never 2 in one 250 ms window; sized by the last second instead.
    shares.take('a')
    expect(shares.wanted('a')).toBe(0)
    for (const sentInLastSecond of [2, 3, 4, 4, 4]) {
      advance(250)
      shares.take('a')
      expect(shares.wanted('a')).toBe(sentInLastSecond)
      shares.refused('a')
    }
    // 1 a second: never 2 in any second.
    for (let i = 0; i < 5; i++) {
      shares.take('b')
      expect(shares.wanted('b')).toBe(0)
      advance(1000)
    }
  })

  it('hands out granted admissions in order, then none; the lane settles what it used', () => {
    const { shares, settled, advance } = setup()
    shares.grant('a', 'shard.1', grantOf(['l1', 'l2']))
    expect(shares.take('a')).toMatchObject({
      owner: 'shard.1',
      admission: { leaseId: 'l1', views: [{ remaining: 1 }] },
    })
    expect(shares.take('a')?.admission.leaseId).toBe('l2')
    // None left: the grant waits for the next, which this request asks for.
    expect(shares.take('a')).toBeUndefined()
    expect(shares.wanted('a')).toBe(3)
    expect(settled).toEqual([])
    // The owner lends nothing more: the grant ends, and says what was used.
    shares.refused('a')
    expect(settled).toEqual([{ owner: 'shard.1', used: ['l1', 'l2'], unused: [] }])
    expect(shares.take('b')).toBeUndefined()
    advance(10)
    shares.sweep()
    expect(settled).toHaveLength(1)
  })

  it('gives back what an expired grant did not use, and tells the owner what is in use meanwhile', () => {
    const { shares, settled, advance } = setup()
    shares.grant('a', 'shard.1', grantOf(['l1', 'l2', 'l3']))
    shares.take('a')
    advance(300)
    shares.sweep()
    expect(settled).toEqual([{ owner: 'shard.1', used: ['l1'], unused: [] }])
    advance(700)
    expect(shares.take('a')).toBeUndefined()
    expect(settled[1]).toEqual({ owner: 'shard.1', used: [], unused: ['l3', 'l2'] })
  })

  it('returns every grant of a revoked partition at once, and only those', () => {
    const { shares, settled } = setup()
    shares.grant('a', 'shard.1', grantOf(['a1', 'a2'], 'echo#0'))
    shares.grant('b', 'shard.2', grantOf(['b1'], 'other#0'))
    shares.take('a')
    shares.revoke('echo#0')
    expect(settled).toEqual([{ owner: 'shard.1', used: ['a1'], unused: ['a2'] }])
    expect(shares.take('a')).toBeUndefined()
    expect(shares.take('b')?.admission.leaseId).toBe('b1')
  })

  it('asks for the next grant ahead of need, when half is left, and adds it to what is left', () => {
    const { shares, settled, advance } = setup(8)
    for (let i = 0; i < 8; i++) shares.take('a')
    expect(shares.wanted('a')).toBe(8)
    shares.grant('a', 'shard.1', grantOf(['1', '2', '3', '4', '5', '6', '7', '8']))
    for (let i = 0; i < 3; i++) shares.take('a')
    expect(shares.wanted('a')).toBe(0)
    shares.take('a')
    // 4 left of the 8 the lane wants: it asks for the other 4.
    expect(shares.wanted('a')).toBe(4)
    shares.grant('a', 'shard.1', grantOf(['9', '10']))
    // Nothing went back: the first grant's 4 go first, then the new ones.
    expect(settled).toEqual([])
    const next = Array.from({ length: 6 }, () => shares.take('a')?.admission.leaseId)
    expect(next).toEqual(['5', '6', '7', '8', '9', '10'])
    expect(shares.take('a')).toBeUndefined()
    // A merged grant lasts a TTL from its newest part; then it ends and says what was used.
    advance(1000)
    shares.sweep()
    expect(settled).toEqual([
      { owner: 'shard.1', used: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'], unused: [] },
    ])
  })

  it('replaces a grant from another owner or partition instead of adding to it', () => {
    const { shares, settled } = setup(8)
    for (let i = 0; i < 8; i++) shares.take('a')
    expect(shares.wanted('a')).toBe(8)
    shares.grant('a', 'shard.1', grantOf(['1', '2']))
    shares.grant('a', 'shard.2', grantOf(['3']))
    expect(settled).toEqual([{ owner: 'shard.1', used: [], unused: ['2', '1'] }])
    expect(shares.take('a')).toMatchObject({ owner: 'shard.2', admission: { leaseId: '3' } })
  })

  it('hands each request a lent slot, which goes on to the next when the request ends', () => {
    const { shares, settled, slotsDone } = setup(8)
    for (let i = 0; i < 8; i++) shares.take('a')
    shares.wanted('a')
    shares.grant(
      'a',
      'shard.1',
      grantOf(['1', '2', '3', '4', '5', '6'], 'echo#0', 1000, ['s1', 's2']),
    )
    const first = shares.take('a')
    const second = shares.take('a')
    expect([first?.admission.leaseId, second?.admission.leaseId]).toEqual(['1', '2'])
    expect(first?.slot && second?.slot).toBeTruthy()
    // Both slots are in use: the third request goes through the owner, and the lane asks
    // for more although most of its admissions are left.
    expect(shares.take('a')).toBeUndefined()
    expect(shares.wanted('a')).toBeGreaterThan(0)
    shares.refused('a')
    first?.slot?.release()
    first?.slot?.release()
    expect(shares.take('a')?.admission.leaseId).toBe('3')
    expect(shares.take('a')).toBeUndefined()
    // The grant is revoked while two requests hold its slots: those are `used` (the owner
    // keeps them), the rest goes back, and each slot is done when its request ends.
    shares.revoke('echo#0')
    expect(settled).toEqual([
      { owner: 'shard.1', used: ['1', '2', '3', 's1', 's2'], unused: ['6', '5', '4'] },
    ])
    second?.slot?.release()
    expect(slotsDone).toEqual(['shard.1:s1'])
  })

  it('names its slots, free or in use, at every sweep: they outlive the grant they came with', () => {
    const { shares, settled, advance } = setup(8)
    for (let i = 0; i < 8; i++) shares.take('a')
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf(['1', '2', '3'], 'echo#0', 1000, ['s1', 's2']))
    shares.take('a')
    advance(250)
    shares.sweep()
    expect(settled).toEqual([{ owner: 'shard.1', used: ['1', 's1', 's2'], unused: [] }])
    advance(250)
    shares.sweep()
    expect(settled.at(-1)).toEqual({ owner: 'shard.1', used: ['s1', 's2'], unused: [] })
  })

  it('adds the slots of a grant from the same owner to the rest, and gives free ones back', () => {
    const { shares, settled } = setup(8)
    for (let i = 0; i < 8; i++) shares.take('a')
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf(['1', '2'], 'echo#0', 1000, ['s1']))
    const held = shares.take('a')
    shares.grant('a', 'shard.1', grantOf(['3', '4'], 'echo#0', 1000, ['s2']))
    expect(shares.take('a')?.slot).toBeTruthy()
    // A grant without slots (the lane's concurrency limit went away) replaces this one.
    shares.grant('a', 'shard.1', grantOf(['5']))
    expect(settled).toEqual([
      { owner: 'shard.1', used: ['1', '2', 's1', 's2'], unused: ['4', '3'] },
    ])
    held?.slot?.release()
    expect(shares.take('a')).toMatchObject({ admission: { leaseId: '5' } })
    expect(shares.take('a')).toBeUndefined()
  })

  it('keeps memory bounded, and gives everything back on close', () => {
    const { shares, settled } = setup()
    const bounded = new LeasedShares({
      now: () => 0,
      max: 4,
      maxLanes: 2,
      settle: () => undefined,
      slotDone: () => undefined,
    })
    bounded.take('x')
    bounded.take('y')
    bounded.take('z')
    bounded.take('z')
    expect(bounded.wanted('z')).toBe(0)
    shares.grant('a', 'shard.1', grantOf(['l1']))
    shares.close()
    expect(settled).toEqual([{ owner: 'shard.1', used: [], unused: ['l1'] }])
    expect(shares.granted).toBe(0)
    // A grant asked for before closing and answered after goes straight back.
    shares.grant('a', 'shard.1', grantOf(['l2']))
    expect(settled.at(-1)).toEqual({ owner: 'shard.1', used: [], unused: ['l2'] })
    expect(shares.take('a')).toBeUndefined()
  })
})
