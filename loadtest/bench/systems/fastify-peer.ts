import { fileURLToPath } from 'node:url'
import type { Child } from '../lib/child.ts'
import { ensureBinary, versionOf } from '../lib/debian-package.ts'
import { packageVersion } from '../lib/package-version.ts'
import { FAR_ABOVE_LOAD, type Contender, type DeployOptions, type Deployment } from './contender.ts'
import type { Upstream } from '../lib/upstream.ts'
import { startPortServer } from './port-server.ts'
import { startBenchRedis, type BenchRedis } from './redis.ts'
import type { System } from './system.ts'

const ENTRY = fileURLToPath(new URL('./fastify-peer-process.ts', import.meta.url))
const PACKAGES = ['fastify', '@fastify/http-proxy', '@fastify/rate-limit', 'ioredis'] as const

/** Its window is fixed: `max` requests per second, counted from the first request of a window. */
const WINDOW_MS = 1000

type Store = 'none' | 'memory' | 'redis'

function startInstance(
  index: number,
  instances: number,
  args: readonly string[],
): Promise<{ child: Child; base: string }> {
  return startPortServer(instances > 1 ? `fastify-${index}` : 'fastify', ENTRY, args)
}

function fastifyContender(store: Store): Contender {
  const name =
    store === 'none'
      ? 'fastify'
      : store === 'redis'
        ? 'fastify-rate-limit-redis'
        : 'fastify-rate-limit-memory'
  return {
    name,
    description:
      store === 'none'
        ? 'Fastify + @fastify/http-proxy, no limit'
        : `Fastify + @fastify/http-proxy + @fastify/rate-limit per tenant, ${
            store === 'redis'
              ? 'counters in one redis-server shared by all instances'
              : 'counters in each instance’s memory'
          }`,
    limiter: store === 'none' ? 'none' : store === 'redis' ? 'shared' : 'per-instance',
    maxInstances: 16,
    async check() {
      const missing = PACKAGES.filter((p) => packageVersion(p) === undefined)
      if (missing.length > 0)
        return `${missing.join(', ')} not installed: run npm install at the repository root`
      if (store !== 'redis') return undefined
      const redis = await ensureBinary('redis-server', 'redis-server')
      return redis.ok ? undefined : redis.reason
    },
    async facts() {
      const versions: Record<string, string> = {}
      for (const p of PACKAGES) versions[p] = packageVersion(p) ?? 'missing'
      if (store === 'redis') {
        const redis = await ensureBinary('redis-server', 'redis-server')
        if (redis.ok) versions['redis-server'] = await versionOf(redis.path, '--version')
      }
      return versions
    },
    async start(options: DeployOptions): Promise<Deployment> {
      const limit = store === 'none' ? undefined : (options.limit ?? FAR_ABOVE_LOAD)
      let redis: BenchRedis | undefined
      if (store === 'redis') {
        const binary = await ensureBinary('redis-server', 'redis-server')
        if (!binary.ok) throw new Error(binary.reason)
        redis = await startBenchRedis(binary.path)
      }
      const args = [
        ...['--upstream', options.upstream.url],
        ...(limit
          ? ['--max', String(Math.round(limit.rps)), '--window-ms', String(WINDOW_MS)]
          : []),
        ...(redis ? ['--redis', redis.url] : []),
      ]
      const started: { child: Child; base: string }[] = []
      try {
        for (let i = 0; i < options.instances; i++)
          started.push(await startInstance(i, options.instances, args))
      } catch (err) {
        for (const s of started) await s.child.stop()
        await redis?.stop()
        throw err
      }
      const pids: Record<string, number> = {}
      for (const s of started) pids[s.child.name] = s.child.pid
      if (redis) pids['redis'] = redis.child.pid
      return {
        bases: started.map((s) => s.base),
        pids,
        children: [...started.map((s) => s.child), ...(redis ? [redis.child] : [])],
        notes: [
          'logger off; @fastify/http-proxy defaults (undici pool of 128 connections to the upstream)',
          ...(limit
            ? [
                `@fastify/rate-limit max ${Math.round(limit.rps)} per ${WINDOW_MS} ms fixed window, ` +
                  `keyGenerator = Authorization header, ${store === 'redis' ? 'redis store (one Lua call per request)' : 'in-memory store'}` +
                  (options.instances > 1 ? `, ${options.instances} instances` : ''),
              ]
            : []),
        ],
        stop: async () => {
          for (const s of started) await s.child.stop()
          await redis?.stop()
        },
      }
    },
  }
}

export const fastifyProxy = fastifyContender('none')
export const fastifyRateLimitRedis = fastifyContender('redis')
export const fastifyRateLimitMemory = fastifyContender('memory')

/**
 * The peer a Node team would write (Fastify + @fastify/http-proxy, no limit) as a system of
 * bench:proxy, measured in the same run as Fairlane; undefined when its packages are missing.
 */
export async function fastifyPeer(upstream: Upstream): Promise<System | undefined> {
  if ((await fastifyProxy.check()) !== undefined) return undefined
  const { child, base } = await startInstance(0, 1, ['--upstream', upstream.url])
  return {
    name: 'fastify',
    request: { url: `${base}/bench`, headers: { authorization: 'Bearer unused' } },
    processes: { fastify: child },
    notes: ['@fastify/http-proxy, logger off, no limit'],
    stop: () => child.stop(),
  }
}
