import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { startRedis, type RedisServer } from '@fairlane/testing'

/**
 * A redis-server of the test file's own, started before its tests and stopped after them,
 * and a client on it. Call at the top of the file; `client()` is valid inside tests.
 */
export function useRedis(): { client(): Redis } {
  let server: RedisServer
  let redis: Redis | undefined
  beforeAll(async () => {
    server = await startRedis()
    redis = new Redis(server.url)
  })
  afterAll(async () => {
    redis?.disconnect()
    await server.stop()
  })
  return {
    client: () => {
      if (!redis) throw new Error('useRedis: the client exists only inside tests')
      return redis
    },
  }
}
