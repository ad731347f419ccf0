import { performance } from 'node:perf_hooks'
import type { Tracer } from '@opentelemetry/api'
import { Redis } from 'ioredis'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { ConfigStore } from '@fairlane/config'
import { QueueActor } from '@fairlane/actor'
import {
  KeyRewriter,
  LEASE_BUCKET,
  NatsLink,
  NatsTransport,
  ShardLeases,
  ShardServer,
  openLeaseBucket,
  settleWithin,
} from '@fairlane/cluster'
import { MemoryLedger, RedisLedger } from '@fairlane/limits'
import { shardOfPartition, type WireRefusal } from '@fairlane/protocol'
import { NodeQueueBudget } from '@fairlane/scheduler'
import type { FairlaneMetrics, Logger } from '@fairlane/telemetry'
import { ticketPolicy } from '../limits/scopes.ts'
import { PartitionCheckpoints, partitionsOfShard } from './checkpoints.ts'
import { LedgerProbe } from './ledger-probe.ts'
import { natsConnectOptions } from './nats-options.ts'
import { TimedReserver } from './timed-reserver.ts'
import type { NodeCore } from './node-core.ts'
import type { NodeSettings } from './node-settings.ts'
import { addressOf, type StartWait } from './start-wait.ts'

export interface ClusterConnections {
  readonly nc: NatsConnection
  /** Whether `nc` is connected right now; disconnects and reconnects are logged. */
  readonly link: NatsLink
  /** The ledger's client: fails fast while Redis is away, so scopes follow onLedgerDown at once. */
  readonly ledgerRedis: Redis
}

/**
 * Connects to NATS and Redis, waiting for each (with `wait`'s backoff and deadline) when it
 * is not there yet; the error that ends the wait names the address that did not answer.
 */
export async function connectCluster(
  settings: NodeSettings & { cluster: NonNullable<NodeSettings['cluster']> },
  logger: Logger,
  wait: StartWait,
): Promise<ClusterConnections> {
  const { natsUrl, redisUrl } = settings.cluster
  const nc = await wait.until('nats', addressOf(natsUrl), () =>
    connect(natsConnectOptions(natsUrl, settings.nodeId)),
  )
  const link = new NatsLink(nc, {
    onDown: (server) => logger.warn({ server }, 'nats disconnected; reconnecting'),
    onUp: (server, downMs) => logger.info({ server, downMs }, 'nats reconnected'),
  })
  const ledgerRedis = new Redis(redisUrl, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    // A frozen Redis keeps its socket and answers nothing: a command gives up instead.
    commandTimeout: 1_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  })
  let lastError: string | undefined
  ledgerRedis.on('error', (err: Error) => {
    lastError = err.message
  })
  try {
    await wait.until(
      'redis',
      addressOf(redisUrl),
      () => ledgerRedis.ping(),
      () => lastError,
    )
  } catch (err) {
    ledgerRedis.disconnect()
    await nc.close()
    throw err
  }
  return { nc, link, ledgerRedis }
}

/** A mixed-version cluster refuses a message per request: one warning a minute says so. */
const REFUSAL_LOG_EVERY_MS = 60_000

/**
 * Counts every NATS message this node did not read, and logs the first of each side and
 * reason and then one a minute with how many were refused meanwhile.
 */
function refusalReporter(metrics: FairlaneMetrics, logger: Logger, side: 'owner' | 'ingress') {
  const last = new Map<string, { at: number; since: number }>()
  return (refusal: WireRefusal, subject?: string) => {
    metrics.clusterRefused.inc({ side, reason: refusal.refused })
    const now = Date.now()
    const seen = last.get(refusal.refused)
    if (seen && now - seen.at < REFUSAL_LOG_EVERY_MS) {
      seen.since++
      return
    }
    last.set(refusal.refused, { at: now, since: 0 })
    logger.warn(
      { side, reason: refusal.refused, subject, refusedSinceLastLog: seen?.since ?? 0 },
      `cluster message refused: ${refusal.detail} (every node of a cluster must run the same wire version)`,
    )
  }
}

