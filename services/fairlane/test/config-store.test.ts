import { setTimeout as sleep } from 'node:timers/promises'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, configFromValue, type FairlaneConfig } from '@fairlane/config'
import { createLogger } from '@fairlane/telemetry'
import {
  LogCapture,
  startNats,
  startRedis,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'
import { keyIndexOf } from '../src/keys/key-index.ts'
import { hashKeySecret } from '../src/keys/key-secret.ts'
import { LuaScript } from '@fairlane/limits'
import {
  CONFIG_SUBJECT,
  openRedisConfigStore,
  type RedisConfigStore,
  type RedisConfigStoreOptions,
} from '../src/store/redis-config-store.ts'

let redisServer: RedisServer
let natsServer: NatsServer
const clients: Redis[] = []
const connections: NatsConnection[] = []
const stores: RedisConfigStore[] = []

beforeAll(async () => {
  ;[redisServer, natsServer] = await Promise.all([startRedis(), startNats({ jetstream: false })])
})

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()))
  for (const redis of clients) redis.disconnect()
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)))
  await Promise.all([redisServer.stop(), natsServer.stop()])
})

const FILE_KEY = 'fl_file_key_for_store_tests'

/** The file's part: two workspaces, one target, default tiers. */
function base(): FairlaneConfig {
  return configFromValue(
    {
      targets: { echo: { endpoints: [{ url: 'https://echo.example.com' }] } },
      workspaces: {
        acme: { targets: ['echo'], keys: [{ id: 'file', hash: hashKeySecret(FILE_KEY) }] },
        beta: { targets: ['echo'] },
      },
    },
    {},
    'test',
  )
}

function redisClient(): Redis {
  const redis = new Redis(redisServer.url)
  // The restart test takes Redis away on purpose; the client reconnects on its own.
  redis.on('error', () => undefined)
  clients.push(redis)
  return redis
}

let prefixes = 0
/** A fresh key prefix per test: tests share one Redis and must not see each other. */
const freshPrefix = () => `fl-store-${++prefixes}:`

async function node(
  prefix: string,
  options: Partial<RedisConfigStoreOptions> & { nats?: boolean } = {},
): Promise<RedisConfigStore> {
  let nc: NatsConnection | undefined
  if (options.nats ?? true) {
    nc = await connect({ servers: natsServer.url })
    connections.push(nc)
  }
  const store = await openRedisConfigStore({
    base: base(),
    redis: redisClient(),
    ...(nc ? { nc } : {}),
    env: {},
    prefix,
    pollIntervalMs: 60_000,
    ...options,
  })
  stores.push(store)
  return store
}

/** Waits for `check` to hold, failing if it takes longer than `withinMs`; returns the time taken. */
async function within(withinMs: number, check: () => boolean): Promise<number> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > withinMs) throw new Error(`not true within ${withinMs} ms`)
    await sleep(10)
  }
  return Date.now() - started
}

const addWorkspace = (name: string, doc: Record<string, unknown> = {}) => ({
  writes: [{ section: 'workspaces' as const, name, doc: { targets: ['echo'], ...doc } }],
  result: undefined,
})

describe('the store scripts', () => {
  const commit = new LuaScript(new URL('../src/store/scripts/commit-6.lua', import.meta.url))
  const keys = (p: string) => [`${p}v`, `${p}e`, `${p}w`, `${p}t`, `${p}r`, `${p}c`]
  const far = () => Date.now() + 60_000

  it('apply writes once, start an epoch and count versions', async () => {
    const redis = redisClient()
    const p = freshPrefix()
    expect(await commit.run(redis, keys(p), ['', 0, far(), 'E1', 1, 'w', 'a', '{"x":1}'])).toEqual([
      1,
      'E1',
      1,
    ])
    expect(
      await commit.run(redis, keys(p), ['E1', 1, far(), 'E2', 2, 't', 'b', 'null', 'w', 'c', '{}']),
    ).toEqual([1, 'E1', 2])
    expect(await redis.hgetall(`${p}w`)).toEqual({ a: '{"x":1}', c: '{}' })
    expect(await redis.hgetall(`${p}t`)).toEqual({ b: 'null' })
    expect(
      await commit.run(redis, keys(p), ['E1', 2, far(), 'E3', 2, 'r', 'api', '{}', 'c', 'x', '{}']),
    ).toEqual([1, 'E1', 3])
    expect(await redis.hgetall(`${p}r`)).toEqual({ api: '{}' })
    expect(await redis.hgetall(`${p}c`)).toEqual({ x: '{}' })
  })

  it('refuse a stale revision and a passed deadline, writing nothing', async () => {
    const redis = redisClient()
    const p = freshPrefix()
    await commit.run(redis, keys(p), ['', 0, far(), 'E1', 0])
    expect(await commit.run(redis, keys(p), ['E1', 0, far(), 'E2', 1, 'w', 'a', '{}'])).toEqual([
      0,
      'E1',
      1,
    ])
    expect(await commit.run(redis, keys(p), ['E0', 1, far(), 'E2', 1, 'w', 'a', '{}'])).toEqual([
      0,
      'E1',
      1,
    ])
    expect(
      await commit.run(redis, keys(p), ['E1', 1, Date.now() - 60_000, 'E2', 1, 'w', 'a', '{}']),
    ).toEqual([-1, 'E1', 1])
    expect(await redis.hlen(`${p}w`)).toBe(0)
    expect(await redis.get(`${p}v`)).toBe('1')
  })
})

