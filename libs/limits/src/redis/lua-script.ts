import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

/** A command that ioredis `defineCommand` adds to a client. */
type DefinedCommand = (...args: (string | number)[]) => Promise<unknown>

/** `--- @include "<name>"` on a line of its own pulls in `includes/<name>.lua`, as in bullmq. */
const INCLUDE = /^--- @include "([\w-]+)"[ \t]*$/gm

/** A name ending in `-<n>` (`commit-4`) states a fixed key count, as bullmq's commands do. */
const KEY_COUNT = /-(\d+)$/

/**
 * One Lua script, kept in its own `.lua` file (as bullmq keeps its commands) and read when
 * its module loads. ioredis `defineCommand` runs it: by SHA, with the body sent again only
 * when Redis no longer has it (after a restart or SCRIPT FLUSH). The ledger's scripts and the
 * config store's use it alike.
 */
export class LuaScript {
  readonly name: string
  /** The script with its includes in place, as Redis runs it. */
  readonly lua: string
  /** Set when the file name states it; otherwise each call passes its keys' count. */
  readonly numberOfKeys: number | undefined
  readonly #command: string
  /** Clients this script is defined on; ioredis keeps a defined command per client. */
  readonly #definedOn = new WeakSet<Redis>()

  /** `file`: the script, usually `new URL('./scripts/<name>.lua', import.meta.url)`. */
  constructor(file: URL) {
    this.name = file.pathname.slice(file.pathname.lastIndexOf('/') + 1, -'.lua'.length)
    this.lua = withIncludes(file, new Set())
    const count = KEY_COUNT.exec(this.name)?.[1]
    this.numberOfKeys = count === undefined ? undefined : Number(count)
    // Namespaced, so a script can never shadow one of the client's own Redis commands.
    this.#command = `fairlane:${this.name}`
  }

  run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (this.numberOfKeys !== undefined && keys.length !== this.numberOfKeys) {
      throw new Error(`${this.name}.lua takes ${this.numberOfKeys} keys (got ${keys.length})`)
    }
    if (!this.#definedOn.has(redis)) {
      const definition =
        this.numberOfKeys === undefined
          ? { lua: this.lua }
          : { lua: this.lua, numberOfKeys: this.numberOfKeys }
      redis.defineCommand(this.#command, definition)
      this.#definedOn.add(redis)
    }
    // defineCommand adds the method under a name chosen at run time; the type cannot know it.
    const command = (redis as unknown as Record<string, DefinedCommand>)[this.#command]!
    return this.numberOfKeys === undefined
      ? command.call(redis, keys.length, ...keys, ...args)
      : command.call(redis, ...keys, ...args)
  }
}

/**
 * The file's text with each include in place of its line. Includes live in `includes/` beside
 * the scripts (an include may include another) and come in once per script.
 */
function withIncludes(file: URL, included: Set<string>, folder = new URL('.', file)): string {
  return readFileSync(file, 'utf8').replace(INCLUDE, (_line, name: string) => {
    if (included.has(name)) return ''
    included.add(name)
    return withIncludes(new URL(`includes/${name}.lua`, folder), included, folder).trimEnd()
  })
}
