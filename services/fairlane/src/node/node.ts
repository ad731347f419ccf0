import type { AddressInfo } from 'node:net'
import type { DestinationStream } from 'pino'
import type { ConfigStore } from '@fairlane/config'
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
import { clusterCore, connectCluster } from './cluster-core.ts'
import { embeddedCore } from './embedded-core.ts'
import type { NodeCore } from './node-core.ts'
import { nodeSettingsFrom, type NodeSettings } from './node-settings.ts'

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
  const { store } = options
  const config = store.current()
  const settings = options.settings ?? nodeSettingsFrom(process.env)
  const logger = createLogger({ level: config.logging.level, destination: options.logDestination })
  const metrics = new FairlaneMetrics()
  const cluster = settings.cluster
  const core: NodeCore = cluster
    ? await clusterCore(
        settings,
        await connectCluster({ ...settings, cluster }, logger),
        store,
        metrics,
        logger,
      )
    : embeddedCore(store, metrics)
  const forwarder = new Forwarder()
  let self = { addresses: [config.server.host, ...interfaceAddresses()], ports: [] as number[] }
  const policy = new DestinationPolicy({
    resolve: options.resolve ?? systemResolver(),
    self: () => self,
  })

  let ready = false
  const transport = core.transport
  const ingress = transport
    ? buildIngress(
        { store, transport, policy, forwarder, metrics, logger, wallClock: () => Date.now() },
        { maxHeaderBytes: config.server.maxHeaderBytes },
      )
    : undefined
  const admin = buildAdmin({ metrics, logger, ready: () => ready })

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
      await core.close()
      await Promise.all([admin.close(), forwarder.close()])
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
