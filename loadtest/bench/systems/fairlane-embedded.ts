import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '@fairlane/testing'
import { launch, NODE, type Child } from '../lib/child.ts'
import { REPO_ROOT } from '../lib/paths.ts'
import type { Upstream } from '../lib/upstream.ts'
import {
  FAR_ABOVE_LOAD,
  FAR_ABOVE_LOAD_IN_FLIGHT,
  type Contender,
  type DeployOptions,
  type Deployment,
  type Regions,
  type TenantLimit,
} from './contender.ts'
import type { System } from './system.ts'

const MAIN = join(REPO_ROOT, 'services/fairlane/src/main.ts')
/** The level of the quiet copies of example configs (cluster and fairness benches). */
export const LOG_LEVEL = 'warn'
/**
 * What the configs the bench generates log at: Fairlane's default, one JSON line per request,
 * as a user who installs it gets. The line goes to a FIFO that a `cat` drains, as a container
 * runtime drains a container's stdout; the cost of building and writing it is Fairlane's and
 * is measured.
 */
export const GENERATED_LOG_LEVEL = 'info'

export interface FairlaneEmbeddedOptions {
  /** Directory for a `--cpu-prof` profile, written when the process stops; none when omitted. */
  readonly profileDir?: string
  readonly readyTimeoutMs?: number
}

export interface FairlaneLaunchOptions extends FairlaneEmbeddedOptions {
  /** Added to the bench's environment: what the config's `${VAR}` references read. */
  readonly env?: Readonly<Record<string, string>>
  /** The child's name in messages and CPU tables; default `fairlane`. */
  readonly name?: string
}

/** A running `fairlane start` on free ports. */
export interface FairlaneProcess {
  readonly child: Child
  readonly proxyUrl: string
  readonly adminUrl: string
  stop(): Promise<void>
}

let tempDir: Promise<string> | undefined

/** One temp directory per bench for generated configs, removed when the bench exits. */
export function benchConfigDir(): Promise<string> {
  tempDir ??= mkdtemp(join(tmpdir(), 'fairlane-bench-')).then((dir) => {
    // On exit, not on stop: an interrupted bench must not leave a key hash behind in /tmp either.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    return dir
  })
  return tempDir
}

async function waitUntilReady(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (!child.running)
      throw new Error(`${child.name} exited before it was ready\n${child.output()}`)
    try {
      const response = await fetch(url)
      await response.body?.cancel()
      if (response.status === 200) return
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline)
      throw new Error(`${child.name}: ${url} not 200 within ${timeoutMs} ms\n${child.output()}`)
    await sleep(100)
  }
}

/** The real CLI, `main.ts start --config <file>`, on free ports; resolves once /readyz answers 200. */
export async function launchFairlane(
  configPath: string,
  options: FairlaneLaunchOptions = {},
): Promise<FairlaneProcess> {
  const [port, adminPort] = [await freePort(), await freePort()]
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []
  const child = launch(
    options.name ?? 'fairlane',
    NODE,
    ['--conditions=development', ...profile, MAIN, 'start', '--config', configPath],
    {
      cwd: REPO_ROOT,
      probe: true,
      // Request lines go to a pipe drained as a container runtime drains it (see LaunchOptions).
      stdoutLog: join(await benchConfigDir(), `${options.name ?? 'fairlane'}-${port}.log`),
      env: {
        ...options.env,
        FAIRLANE_PORT: String(port),
        FAIRLANE_ADMIN_PORT: String(adminPort),
      },
    },
  )
  const adminUrl = `http://127.0.0.1:${adminPort}`
  try {
    await waitUntilReady(child, `${adminUrl}/readyz`, options.readyTimeoutMs ?? 30_000)
  } catch (err) {
    await child.stop()
    throw err
  }
  return { child, proxyUrl: `http://127.0.0.1:${port}`, adminUrl, stop: () => child.stop() }
}

/**
 * A copy of a YAML config with `logging.level: warn` added, in the bench's temp directory:
 * at info Fairlane writes a JSON line per request, and the bench would measure stdout. A file
 * that sets logging itself is refused rather than silently given two levels.
 */
