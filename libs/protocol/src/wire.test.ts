import { describe, expect, it } from 'vitest'
import { shardOf, shardOfPartition, shardSubject, v1ShardSubject } from './wire.ts'

describe('shardOf', () => {
  it('is FNV-1a: the published test vectors come out whole when the modulus is 2^32', () => {
    expect(shardOfPartition('', 2 ** 32)).toBe(0x811c9dc5)
    expect(shardOfPartition('a', 2 ** 32)).toBe(0xe40c292c)
    expect(shardOfPartition('foobar', 2 ** 32)).toBe(0xbf9cf968)
  })

  it('is pinned: every node and every version must map a partition to the same shard', () => {
    // A change here moves every lane of a running cluster to another owner on upgrade.
    expect(shardOf('openai', 0, 256)).toBe(176)
    expect(shardOf('openai', 3, 256)).toBe(105)
    expect(shardOf('echo', 0, 256)).toBe(79)
    expect(shardOf('echo', 0, 16)).toBe(15)
    expect(shardOfPartition('openai#0', 256)).toBe(shardOf('openai', 0, 256))
    expect(shardSubject(79)).toBe('fairlane.v4.shard.79')
    expect(v1ShardSubject(79)).toBe('fairlane.v1.shard.79')
  })

  it('spreads partitions evenly over shards (property)', () => {
    const counts = new Array<number>(16).fill(0)
    for (let t = 0; t < 200; t++)
      for (let p = 0; p < 50; p++) counts[shardOf(`target-${t}`, p, 16)]! += 1
    const expected = 10_000 / 16
    for (const count of counts) expect(Math.abs(count - expected) / expected).toBeLessThan(0.1)
  })
})
