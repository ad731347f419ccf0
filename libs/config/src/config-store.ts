import type { FairlaneConfig } from './schema.ts'
import { loadConfigFile } from './load.ts'
import type { Env } from './env-references.ts'

/**
 * Where a node gets its workspaces, keys and targets: a file in embedded mode, Redis in a
 * cluster. Readers take `current()` per request, so a change applies to the next request
 * without a restart and a request never sees half of one.
 */
export interface ConfigStore {
  current(): FairlaneConfig
  /** Called after each accepted change; returns the unsubscribe function. */
  subscribe(listener: (config: FairlaneConfig) => void): () => void
}

export class FileConfigStore implements ConfigStore {
  readonly path: string
  readonly #env: Env
  #config: FairlaneConfig
  readonly #listeners = new Set<(config: FairlaneConfig) => void>()

  private constructor(path: string, env: Env, config: FairlaneConfig) {
    this.path = path
    this.#env = env
    this.#config = config
  }

  /** Throws ConfigError when the file is invalid. */
  static async open(path: string, env: Env = process.env): Promise<FileConfigStore> {
    return new FileConfigStore(path, env, await loadConfigFile(path, env))
  }

  current(): FairlaneConfig {
    return this.#config
  }

  subscribe(listener: (config: FairlaneConfig) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Re-reads the file. An invalid file throws ConfigError and the running config stays as
   * it was: a typo during a reload must not take a node down.
   */
  async reload(): Promise<FairlaneConfig> {
    const next = await loadConfigFile(this.path, this.#env)
    this.#config = next
    for (const listener of this.#listeners) listener(next)
    return next
  }
}
