import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

/**
 * One Lua script of the config store, kept in its own `.lua` file (the ledger in
 * libs/limits does the same; that class is internal to its lib) and run by SHA: the body
 * crosses the network only when Redis does not have it yet, e.g. after a restart.
 */
export class LuaScript {
  readonly name: string
  readonly source: string
  readonly sha: string

  constructor(name: string) {
    this.name = name
    this.source = readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8')
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
