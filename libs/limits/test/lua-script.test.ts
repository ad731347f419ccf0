import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LuaScript } from '@fairlane/limits'
import { startRedis, type RedisServer } from '@fairlane/testing'

let server: RedisServer
let redis: Redis

beforeAll(async () => {
  server = await startRedis()
  redis = new Redis(server.url)
})

afterAll(async () => {
  redis.disconnect()
  await server.stop()
})

const fixture = (name: string) => new LuaScript(new URL(`./fixtures/${name}.lua`, import.meta.url))

describe('LuaScript', () => {
  it('puts each include in place once, includes of includes too', async () => {
    const script = fixture('uses-includes')
    expect(script.lua).not.toContain('@include')
    expect(script.lua.match(/local function once/g)).toHaveLength(1)
    expect(await script.run(redis, [], [5])).toBe(20)
  })

  it('takes the key count from the file name and holds callers to it', async () => {
    const script = fixture('set-get-1')
    expect(script.numberOfKeys).toBe(1)
    expect(await script.run(redis, ['lua-script:a'], ['x'])).toBe('x')
    expect(() => script.run(redis, ['lua-script:a', 'lua-script:b'], ['x'])).toThrow(/takes 1 keys/)
  })

  it('runs again after Redis forgot its scripts (SCRIPT FLUSH, a restart)', async () => {
    const script = fixture('set-get-1')
    expect(await script.run(redis, ['lua-script:b'], ['1'])).toBe('1')
    await redis.script('FLUSH')
    expect(await script.run(redis, ['lua-script:b'], ['2'])).toBe('2')
    // From a second client too: each client gets the command defined on it.
    const other = new Redis(server.url)
    try {
      expect(await script.run(other, ['lua-script:b'], ['3'])).toBe('3')
    } finally {
      other.disconnect()
    }
  })

  it('passes a script error on to the caller', async () => {
    const script = fixture('uses-includes')
    await expect(script.run(redis, [], ['not a number'])).rejects.toThrow(/arithmetic/)
  })
})
