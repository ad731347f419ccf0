import { describe, expect, it } from 'vitest'
import { interfaceAddresses, systemResolver } from './system-resolver.ts'

describe('systemResolver', () => {
  it('returns an IP literal as its own record, without a query', async () => {
    const resolve = systemResolver()
    await expect(resolve('127.0.0.1')).resolves.toEqual([{ address: '127.0.0.1', family: 4 }])
    await expect(resolve('::1')).resolves.toEqual([{ address: '::1', family: 6 }])
  })

  it('answers repeated lookups from the cache within the TTL', async () => {
    const resolve = systemResolver({ ttlMs: 60_000 })
    expect(resolve('127.0.0.1')).toBe(resolve('127.0.0.1'))
  })

  it('stays within maxEntries', async () => {
    const resolve = systemResolver({ maxEntries: 2 })
    const first = resolve('127.0.0.1')
    resolve('127.0.0.2')
    resolve('127.0.0.3')
    expect(resolve('127.0.0.1')).not.toBe(first)
  })

  it('does not cache with a zero TTL', () => {
    const resolve = systemResolver({ ttlMs: 0 })
    expect(resolve('127.0.0.1')).not.toBe(resolve('127.0.0.1'))
  })
})

describe('interfaceAddresses', () => {
  it('includes loopback', () => {
    const addresses = interfaceAddresses()
    expect(addresses.some((a) => a === '127.0.0.1' || a === '::1')).toBe(true)
  })
})
