import { describe, expect, it } from 'vitest'
import type { ShareGrant } from '@fairlane/protocol'
import { LeasedShares, type GrantState } from './leased-shares.ts'

function setup(max = 8) {
  let now = 0
  /** What owners heard of their grants, as `owner grant unused open|closed`. */
  const states: string[] = []
  const slots: { owner: string; used: string[]; unused: string[] }[] = []
  const slotsDone: string[] = []
  const shares = new LeasedShares({
    now: () => now,
    max,
    grantState: (owner, state: GrantState) =>
      states.push(`${owner} ${state.grant} ${state.unused} ${state.open ? 'open' : 'closed'}`),
    settleSlots: (owner, used, unused) =>
      slots.push({ owner, used: [...used], unused: [...unused] }),
    slotDone: (owner, slot) => slotsDone.push(`${owner}:${slot}`),
  })
  return { shares, states, slots, slotsDone, advance: (ms: number) => (now += ms) }
}

/** A grant of `admissions` leaving the key's 10 at 9 down to 10 - admissions. */
function grantOf(
  id: string,
  admissions: number,
  partition = 'echo#0',
  ttlMs = 1000,
  slots?: string[],
): ShareGrant {
  const view = (remaining: number) => ({
    name: 'key',
    quota: 10,
    windowSeconds: 1,
    remaining,
    resetMs: (10 - remaining) * 100,
  })
  return {
    partition,
    ttlMs,
    id,
    admissions,
    views: [view(9)],
    ...(admissions > 1 ? { lastViews: [view(10 - admissions)] } : {}),
    ...(slots ? { slots } : {}),
  }
}

