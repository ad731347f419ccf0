import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { DestinationStream } from 'pino'
import type { ConfigStore } from '@fairlane/config'
import { InProcessTransport, QueueActor } from '@fairlane/cluster'
import {
  DestinationPolicy,
  Forwarder,
  interfaceAddresses,
  systemResolver,
  type Resolve,
} from '@fairlane/forward'
import { MemoryLedger } from '@fairlane/limits'
import { NodeQueueBudget } from '@fairlane/scheduler'
import { FairlaneMetrics, createLogger, type Logger } from '@fairlane/telemetry'
import { buildAdmin } from '../admin/admin-server.ts'
import { buildIngress } from '../ingress/ingress.ts'
import { ticketPolicy } from '../limits/scopes.ts'

export interface EmbeddedNodeOptions {
  readonly store: ConfigStore
  /** Override the configured ports (FAIRLANE_PORT / FAIRLANE_ADMIN_PORT); 0 picks a free one. */
  readonly port?: number
  readonly adminPort?: number
  /** Where JSON logs go; stdout when omitted. */
  readonly logDestination?: DestinationStream
  /** DNS for the destination policy; the system resolver when omitted. */
  readonly resolve?: Resolve
}

export interface EmbeddedNode {
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly proxyPort: number
  readonly adminPort: number
  readonly logger: Logger
  readonly metrics: FairlaneMetrics
  /** Stops taking requests, lets those in flight finish within the grace period, then stops. */
  close(): Promise<void>
}

function urlOf(host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
}

/**
 * Every role in one process: ingress, the queue actor (lanes and the in-memory ledger behind
 * the in-process transport) and the forwarder. The cluster swaps the transport and the
 * ledger, nothing above them.
 */
export async function startEmbeddedNode(options: EmbeddedNodeOptions): Promise<EmbeddedNode> {
  const { store } = options
  const config = store.current()
  const logger = createLogger({ level: config.logging.level, destination: options.logDestination })
  const metrics = new FairlaneMetrics()
  const now = () => performance.now()
  const ledger = new MemoryLedger({ now })
  const actor = new QueueActor({
    ledger,
    now,
    budget: new NodeQueueBudget(config.queue.perNode),
    policyFor: (ticket) => ticketPolicy(store.current(), ticket),
  })
  metrics.observeQueued(() => actor.queued)
  // Limit state of callers gone quiet is dropped, so memory follows the active callers.
  const sweeper = setInterval(() => ledger.sweep(), 10_000)
  sweeper.unref()
  const transport = new InProcessTransport(actor)
  const forwarder = new Forwarder()
  let self = { addresses: [config.server.host, ...interfaceAddresses()], ports: [] as number[] }
  const policy = new DestinationPolicy({
    resolve: options.resolve ?? systemResolver(),
    self: () => self,
  })

  let ready = false
  const ingress = buildIngress(
    { store, transport, policy, forwarder, metrics, logger, wallClock: () => Date.now() },
    { maxHeaderBytes: config.server.maxHeaderBytes },
  )
  const admin = buildAdmin({ metrics, logger, ready: () => ready })

  await ingress.listen({ host: config.server.host, port: options.port ?? config.server.port })
  try {
    await admin.listen({
      host: config.server.adminHost,
      port: options.adminPort ?? config.server.adminPort,
    })
  } catch (err) {
    await ingress.close()
    throw err
  }
  const proxyPort = (ingress.server.address() as AddressInfo).port
  const adminPort = (admin.server.address() as AddressInfo).port
  self = {
    addresses: [config.server.host, config.server.adminHost, ...interfaceAddresses()],
    ports: [proxyPort, adminPort],
  }
  ready = true

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false
      const grace = store.current().server.shutdownGraceMs
      const timer = setTimeout(() => ingress.server.closeAllConnections(), grace)
      try {
        await ingress.close()
      } finally {
        clearTimeout(timer)
      }
      clearInterval(sweeper)
      actor.close()
      await Promise.all([admin.close(), forwarder.close(), transport.close()])
    })()
    return closing
  }

  return {
    proxyUrl: urlOf(config.server.host, proxyPort),
    adminUrl: urlOf(config.server.adminHost, adminPort),
    proxyPort,
    adminPort,
    logger,
    metrics,
    close,
  }
}
