import { describe, expect, it } from 'vitest'
import { Batcher, flushAfter, type FlushSchedule } from './batcher.ts'

/** A schedule fired by hand: the test is the clock. */
function manual() {
  let due: (() => void) | undefined
  let scheduled = 0
  const schedule: FlushSchedule = (flush) => {
    scheduled++
    due = flush
    return () => {
      due = undefined
    }
  }
  return {
    schedule,
    get scheduled() {
      return scheduled
    },
    get pending() {
      return due !== undefined
    },
    fire() {
      const flush = due
      due = undefined
      flush?.()
    },
  }
}

function batcher(maxItems: number, schedule: FlushSchedule) {
  const sent: [string, number[]][] = []
  const b = new Batcher<number>({ maxItems, schedule, send: (d, items) => sent.push([d, items]) })
  return { b, sent }
}

describe('Batcher', () => {
  it('sends each destination its items in order, in one batch per flush', () => {
    const clock = manual()
    const { b, sent } = batcher(64, clock.schedule)
    b.add('a', 1)
    b.add('b', 2)
    b.add('a', 3)
    expect(sent).toEqual([])
    expect(clock.scheduled).toBe(1)
    clock.fire()
    expect(sent).toEqual([
      ['a', [1, 3]],
      ['b', [2]],
    ])
    clock.fire()
    expect(sent).toHaveLength(2)
  })

  it('sends a destination at once when it reaches maxItems, the others at the flush', () => {
    const clock = manual()
    const { b, sent } = batcher(3, clock.schedule)
    for (let i = 0; i < 7; i++) b.add('a', i)
    b.add('b', 100)
    expect(sent).toEqual([
      ['a', [0, 1, 2]],
      ['a', [3, 4, 5]],
    ])
    clock.fire()
    expect(sent.slice(2)).toEqual([
      ['a', [6]],
      ['b', [100]],
    ])
  })

  it('schedules one flush for everything added before it fires, and a new one after', () => {
    const clock = manual()
    const { b } = batcher(64, clock.schedule)
    b.add('a', 1)
    b.add('b', 2)
    expect(clock.scheduled).toBe(1)
    clock.fire()
    b.add('a', 3)
    expect(clock.scheduled).toBe(2)
  })

  it('flush sends now and cancels the scheduled flush; close sends later items one by one', () => {
    const clock = manual()
    const { b, sent } = batcher(64, clock.schedule)
    b.add('a', 1)
    b.flush()
    expect(sent).toEqual([['a', [1]]])
    expect(clock.pending).toBe(false)
    b.add('a', 2)
    b.close()
    b.add('a', 3)
    expect(sent).toEqual([
      ['a', [1]],
      ['a', [2]],
      ['a', [3]],
    ])
    expect(clock.pending).toBe(false)
  })

  it('every item added is sent exactly once, whatever the interleaving (property)', () => {
    for (let seed = 1; seed <= 50; seed++) {
      let state = seed
      const random = () => (state = (state * 48271) % 0x7fffffff) / 0x7fffffff
      const clock = manual()
      const { b, sent } = batcher(1 + Math.floor(random() * 5), clock.schedule)
      const added: [string, number][] = []
      for (let i = 0; i < 200; i++) {
        const step = random()
        if (step < 0.1) clock.fire()
        else if (step < 0.12) b.flush()
        else {
          const destination = `d${Math.floor(random() * 4)}`
          b.add(destination, i)
          added.push([destination, i])
        }
      }
      b.close()
      const got = sent.flatMap(([d, items]) => items.map((i): [string, number] => [d, i]))
      expect(got.sort((x, y) => x[1] - y[1])).toEqual(added)
      for (const destination of ['d0', 'd1', 'd2', 'd3']) {
        const order = sent.filter(([d]) => d === destination).flatMap(([, items]) => items)
        expect(order).toEqual([...order].sort((x, y) => x - y))
      }
    }
  })

  it('refuses a maxItems below 1', () => {
    expect(() => batcher(0, manual().schedule)).toThrow(/maxItems/)
  })
})

describe('flushAfter', () => {
  it('0 flushes after the current turn of the event loop, a delay after a timer; both cancel', async () => {
    const fired: string[] = []
    flushAfter(0)(() => fired.push('immediate'))
    flushAfter(5)(() => fired.push('timer'))
    flushAfter(0)(() => fired.push('cancelled'))()
    flushAfter(5)(() => fired.push('cancelled'))()
    expect(fired).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(fired).toEqual(['immediate', 'timer'])
  })
})