export async function quietCopyOf(configPath: string): Promise<string> {
  const text = await readFile(configPath, 'utf8')
  if (/^logging\s*:/m.test(text))
    throw new Error(`${configPath} sets logging itself; the bench sets logging.level ${LOG_LEVEL}`)
  const copy = join(await benchConfigDir(), basename(configPath))
  await writeFile(copy, `${text.trimEnd()}\n\nlogging:\n  level: ${LOG_LEVEL}\n`)
  return copy
}

/** Notes that go with every figure measured through Fairlane. */
export function fairlaneNotes(
  options: FairlaneEmbeddedOptions = {},
  level: string = LOG_LEVEL,
): string[] {
  return [
    level === 'info'
      ? 'embedded mode, one process; logging.level info (the default: one JSON line per request, to a FIFO that a cat of the bench drains)'
      : `embedded mode, one process; logging.level ${level} (no per-request log lines)`,
    ...(options.profileDir ? ['--cpu-prof on: figures include the profiler'] : []),
  ]
}

/** The config of one embedded Fairlane in front of the upstream, as a bench generates it. */
export interface BenchConfig {
  readonly upstreamUrl: string
  /** Bearer tokens; each becomes a key of workspace `bench` (ids t0, t1, …). */
  readonly tenants: readonly string[]
  /** Each key's rate limit; default: far above anything the bench can send. */
  readonly limit?: TenantLimit
  /** The target's concurrency and headroom: Fairlane queues in front of an upstream of that capacity. */
  readonly upstreamConcurrency?: { readonly limit: number; readonly headroom: number }
  /**
   * Several regions instead of `upstreamUrl`: an endpoint per region with its label, and the
   * resilience settings of examples/failover.yaml (timeouts, retries of GET and HEAD, hedging,
   * a health probe) with the hedge delay asked for. FAIRLANE_REGION picks the home region.
   */
  readonly regions?: Regions
  /** Default GENERATED_LOG_LEVEL. */
  readonly logLevel?: string
  /**
   * Inbound mode: no workspace or key; one route `/` to the target whose callers are the
   * Authorization token, each with the tenant limit (as examples/inbound.yaml).
   */
  readonly inbound?: boolean
}

