import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import {
  ConfigError,
  type ConfigStore,
  type Env,
  type FairlaneConfig,
  type ValidationResult,
} from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import { createLogger, type Logger } from '@fairlane/telemetry'
import { LuaScript } from '@fairlane/limits'
import {
  EMPTY_OVERLAY,
  documentsOf,
  mergeLayers,
  withWrites,
  type ConfigWrite,
  type Layers,
  type Overlay,
} from './overlay.ts'

/** Every node's store listens here; the body is the new version, as decimal text. */
export const CONFIG_SUBJECT = 'fairlane.v1.config'

const snapshotScript = new LuaScript(new URL('./scripts/snapshot-6.lua', import.meta.url))
const commitScript = new LuaScript(new URL('./scripts/commit-6.lua', import.meta.url))

/** The section of a write as commit-6.lua names it. */
const SECTION_CODES: Record<ConfigWrite['section'], string> = {
  workspaces: 'w',
  targets: 't',
  routes: 'r',
  customers: 'c',
}

/** Optimistic retries of one change when other nodes keep committing in between. */
const MAX_ATTEMPTS = 25

export interface RedisConfigStoreOptions {
  /** The file's validated config: tiers, queue, server… and the sections Redis overlays. */
  readonly base: FairlaneConfig
  /** Used, never closed, by the store. */
  readonly redis: Redis
  /** Broadcasts changes to, and hears them from, the other nodes. Without it only the poll does. */
  readonly nc?: NatsConnection
  /** Resolves `${ENV}` references in stored documents (upstream credentials of targets). */
  readonly env: Env
  /** Prefix of the store's Redis keys. Default `fairlane:`. */
  readonly prefix?: string
  readonly logger?: Logger
  /**
   * How often the stored version is read, as a fallback for a broadcast this node missed
   * (NATS down or reconnecting). Default 2000 ms.
   */
  readonly pollIntervalMs?: number
  /** Longest wait for one Redis round trip of the store. Default 2000 ms. */
  readonly redisTimeoutMs?: number
}

/** The running state: what Redis held at `overlay`'s revision, merged with the file. */
export interface StoreView extends Layers {
  readonly config: FairlaneConfig
}

/** A change to apply: the entries to write and what to answer once they are committed. */
export interface ConfigEdit<T> {
  readonly writes: readonly ConfigWrite[]
  readonly result: T
}

/** What the admin API needs of a store: the running state, and atomic validated changes. */
export interface EditableConfigStore extends ConfigStore {
  view(): StoreView
  /**
   * Runs `edit` on the freshest stored state, validates the merged result like a file
   * (ConfigError when invalid) and commits it atomically; `edit` may run again when
   * another node committed in between, so it must not have side effects.
   */
  change<T>(edit: (layers: Layers) => ConfigEdit<T>): Promise<{ result: T; version: number }>
}

interface Keys {
  readonly version: string
  readonly epoch: string
  readonly workspaces: string
  readonly targets: string
  readonly routes: string
  readonly customers: string
}

/**
 * Workspaces (with their keys), targets, routes and customers in Redis, overlaid on the file's config. Every
 * change is validated on the merged config and committed with compare-and-set on a version
 * counter, then announced on NATS; every node re-reads Redis and swaps its config at once,
 * and polls the version in case an announcement was lost. When Redis cannot be read, the
 * running config stays in force.
 */
export class RedisConfigStore implements EditableConfigStore {
  #base: FairlaneConfig
  readonly #redis: Redis
  readonly #nc: NatsConnection | undefined
  readonly #env: Env
  readonly #keys: Keys
  readonly #logger: Logger
  readonly #timeoutMs: number
  readonly #listeners = new Set<(config: FairlaneConfig) => void>()
  #view: StoreView
  #subscription: Subscription | undefined
  #poller: NodeJS.Timeout | undefined
  /** Changes and reloads of this node run one at a time, so none installs an older state. */
  #queue: Promise<unknown> = Promise.resolve()
  #reloadQueued = false
  #closed = false
  /** Set while reads fail, so an outage is logged once, not once per poll. */
  #unreachable = false
  #refusedRevision = ''

  private constructor(options: RedisConfigStoreOptions, view: StoreView, keys: Keys) {
    this.#base = options.base
    this.#redis = options.redis
    this.#nc = options.nc
    this.#env = options.env
    this.#keys = keys
    this.#logger = options.logger ?? createLogger({ level: 'silent' })
    this.#timeoutMs = options.redisTimeoutMs ?? 2_000
    this.#view = view
  }

