import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Tracer } from '@opentelemetry/api'
import { Redis } from 'ioredis'
import { ConfigError, type ConfigStore, type Env } from '@fairlane/config'
import {
  DestinationPolicy,
  Forwarder,
  interfaceAddresses,
  systemResolver,
  SYSTEM_RESOLVER_TTL_MS,
  type Resolve,
} from '@fairlane/forward'
import {
  FairlaneMetrics,
  LaneActivity,
  createLogger,
  stdoutLines,
  RequestLines,
  type Logger,
  type LoggerOptions,
} from '@fairlane/telemetry'
import { buildAdmin } from '../admin/admin-server.ts'
import { EndpointDestinations } from '../ingress/endpoint-destinations.ts'
import { buildIngress, type IngressDeps } from '../ingress/ingress.ts'
import { RequestTracing } from '../ingress/request-tracing.ts'
import { JobTracing } from '../jobs/job-tracing.ts'
import { Jobs } from '../jobs/jobs.ts'
import { Upstreams, type UpstreamHealthView } from '../ingress/upstreams.ts'
import { settleWithin } from '@fairlane/cluster'
import { clusterCore, connectCluster } from './cluster-core.ts'
import { embeddedCore } from './embedded-core.ts'
import { FAIRLANE_VERSION } from './fairlane-version.ts'
import type { NodeCore } from './node-core.ts'
import { StartWait } from './start-wait.ts'
import { nodeSettingsFrom, type NodeSettings } from './node-settings.ts'
import { LateConfigStore } from '../store/late-config-store.ts'
import { openRedisConfigStore, type RedisConfigStore } from '../store/redis-config-store.ts'

