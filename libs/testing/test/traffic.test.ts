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
})

describe('jainIndex', () => {
  it('is 1 for equal shares and 1/n for one taker', () => {
    expect(jainIndex([5, 5, 5, 5])).toBe(1)
    expect(jainIndex([1, 0, 0, 0])).toBe(0.25)
    expect(jainIndex([2, 1])).toBeCloseTo(0.9)
  })
})
