import { readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from '../lib/child.ts'
import { ensureBinary, versionOf } from '../lib/debian-package.ts'
import { REPO_ROOT } from '../lib/paths.ts'
import type { Contender, DeployOptions, Deployment } from './contender.ts'
import {
  benchConfigDir,
  launchFairlane,
  LOG_LEVEL,
  writeBenchConfig,
  type FairlaneProcess,
} from './fairlane-embedded.ts'
import { startBenchNats, type BenchNats } from './nats.ts'
import { startBenchRedis, type BenchRedis } from './redis.ts'

/** The example every cluster figure starts from: target `echo`, key `fl_demo_cluster`. */
export const CLUSTER_EXAMPLE = join(REPO_ROOT, 'examples/cluster.yaml')
/** The documented demo key of examples/cluster.yaml. */
export const CLUSTER_DEMO_KEY = 'fl_demo_cluster'
const CLUSTER_NODES = 3
/** The config's default: `cluster.shards`. */
const SHARDS = 256

export interface FairlaneCluster {
  readonly nodes: readonly FairlaneProcess[]
  readonly nats: BenchNats
  readonly redis: BenchRedis
  /** Every process of the cluster by role (node-1 … node-n, nats, redis), for CPU tables. */
  readonly processes: Readonly<Record<string, Child>>
  /** Shards each node held once the split settled, in node order. */
  readonly shardsOwned: readonly number[]
  stop(): Promise<void>
}

export interface FairlaneClusterOptions {
  /** The config every node runs (the same file on every node, as in production). */
  readonly configPath: string
  /** ECHO_URL for configs that read it (examples/cluster.yaml). */
  readonly upstreamUrl: string
  readonly nodes?: number
}

async function binaries(): Promise<{ nats: string; redis: string } | string> {
  const [nats, redis] = [
    await ensureBinary('nats-server', 'nats-server'),
    await ensureBinary('redis-server', 'redis-server'),
  ]
  if (!nats.ok) return nats.reason
  if (!redis.ok) return redis.reason
  return { nats: nats.path, redis: redis.path }
}

async function shardsOf(node: FairlaneProcess): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith('fairlane_shards_owned '))
    return line === undefined ? undefined : Number(line.split(' ')[1])
  } catch {
    return undefined
  }
}

/**
 * Waits until the nodes hold every shard between them, none above its fair share
 * (⌈256 / 3⌉ = 86, so 86/86/84 or 86/85/85), and the split has not changed for a second:
 * nodes that start together first race for leases, then give extra ones back. Load during
 * that handover would measure the handover, not the cluster.
 */
async function waitForEvenSplit(
  nodes: readonly FairlaneProcess[],
  timeoutMs = 30_000,
): Promise<number[]> {
  const deadline = performance.now() + timeoutMs
  const fair = Math.ceil(SHARDS / nodes.length)
  let settled: { split: string; since: number } | undefined
  for (;;) {
    for (const node of nodes)
      if (!node.child.running)
        throw new Error(`${node.child.name} exited while shards settled\n${node.child.output()}`)
    const owned = await Promise.all(nodes.map(shardsOf))
    const counts = owned.filter((n): n is number => n !== undefined && Number.isFinite(n))
    const even =
      counts.length === nodes.length &&
      counts.reduce((a, b) => a + b, 0) === SHARDS &&
      Math.max(...counts) <= fair
    const split = counts.join('/')
    if (!even) settled = undefined
    else if (settled?.split !== split) settled = { split, since: performance.now() }
    else if (performance.now() - settled.since >= 1_000) return counts
    if (performance.now() > deadline)
      throw new Error(
        `shards did not settle into an even split within ${timeoutMs} ms: ${owned.join(' / ')}`,
      )
    await sleep(200)
  }
}

/**
 * Three Fairlane nodes as an operator runs them: the same config file on every node,
 * `fairlane start` with FAIRLANE_NODE_ID, FAIRLANE_NATS_URL and FAIRLANE_REDIS_URL, each on
 * ports of its own, against a nats-server (JetStream on) and a redis-server of the bench's own.
 * Resolves once every node is ready and the shards are split evenly.
 */