  /**
   * Reads Redis once and starts listening. Throws when Redis cannot be read (a node must not
   * serve keys that may have been revoked) or when the stored part does not validate
   * together with this node's file (ConfigError, every problem by path).
   */
  static async open(options: RedisConfigStoreOptions): Promise<RedisConfigStore> {
    const prefix = options.prefix ?? 'fairlane:'
    const keys: Keys = {
      version: `${prefix}config:version`,
      epoch: `${prefix}config:epoch`,
      workspaces: `${prefix}config:workspaces`,
      targets: `${prefix}config:targets`,
      routes: `${prefix}config:routes`,
      customers: `${prefix}config:customers`,
    }
    const timeoutMs = options.redisTimeoutMs ?? 2_000
    const { overlay } = await withTimeout(readSnapshot(options.redis, keys), timeoutMs)
    const merged = mergeLayers({ base: options.base, overlay }, options.env)
    if (!merged.ok) throw new ConfigError(`redis (${prefix}config:*)`, merged.issues)
    const store = new RedisConfigStore(
      options,
      { base: options.base, overlay, config: merged.config },
      keys,
    )
    store.#start(options.pollIntervalMs ?? 2_000)
    return store
  }

  #start(pollIntervalMs: number): void {
    this.#subscription = this.#nc?.subscribe(CONFIG_SUBJECT, {
      callback: (err) => {
        if (!err) this.#scheduleReload()
      },
    })
    this.#poller = setInterval(() => this.#scheduleReload(), pollIntervalMs)
    this.#poller.unref()
  }

  current(): FairlaneConfig {
    return this.#view.config
  }

  view(): StoreView {
    return this.#view
  }

  subscribe(listener: (config: FairlaneConfig) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stops listening and polling; waits for a change or reload under way. Clients stay open. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#poller)
    try {
      this.#subscription?.unsubscribe()
    } catch {
      // The connection was closed first: nothing is delivered any more either way.
    }
    await this.#queue.catch(() => undefined)
  }

  change<T>(edit: (layers: Layers) => ConfigEdit<T>): Promise<{ result: T; version: number }> {
    return this.#serial(() => this.#change(edit))
  }

  /** Re-reads Redis now; what the broadcast and the poll do. */
  reload(): Promise<void> {
    return this.#serial(() => this.#reload())
  }

  async #change<T>(
    edit: (layers: Layers) => ConfigEdit<T>,
  ): Promise<{ result: T; version: number }> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      // A command sent while the client reconnects would wait in its offline queue; refuse
      // at once instead, the admin retries.
      if (this.#redis.status !== 'ready') throw unavailable('Redis is not connected')
      const { overlay, redisNow } = await this.#guard(readSnapshot(this.#redis, this.#keys))
      const layers: Layers = { base: this.#base, overlay }
      const { writes, result } = edit(layers)
      const next = withWrites(overlay, writes)
      const merged = mergeLayers({ base: this.#base, overlay: next }, this.#env)
      if (!merged.ok) throw new ConfigError('change', merged.issues)
      const reply = (await this.#guard(
        commitScript.run(this.#redis, this.#keyList(), [
          overlay.epoch,
          overlay.version,
          redisNow + this.#timeoutMs,
          randomUUID(),
          writes.length,
          ...writes.flatMap((w) => [SECTION_CODES[w.section], w.name, JSON.stringify(w.doc)]),
        ]),
      )) as [number, string, number]
      const [outcome, epoch, version] = [Number(reply[0]), String(reply[1]), Number(reply[2])]
      if (outcome === -1)
        throw unavailable('the change reached Redis too late; nothing was changed')
      if (outcome === 1) {
        this.#install({
          base: this.#base,
          overlay: { ...next, epoch, version },
          config: merged.config,
        })
        this.#announce(version)
        return { result, version }
      }
      // Another node committed since the read: read again, with jitter so racing nodes part.
      await sleep(Math.random() * 5 * attempt)
    }
    throw unavailable('the config kept changing under this change; retry')
  }

  async #reload(): Promise<void> {
    if (this.#closed) return
    try {
      const [version, epoch] = await this.#guard(
        this.#redis.mget(this.#keys.version, this.#keys.epoch),
      )
      if (this.#unreachable) this.#logger.info('config store reachable again')
      this.#unreachable = false
      const current = this.#view.overlay
      if ((epoch ?? '') === current.epoch && Number(version ?? 0) === current.version) return
      const { overlay } = await this.#guard(readSnapshot(this.#redis, this.#keys))
      this.#adopt(overlay)
    } catch (err) {
      if (!this.#unreachable)
        this.#logger.warn(
          { error: err instanceof Error ? err.message : String(err) },
          'config store unreachable; the running config stays in force',
        )
      this.#unreachable = true
    }
  }

  #adopt(overlay: Overlay): void {
    const current = this.#view.overlay
    if (overlay.epoch === current.epoch && overlay.version === current.version) return
    const revision = `${overlay.epoch}:${overlay.version}`
    if (overlay.epoch === '' && current.epoch !== '') {
      // Redis lost its data (a restart without persistence, a flush). Falling back to the
      // file alone could revive revoked keys, so this node keeps what it has until an admin
      // change writes a new state.
      if (this.#refusedRevision !== revision)
        this.#logger.error(
          { version: current.version },
          'config store is empty in Redis; the running config stays in force until the next admin change',
        )
      this.#refusedRevision = revision
      return
    }
    const merged: ValidationResult = mergeLayers({ base: this.#base, overlay }, this.#env)
    if (!merged.ok) {
      if (this.#refusedRevision !== revision)
        this.#logger.error(
          { version: overlay.version, problems: merged.issues },
          'stored config refused; the running config stays in force',
        )
      this.#refusedRevision = revision
      return
    }
    this.#install({ base: this.#base, overlay, config: merged.config })
  }

  /**
   * A reloaded file (SIGHUP) becomes the base under the same stored part. Throws ConfigError
   * when the two do not validate together; the running config then stays in force.
   */
  rebase(base: FairlaneConfig): void {
    const overlay = this.#view.overlay
    const merged = mergeLayers({ base, overlay }, this.#env)
    if (!merged.ok) throw new ConfigError('file with the stored config', merged.issues)
    this.#base = base
    this.#install({ base, overlay, config: merged.config })
  }

  #install(view: StoreView): void {
    this.#view = view
    this.#logger.info({ version: view.overlay.version }, 'config reloaded')
    for (const listener of this.#listeners) {
      try {
        listener(view.config)
      } catch (err) {
        this.#logger.error({ err }, 'config listener failed')
      }
    }
  }

  #announce(version: number): void {
    try {
      this.#nc?.publish(CONFIG_SUBJECT, String(version))
    } catch (err) {
      // The other nodes' poll picks the change up instead.
      this.#logger.warn(
        { error: err instanceof Error ? err.message : String(err) },
        'config change not broadcast',
      )
    }
  }

  #scheduleReload(): void {
    if (this.#closed || this.#reloadQueued) return
    this.#reloadQueued = true
    void this.#serial(() => {
      this.#reloadQueued = false
      return this.#reload()
    })
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  #keyList(): string[] {
    const k = this.#keys
    return [k.version, k.epoch, k.workspaces, k.targets, k.routes, k.customers]
  }

  #guard<T>(work: Promise<T>): Promise<T> {
    return withTimeout(work, this.#timeoutMs)
  }
}

