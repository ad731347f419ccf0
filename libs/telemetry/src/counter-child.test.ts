import { Counter, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { CounterChild } from './counter-child.ts'

function counter(name: string): Counter<'target' | 'status' | 'stage'> {
  return new Counter({
    name,
    help: name,
    labelNames: ['target', 'status', 'stage'],
    registers: [new Registry()],
  })
}

async function valuesOf(c: Counter<'target' | 'status' | 'stage'>): Promise<unknown[]> {
  const { values } = await c.get()
  return values.map(({ labels, value }) => ({ labels, value }))
}

const SETS = [
  { target: 'echo', status: '200', stage: 'respond' },
  { target: 'echo', status: '429', stage: 'limit' },
  // Listed in another order than the counter's label names: the key is made sorted.
  { stage: 'respond', target: 'other', status: '200' },
]

describe('CounterChild', () => {
  it('counts exactly what prom-client’s own child counts, label sets kept apart', async () => {
    const ours = counter('ours')
    const theirs = counter('theirs')
    for (const [i, labels] of SETS.entries()) {
      const child = new CounterChild(ours, labels)
      const reference = theirs.labels(labels)
      for (let n = 0; n <= i * 3; n++) {
        child.inc()
        reference.inc()
      }
      child.inc(2.5)
      reference.inc(2.5)
    }
    expect(await valuesOf(ours)).toEqual(await valuesOf(theirs))
  })

  it('keeps counting after the counter is reset, and makes the series at 0 with inc(0)', async () => {
    const ours = counter('ours')
    const labels = SETS[0] as (typeof SETS)[number]
    const child = new CounterChild(ours, labels)
    child.inc()
    ours.reset()
    child.inc(0)
    expect(await valuesOf(ours)).toEqual([{ labels, value: 0 }])
    child.inc()
    child.inc()
    expect(await valuesOf(ours)).toEqual([{ labels, value: 2 }])
  })

  it('counts without prom-client’s per-call path once the label set’s value exists', async () => {
    const ours = counter('ours')
    const child = new CounterChild(ours, SETS[0] as (typeof SETS)[number])
    child.inc()
    // prom-client's own child would now refuse these labels on every call.
    Object.assign(ours, { labelNames: ['nope'] })
    child.inc()
    const { values } = await ours.get()
    expect(values[0]?.value).toBe(2)
  })

  it('refuses what prom-client refuses: a counter does not go down', () => {
    const child = new CounterChild(counter('ours'), SETS[0] as (typeof SETS)[number])
    child.inc()
    expect(() => child.inc(-1)).toThrow('It is not possible to decrease a counter')
  })
})