export async function startFairlaneCluster(
  options: FairlaneClusterOptions,
): Promise<FairlaneCluster> {
  const found = await binaries()
  if (typeof found === 'string') throw new Error(found)
  const count = options.nodes ?? CLUSTER_NODES
  const nats = await startBenchNats(found.nats)
  let redis: BenchRedis | undefined
  const nodes: FairlaneProcess[] = []
  const stop = async (): Promise<void> => {
    // Nodes first (they drain and hand their leases back over NATS), then NATS and Redis.
    await Promise.all(nodes.map((node) => node.stop()))
    await redis?.stop()
    await nats.stop()
  }
  try {
    redis = await startBenchRedis(found.redis)
    const env = {
      FAIRLANE_NATS_URL: nats.url,
      FAIRLANE_REDIS_URL: redis.url,
      ECHO_URL: options.upstreamUrl,
    }
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        launchFairlane(options.configPath, {
          name: `node-${i + 1}`,
          env: { ...env, FAIRLANE_NODE_ID: `node-${i + 1}` },
        }),
      ),
    )
    for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value)
    const failed = started.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    const shardsOwned = await waitForEvenSplit(nodes)
    return {
      nodes,
      nats,
      redis,
      processes: {
        ...Object.fromEntries(nodes.map((node) => [node.child.name, node.child])),
        nats: nats.child,
        redis: redis.child,
      },
      shardsOwned,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * A copy of a YAML config with the `limits:` block of its targets removed and
 * `logging.level: warn` added, in the bench's temp directory: for throughput, where the
 * target's rate limit would cap what is measured. Text, not a YAML round trip, so the rest of
 * the file stays exactly the example; a file whose limits could not be found is refused.
 */
export async function unlimitedCopyOf(configPath: string): Promise<string> {
  const lines = (await readFile(configPath, 'utf8')).split('\n')
  const kept: string[] = []
  let dropIndent: number | undefined
  let removed = 0
  for (const line of lines) {
    const indent = line.length - line.trimStart().length
    if (dropIndent !== undefined) {
      if (line.trim() === '' || indent > dropIndent) continue
      dropIndent = undefined
    }
    if (/^\s+limits:/.test(line)) {
      removed++
      // `limits: { … }` on one line ends here; a block continues on deeper lines.
      if (/^\s+limits:\s*(#.*)?$/.test(line)) dropIndent = indent
      continue
    }
    kept.push(line)
  }
  const text = kept.join('\n')
  if (removed === 0) throw new Error(`${configPath}: no limits block to remove`)
  if (/^logging\s*:/m.test(text))
    throw new Error(`${configPath} sets logging itself; the bench sets logging.level ${LOG_LEVEL}`)
  const copy = join(await benchConfigDir(), `unlimited-${basename(configPath)}`)
  await writeFile(copy, `${text.trimEnd()}\n\nlogging:\n  level: ${LOG_LEVEL}\n`)
  return copy
}

/** Notes that go with every figure measured through the cluster. */
export function clusterNotes(cluster: FairlaneCluster): string[] {
  return [
    `cluster mode: ${cluster.nodes.length} node${cluster.nodes.length === 1 ? '' : 's'} ` +
      '(every role on each), one nats-server ' +
      `(JetStream, shard leases in KV) and one redis-server, all on this machine; ` +
      `logging.level ${LOG_LEVEL}`,
    `shards split ${cluster.shardsOwned.join(' / ')} before the load; a ticket goes over NATS ` +
      'to the owner of its shard, even when that is the node that took the request, unless a ' +
      'leased share of its lane admits it locally (cluster.shares, on by default)',
  ]
}

/**
 * Fairlane as three nodes over NATS and a Redis ledger: the contender that shows one limit
 * held across nodes. The bench generates the config (the key and its limit, as for embedded
 * mode); every node runs the same file. Scenarios that load one instance (overhead, noisy
 * neighbour) send everything to node-1, whose tickets go to the lane's owner over NATS.
 */
export const fairlaneCluster: Contender = {
  name: 'fairlane-cluster',
  description: 'Fairlane cluster: three nodes over NATS (shard leases, tickets) and Redis',
  limiter: 'fairlane',
  maxInstances: CLUSTER_NODES,
  async check() {
    const found = await binaries()
    return typeof found === 'string' ? found : undefined
  },
  async facts(): Promise<Record<string, string>> {
    const found = await binaries()
    if (typeof found === 'string') return {}
    return {
      mode: `cluster, ${CLUSTER_NODES} nodes`,
      logging: LOG_LEVEL,
      'nats-server': await versionOf(found.nats, '--version'),
      'redis-server': await versionOf(found.redis, '--version'),
    }
  },
  async start(options: DeployOptions): Promise<Deployment> {
    const configPath = await writeBenchConfig(
      {
        upstreamUrl: options.upstream.url,
        tenants: options.tenants,
        ...(options.limit ? { limit: options.limit } : {}),
        ...(options.upstreamConcurrency
          ? { upstreamConcurrency: options.upstreamConcurrency }
          : {}),
        logLevel: LOG_LEVEL,
      },
      'fairlane-cluster.json',
    )
    const cluster = await startFairlaneCluster({
      configPath,
      upstreamUrl: options.upstream.url,
    })
    const limit = options.limit
    const bases = cluster.nodes.map((node) => `${node.proxyUrl}/t/echo`)
    return {
      // Scenarios of one instance use the first; accuracy spreads over all three.
      bases: options.instances > 1 ? bases : bases.slice(0, 1),
      pids: Object.fromEntries(
        Object.entries(cluster.processes).map(([role, child]) => [role, child.pid]),
      ),
      children: Object.values(cluster.processes),
      notes: [
        ...clusterNotes(cluster),
        ...(options.instances > 1
          ? []
          : [
              'all the load to node-1 (one URL); the lane may be owned by another node, which ' +
                'then runs its queue actor',
            ]),
        limit
          ? `rate limit per key ${limit.rps}/s, burst ${limit.burst} (GCRA), held in memory by the ` +
            'queue actor that owns the lane; over it requests wait in their lane (queue.perLane ' +
            '100, tier maxWait), then 429'
          : 'key limits far above the load (1,000,000/s, and as many in flight)',
        ...(options.upstreamConcurrency
          ? [
              `target concurrency ${options.upstreamConcurrency.limit}, headroom ` +
                `${options.upstreamConcurrency.headroom}, fair queueing`,
            ]
          : []),
      ],
      stop: () => cluster.stop(),
    }
  },
}
