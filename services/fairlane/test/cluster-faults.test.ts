import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  freePort,
  startNats,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'
import { STOP_AFTER_GRACE_MS } from '../src/node/node.ts'
import {
  killAllNodeProcesses,
  metricValue,
  startNodeProcess,
  type NodeProcess,
  type NodeProcessOptions,
} from './cluster-harness.ts'

const EXAMPLE = fileURLToPath(new URL('../../../examples/cluster.yaml', import.meta.url))
const KEY = { authorization: 'Bearer fl_demo_cluster' }
const GRACE_MS = 2_000
const NATS_DOWN_GRACE_MS = 1_000
const REDIS_DOWN_GRACE_MS = 1_000

let upstream: LoopbackUpstream
const servers: Array<NatsServer | RedisServer> = []
const nodes: NodeProcess[] = []

beforeAll(async () => {
  upstream = await startUpstream()
})

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill()))
  await killAllNodeProcesses()
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

afterAll(async () => {
  await upstream?.close()
})

/** examples/cluster.yaml with short timings, so faults show within seconds. */
async function config(startTimeoutMs = 60_000): Promise<string> {
  const text = (await readFile(EXAMPLE, 'utf8'))
    .replace(
      '  adminPort: 9090 # FAIRLANE_ADMIN_PORT overrides\n',
      `  adminPort: 9090 # FAIRLANE_ADMIN_PORT overrides\n  shutdownGraceMs: ${GRACE_MS}\n`,
    )
    .replace(
      '  leaseTtlMs: 6000\n',
      `  leaseTtlMs: 1500\n  natsDownGraceMs: ${NATS_DOWN_GRACE_MS}\n  redisDownGraceMs: ${REDIS_DOWN_GRACE_MS}\n  startTimeoutMs: ${startTimeoutMs}\n`,
    )
  if (!text.includes('natsDownGraceMs') || !text.includes('shutdownGraceMs')) {
    throw new Error('examples/cluster.yaml changed: adapt the replacements')
  }
  const path = join(await mkdtemp(join(tmpdir(), 'fairlane-faults-')), 'cluster.yaml')
  await writeFile(path, text)
  return path
}

async function servicesUp(): Promise<{ nats: NatsServer; redis: RedisServer }> {
  const [nats, redis] = await Promise.all([startNats(), startRedis()])
  servers.push(nats, redis)
  return { nats, redis }
}

async function node(
  nodeId: string,
  urls: { nats: string; redis: string },
  options: Partial<NodeProcessOptions> = {},
): Promise<NodeProcess> {
  const started = await startNodeProcess({
    configPath: options.configPath ?? (await config()),
    nodeId,
    env: { FAIRLANE_NATS_URL: urls.nats, FAIRLANE_REDIS_URL: urls.redis, ECHO_URL: upstream.url },
    ...options,
  })
  nodes.push(started)
  return started
}

async function readyz(n: NodeProcess): Promise<{ status: number; missing?: string[] }> {
  const response = await fetch(`${n.adminUrl}/readyz`)
  const body = (await response.json()) as { missing?: string[] }
  return { status: response.status, ...(body.missing ? { missing: body.missing } : {}) }
}

async function gauge(n: NodeProcess, name: string): Promise<number | undefined> {
  return metricValue(await n.metrics(), name)
}

describe('a node stops in bounded time', () => {
  it('SIGTERM while NATS is down: every node of three exits by itself within shutdownGraceMs + the documented bound', async () => {
    const { nats, redis } = await servicesUp()
    const urls = { nats: nats.url, redis: redis.url }
    const path = await config()
    const cluster = await Promise.all(
      ['node-1', 'node-2', 'node-3'].map((id) => node(id, urls, { configPath: path })),
    )
    // Each holds its share of the 256 shards: a drain has leases to give back.
    await expect
      .poll(
        async () =>
          Math.min(
            ...(await Promise.all(cluster.map((n) => gauge(n, 'fairlane_shards_owned'))).then((v) =>
              v.map((x) => x ?? 0),
            )),
          ),
        {
          timeout: 30_000,
          interval: 500,
        },
      )
      .toBeGreaterThan(0)

    await nats.stop()
    const signalled = Date.now()
    const took = await Promise.all(
      cluster.map(async (n) => {
        await n.stop()
        return Date.now() - signalled
      }),
    )
    // The harness kills with SIGKILL after 15 s: a node that exited by itself ended with 0.
    for (const n of cluster) expect(n.ended(), n.output()).toEqual({ code: 0, signal: null })
    // Process start-up costs and a loaded machine get 3 s on top of the bound.
    for (const ms of took) expect(ms).toBeLessThan(GRACE_MS + STOP_AFTER_GRACE_MS + 3_000)
  })
})

describe('a NATS outage is visible', () => {
  it('logs the disconnect, reports fairlane_nats_connected 0, turns not ready after the grace and counts no shard it cannot hold; all of it undone on reconnect', async () => {
    const { nats, redis } = await servicesUp()
    const n = await node('node-1', { nats: nats.url, redis: redis.url })
    await expect.poll(() => gauge(n, 'fairlane_shards_owned'), { timeout: 20_000 }).toBe(256)
    expect(await gauge(n, 'fairlane_nats_connected')).toBe(1)

    await nats.stop()
    await expect
      .poll(() => n.output().includes('nats disconnected'), { timeout: 10_000 })
      .toBe(true)
    expect(await gauge(n, 'fairlane_nats_connected')).toBe(0)
    await expect
      .poll(() => readyz(n), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['nats'] })
    await expect.poll(() => gauge(n, 'fairlane_shards_owned'), { timeout: 10_000 }).toBe(0)

    await nats.start()
    await expect.poll(() => n.output().includes('nats reconnected'), { timeout: 20_000 }).toBe(true)
    await expect.poll(() => readyz(n), { timeout: 10_000 }).toEqual({ status: 200 })
    expect(await gauge(n, 'fairlane_nats_connected')).toBe(1)
    await expect.poll(() => gauge(n, 'fairlane_shards_owned'), { timeout: 20_000 }).toBe(256)
    const response = await fetch(`${n.proxyUrl}/t/echo/after`, { headers: KEY })
    expect(response.status).toBe(200)
  })
})

