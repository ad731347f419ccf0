import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { DestinationStream } from 'pino'
import { Redis } from 'ioredis'
import { ConfigError, type ConfigStore, type Env } from '@fairlane/config'
import {
  DestinationPolicy,
  Forwarder,
  interfaceAddresses,
  systemResolver,
  type Resolve,
} from '@fairlane/forward'
import { FairlaneMetrics, createLogger, type Logger } from '@fairlane/telemetry'
import { buildAdmin } from '../admin/admin-server.ts'
import { buildIngress } from '../ingress/ingress.ts'
import { Upstreams } from '../ingress/upstreams.ts'
import { clusterCore, connectCluster } from './cluster-core.ts'
import { embeddedCore } from './embedded-core.ts'
import type { NodeCore } from './node-core.ts'
import { nodeSettingsFrom, type NodeSettings } from './node-settings.ts'
import { openRedisConfigStore, type RedisConfigStore } from '../store/redis-config-store.ts'

export interface NodeOptions {
  readonly store: ConfigStore
  /** Override the configured ports (FAIRLANE_PORT / FAIRLANE_ADMIN_PORT); 0 picks a free one. */
  readonly port?: number
  readonly adminPort?: number
  /** Where JSON logs go; stdout when omitted. */
  readonly logDestination?: DestinationStream
  /** DNS for the destination policy; the system resolver when omitted. */
  readonly resolve?: Resolve
  /** Identity, roles and cluster URLs; from the environment when omitted (embedded if unset). */
  readonly settings?: NodeSettings
  /** Environment for ${ENV} references in stored config and FAIRLANE_ADMIN_TOKEN; process.env when omitted. */
  readonly env?: Env
}

export interface FairlaneNode {
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly proxyPort: number
  readonly adminPort: number
  readonly logger: Logger
  readonly metrics: FairlaneMetrics
  readonly settings: NodeSettings
  /** Fields for the start log line: mode, node id, region, roles. */
  readonly describe: Record<string, unknown>
  /** Stops taking requests, lets those in flight finish within the grace period, then stops. */
  close(): Promise<void>
}

function urlOf(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

/**
 * A Fairlane node: ingress (Fastify), the admin port, and under them the core that runs the
 * queue actors: in process in embedded mode, over NATS and Redis in a cluster. Code above
 * the transport and ledger is the same in both.
 */
export async function startNode(options: NodeOptions): Promise<FairlaneNode> {
  const env = options.env ?? process.env
  const settings = options.settings ?? nodeSettingsFrom(env)
  const fileConfig = options.store.current()
  const logger = createLogger({
    level: fileConfig.logging.level,
    destination: options.logDestination,
  })
  const metrics = new FairlaneMetrics()
  const cluster = settings.cluster
  let store: ConfigStore = options.store
  let clusterStore: { store: RedisConfigStore; redis: Redis } | undefined
  let core: NodeCore
  if (cluster) {
    const connections = await connectCluster({ ...settings, cluster }, logger)
    // Workspaces, keys and targets live in Redis, over the file; the store's own client
    // queues commands through short outages (the ledger's fails fast instead).
    const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 })
    redis.on('error', () => undefined)
    const opened = await openRedisConfigStore({
      base: fileConfig,
      redis,
      nc: connections.nc,
      env,
      logger,
    }).catch(async (err: unknown) => {
      redis.disconnect()
      await connections.nc.close()
      throw err
    })
    clusterStore = { store: opened, redis }
    store = opened
    // SIGHUP re-reads the file: it becomes the base under the stored part.
    options.store.subscribe((next) => {
      try {
        opened.rebase(next)
      } catch (err) {
        logger.error(
          { problems: err instanceof ConfigError ? err.issues : String(err) },
          'reloaded file refused with the stored config; the running config stays in force',
        )
      }
    })
    core = await clusterCore(settings, connections, store, metrics, logger)
  } else {
    core = embeddedCore(store, metrics)
  }
  const config = store.current()
  const forwarder = new Forwarder()
  let self = { addresses: [config.server.host, ...interfaceAddresses()], ports: [] as number[] }
  const policy = new DestinationPolicy({
    resolve: options.resolve ?? systemResolver(),
    self: () => self,
  })

  const upstreams = new Upstreams({
    store,
    region: settings.region,
    now: () => performance.now(),
    // A probe goes where a request would: the checked address of the endpoint.
    logger,
    pin: (url, target) =>
      policy.check(url, { allowHttp: true, allowPrivateAddresses: target.allowPrivateAddresses }),
  })
  metrics.observeEndpoints(() => upstreams.snapshot())
  let ready = false
  const transport = core.transport
  const ingress = transport
    ? buildIngress(
        {
          store,
          transport,
          policy,
          forwarder,
          upstreams,
          metrics,
          logger,
          wallClock: () => Date.now(),
        },
        {
          maxHeaderBytes: config.server.maxHeaderBytes,
          headTimeoutMs: config.server.headTimeoutMs,
        },
      )
    : undefined
  const admin = buildAdmin({
    metrics,
    logger,
    ready: () => ready,
    upstreams: () => upstreams.snapshot(),
    ...(clusterStore
      ? { api: { token: env['FAIRLANE_ADMIN_TOKEN'] || undefined, store: clusterStore.store } }
      : {}),
  })

  try {
    await ingress?.listen({ host: config.server.host, port: options.port ?? config.server.port })
    await admin.listen({
      host: config.server.adminHost,
      port: options.adminPort ?? config.server.adminPort,
    })
  } catch (err) {
    await ingress?.close()
    await core.close()
    throw err
  }
  const proxyPort = ingress ? (ingress.server.address() as AddressInfo).port : 0
  const adminPort = (admin.server.address() as AddressInfo).port
  self = {
    addresses: [config.server.host, config.server.adminHost, ...interfaceAddresses()],
    ports: [proxyPort, adminPort].filter((p) => p !== 0),
  }
  ready = true

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false
      if (ingress) {
        const grace = store.current().server.shutdownGraceMs
        const timer = setTimeout(() => ingress.server.closeAllConnections(), grace)
        try {
          await ingress.close()
        } finally {
          clearTimeout(timer)
        }
      }
      await clusterStore?.store.close()
      await core.close()
      await Promise.all([admin.close(), forwarder.close(), upstreams.close()])
      clusterStore?.redis.disconnect()
    })()
    return closing
  }

  return {
    proxyUrl: ingress ? urlOf(config.server.host, proxyPort) : '',
    adminUrl: urlOf(config.server.adminHost, adminPort),
    proxyPort,
    adminPort,
    logger,
    metrics,
    settings,
    describe: { mode: core.mode, ...core.describe },
    close,
  }
}