/** Longest the stop waits for NATS to take this node's last messages before it just closes. */
const NATS_DRAIN_MS = 1_000
const SHARE_EVENTS = ['lent', 'returned', 'revoked'] as const
/** How often a node measures its round trip to the NATS server (fairlane_nats_rtt_seconds). */
const NATS_RTT_EVERY_MS = 5_000

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
  leaseBucketWaitMs: number,
  tracer: Tracer | undefined,
): Promise<NodeCore> {
  const { nc, link, ledgerRedis } = connections
  const config = store.current()
  const { shards, leaseTtlMs } = config.cluster
  const batch = {
    maxItems: config.cluster.batchMaxItems,
    flushDelayMs: config.cluster.batchFlushDelayMs,
  }
  const shares = config.cluster.shares.enabled
    ? { ttlMs: config.cluster.shares.ttlMs, max: config.cluster.shares.max }
    : undefined
  const closers: (() => Promise<void> | void)[] = []
  metrics.observeNats(() => link.connected)
  metrics.clusterShards.set(shards)
  let natsRttMs: number | undefined
  const measureRtt = () => {
    if (!link.connected) return
    nc.rtt().then(
      (ms) => (natsRttMs = ms),
      () => undefined,
    )
  }
  measureRtt()
  const rttProbe = setInterval(measureRtt, NATS_RTT_EVERY_MS)
  rttProbe.unref()
  closers.push(() => clearInterval(rttProbe))
  metrics.observeNatsRtt(() => (natsRttMs === undefined ? undefined : natsRttMs / 1000))

  let leases: ShardLeases | undefined
  let probe: LedgerProbe | undefined
  if (settings.roles.has('actor')) {
    const now = () => performance.now()
    const ledger = new MemoryLedger({ now, maxStates: () => store.current().limits.maxStates })
    const redisLedger = new RedisLedger({ redis: ledgerRedis })
    const actor: QueueActor = new QueueActor({
      ledger,
      now,
      budget: new NodeQueueBudget(config.queue.perNode),
      policyFor: (ticket) => ticketPolicy(store.current(), ticket, true),
      checkpoints: true,
      // Shares of a partition whose ticket waits or is refused go back (the server exists by then).
      onContention: (partition) => shardServer.revoke(partition),
      shared: {
        reserver: new TimedReserver(redisLedger, metrics, now),
        share: () => 1 / (leases?.liveNodes ?? 1),
        onLedgerDown: (scope, policy) =>
          metrics.ledgerDownDecisions.inc({ scope: scope.kind, policy }),
      },
    })
    metrics.observeQueued(() => actor.queued)
    metrics.observeLimitStates(() => ledger.size)
    const sweeper = setInterval(() => ledger.sweep(), 10_000)
    sweeper.unref()
    const shardServer = new ShardServer({
      nc,
      actor,
      batch,
      onBatchSent: (items) => metrics.clusterBatchItems.observe({ direction: 'to_ingress' }, items),
      onRefused: refusalReporter(metrics, logger, 'owner'),
      ...(shares ? { shares } : {}),
      onShares: (event, count) => metrics.clusterShares.inc({ event }, count),
      ...(tracer ? { tracer } : {}),
    })
    // From start at 0, so a rate over them is 0 rather than absent until the first share.
    if (shares) for (const event of SHARE_EVENTS) metrics.clusterShares.inc({ event }, 0)
    const checkpoints = new PartitionCheckpoints({
      redis: ledgerRedis,
      actor,
      everyMs: config.cluster.checkpointMs,
    })
    const partitions = (shard: number) => partitionsOfShard(store.current(), shard, shards)
    const kv = await openLeaseBucket(nc, leaseTtlMs, leaseBucketWaitMs)
    // A round waits for its rewrites: one whose answer is lost holds the round back at most
    // a round (a third of the TTL), so the leases rewritten after it are still alive.
    const rewriter = new KeyRewriter(nc, LEASE_BUCKET, leaseTtlMs / 3)
    const shardLeases = new ShardLeases({
      kv,
      rewrite: (key, value, revision) => rewriter.rewrite(key, value, revision),
      nodeId: settings.nodeId,
      shards,
      ttlMs: leaseTtlMs,
      link,
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
    const ledgerProbe = new LedgerProbe({
      ping: () => ledgerRedis.ping(),
      everyMs: 1_000,
      timeoutMs: 1_000,
      now: () => performance.now(),
      onChange: (up, why) => {
        if (up) logger.info('redis ledger reachable again')
        else logger.warn({ err: why }, 'redis ledger unreachable; scopes follow onLedgerDown')
      },
    })
    probe = ledgerProbe
    metrics.observeCluster({
      ledgerUp: () => ledgerProbe.up && !actor.ledgerDown,
      shards: () => shardLeases.owned.length,
    })
    await shardLeases.start()
    closers.push(
      // Drain: stop taking shards, hand waiting tickets to the next owners, give leases back.
      () => shardLeases.stop(),
      () => rewriter.close(),
      () => ledgerProbe.close(),
      () => shardServer.close(),
      () => checkpoints.close(),
      () => clearInterval(sweeper),
      () => actor.close(),
      () => redisLedger.close(),
    )
  }

  let transport: NatsTransport | undefined
  // A worker's job attempts go through their lanes as requests do.
  if (settings.roles.has('ingress') || settings.roles.has('worker')) {
    const longestWait = Math.max(0, ...Object.values(config.tiers).map((t) => t.maxWaitMs))
    transport = new NatsTransport({
      nc,
      shardFor: (ticket) =>
        shardOfPartition(ticketPolicy(store.current(), ticket, true).partition, shards),
      requestTimeoutMs: longestWait + 2 * leaseTtlMs + 5_000,
      // A dead owner's shards move within the TTL plus a tick: keep trying at least that long.
      retryForMs: 2 * leaseTtlMs + 2_000,
      batch,
      onBatchSent: (items) => metrics.clusterBatchItems.observe({ direction: 'to_owner' }, items),
      onRoundTrip: (ms) => metrics.clusterRoundTrip.observe(ms / 1000),
      onRefused: refusalReporter(metrics, logger, 'ingress'),
      ...(shares ? { shares } : {}),
      onAdmission: (path) => metrics.clusterAdmissions.inc({ path }),
      ...(tracer ? { tracer } : {}),
    })
    closers.push(() => transport?.close())
  }

  return {
    transport,
    mode: 'cluster',
    nc,
    missing: () => [
      ...(link.downForMs > config.cluster.natsDownGraceMs ? ['nats'] : []),
      // Only the ledger's users: an ingress-only node needs Redis for config changes alone
      // and serves on with the config it has.
      ...((probe?.downForMs ?? 0) > config.cluster.redisDownGraceMs ? ['redis'] : []),
    ],
    // Node id and region are in every log line already (the logger's base).
    describe: {
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
      if (!link.connected || !(await settleWithin(nc.drain(), NATS_DRAIN_MS))) await nc.close()
      ledgerRedis.disconnect()
    },
  }
}