export interface NodeOptions {
  readonly store: ConfigStore
  /** Override the configured ports (FAIRLANE_PORT / FAIRLANE_ADMIN_PORT); 0 picks a free one. */
  readonly port?: number
  readonly adminPort?: number
  /** Where JSON logs go; stdout when omitted. */
  readonly logDestination?: LoggerOptions['destination']
  /** DNS for the destination policy; the system resolver when omitted. */
  readonly resolve?: Resolve
  /** Identity, roles and cluster URLs; from the environment when omitted (embedded if unset). */
  readonly settings?: NodeSettings
  /** Environment for ${ENV} references in stored config and FAIRLANE_ADMIN_TOKEN; process.env when omitted. */
  readonly env?: Env
  /** Where spans go while traces are on (startTracing); no span is made without one. */
  readonly tracer?: Tracer
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

/**
 * After the grace period for requests in flight, the longest the rest of a stop may take
 * (handing shards over, saving lane state, leaving NATS and Redis): documented in
 * docs/operations.md.
 */
export const STOP_AFTER_GRACE_MS = 5_000

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
    // Every line says which node wrote it, so the lines of one trace can be told apart.
    base: { node: settings.nodeId, ...(settings.region ? { region: settings.region } : {}) },
  })
  const metrics = new FairlaneMetrics()
  if (!options.logDestination) metrics.observeLogLinesDropped(() => stdoutLines()?.dropped ?? 0)
  const cluster = settings.cluster
  metrics.describeBuild({
    version: FAIRLANE_VERSION,
    node: settings.nodeId,
    region: settings.region ?? '',
    mode: cluster ? 'cluster' : 'embedded',
  })
  const activity = new LaneActivity({ now: () => performance.now() })
  const wait = new StartWait(fileConfig.cluster.startTimeoutMs, logger)
  let core: NodeCore | undefined
  let draining = false
  let started = false
  const lateStore = cluster ? new LateConfigStore() : undefined
  let upstreamsView: () => readonly UpstreamHealthView[] = () => []
  // The admin port comes up first: a node waiting for NATS or Redis is alive (/healthz) and
  // says what it waits for (/readyz), instead of exiting into a crash loop.
  const admin = buildAdmin({
    metrics,
    logger,
    missing: () => (draining ? ['draining'] : started ? (core?.missing?.() ?? []) : wait.missing),
    upstreams: () => upstreamsView(),
    lanes: () => ({ node: settings.nodeId, region: settings.region, ...activity.snapshot() }),
    ...(lateStore
      ? { api: { token: env['FAIRLANE_ADMIN_TOKEN'] || undefined, store: lateStore } }
      : {}),
  })
  await admin.listen({
    host: fileConfig.server.adminHost,
    port: options.adminPort ?? fileConfig.server.adminPort,
  })
  let store: ConfigStore = options.store
  let clusterStore: { store: RedisConfigStore; redis: Redis } | undefined
  try {
    if (cluster) {
      const connections = await connectCluster({ ...settings, cluster }, logger, wait)
      wait.joining()
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
        connections.ledgerRedis.disconnect()
        await connections.nc.close()
        throw err
      })
      clusterStore = { store: opened, redis }
      lateStore?.open(opened)
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
      core = await clusterCore(
        settings,
        connections,
        store,
        metrics,
        logger,
        // JetStream may still be electing its leader: wait for the bucket as long as the
        // start may take, and at least 20 s.
        Math.max(20_000, wait.remainingMs),
        options.tracer,
      )
    } else {
      core = embeddedCore(store, metrics)
    }
  } catch (err) {
    await clusterStore?.store.close()
    clusterStore?.redis.disconnect()
    await admin.close()
    throw err
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
  upstreamsView = () => upstreams.snapshot()
  metrics.observeEndpoints(() => upstreams.snapshot())
  const transport = core.transport
  const paths: Omit<IngressDeps, 'jobs'> | undefined = transport
    ? {
        store,
        transport,
        policy,
        forwarder,
        upstreams,
        metrics,
        activity,
        logger,
        wallClock: () => Date.now(),
        ...(options.tracer ? { tracing: new RequestTracing(options.tracer) } : {}),
        destinations: new EndpointDestinations({
          policy,
          // As long as the system resolver keeps an answer; a resolver passed in (tests,
          // embedders) may cache nothing, so nothing is reused on top of it.
          ttlMs: options.resolve ? 0 : SYSTEM_RESOLVER_TTL_MS,
          now: () => performance.now(),
        }),
      }
    : undefined
  // Jobs run through the same stages as requests, so they need what ingress needs. In a
  // cluster, ingress nodes accept and serve them and worker nodes run them.
  const jobTracing = options.tracer ? new JobTracing(options.tracer) : undefined
  const jobs = paths
    ? new Jobs({
        config: store,
        env,
        ...(core.nc ? { cluster: { nc: core.nc, work: settings.roles.has('worker') } } : {}),
        attempt: {
          ...paths,
          lines: new RequestLines(logger),
          ...(jobTracing ? { jobTracing } : {}),
        },
        webhook: {
          policy,
          forwarder,
          wallClock: () => Date.now(),
          ...(jobTracing ? { tracing: jobTracing } : {}),
        },
        logger,
      })
    : undefined
  // A worker-only node runs jobs with no proxy port of its own.
  const served = settings.roles.has('ingress') ? paths : undefined
  const ingress = served
    ? buildIngress(
        { ...served, ...(jobs ? { jobs } : {}) },
        {
          maxHeaderBytes: config.server.maxHeaderBytes,
          headTimeoutMs: config.server.headTimeoutMs,
        },
      )
    : undefined
  try {
    // As long as the start may take, and at least 20 s: JetStream may still be electing.
    await jobs?.openCluster(Math.max(20_000, wait.remainingMs))
    await ingress?.listen({ host: config.server.host, port: options.port ?? config.server.port })
  } catch (err) {
    await ingress?.close()
    await jobs?.close(0)
    await core.close()
    await admin.close()
    throw err
  }
  const proxyPort = ingress ? (ingress.server.address() as AddressInfo).port : 0
  const adminPort = (admin.server.address() as AddressInfo).port
  self = {
    addresses: [config.server.host, config.server.adminHost, ...interfaceAddresses()],
    ports: [proxyPort, adminPort].filter((p) => p !== 0),
  }
  started = true
  const running = core

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true
      const grace = store.current().server.shutdownGraceMs
      // Job attempts in flight get the same grace as requests, at the same time.
      const jobsClosed = jobs?.close(grace)
      if (ingress) {
        const timer = setTimeout(() => ingress.server.closeAllConnections(), grace)
        try {
          await ingress.close()
        } finally {
          clearTimeout(timer)
        }
      }
      await jobsClosed
      // Whatever NATS and Redis do, the rest of the stop is bounded: leases left behind
      // expire by themselves, and budget reserved from Redis returns with its TTL.
      const stopped = await settleWithin(
        (async () => {
          await clusterStore?.store.close()
          await running.close()
          await Promise.all([admin.close(), forwarder.close(), upstreams.close()])
        })(),
        STOP_AFTER_GRACE_MS,
      )
      if (!stopped)
        logger.warn(
          { boundMs: STOP_AFTER_GRACE_MS },
          'stop cut short: NATS or Redis did not answer',
        )
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
    describe: { mode: running.mode, ...running.describe },
    close,
  }
}
