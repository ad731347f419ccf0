import { describe, expect, it } from 'vitest'
import { NewCallerGate } from './new-callers.ts'

const settings = (perSecond: number, burst: number) => ({ enabled: true, perSecond, burst })

describe('NewCallerGate', () => {
  it('lets in a burst of new callers, then one per 1/perSecond, and names the wait', () => {
    const gate = new NewCallerGate(settings(10, 3), 100, 0)
    expect([gate.admit('a', 0), gate.admit('b', 0), gate.admit('c', 0)]).toEqual([0, 0, 0])
    expect(gate.admit('d', 0)).toBe(100)
    expect(gate.admit('d', 40)).toBe(60)
    expect(gate.admit('d', 100)).toBe(0)
    expect(gate.admit('e', 100)).toBe(100)
  })

  it('never refuses a caller it let in, whatever the flood of new ones', () => {
    const gate = new NewCallerGate(settings(1, 1), 100, 0)
    expect(gate.admit('known', 0)).toBe(0)
    for (let i = 0; i < 10_000; i++) {
      gate.admit(`flood-${i}`, i)
      expect(gate.admit('known', i)).toBe(0)
    }
  })

  it('keeps the most recently let-in callers up to its bound; a forgotten one is new again', () => {
    // Four tokens and (practically) no refill: a fifth new caller is refused.
    const gate = new NewCallerGate(settings(0.001, 4), 3, 0)
    for (const caller of ['a', 'b', 'c']) gate.admit(caller, 0)
    // `a` comes back after the touch interval: it moves behind b and c, so `d` pushes out `b`.
    expect(gate.admit('a', 2000)).toBe(0)
    expect(gate.admit('d', 2000)).toBe(0)
    expect(gate.knownCallers).toBe(3)
    for (const caller of ['a', 'c', 'd']) expect(gate.admit(caller, 2000)).toBe(0)
    expect(gate.admit('b', 2000)).toBeGreaterThan(0)
  })

  it('a reload keeps the known callers and no more tokens than the new burst', () => {
    const gate = new NewCallerGate(settings(1, 100), 100, 0)
    gate.admit('known', 0)
    gate.configure(settings(1, 1), 100)
    expect(gate.admit('new-1', 0)).toBe(0)
    expect(gate.admit('new-2', 0)).toBe(1000)
    expect(gate.admit('known', 0)).toBe(0)
  })
})
