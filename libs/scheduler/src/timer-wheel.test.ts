import { describe, expect, it } from 'vitest'
import { TimerWheel, type Timer } from './timer-wheel.ts'

function timer(id: number): Timer & { id: number } {
  return { id, dueAt: 0, timerPrev: null, timerNext: null }
}

/** Drives the wheel the way its host does: sleep until nextDueAt, advance, repeat. */
function runUntil(wheel: TimerWheel, end: number, start: number): Array<[number, number]> {
  const fired: Array<[number, number]> = []
  let now = start
  for (;;) {
    const next = wheel.nextDueAt()
    if (next === undefined || next > end) break
    expect(next).toBeGreaterThan(now)
    now = next
    wheel.advance(now, (t) => fired.push([(t as Timer & { id: number }).id, now]))
  }
  return fired
}

describe('TimerWheel', () => {
  it('fires every timer exactly at its due millisecond, across all levels', () => {
    let seed = 99
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647
    const start = 1_000_003
    const wheel = new TimerWheel(start)
    const due = new Map<number, number>()
    for (let i = 0; i < 3000; i++) {
      const delay = Math.floor(random() ** 3 * 3_000_000) + 1
      due.set(i, start + delay)
      wheel.schedule(timer(i), start + delay)
    }
    const fired = runUntil(wheel, start + 4_000_000, start)
    expect(fired).toHaveLength(3000)
    for (const [id, at] of fired) expect(at).toBe(due.get(id))
    expect(wheel.size).toBe(0)
  })

  it('never fires early and rounds fractional times up', () => {
    const wheel = new TimerWheel(0)
    const t = timer(1)
    wheel.schedule(t, 10.2)
    const fired: number[] = []
    wheel.advance(10, () => fired.push(10))
    wheel.advance(11, () => fired.push(11))
    expect(fired).toEqual([11])
  })

  it('cancels in O(1) and forgets cancelled timers', () => {
    const wheel = new TimerWheel(0)
    const a = timer(1)
    const b = timer(2)
    wheel.schedule(a, 5000)
    wheel.schedule(b, 5000)
    wheel.cancel(a)
    wheel.cancel(a)
    expect(wheel.size).toBe(1)
    expect(runUntil(wheel, 10_000, 0)).toEqual([[2, 5000]])
  })

  it('re-files a timer scheduled again', () => {
    const wheel = new TimerWheel(0)
    const a = timer(1)
    wheel.schedule(a, 100_000)
    wheel.schedule(a, 70)
    expect(wheel.size).toBe(1)
    expect(runUntil(wheel, 200_000, 0)).toEqual([[1, 70]])
  })

  it('holds timers beyond its horizon and fires them on time', () => {
    const wheel = new TimerWheel(0)
    const far = 6 * 3600 * 1000 + 17
    wheel.schedule(timer(1), far)
    expect(runUntil(wheel, far + 1000, 0)).toEqual([[1, far]])
  })
})