describe('RedisConfigStore', () => {
  it('overlays stored workspaces and targets on the file, name by name, with tombstones', async () => {
    const prefix = freshPrefix()
    const store = await node(prefix)
    expect(Object.keys(store.current().workspaces)).toEqual(['acme', 'beta'])
    await store.change(() => ({
      writes: [
        { section: 'workspaces', name: 'acme', doc: { targets: [], tier: 'paid' } },
        { section: 'workspaces', name: 'beta', doc: null },
        { section: 'workspaces', name: 'gamma', doc: { targets: ['echo'] } },
      ],
      result: undefined,
    }))
    const config = store.current()
    expect(Object.keys(config.workspaces).sort()).toEqual(['acme', 'gamma'])
    // Redis wins for the whole entry: acme's file key is gone with the file's entry.
    expect(config.workspaces['acme']).toMatchObject({ tier: 'paid', targets: [], keys: [] })
    expect(keyIndexOf(config).authenticate(FILE_KEY)).toBeUndefined()
    // Everything outside workspaces and targets is the file's.
    expect(config.tiers).toEqual(base().tiers)
    expect(config.targets['echo']?.endpoints[0]?.url).toBe('https://echo.example.com')
  })

  it('resolves ${ENV} references of stored targets against its own environment', async () => {
    const prefix = freshPrefix()
    const store = await node(prefix, { env: { UPSTREAM_TOKEN: 's3cr3t' } })
    await store.change(() => ({
      writes: [
        {
          section: 'targets',
          name: 'api',
          doc: {
            endpoints: [{ url: 'https://api.example.com' }],
            upstreamHeaders: { authorization: 'Bearer ${UPSTREAM_TOKEN}' },
          },
        },
      ],
      result: undefined,
    }))
    expect(store.current().targets['api']?.upstreamHeaders).toEqual({
      authorization: 'Bearer s3cr3t',
    })
    // Redis keeps the reference, not the secret.
    const stored = await redisClient().hget(`${prefix}config:targets`, 'api')
    expect(stored).toContain('${UPSTREAM_TOKEN}')
    expect(stored).not.toContain('s3cr3t')
  })

  it('refuses an invalid change with every problem by path, and writes nothing', async () => {
    const prefix = freshPrefix()
    const store = await node(prefix)
    const before = store.current()
    const refused = await store
      .change(() =>
        addWorkspace('bad', { targets: ['nowhere'], tier: 'gold', hosts: ['https://x'] }),
      )
      .catch((err: unknown) => err)
    expect(refused).toBeInstanceOf(ConfigError)
    expect((refused as ConfigError).issues.map((i) => i.path).sort()).toEqual([
      'workspaces.bad.hosts[0]',
      'workspaces.bad.targets[0]',
      'workspaces.bad.tier',
    ])
    expect(store.current()).toBe(before)
    expect(await redisClient().get(`${prefix}config:version`)).toBeNull()
  })

  it('broadcasts a change: the other node swaps its config and tells its listeners within a second', async () => {
    const prefix = freshPrefix()
    const one = await node(prefix)
    const two = await node(prefix)
    const seen: FairlaneConfig[] = []
    two.subscribe((config) => seen.push(config))
    const { version } = await one.change(() => addWorkspace('gamma'))
    expect(version).toBe(1)
    const took = await within(1_000, () => 'gamma' in two.current().workspaces)
    expect(took).toBeLessThan(1_000)
    expect(seen.at(-1)).toBe(two.current())
    expect(two.view().overlay.version).toBe(1)
  })

  it('announces each change on fairlane.v1.config with the new version as the body', async () => {
    const prefix = freshPrefix()
    const store = await node(prefix)
    const listener = await connect({ servers: natsServer.url })
    connections.push(listener)
    const sub = listener.subscribe(CONFIG_SUBJECT, { max: 1 })
    await listener.flush()
    await store.change(() => addWorkspace('gamma'))
    for await (const msg of sub) expect(msg.string()).toBe('1')
  })

  it('picks up a change by polling when no broadcast reaches it', async () => {
    const prefix = freshPrefix()
    const writer = await node(prefix, { nats: false })
    const deaf = await node(prefix, { nats: false, pollIntervalMs: 100 })
    await writer.change(() => addWorkspace('gamma'))
    await within(2_000, () => 'gamma' in deaf.current().workspaces)
  })

  it('loses no change when nodes commit concurrently', async () => {
    const prefix = freshPrefix()
    const one = await node(prefix)
    const two = await node(prefix)
    const names = Array.from({ length: 20 }, (_, i) => `ws-${i}`)
    const results = await Promise.all(
      names.map((name, i) => (i % 2 ? one : two).change(() => addWorkspace(name))),
    )
    expect(new Set(results.map((r) => r.version)).size).toBe(names.length)
    for (const store of [one, two])
      await within(1_000, () => names.every((name) => name in store.current().workspaces))
    expect(await redisClient().get(`${prefix}config:version`)).toBe(String(names.length))
  })

  it('keeps the running config when the stored part stops validating, and says so once', async () => {
    const prefix = freshPrefix()
    const logs = new LogCapture()
    const store = await node(prefix, {
      nats: false,
      pollIntervalMs: 50,
      logger: createLogger({ level: 'info', destination: logs }),
    })
    await store.change(() => addWorkspace('gamma'))
    const running = store.current()
    // Written by hand, behind the store's back: not JSON, and a bump of the version.
    const redis = redisClient()
    await redis.hset(`${prefix}config:workspaces`, 'gamma', 'not json')
    await redis.incr(`${prefix}config:version`)
    await within(2_000, () =>
      logs
        .lines()
        .some((l) => l['msg'] === 'stored config refused; the running config stays in force'),
    )
    await sleep(200)
    expect(store.current()).toBe(running)
    const refusals = logs
      .lines()
      .filter((l) => String(l['msg']).startsWith('stored config refused'))
    expect(refusals).toHaveLength(1)
    expect(refusals[0]?.['problems']).toEqual([
      { path: 'workspaces.gamma', message: 'must be object' },
    ])
  })

  it('refuses to open on a stored part that does not validate with its file', async () => {
    const prefix = freshPrefix()
    await redisClient().hset(
      `${prefix}config:workspaces`,
      'delta',
      JSON.stringify({ tier: 'gold' }),
    )
    await expect(node(prefix)).rejects.toThrow(/workspaces\.delta\.tier: unknown tier "gold"/)
  })

  it('stops listening on close', async () => {
    const prefix = freshPrefix()
    const one = await node(prefix)
    const two = await node(prefix, { pollIntervalMs: 50 })
    await two.close()
    const running = two.current()
    await one.change(() => addWorkspace('gamma'))
    await sleep(300)
    expect(two.current()).toBe(running)
  })
})

