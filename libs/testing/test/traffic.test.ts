import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Traffic, jainIndex, startUpstream, type LoopbackUpstream } from '@fairlane/testing'

let upstream: LoopbackUpstream

beforeAll(async () => {
  upstream = await startUpstream({ record: false })
  upstream.behave(() => ({ kind: 'delay', ms: 10 }))
})

afterAll(async () => {
  await upstream.close()
})

describe('Traffic', () => {
  it('keeps a flood at its concurrency and a steady caller at its rate', async () => {
    const traffic = new Traffic([
      { name: 'flood', url: upstream.url, headers: {}, concurrency: 4 },
      { name: 'steady', url: upstream.url, headers: {}, ratePerSecond: 50 },
    ])
    await sleep(500)
    await traffic.stop()
    const flood = traffic.records.get('flood')
    const steady = traffic.records.get('steady')
    expect(upstream.maxInFlight).toBeLessThanOrEqual(4 + 2)
    expect(flood?.served).toBeGreaterThan(steady?.served ?? Infinity)
    expect(steady?.sent).toBeGreaterThanOrEqual(24)
    expect(steady?.sent).toBeLessThanOrEqual(27)
    expect(steady?.percentile(50)).toBeGreaterThanOrEqual(10)
  })

  it('counts what is answered after a reset, also to requests sent before it', async () => {
    const slow = await startUpstream({ record: false })
    slow.behave(() => ({ kind: 'delay', ms: 300 }))
    const traffic = new Traffic([{ name: 'flood', url: slow.url, headers: {}, concurrency: 4 }])
    try {
      const flood = traffic.records.get('flood')
      await until(() => slow.inFlight === 4)
      flood?.reset()
      // The second round reaches the upstream once the first is answered: in the window.
      await until(() => slow.hits >= 8)
      expect(flood?.served).toBe(4)
      expect(flood?.latenciesMs).toHaveLength(4)
      expect(flood?.sent).toBeGreaterThanOrEqual(4)
    } finally {
      await traffic.stop()
      await slow.close()
    }
  })
})

async function until(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met within 10 s')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('jainIndex', () => {
  it('is 1 for equal shares and 1/n for one taker', () => {
    expect(jainIndex([5, 5, 5, 5])).toBe(1)
    expect(jainIndex([1, 0, 0, 0])).toBe(0.25)
    expect(jainIndex([2, 1])).toBeCloseTo(0.9)
  })
})
