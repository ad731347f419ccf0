import { describe, expect, it } from 'vitest'
import {
  newWindowState,
  windowCheck,
  windowCommit,
  windowDebit,
  type WindowParams,
} from './sliding-window.ts'

function take(
  state: ReturnType<typeof newWindowState>,
  now: number,
  params: WindowParams,
  cost = 1,
): boolean {
  const outcome = windowCheck(state, now, cost, params)
  if (outcome.allowed) windowCommit(state, now, cost)
  return outcome.allowed
}

describe('sliding window log', () => {
  const perMinute = { limit: 10, windowMs: 60_000 }

  it('has no burst at a window boundary', () => {
    const state = newWindowState(perMinute)
    // 10 at the end of one minute, then the next minute starts: a fixed window would allow
    // 10 more at once; a sliding window allows none until the first ones are a minute old.
    for (let i = 0; i < 10; i++) expect(take(state, 59_000, perMinute)).toBe(true)
    expect(take(state, 60_001, perMinute)).toBe(false)
    expect(take(state, 118_999, perMinute)).toBe(false)
    expect(take(state, 119_000, perMinute)).toBe(true)
  })

  it('never admits more than the limit in any window (property)', () => {
    let seed = 7
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
    const state = newWindowState(perMinute)
    const admitted: number[] = []
    let now = 0
    for (let i = 0; i < 5000; i++) {
      now += random() * 2000
      if (take(state, now, perMinute)) admitted.push(now)
    }
    for (let i = 10; i < admitted.length; i++) {
      expect((admitted[i] as number) - (admitted[i - 10] as number)).toBeGreaterThanOrEqual(60_000)
    }
  })

  it('gives the exact time at which a refused request fits', () => {
    const state = newWindowState(perMinute)
    for (let i = 0; i < 10; i++) take(state, i * 1000, perMinute)
    const refused = windowCheck(state, 20_000, 3, perMinute)
    expect(refused.allowed).toBe(false)
    // Three units must expire: the third oldest was taken at 2000 and expires at 62000.
    expect(refused.retryAfterMs).toBe(42_000)
    expect(take(state, 61_999, perMinute, 3)).toBe(false)
    expect(take(state, 62_000, perMinute, 3)).toBe(true)
  })

  it('reports remaining units', () => {
    const state = newWindowState(perMinute)
    expect(windowCheck(state, 0, 4, perMinute).remaining).toBe(6)
    windowCommit(state, 0, 4)
    expect(windowCheck(state, 1, 1, perMinute).remaining).toBe(5)
  })

  it('takes debits after the fact, capped at the limit', () => {
    const state = newWindowState(perMinute)
    take(state, 0, perMinute)
    windowDebit(state, 10, 50)
    expect(state.size).toBe(10)
    expect(take(state, 60_009, perMinute)).toBe(false)
    expect(take(state, 60_010, perMinute)).toBe(true)
  })
})
