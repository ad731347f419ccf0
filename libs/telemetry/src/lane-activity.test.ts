import { describe, expect, it } from 'vitest'
import { LaneActivity, OTHER_CALLERS, WAIT_BUCKETS_MS } from './lane-activity.ts'

describe('LaneActivity', () => {
  it('counts admissions, refusals and waits inside the window and forgets older ones', () => {
    let now = 100_000
    const activity = new LaneActivity({ now: () => now })
    const lane = activity.lane('acme', 'k1', 'echo', 'paid')
    lane.enter()
    lane.leave()
    lane.admitted(0)
    lane.admitted(30)
    lane.refused('rate_limited')
    lane.enter()
    now += 5_000
    lane.admitted(70_000)
    let view = activity.snapshot().lanes[0]
    expect(view).toMatchObject({
      workspace: 'acme',
      caller: 'k1',
      target: 'echo',
      tier: 'paid',
      queued: 1,
      admitted: 3,
      refused: { rate_limited: 1 },
    })
    // 0 ms in the first bucket, 30 ms in the ≤50 ms one, 70 s above every bound.
    expect(view?.wait[0]).toBe(1)
    expect(view?.wait[WAIT_BUCKETS_MS.indexOf(50)]).toBe(1)
    expect(view?.wait[WAIT_BUCKETS_MS.length]).toBe(1)
    now += 6_000
    view = activity.snapshot().lanes[0]
    expect(view).toMatchObject({ admitted: 1, refused: {}, queued: 1 })
    // The slots that fell out of the window took their waits with them.
    expect(view?.wait.reduce((a, b) => a + b, 0)).toBe(1)
    expect(view?.wait[WAIT_BUCKETS_MS.length]).toBe(1)
    lane.leave()
    now += 20_000
    // Idle and outside the window: dropped.
    expect(activity.snapshot().lanes).toEqual([])
  })

  it('keeps the admissions of a lane’s first slot when it is seen in a later one', () => {
    let now = 100_000
    const activity = new LaneActivity({ now: () => now })
    const lane = activity.lane('acme', 'k1', 'echo', 'paid')
    lane.admitted(0)
    lane.admitted(0)
    expect(activity.snapshot().lanes[0]).toMatchObject({ admitted: 2 })
    now += 3_000
    lane.admitted(0)
    lane.refused('queue_full')
    let view = activity.snapshot().lanes[0]
    expect(view).toMatchObject({ admitted: 3, refused: { queue_full: 1 } })
    expect(view?.wait[0]).toBe(3)
    // The first slot leaves the window, the later one stays.
    now += 8_000
    view = activity.snapshot().lanes[0]
    expect(view).toMatchObject({ admitted: 1, refused: { queue_full: 1 } })
    expect(view?.wait[0]).toBe(1)
  })

  it('forgets a lane seen in one slot once that slot leaves the window', () => {
    let now = 100_000
    const activity = new LaneActivity({ now: () => now })
    const lane = activity.lane('acme', 'k1', 'echo', 'paid')
    lane.admitted(0)
    lane.enter()
    now += 11_000
    expect(activity.snapshot().lanes[0]).toMatchObject({ admitted: 0, queued: 1 })
    expect(activity.snapshot().lanes[0]?.wait[0]).toBe(0)
  })

  it('reports how much of the window it has seen', () => {
    let now = 0
    const activity = new LaneActivity({ now: () => now })
    now = 2_500
    expect(activity.snapshot().windowSeconds).toBe(2.5)
    now = 60_000
    const { windowSeconds } = activity.snapshot()
    expect(windowSeconds).toBeGreaterThanOrEqual(9)
    expect(windowSeconds).toBeLessThanOrEqual(10)
  })

  it('counts lanes beyond maxLanes together, per workspace and target', () => {
    const activity = new LaneActivity({ now: () => 0, maxLanes: 2 })
    activity.lane('w', 'a', 't', 'free').admitted(0)
    activity.lane('w', 'b', 't', 'free').admitted(0)
    activity.lane('w', 'c', 't', 'free').admitted(0)
    activity.lane('w', 'd', 't', 'free').admitted(0)
    const lanes = activity.snapshot().lanes
    expect(lanes.map((l) => [l.caller, l.admitted])).toEqual([
      ['a', 1],
      ['b', 1],
      [OTHER_CALLERS, 2],
    ])
  })

  it('takes new lanes again once idle ones leave the window', () => {
    let now = 0
    const activity = new LaneActivity({ now: () => now, maxLanes: 1 })
    activity.lane('w', 'a', 't', 'free').admitted(0)
    activity.lane('w', 'b', 't', 'free').admitted(0)
    now = 30_000
    activity.lane('w', 'c', 't', 'free').admitted(0)
    expect(activity.snapshot().lanes.map((l) => l.caller)).toEqual(['c'])
  })
})