describe('the ledger is probed without traffic', () => {
  it('with no shared limit, a frozen and then a stopped Redis each turn fairlane_ledger_up to 0, log it and turn /readyz 503 naming redis after the grace; all of it undone by itself', async () => {
    const { nats, redis } = await servicesUp()
    const n = await node('node-1', { nats: nats.url, redis: redis.url })
    expect(await gauge(n, 'fairlane_ledger_up')).toBe(1)

    redis.freeze()
    await expect.poll(() => gauge(n, 'fairlane_ledger_up'), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => n.output(), { timeout: 5_000 }).toContain('redis ledger unreachable')
    await expect
      .poll(() => readyz(n), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['redis'] })
    redis.thaw()
    await expect.poll(() => gauge(n, 'fairlane_ledger_up'), { timeout: 10_000 }).toBe(1)
    await expect
      .poll(() => n.output(), { timeout: 5_000 })
      .toContain('redis ledger reachable again')
    await expect.poll(() => readyz(n), { timeout: 10_000 }).toEqual({ status: 200 })

    await redis.stop()
    await expect.poll(() => gauge(n, 'fairlane_ledger_up'), { timeout: 10_000 }).toBe(0)
    await expect
      .poll(() => readyz(n), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['redis'] })
    await redis.start()
    await expect.poll(() => gauge(n, 'fairlane_ledger_up'), { timeout: 15_000 }).toBe(1)
    await expect.poll(() => readyz(n), { timeout: 10_000 }).toEqual({ status: 200 })
  })

  it('an owner turns /readyz 503 naming redis while Redis is stopped; an ingress-only node, which needs it for config changes alone, stays ready', async () => {
    const { nats, redis } = await servicesUp()
    const env = {
      FAIRLANE_NATS_URL: nats.url,
      FAIRLANE_REDIS_URL: redis.url,
      ECHO_URL: upstream.url,
    }
    const urls = { nats: nats.url, redis: redis.url }
    const owner = await node('owner', urls, { env: { ...env, FAIRLANE_ROLES: 'actor' } })
    const ingress = await node('ingress', urls, { env: { ...env, FAIRLANE_ROLES: 'ingress' } })

    await redis.stop()
    await expect
      .poll(() => readyz(owner), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['redis'] })
    expect(await readyz(ingress)).toEqual({ status: 200 })
    await redis.start()
    await expect.poll(() => readyz(owner), { timeout: 15_000 }).toEqual({ status: 200 })
  })
})

describe('a node started before NATS and Redis', () => {
  it('waits with its admin port up (/healthz 200, /readyz 503 naming what is missing) and becomes ready when they appear', async () => {
    const [natsPort, redisPort] = await Promise.all([freePort(), freePort()])
    const n = await node(
      'node-1',
      { nats: `nats://127.0.0.1:${natsPort}`, redis: `redis://127.0.0.1:${redisPort}` },
      { awaitReady: false },
    )
    expect((await fetch(`${n.adminUrl}/healthz`)).status).toBe(200)
    await expect
      .poll(() => readyz(n), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['starting', 'nats'] })
    await expect
      .poll(() => n.output(), { timeout: 5_000 })
      .toContain(`waiting for nats at 127.0.0.1:${natsPort}`)

    servers.push(await startNats({ port: natsPort }))
    await expect
      .poll(() => readyz(n), { timeout: 15_000 })
      .toEqual({ status: 503, missing: ['starting', 'redis'] })

    servers.push(await startRedis({ port: redisPort }))
    await expect.poll(() => readyz(n), { timeout: 30_000 }).toEqual({ status: 200 })
    expect(n.ended()).toBeNull()
    const response = await fetch(`${n.proxyUrl}/t/echo/ready`, { headers: KEY })
    expect(response.status).toBe(200)
  })

  it('says it is joining once NATS and Redis answer, while it cannot take its shard leases (a NATS without JetStream)', async () => {
    const [nats, redis] = await Promise.all([startNats({ jetstream: false }), startRedis()])
    servers.push(nats, redis)
    const n = await node('node-1', { nats: nats.url, redis: redis.url }, { awaitReady: false })
    await expect
      .poll(() => readyz(n), { timeout: 10_000 })
      .toEqual({ status: 503, missing: ['joining'] })
    expect((await fetch(`${n.adminUrl}/healthz`)).status).toBe(200)
  })

  it('gives up after cluster.startTimeoutMs with an error naming the address it could not reach', async () => {
    const nats = await startNats()
    servers.push(nats)
    const redisPort = await freePort()
    const n = await node(
      'node-1',
      { nats: nats.url, redis: `redis://user:secret@127.0.0.1:${redisPort}` },
      { awaitReady: false, configPath: await config(3_000) },
    )
    await expect.poll(() => n.ended(), { timeout: 20_000 }).toEqual({ code: 1, signal: null })
    await expect
      .poll(() => n.output(), { timeout: 5_000 })
      .toContain(`redis at 127.0.0.1:${redisPort} could not be reached`)
    expect(n.output()).toContain('ECONNREFUSED')
    expect(n.output()).not.toContain('secret')
  })
})
