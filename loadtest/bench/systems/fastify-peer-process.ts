/**
 * The Node peer as a process of its own: what a Node team writes instead of Fairlane, a Fastify
 * server with @fastify/http-proxy in front of the upstream and, optionally, @fastify/rate-limit
 * keyed by the Authorization header, in memory or on Redis. Written the way the plugins' READMEs
 * show it, with their defaults. Prints `{"port":N}` once it listens; exits on SIGTERM/SIGINT or
 * when its parent goes away (stdin closes).
 *
 *   node fastify-peer-process.ts --upstream URL [--max N --window-ms MS [--redis URL]]
 */
import { parseArgs } from 'node:util'
import httpProxy from '@fastify/http-proxy'
import rateLimit from '@fastify/rate-limit'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { numberFlag } from '../lib/options.ts'
import { serveUntilStopped } from '../lib/serve-until-stopped.ts'

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    upstream: { type: 'string' },
    max: { type: 'string' },
    'window-ms': { type: 'string' },
    redis: { type: 'string' },
  },
  strict: true,
})
if (!values.upstream) throw new Error('--upstream URL is required')
const max = values.max === undefined ? undefined : Math.round(numberFlag('max', values.max, 1, 1))
const windowMs = Math.round(numberFlag('window-ms', values['window-ms'], 1000, 1))

// No request log: Fairlane and nginx run without one too, and the bench would measure stdout.
const app = Fastify({ logger: false })
// The plugin README's advice for a rate-limit store: fail fast instead of queueing commands.
const redis = values.redis
  ? new Redis(values.redis, { connectTimeout: 500, maxRetriesPerRequest: 1 })
  : undefined
if (max !== undefined) {
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: windowMs,
    // The tenant is its credential, as for Fairlane; the client IP is the same for every tenant here.
    keyGenerator: (request) => request.headers.authorization ?? request.ip,
    ...(redis ? { redis } : {}),
  })
}
await app.register(httpProxy, { upstream: values.upstream })
await app.listen({ host: '127.0.0.1', port: 0 })
serveUntilStopped(app.server.address(), () => app.close().then(() => redis?.quit()))
