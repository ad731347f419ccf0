import { describe, expect, it } from 'vitest'
import { AdaptiveLimit, type AdaptiveSettings } from '@fairlane/limits'

const on: AdaptiveSettings = { enabled: true, decrease: 0.5, increasePerSecond: 2 }

describe('adaptive lane limit', () => {
  it('adopts a stated rate and concurrency, never above the ceiling', () => {
    const limit = new AdaptiveLimit('adaptive:a')
    limit.observe(0, { status: 200, rps: 50, maxConcurrent: 4 }, on, { rps: 20 }, 10)
    expect(limit.scope(0, on)).toMatchObject({
      kind: 'upstream',
      rate: { limit: 20, periodMs: 1000, burst: 2 },
      concurrency: 4,
    })
    limit.observe(10, { status: 200, rps: 5 }, on, { rps: 20 }, 10)
    expect(limit.scope(10, on)?.rate?.limit).toBe(5)
  })

  it('cuts the rate on a bare 429, then recovers additively until it is back where it was', () => {
    const limit = new AdaptiveLimit('adaptive:b')
    limit.observe(0, { status: 429 }, on, {}, 10)
    expect(limit.scope(0, on)?.rate?.limit).toBe(5)
    expect(limit.scope(999, on)?.rate?.limit).toBe(5)
    expect(limit.scope(1_000, on)?.rate?.limit).toBe(7)
    expect(limit.scope(2_500, on)?.rate?.limit).toBe(9)
    // A second 429 while recovering cuts again, and recovery still aims at the first rate.
    limit.observe(2_600, { status: 429 }, on, {}, 9)
    expect(limit.scope(2_600, on)?.rate?.limit).toBe(4.5)
    // 4.5 + 3 steps × 2 = 10.5 ≥ 10: recovered, the cut is gone.
    expect(limit.scope(5_600, on)).toBeUndefined()
  })

  it('forgets the cut once recovered, and is then idle', () => {
    const limit = new AdaptiveLimit('adaptive:c')
    limit.observe(0, { status: 429 }, on, { rps: 8 }, 100)
    expect(limit.scope(0, on)?.rate?.limit).toBe(4)
    expect(limit.scope(2_000, on)).toBeUndefined()
    expect(limit.idle(2_000)).toBe(true)
  })

  it('blocks the lane until the time the upstream named', () => {
    const limit = new AdaptiveLimit('adaptive:d')
    limit.observe(100, { status: 429, retryAfterMs: 2_000, rps: 1 }, on, {}, 3)
    expect(limit.blockedUntil).toBe(2_100)
    expect(limit.idle(3_000)).toBe(false)
  })

  it('does nothing when disabled', () => {
    const limit = new AdaptiveLimit('adaptive:e')
    const off = { ...on, enabled: false }
    limit.observe(0, { status: 429, retryAfterMs: 1_000, rps: 1 }, off, {}, 3)
    expect(limit.scope(0, off)).toBeUndefined()
    expect(limit.blockedUntil).toBe(0)
  })
})
