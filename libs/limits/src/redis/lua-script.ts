import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

/**
 * One Lua script, kept in its own `.lua` file (as bullmq keeps its commands) and run by SHA:
 * the script body crosses the network only when Redis does not have it yet (after a
 * restart). The ledger's scripts and the config store's use it alike.
 */
export class LuaScript {
  readonly name: string
  readonly source: string
  readonly sha: string

  /** `file`: the script, usually `new URL('./scripts/<name>.lua', import.meta.url)`. */
  constructor(file: URL) {
    this.name = file.pathname.slice(file.pathname.lastIndexOf('/') + 1, -'.lua'.length)
    this.source = readFileSync(file, 'utf8')
    this.sha = createHash('sha1').update(this.source).digest('hex')
  }

  async run(
    redis: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return redis.eval(this.source, keys.length, ...keys, ...args)
    }
  }
}