/** The target settings of examples/failover.yaml, with the hedge delay of the bench. */
function failoverTarget(regions: Regions): Record<string, unknown> {
  return {
    endpoints: regions.regions.map((r) => ({ url: r.upstream.url, region: r.name })),
    timeouts: { connectMs: 1000, headersMs: 5000 },
    retry: { attempts: 3, methods: ['GET', 'HEAD'] },
    hedge: { enabled: true, delayMs: regions.hedgeDelayMs },
    health: { probe: { path: '/healthz', intervalMs: 2000 } },
  }
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Writes a generated config into the bench's temp directory; returns its path. */
export async function writeBenchConfig(
  config: BenchConfig,
  name = 'fairlane.json',
): Promise<string> {
  const limit = config.limit ?? FAR_ABOVE_LOAD
  const concurrency = config.upstreamConcurrency
  const document = {
    logging: { level: config.logLevel ?? GENERATED_LOG_LEVEL },
    targets: {
      echo: {
        ...(config.regions
          ? failoverTarget(config.regions)
          : { endpoints: [{ url: config.upstreamUrl }] }),
        allowPrivateAddresses: true,
        // Far above the load in flight too: the default (64 per key, 100 more waiting in the
        // lane) refused a few hundred requests with queue_full when a pause (a major GC) held
        // answers back at 9,000 req/s, which measured the default, not the path. (Noisy
        // neighbour gets it too; its target's concurrency of 8 binds long before 64.)
        ...(config.limit === undefined ? { perKeyConcurrency: FAR_ABOVE_LOAD_IN_FLIGHT } : {}),
        ...(concurrency
          ? { limits: { concurrency: concurrency.limit }, headroom: concurrency.headroom }
          : {}),
      },
    },
    ...(config.inbound
      ? {
          routes: {
            bench: {
              target: 'echo',
              callers: { header: 'authorization' },
              limits: { rate: { rps: limit.rps, burst: limit.burst } },
            },
          },
        }
      : {
          workspaces: {
            bench: {
              targets: ['echo'],
              keys: config.tenants.map((token, i) => ({
                id: `t${i}`,
                hash: `sha256:${sha256(token)}`,
                limits: { rate: { rps: limit.rps, burst: limit.burst } },
              })),
            },
          },
        }),
  }
  const path = join(await benchConfigDir(), name)
  await writeFile(path, JSON.stringify(document, null, 2))
  return path
}

/**
 * Fairlane in embedded mode as a real process (`main.ts start`), in front of the upstream,
 * with one key whose limits are far above anything the bench can send: the figures are the
 * cost of the request path, never of a refusal.
 */
export async function startFairlaneEmbedded(
  upstream: Upstream,
  options: FairlaneLaunchOptions = {},
): Promise<System> {
  const key = 'fl_bench_' + randomBytes(24).toString('base64url')
  const name = options.name ?? 'fairlane'
  // A file per system: a running node reloads its file when it changes.
  const configPath = await writeBenchConfig(
    { upstreamUrl: upstream.url, tenants: [key] },
    `${name}.json`,
  )
  const fairlane = await launchFairlane(configPath, options)
  return {
    name,
    processes: { [name]: fairlane.child },
    request: {
      url: `${fairlane.proxyUrl}/t/echo/bench`,
      headers: { authorization: `Bearer ${key}` },
    },
    notes: fairlaneNotes(options, GENERATED_LOG_LEVEL),
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
    stop: () => fairlane.stop(),
  }
}

/** Fairlane embedded as a contender of `npm run bench`: one process, every role in it. */
export const fairlaneEmbedded: Contender = {
  name: 'fairlane',
  description: 'Fairlane embedded: one process, in-memory ledger, fair queue per key',
  limiter: 'fairlane',
  maxInstances: 1,
  failover: true,
  check: async () => undefined,
  facts: async () => ({ mode: 'embedded', logging: GENERATED_LOG_LEVEL }),
  async start(options: DeployOptions): Promise<Deployment> {
    if (options.instances !== 1)
      throw new Error('Fairlane embedded is one process; a cluster is a contender of its own')
    const configPath = await writeBenchConfig({
      upstreamUrl: options.upstream.url,
      tenants: options.tenants,
      ...(options.limit ? { limit: options.limit } : {}),
      ...(options.upstreamConcurrency ? { upstreamConcurrency: options.upstreamConcurrency } : {}),
      ...(options.regions ? { regions: options.regions } : {}),
    })
    const fairlane = await launchFairlane(
      configPath,
      options.regions ? { env: { FAIRLANE_REGION: options.regions.home } } : {},
    )
    const limit = options.limit
    return {
      bases: [`${fairlane.proxyUrl}/t/echo`],
      pids: { fairlane: fairlane.child.pid },
      children: [fairlane.child],
      notes: [
        ...fairlaneNotes({}, GENERATED_LOG_LEVEL),
        limit
          ? `rate limit per key ${limit.rps}/s, burst ${limit.burst} (GCRA); over it requests wait in ` +
            'their lane (bounded: queue.perLane 100, tier maxWait), then 429'
          : 'key limits far above the load (1,000,000/s, and as many in flight)',
        ...(options.upstreamConcurrency
          ? [
              `target concurrency ${options.upstreamConcurrency.limit}, headroom ` +
                `${options.upstreamConcurrency.headroom}, fair queueing (as examples/noisy-neighbor.yaml)`,
            ]
          : []),
        ...(options.regions
          ? [
              `endpoints ${options.regions.regions.map((r) => `region ${r.name}`).join(', ')}, ` +
                `FAIRLANE_REGION=${options.regions.home}; as examples/failover.yaml: ` +
                'timeouts connectMs 1000 headersMs 5000, retry attempts 3 for GET and HEAD ' +
                '(default budget: 20% of requests + 5/s), ' +
                `hedge delayMs ${options.regions.hedgeDelayMs}, health probe /healthz every 2 s`,
            ]
          : []),
      ],
      stop: () => fairlane.stop(),
    }
  },
}