describe('RedisConfigStore across a Redis restart', () => {
  it('keeps serving the last config while Redis is away and after it comes back empty, then picks up changes', async () => {
    const prefix = freshPrefix()
    const logs = new LogCapture()
    const logger = createLogger({ level: 'info', destination: logs })
    const one = await node(prefix, { pollIntervalMs: 100, redisTimeoutMs: 500, logger })
    const two = await node(prefix, { pollIntervalMs: 100, redisTimeoutMs: 500 })
    const secret = 'fl_before_the_restart_key'
    await one.change(() => ({
      writes: [
        {
          section: 'workspaces',
          name: 'gamma',
          doc: { targets: ['echo'], keys: [{ id: 'k', hash: hashKeySecret(secret) }] },
        },
      ],
      result: undefined,
    }))
    await within(1_000, () => keyIndexOf(two.current()).authenticate(secret) !== undefined)

    await redisServer.stop()
    await within(3_000, () =>
      logs.lines().some((l) => String(l['msg']).startsWith('config store unreachable')),
    )
    for (const store of [one, two])
      expect(keyIndexOf(store.current()).authenticate(secret)).toBeDefined()
    await expect(one.change(() => addWorkspace('never'))).rejects.toMatchObject({
      code: 'store_unavailable',
    })

    await redisServer.start()
    // Back, but empty (nothing persisted): the nodes do not fall back to the file alone.
    await within(5_000, () =>
      logs.lines().some((l) => String(l['msg']).startsWith('config store is empty in Redis')),
    )
    for (const store of [one, two])
      expect(keyIndexOf(store.current()).authenticate(secret)).toBeDefined()

    // The next change starts a new epoch in Redis, and every node follows it.
    const { version } = await retry(() => one.change(() => addWorkspace('after')))
    expect(version).toBe(1)
    for (const store of [one, two]) {
      await within(1_000, () => 'after' in store.current().workspaces)
      expect(keyIndexOf(store.current()).authenticate(secret)).toBeUndefined()
    }
    expect(one.view().overlay.epoch).toBe(two.view().overlay.epoch)
  })
})

/** The client reconnects on its own schedule after a restart; a change may be refused until it has. */
async function retry<T>(work: () => Promise<T>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await work()
    } catch (err) {
      if (Date.now() > deadline || (err as { code?: string }).code !== 'store_unavailable')
        throw err
      await sleep(50)
    }
  }
}