/** Takes `count` admissions of the lane, one request each. */
function takeMany(shares: LeasedShares, lane: string, count: number) {
  return Array.from({ length: count }, () => shares.take(lane))
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

  it('hands out granted admissions in order, each with the limits it leaves, then none', () => {
    const { shares, states } = setup()
    shares.grant('a', 'shard.1', grantOf('g1', 3))
    const taken = takeMany(shares, 'a', 3)
    expect(taken.map((t) => [t?.owner, t?.grant, t?.views[0]?.remaining])).toEqual([
      ['shard.1', 'g1', 9],
      ['shard.1', 'g1', 8],
      ['shard.1', 'g1', 7],
    ])
    // The one between the first and the last falls in line between them.
    expect(taken[1]?.views[0]?.resetMs).toBe(200)
    // None left: the grant waits for the next, which this request asks for.
    expect(shares.take('a')).toBeUndefined()
    expect(shares.wanted('a')).toBe(4)
    // All handed out, but requests hold them: the owner has heard nothing yet.
    expect(states).toEqual([])
    taken[0]?.end()
    taken[1]?.end()
    taken[1]?.end()
    expect(states).toEqual([])
    // The last request ends: nothing of the grant is left here, and nothing goes back.
    taken[2]?.end()
    expect(states).toEqual(['shard.1 g1 0 closed'])
    // The owner lends nothing more: the lane's grant ends, with nothing to give back.
    shares.refused('a')
    expect(states).toHaveLength(1)
  })

  it('gives back what an expired grant did not hand out, and keeps the grant open while its requests run', () => {
    const { shares, states, advance } = setup()
    shares.grant('a', 'shard.1', grantOf('g1', 3))
    const first = shares.take('a')
    advance(300)
    shares.sweep()
    expect(states).toEqual(['shard.1 g1 0 open'])
    advance(700)
    expect(shares.take('a')).toBeUndefined()
    // Expired: the 2 not handed out go back at once; the grant stays open for its request.
    expect(states[1]).toBe('shard.1 g1 2 open')
    advance(250)
    shares.sweep()
    expect(states[2]).toBe('shard.1 g1 0 open')
    first?.end()
    expect(states[3]).toBe('shard.1 g1 0 closed')
    expect(shares.openGrants).toBe(0)
    shares.sweep()
    expect(states).toHaveLength(4)
  })

  it('returns every grant of a revoked partition at once, and only those', () => {
    const { shares, states } = setup()
    shares.grant('a', 'shard.1', grantOf('ga', 2, 'echo#0'))
    shares.grant('b', 'shard.2', grantOf('gb', 1, 'other#0'))
    shares.take('a')?.end()
    shares.revoke('echo#0')
    expect(states).toEqual(['shard.1 ga 1 closed'])
    expect(shares.take('a')).toBeUndefined()
    expect(shares.take('b')?.grant).toBe('gb')
  })

  it('asks for the next grant ahead of need, when half is left, and adds it to what is left', () => {
    const { shares, states, advance } = setup(8)
    takeMany(shares, 'a', 8)
    expect(shares.wanted('a')).toBe(8)
    shares.grant('a', 'shard.1', grantOf('g1', 8))
    const firstThree = takeMany(shares, 'a', 3)
    expect(shares.wanted('a')).toBe(0)
    const fourth = shares.take('a')
    // 4 left of the 8 the lane wants: it asks for the other 4.
    expect(shares.wanted('a')).toBe(4)
    shares.grant('a', 'shard.1', grantOf('g2', 2))
    // Nothing went back: the first grant's 4 go first, then the new ones.
    expect(states).toEqual([])
    const next = takeMany(shares, 'a', 6)
    expect(next.map((t) => t?.grant)).toEqual(['g1', 'g1', 'g1', 'g1', 'g2', 'g2'])
    expect(shares.take('a')).toBeUndefined()
    for (const taken of [...firstThree, fourth, ...next]) taken?.end()
    expect(states).toEqual(['shard.1 g1 0 closed', 'shard.1 g2 0 closed'])
    // A merged grant lasts a TTL from its newest part; then it ends with nothing to give back.
    advance(1000)
    shares.sweep()
    expect(states).toHaveLength(2)
  })

  it('replaces a grant from another owner or partition instead of adding to it', () => {
    const { shares, states } = setup(8)
    takeMany(shares, 'a', 8)
    expect(shares.wanted('a')).toBe(8)
    shares.grant('a', 'shard.1', grantOf('g1', 2))
    shares.grant('a', 'shard.2', grantOf('g2', 1))
    expect(states).toEqual(['shard.1 g1 2 closed'])
    expect(shares.take('a')).toMatchObject({ owner: 'shard.2', grant: 'g2' })
  })

  it('hands each request a lent slot, which goes on to the next when the request ends', () => {
    const { shares, states, slots, slotsDone } = setup(8)
    takeMany(shares, 'a', 8)
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf('g1', 6, 'echo#0', 1000, ['s1', 's2']))
    const first = shares.take('a')
    const second = shares.take('a')
    expect(first?.slot && second?.slot).toBeTruthy()
    // Both slots are in use: the third request goes through the owner, and the lane asks
    // for more although most of its admissions are left.
    expect(shares.take('a')).toBeUndefined()
    expect(shares.wanted('a')).toBeGreaterThan(0)
    shares.refused('a')
    first?.end()
    first?.slot?.release()
    first?.slot?.release()
    const third = shares.take('a')
    expect(third?.grant).toBe('g1')
    expect(shares.take('a')).toBeUndefined()
    // The grant is revoked while two requests hold its slots: those are kept (the owner
    // holds them), the admissions not handed out go back, and each slot is done when its
    // request ends.
    shares.revoke('echo#0')
    expect(slots).toEqual([{ owner: 'shard.1', used: ['s1', 's2'], unused: [] }])
    expect(states).toEqual(['shard.1 g1 3 open'])
    second?.end()
    second?.slot?.release()
    expect(slotsDone).toEqual(['shard.1:s1'])
    third?.end()
    expect(states.at(-1)).toBe('shard.1 g1 0 closed')
  })

  it('asks for slots up to twice what its requests held at once, not more with every grant', () => {
    const { shares } = setup(8)
    takeMany(shares, 'a', 8)
    shares.wanted('a')
    // No grant yet: a few, to learn how many the lane's requests hold.
    expect(shares.slotsWanted('a')).toBe(8)
    shares.grant('a', 'shard.1', grantOf('g1', 6, 'echo#0', 1000, ['s1', 's2']))
    takeMany(shares, 'a', 2)
    // Two held at once, two held in all: twice that is under the first few.
    expect(shares.slotsWanted('a')).toBe(6)
    shares.grant('a', 'shard.1', grantOf('g2', 6, 'echo#0', 1000, ['s3', 's4', 's5', 's6', 's7']))
    expect(shares.slotsWanted('a')).toBe(1)
    // Seven held at once: it may hold fourteen.
    takeMany(shares, 'a', 5)
    expect(shares.slotsWanted('a')).toBe(7)
  })

  it('names its slots, free or in use, at every sweep: they outlive the grant they came with', () => {
    const { shares, slots, advance } = setup(8)
    takeMany(shares, 'a', 8)
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf('g1', 3, 'echo#0', 1000, ['s1', 's2']))
    shares.take('a')
    advance(250)
    shares.sweep()
    expect(slots).toEqual([{ owner: 'shard.1', used: ['s1', 's2'], unused: [] }])
  })

  it('adds the slots of a grant from the same owner to the rest, and gives free ones back', () => {
    const { shares, slots, states } = setup(8)
    takeMany(shares, 'a', 8)
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf('g1', 2, 'echo#0', 1000, ['s1']))
    const held = shares.take('a')
    shares.grant('a', 'shard.1', grantOf('g2', 2, 'echo#0', 1000, ['s2']))
    expect(shares.take('a')?.slot).toBeTruthy()
    // A grant without slots (the lane's concurrency limit went away) replaces this one.
    shares.grant('a', 'shard.1', grantOf('g3', 1))
    expect(slots).toEqual([{ owner: 'shard.1', used: ['s1', 's2'], unused: [] }])
    expect(states).toEqual(['shard.1 g2 2 closed'])
    held?.slot?.release()
    expect(shares.take('a')).toMatchObject({ grant: 'g3' })
    expect(shares.take('a')).toBeUndefined()
  })

  it('gives back what a merged grant did not hand out when revoked, and closes each part once its requests end', () => {
    const { shares, states } = setup(8)
    takeMany(shares, 'a', 8)
    shares.wanted('a')
    shares.grant('a', 'shard.1', grantOf('g1', 2))
    const fromFirst = takeMany(shares, 'a', 2)
    shares.grant('a', 'shard.1', grantOf('g2', 3))
    const fromSecond = shares.take('a')
    expect(fromSecond?.grant).toBe('g2')
    // g1 is all handed out, its requests still run; g2 has 2 left and one request.
    shares.revoke('echo#0')
    expect(states).toEqual(['shard.1 g2 2 open'])
    fromSecond?.end()
    for (const taken of fromFirst) taken?.end()
    expect(states).toEqual(['shard.1 g2 2 open', 'shard.1 g2 0 closed', 'shard.1 g1 0 closed'])
  })

  it('gives back on close what it holds, and closes grants whose requests end after', () => {
    const { shares, states } = setup()
    shares.grant('a', 'shard.1', grantOf('g1', 3))
    const running = shares.take('a')
    shares.close()
    expect(states).toEqual(['shard.1 g1 2 open'])
    running?.end()
    expect(states.at(-1)).toBe('shard.1 g1 0 closed')
    expect(shares.openGrants).toBe(0)
  })

  it('takes a request that never ends for lost after the longest hold, and closes its grant', () => {
    let now = 0
    const states: string[] = []
    const shares = new LeasedShares({
      now: () => now,
      max: 8,
      maxHoldMs: 60_000,
      grantState: (owner, state) => states.push(`${state.grant} ${state.unused} ${state.open}`),
      settleSlots: () => undefined,
      slotDone: () => undefined,
    })
    shares.grant('a', 'shard.1', grantOf('g1', 1))
    const stuck = shares.take('a')
    now += 59_000
    shares.sweep()
    expect(states.at(-1)).toBe('g1 0 true')
    now += 2_000
    shares.sweep()
    expect(states.at(-1)).toBe('g1 0 false')
    expect(shares.openGrants).toBe(0)
    // Its end, if it ever comes, says nothing more.
    stuck?.end()
    shares.sweep()
    expect(states).toHaveLength(2)
  })

  it('keeps memory bounded, and gives everything back on close', () => {
    const { shares, states } = setup()
    const bounded = new LeasedShares({
      now: () => 0,
      max: 4,
      maxLanes: 2,
      grantState: () => undefined,
      settleSlots: () => undefined,
      slotDone: () => undefined,
    })
    bounded.take('x')
    bounded.take('y')
    bounded.take('z')
    bounded.take('z')
    expect(bounded.wanted('z')).toBe(0)
    shares.grant('a', 'shard.1', grantOf('g1', 1))
    shares.close()
    expect(states).toEqual(['shard.1 g1 1 closed'])
    expect(shares.granted).toBe(0)
    expect(shares.openGrants).toBe(0)
    // A grant asked for before closing and answered after goes straight back.
    shares.grant('a', 'shard.1', grantOf('g2', 2))
    expect(states.at(-1)).toBe('shard.1 g2 2 closed')
    expect(shares.take('a')).toBeUndefined()
  })
})
