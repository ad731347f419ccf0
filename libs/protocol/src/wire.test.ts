import { describe, expect, it } from 'vitest'
import { shardOf, shardSubject } from './wire.ts'

describe('shardOf', () => {
  it('is stable: the same partition maps to the same shard on every node', () => {
    expect(shardOf('openai', 0, 256)).toBe(shardOf('openai', 0, 256))
    expect(shardSubject(shardOf('echo', 0, 256))).toMatch(/^fairlane\.v1\.shard\.\d+$/)
  })

  it('spreads partitions evenly over shards (property)', () => {
    const counts = new Array<number>(16).fill(0)
    for (let t = 0; t < 200; t++)
      for (let p = 0; p < 50; p++) counts[shardOf(`target-${t}`, p, 16)]! += 1
    const expected = 10_000 / 16
    for (const count of counts) expect(Math.abs(count - expected) / expected).toBeLessThan(0.1)
  })
})
