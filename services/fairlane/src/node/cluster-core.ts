import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { ConfigStore } from '@fairlane/config'
import { QueueActor } from '@fairlane/actor'
import { NatsTransport, ShardLeases, ShardServer, openLeaseBucket } from '@fairlane/cluster'
import { MemoryLedger, RedisLedger } from '@fairlane/limits'
import { shardOfPartition } from '@fairlane/protocol'
import { NodeQueueBudget } from '@fairlane/scheduler'
import type { FairlaneMetrics, Logger } from '@fairlane/telemetry'
import { ticketPolicy } from '../limits/scopes.ts'
import { PartitionCheckpoints, partitionsOfShard } from './checkpoints.ts'
import type { NodeCore } from './node-core.ts'
import type { NodeSettings } from './node-settings.ts'

export interface ClusterConnections {
  readonly nc: NatsConnection
  /** The ledger's client: fails fast while Redis is away, so scopes follow onLedgerDown at once. */
  readonly ledgerRedis: Redis
}

/** Connects to NATS and Redis; NATS must answer, Redis may be down (onLedgerDown covers it). */
export async function connectCluster(
  settings: NodeSettings & { cluster: NonNullable<NodeSettings['cluster']> },
  logger: Logger,
): Promise<ClusterConnections> {
  const nc = await connect({
    servers: settings.cluster.natsUrl.split(','),
    name: `fairlane-${settings.nodeId}`,
    maxReconnectAttempts: -1,
  })
  const ledgerRedis = new Redis(settings.cluster.redisUrl, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  })
  let reported = false
  ledgerRedis.on('error', (err: Error) => {
    if (!reported)
      logger.warn({ err: err.message }, 'redis ledger unreachable; scopes follow onLedgerDown')
    reported = true
  })
  ledgerRedis.on('ready', () => {
    if (reported) logger.info('redis ledger reachable again')
    reported = false
  })
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3_000)
    ledgerRedis.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return { nc, ledgerRedis }
}

/**
 * A cluster node: ingress sends tickets over NATS to the shard's owner; with the actor role
 * this node owns a fair share of shards through leases in NATS KV and runs their lanes,
 * with partition-local limits in memory and shared ones reserved from the Redis ledger.
 */
export async function clusterCore(
  settings: NodeSettings,
  connections: ClusterConnections,
  store: ConfigStore,
  metrics: FairlaneMetrics,
  logger: Logger,
): Promise<NodeCore> {
  const { nc, ledgerRedis } = connections
  const config = store.current()
  const { shards, leaseTtlMs } = config.cluster
  const closers: (() => Promise<void> | void)[] = []

  let leases: ShardLeases | undefined
  if (settings.roles.has('actor')) {
    const now = () => performance.now()
    const ledger = new MemoryLedger({ now })
    const redisLedger = new RedisLedger({ redis: ledgerRedis })
    const actor: QueueActor = new QueueActor({
      ledger,
      now,
      budget: new NodeQueueBudget(config.queue.perNode),
      policyFor: (ticket) => ticketPolicy(store.current(), ticket, true),
      checkpoints: true,
      shared: {
        reserver: redisLedger,
        share: () => 1 / (leases?.liveNodes ?? 1),
        onLedgerDown: (scope, policy) =>
          metrics.ledgerDownDecisions.inc({ scope: scope.kind, policy }),
      },
    })
    metrics.observeQueued(() => actor.queued)
    const sweeper = setInterval(() => ledger.sweep(), 10_000)
    sweeper.unref()
    const shardServer = new ShardServer({ nc, actor })
    const checkpoints = new PartitionCheckpoints({
      redis: ledgerRedis,
      actor,
      everyMs: config.cluster.checkpointMs,
    })
    const partitions = (shard: number) => partitionsOfShard(store.current(), shard, shards)
    const kv = await openLeaseBucket(nc, leaseTtlMs)
    const shardLeases = new ShardLeases({
      kv,
      nodeId: settings.nodeId,
      shards,
      ttlMs: leaseTtlMs,
      // Resume the previous owner's lane state first; tickets sent meanwhile meet no
      // responder and ingress sends them again.
      onAcquire: (shard) =>
        void checkpoints
          .restore(partitions(shard))
          .catch((err: unknown) => logger.warn({ err, shard }, 'lane state not resumed'))
          .then(() => {
            // Given up again while the checkpoint was read (a stop right after a join).
            if (shardLeases.owned.includes(shard)) shardServer.serve(shard)
          }),
      onRelease: async (shard) => {
        await shardServer.stopServing(shard)
        await checkpoints.save(partitions(shard))
      },
    })
    leases = shardLeases
    metrics.observeCluster({
      ledgerUp: () => !actor.ledgerDown,
      shards: () => shardLeases.owned.length,
    })
    await shardLeases.start()
    closers.push(
      // Drain: stop taking shards, hand waiting tickets to the next owners, give leases back.
      () => shardLeases.stop(),
      () => shardServer.close(),
      () => checkpoints.close(),
      () => clearInterval(sweeper),
      () => actor.close(),
      () => redisLedger.close(),
    )
  }

  let transport: NatsTransport | undefined
  if (settings.roles.has('ingress')) {
    const longestWait = Math.max(0, ...Object.values(config.tiers).map((t) => t.maxWaitMs))
    transport = new NatsTransport({
      nc,
      shardFor: (ticket) =>
        shardOfPartition(ticketPolicy(store.current(), ticket, true).partition, shards),
      requestTimeoutMs: longestWait + 2 * leaseTtlMs + 5_000,
      // A dead owner's shards move within the TTL plus a tick: keep trying at least that long.
      retryForMs: 2 * leaseTtlMs + 2_000,
    })
    closers.push(() => transport?.close())
  }

  return {
    transport,
    mode: 'cluster',
    describe: {
      node: settings.nodeId,
      region: settings.region,
      roles: [...settings.roles],
      shards: leases?.owned.length,
    },
    async close() {
      for (const close of closers) {
        try {
          await close()
        } catch (err) {
          logger.warn({ err }, 'cluster shutdown step failed')
        }
      }
      await nc.drain().catch(() => undefined)
      ledgerRedis.disconnect()
    },
  }
}
