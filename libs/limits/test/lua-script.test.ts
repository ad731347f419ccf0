import { describe, expect, it } from 'vitest'
import { LuaScript } from '@fairlane/limits'
import { useRedis } from './redis-fixture.ts'

const db = useRedis()

const fixture = (name: string) => new LuaScript(new URL(`./fixtures/${name}.lua`, import.meta.url))

describe('LuaScript', () => {
  it('puts each include in place once, includes of includes too', async () => {
    const script = fixture('uses-includes')
    expect(script.lua).not.toContain('@include')
    expect(script.lua.match(/local function once/g)).toHaveLength(1)
    expect(await script.run(db.client(), [], [5])).toBe(20)
  })

  it('takes the key count from the file name and holds callers to it', async () => {
    const script = fixture('set-get-1')
    expect(script.numberOfKeys).toBe(1)
    expect(await script.run(db.client(), ['lua-script:a'], ['x'])).toBe('x')
    expect(() => script.run(db.client(), ['lua-script:a', 'lua-script:b'], ['x'])).toThrow(
      /takes 1 keys/,
    )
  })

  it('runs again after Redis forgot its scripts (SCRIPT FLUSH, a restart)', async () => {
    const script = fixture('set-get-1')
    expect(await script.run(db.client(), ['lua-script:b'], ['1'])).toBe('1')
    await db.client().script('FLUSH')
    expect(await script.run(db.client(), ['lua-script:b'], ['2'])).toBe('2')
    // From a second client too: each client gets the command defined on it.
    const other = db.client().duplicate()
    try {
      expect(await script.run(other, ['lua-script:b'], ['3'])).toBe('3')
    } finally {
      other.disconnect()
    }
  })

  it('passes a script error on to the caller', async () => {
    const script = fixture('uses-includes')
    await expect(script.run(db.client(), [], ['not a number'])).rejects.toThrow(/arithmetic/)
  })
})