/** Bounds one Redis round trip, so a stalled Redis cannot stall reloads or an admin. */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable('Redis did not answer in time')), ms)
  })
  // The late answer of a timed-out command has no one waiting for it.
  work.catch(() => undefined)
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}

/** Opens the cluster's config store; see RedisConfigStore.open. */
export function openRedisConfigStore(options: RedisConfigStoreOptions): Promise<RedisConfigStore> {
  return RedisConfigStore.open(options)
}

async function readSnapshot(
  redis: Redis,
  keys: Keys,
): Promise<{ overlay: Overlay; redisNow: number }> {
  const reply = (await snapshotScript.run(
    redis,
    [keys.version, keys.epoch, keys.workspaces, keys.targets, keys.routes, keys.customers],
    [],
  )) as [string, string, number, string[], string[], string[], string[]]
  return {
    overlay: {
      ...EMPTY_OVERLAY,
      epoch: reply[0],
      version: Number(reply[1]),
      workspaces: documentsOf(reply[3]),
      targets: documentsOf(reply[4]),
      routes: documentsOf(reply[5]),
      customers: documentsOf(reply[6]),
    },
    redisNow: Number(reply[2]),
  }
}

function unavailable(message: string): FairlaneError {
  return new FairlaneError('store_unavailable', 'admin', message, {
    headers: { 'retry-after': '1' },
  })
}
