/**
 * Fairlane as a cluster: three nodes over NATS and Redis on this machine, beside embedded mode.
 *
 * 1. Throughput: the proxy benchmark of bench:proxy (same autocannon settings, same upstream)
 *    against the upstream directly, Fairlane embedded, the three nodes with the connections
 *    spread over them, and one cluster node alone (the NATS path without three nodes sharing
 *    two cores); a config derived from examples/cluster.yaml without its `limits` block, so no
 *    limit caps what is measured. req/s, p50/p99 and the latency added over direct.
 *    Then embedded and the three nodes again at a fixed 1000 req/s (`--rate`), open loop
 *    (spread round robin over the nodes): p50/p99 below saturation, and CPU µs per request
 *    of every process (each node, nats-server, redis-server).
 * 2. Accuracy: examples/cluster.yaml as it is (target `echo`, 100 req/s, burst 10) on three
 *    nodes, 10× the limit offered open loop round robin over them for 10 s; the admitted rate
 *    as the upstream saw it, against the limit and the bound limit + 1% + burst.
 *
 * 3. cross-region (only with `--scenario cross-region`, see scenarios/cross-region.ts): two
 *    regions 30 ms apart, the lane's owner in one and clients in the other; p50/p99 at a fixed
 *    rate under the limit with leased shares on and off, and with the lane contended.
 * 4. handover (only with `--scenario handover`, see scenarios/handover.ts): the lane's owner
 *    SIGKILLed, then SIGTERMed, mid-run; the busiest one-second window at the upstream and
 *    every request's outcome.
 *
 * Prints Markdown tables; writes loadtest/results/cluster-<time>.json and .md
 * (cluster-<scenario>-<time>.… for cross-region and handover).
 *
 *   npm run bench:cluster -- [--connections N] [--duration S] [--warmup S] [--repeats N]
 *                            [--quick] [--scenario throughput-accuracy|cross-region|handover]
 */
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { stopAll } from './lib/child.ts'
import { measureAtRate, type RateMeasurement } from './lib/fixed-rate.ts'
import { fixedRateCost, fixedRateMarkdown, type FixedRateCost } from './lib/fixed-rate-cost.ts'
import { fixed, ms, perSec, times } from './lib/format.ts'
import { machineFacts } from './lib/machine.ts'
import { LOAD_GENERATOR, probe, type LoadRequest } from './lib/measurement.ts'
import { benchOptions, numberFlag, takeFlag, type BenchOptions } from './lib/options.ts'
import { compare, runSystem, type Comparison, type Run } from './lib/proxy-run.ts'
import { timestamp, writeResult, writeResultFile } from './lib/result-file.ts'
import { runBench } from './lib/run-bench.ts'
import { crossRegionMarkdown, runCrossRegion } from './scenarios/cross-region.ts'
import { handoverMarkdown, runHandover } from './scenarios/handover.ts'
import { formatMarkdownTable } from './lib/table.ts'
import { launchUpstream, type Upstream } from './lib/upstream.ts'
import { watchCpu, watchMachineCpu } from './lib/cpu.ts'
import { direct } from './systems/direct.ts'
import {
  CLUSTER_DEMO_KEY,
  CLUSTER_EXAMPLE,
  clusterNotes,
  startFairlaneCluster,
  unlimitedCopyOf,
  type FairlaneCluster,
} from './systems/fairlane-cluster.ts'
import { fairlaneNotes, launchFairlane, quietCopyOf } from './systems/fairlane-embedded.ts'
import type { System } from './systems/system.ts'

const say = (line = ''): void => void process.stdout.write(line + '\n')
const signedMs = (n: number): string =>
  Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(2)}` : '-'
const loadAverage = (): number => Math.round((os.loadavg()[0] ?? 0) * 100) / 100

const HEADERS = { authorization: `Bearer ${CLUSTER_DEMO_KEY}` }
/** Offered load ÷ the target's limit, as cluster test (a). */
const LOAD_FACTOR = 10
/**
 * The fixed-rate phase's default: issue 13's 1000 req/s, the overhead scenario's rate, about
 * half of either system's maximum on a quiet machine of this kind (`--rate` for a busy one).
 */
const FIXED_RATE = 1000

const CLUSTER_SCENARIOS = ['throughput-accuracy', 'cross-region', 'handover'] as const
type ClusterScenario = (typeof CLUSTER_SCENARIOS)[number]

interface ClusterOptions extends BenchOptions {
  readonly quick: boolean
  /** Seconds of offered load in the accuracy run. */
  readonly accuracySec: number
  readonly scenario: ClusterScenario
  /** Requests per second of the fixed-rate phase. */
  readonly rate: number
}

/** `--scenario NAME` or `--scenario=NAME`, taken out of argv; the shared flags parse the rest. */
function scenarioFlag(argv: readonly string[]): { scenario: ClusterScenario; rest: string[] } {
  const { value, rest } = takeFlag(argv, 'scenario')
  const scenario = value ?? 'throughput-accuracy'
  if (!(CLUSTER_SCENARIOS as readonly string[]).includes(scenario))
    throw new Error(`--scenario: one of ${CLUSTER_SCENARIOS.join(', ')} (got "${scenario}")`)
  return { scenario: scenario as ClusterScenario, rest }
}

function clusterOptions(argv: readonly string[]): ClusterOptions | undefined {
  const { scenario, rest: afterScenario } = scenarioFlag(argv)
  const { value: rateFlag, rest } = takeFlag(afterScenario, 'rate')
  const rate = Math.round(numberFlag('rate', rateFlag, FIXED_RATE, 1))
  const options = benchOptions(rest)
  if (!options) return undefined
  if (options.profile)
    throw new Error('--profile: not supported by bench:cluster (use bench:proxy -- --profile)')
  const quick = rest.includes('--quick')
  return { ...options, quick, accuracySec: quick ? 4 : 10, scenario, rate }
}

/** The target's rate limit as examples/cluster.yaml states it, so the bench follows the example. */
async function exampleLimit(): Promise<{ rps: number; burst: number }> {
  const text = await readFile(CLUSTER_EXAMPLE, 'utf8')
  const match = /rate:\s*\{\s*rps:\s*(\d+),\s*burst:\s*(\d+)\s*\}/.exec(text)
  if (!match) throw new Error(`${CLUSTER_EXAMPLE}: no "rate: { rps: N, burst: N }" found`)
  return { rps: Number(match[1]), burst: Number(match[2]) }
}

function clusterSystem(name: string, cluster: FairlaneCluster): System {
  const requests: LoadRequest[] = cluster.nodes.map((node) => ({
    url: `${node.proxyUrl}/t/echo/bench`,
    headers: HEADERS,
  }))
  return {
    name,
    request: requests[0] as LoadRequest,
    requests,
    processes: cluster.processes,
    metricsUrls: cluster.nodes.map((node) => `${node.adminUrl}/metrics`),
    notes: [
      ...clusterNotes(cluster),
      cluster.nodes.length > 1
        ? `connections spread over the ${cluster.nodes.length} nodes (connection i to node i mod ${cluster.nodes.length})`
        : 'one node with NATS and Redis: the cluster path (tickets over NATS, leased shares) ' +
          'without three nodes sharing the cores',
    ],
    stop: () => cluster.stop(),
  }
}

const TRIO = ['fairlane-a', 'fairlane-b', 'fairlane-c']

/** Three independent embedded Fairlanes on the same file, the load spread over them as over the nodes. */
async function embeddedTrio(configPath: string, upstream: Upstream): Promise<System> {
  const started = await Promise.allSettled(
    TRIO.map((name) => launchFairlane(configPath, { name, env: { ECHO_URL: upstream.url } })),
  )
  const instances = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const stop = async () => void (await Promise.all(instances.map((f) => f.stop())))
  const failed = started.find((r) => r.status === 'rejected')
  if (failed) {
    await stop()
    throw failed.reason
  }
  const requests: LoadRequest[] = instances.map((f) => ({
    url: `${f.proxyUrl}/t/echo/bench`,
    headers: HEADERS,
  }))
  return {
    name: 'fairlane ×3 (embedded, apart)',
    request: requests[0] as LoadRequest,
    requests,
    processes: Object.fromEntries(instances.map((f) => [f.child.name, f.child])),
    notes: [
      ...fairlaneNotes(),
      'three embedded processes with nothing shared (each its own limits), connections spread ' +
        'over them as over the nodes: the cost of three processes on these cores, no cluster path',
    ],
    stop,
  }
}

/**
 * One system at a time: started, measured, stopped, so no idle process shares the cores.
 * With `fixedRate`, the same processes are then measured open loop at `options.rate`: the
 * Fairlane processes named there (in the order of the system's instances) are what its CPU
 * per request counts.
 */
async function throughputRun(
  start: () => Promise<System>,
  options: ClusterOptions,
  upstream: Upstream,
  fixedRate?: { readonly fairlane: readonly string[]; readonly into: FixedRateCost[] },
): Promise<Run> {
  const system = await start()
  try {
    const watched = { upstream: upstream.child, ...system.processes }
    const run = await runSystem(system, options, watched, say)
    if (fixedRate) {
      say(
        `${system.name}: ${options.rate} req/s open loop, warm-up ${options.warmupSec} s ` +
          `(discarded), then ${options.durationSec} s measured`,
      )
      fixedRate.into.push(
        await fixedRateCost(
          system,
          watched,
          fixedRate.fairlane,
          options.rate,
          options.durationSec,
          options.warmupSec,
        ),
      )
    }
    return run
  } finally {
    await system.stop()
  }
}

interface AccuracyRun {
  readonly nodes: number
  readonly shardsOwned: readonly number[]
  readonly limitPerSec: number
  readonly burst: number
  readonly offeredPerSec: number
  /** Seconds of offered load; the upstream's window is as long, from its first arrival. */
  readonly windowSec: number
  /** Requests the upstream received in the window: what the cluster admitted. */
  readonly admitted: number
  readonly admittedPerSec: number
  readonly admittedOverLimit: number
  /** limit × window × 1.01 + burst: the bound of cluster test (a). */
  readonly bound: number
  readonly boundPerSec: number
  readonly withinBound: boolean
  /** What the clients saw in the same run. */
  readonly client: RateMeasurement
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly machineCpuPercent: number | null
  readonly notes: readonly string[]
}

async function accuracyRun(options: ClusterOptions): Promise<AccuracyRun> {
  const limit = await exampleLimit()
  const rate = limit.rps * LOAD_FACTOR
  const windowSec = options.accuracySec
  // An upstream of its own that keeps every arrival: the admitted rate is what reached it.
  const upstream = await launchUpstream({ arrivals: true })
  try {
    const cluster = await startFairlaneCluster({
      configPath: await quietCopyOf(CLUSTER_EXAMPLE),
      upstreamUrl: upstream.url,
    })
    try {
      const requests = cluster.nodes.map((node) => ({
        url: `${node.proxyUrl}/t/echo/accuracy`,
        headers: HEADERS,
      }))
      for (const request of requests) await probe('fairlane-cluster', request)
      // The probes spent part of the burst; a second refills it before the load.
      await sleep(1000)
      await upstream.arrivals()
      say(
        `accuracy: ${cluster.nodes.length} nodes, examples/cluster.yaml (limit ${limit.rps}/s, burst ` +
          `${limit.burst}); ${rate} req/s open loop round robin over the nodes for ${windowSec} s`,
      )
      const watched = { upstream: upstream.child, ...cluster.processes }
      let cpuPercent: Record<string, number | null> = {}
      let machineCpuPercent: number | null = null
      const client = await measureAtRate(requests, rate, windowSec, 0, () => {
        const cpu = watchCpu({
          bench: process.pid,
          ...Object.fromEntries(Object.entries(watched).map(([role, c]) => [role, c.pid])),
        })
        const machine = watchMachineCpu()
        return () => {
          cpuPercent = cpu()
          machineCpuPercent = machine()
        }
      })
      for (const child of Object.values(watched))
        if (!child.running)
          throw new Error(`${child.name} exited (${child.exitStatus}) during the run`)
      const arrivals = await upstream.arrivals()
      const first = arrivals[0] ?? 0
      const admitted = arrivals.filter((t) => t < first + windowSec * 1000).length
      const bound = limit.rps * windowSec * 1.01 + limit.burst
      return {
        nodes: cluster.nodes.length,
        shardsOwned: cluster.shardsOwned,
        limitPerSec: limit.rps,
        burst: limit.burst,
        offeredPerSec: rate,
        windowSec,
        admitted,
        admittedPerSec: admitted / windowSec,
        admittedOverLimit: admitted / windowSec / limit.rps,
        bound,
        boundPerSec: bound / windowSec,
        withinBound: admitted <= bound,
        client,
        cpuPercent,
        machineCpuPercent,
        notes: [
          ...clusterNotes(cluster),
          `examples/cluster.yaml with logging.level warn added; its limits as they are`,
          `admitted: requests the upstream received in the ${windowSec} s from its first arrival ` +
            '(no warm-up: the initial burst is in the window, hence + burst in the bound)',
        ],
      }
    } finally {
      await cluster.stop()
    }
  } finally {
    await upstream.child.stop()
  }
}

interface CpuRow {
  readonly label: string
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly machineCpuPercent: number | null
}

/** Per process, their sum, and the rest of the machine (busy CPU the bench's processes do not explain). */
function cpuMarkdown(rows: readonly CpuRow[]): string {
  const roles = [...new Set(rows.flatMap((r) => Object.keys(r.cpuPercent)))]
  return formatMarkdownTable(
    ['CPU % of one core', ...roles, 'sum', 'rest of machine'],
    rows.map((r) => {
      const sum = Object.values(r.cpuPercent).reduce<number>((total, v) => total + (v ?? 0), 0)
      return [
        r.label,
        ...roles.map((role) => String(r.cpuPercent[role] ?? '-')),
        String(sum),
        r.machineCpuPercent === null ? '-' : String(Math.max(0, r.machineCpuPercent - sum)),
      ]
    }),
  )
}

function throughputMarkdown(runs: readonly Run[], comparisons: readonly Comparison[]): string {
  const embedded = runs.find((r) => r.system === 'fairlane')
  const table = formatMarkdownTable(
    [
      'system',
      'instances',
      'req/s',
      'each run, req/s',
      'p50 ms',
      'p99 ms',
      'added p50 ms',
      'added p99 ms',
      '÷ direct, req/s',
      '÷ embedded, req/s',
    ],
    runs.map((r) => {
      const c = comparisons.find((x) => x.system === r.system)
      return [
        r.system,
        String(r.instances),
        perSec(r.requestsPerSec),
        r.repeatsPerSec.map(perSec).join(' / '),
        fixed(r.p50Ms, 2),
        fixed(r.p99Ms, 2),
        c ? signedMs(c.addedP50Ms) : '-',
        c ? signedMs(c.addedP99Ms) : '-',
        c ? times(c.throughputRatio) : '-',
        embedded && r.system !== 'direct' ? times(r.requestsPerSec / embedded.requestsPerSec) : '-',
      ]
    }),
  )
  return table
}

function accuracyMarkdown(a: AccuracyRun): string {
  const figures = formatMarkdownTable(
    [
      'nodes',
      'offered req/s',
      'admitted (upstream)',
      'admitted/s',
      'limit/s',
      'admitted ÷ limit',
      'bound: limit + 1% + burst',
      'within bound',
    ],
    [
      [
        String(a.nodes),
        perSec(a.offeredPerSec),
        `${perSec(a.admitted)} in ${a.windowSec} s`,
        fixed(a.admittedPerSec, 1),
        String(a.limitPerSec),
        times(a.admittedOverLimit),
        `${perSec(a.bound)} (${fixed(a.boundPerSec, 1)}/s)`,
        a.withinBound ? 'yes' : 'NO',
      ],
    ],
  )
  const c = a.client
  const clients = formatMarkdownTable(
    [
      'clients saw',
      'sent/s',
      '2xx/s',
      '2xx/s per node',
      '429+503/s',
      'failed',
      'p50 ms of 2xx',
      'p99 ms of 2xx',
    ],
    [
      [
        `${a.windowSec} s`,
        perSec(c.sentPerSec),
        fixed(c.servedPerSec, 1),
        c.servedPerSecByTarget.map((v) => fixed(v, 1)).join(' / '),
        perSec(c.refusedPerSec),
        String(c.failed),
        ms(c.p50Ms),
        ms(c.p99Ms),
      ],
    ],
  )
  return `${figures}\n\n${clients}`
}

/** A scenario run on its own (cross-region, handover): its result, tables, notes and problems. */
interface SeparateScenario {
  readonly title: string
  readonly markdown: string
  readonly notes: readonly string[]
  readonly problems: readonly string[]
  readonly result: object
}

/** Runs one scenario alone, then prints and writes its tables as cluster-<scenario>-<time>.… */
async function separateMain(
  options: ClusterOptions,
  run: () => Promise<SeparateScenario>,
): Promise<number> {
  const started = performance.now()
  const stamp = timestamp()
  const machine = machineFacts()
  const loadAtStart = loadAverage()
  say(
    `bench:cluster --scenario ${options.scenario}${options.quick ? ' --quick' : ''}: ${machine.cores} ` +
      `cores, ${machine.cpuModel}, Node ${machine.node}; load average (1 min) ${loadAtStart}`,
  )
  const scenario = await run()
  await stopAll()
  const loadAtEnd = loadAverage()
  const markdown = [
    `### ${scenario.title}`,
    '',
    scenario.markdown,
    '',
    ...scenario.notes.map((n) => `- ${n}`),
    `- load average (1 min) ${loadAtStart} at start, ${loadAtEnd} at end`,
  ].join('\n')
  const name = `cluster-${options.scenario}`
  const tables = await writeResultFile(`${name}-${stamp}.md`, markdown + '\n')
  const elapsedSec = Math.round((performance.now() - started) / 1000)
  const path = await writeResult(
    name,
    {
      valid: scenario.problems.length === 0,
      problems: scenario.problems,
      quick: options.quick,
      elapsedSec,
      loadAverage1m: { start: loadAtStart, end: loadAtEnd },
      result: scenario.result,
      markdown,
    },
    stamp,
  )
  say()
  say(markdown)
  for (const problem of scenario.problems) say(`!! NOT VALID: ${problem}`)
  say()
  say(`results: ${path}`)
  say(`tables:  ${tables}`)
  say(`took ${Math.floor(elapsedSec / 60)} min ${elapsedSec % 60} s`)
  return scenario.problems.length === 0 ? 0 : 1
}

/** Two regions 30 ms apart: see scenarios/cross-region.ts. */
async function crossRegion(options: ClusterOptions): Promise<SeparateScenario> {
  const result = await runCrossRegion(
    {
      oneWayMs: 15,
      warmupSec: options.quick ? 1 : options.warmupSec,
      durationSec: options.quick ? 4 : options.durationSec,
    },
    say,
  )
  return {
    title: `Regions apart: ${result.rttMs} ms RTT, the lane's owner in region a (limit ${result.limitPerSec}/s)`,
    markdown: crossRegionMarkdown(result),
    notes: result.notes,
    problems: result.problems,
    result,
  }
}

/** The lane's owner stopped mid-run, by SIGKILL and by SIGTERM: see scenarios/handover.ts. */
async function handover(options: ClusterOptions): Promise<SeparateScenario> {
  const result = await runHandover(
    { stopAtSec: options.quick ? 3 : 5, afterSec: options.quick ? 12 : 15 },
    say,
  )
  return {
    title: "Handover: the lane's owner stopped mid-run (examples/cluster.yaml, 3 nodes)",
    markdown: handoverMarkdown(result),
    notes: result.notes,
    problems: result.problems,
    result,
  }
}

async function main(options: ClusterOptions): Promise<number> {
  if (options.scenario === 'cross-region') return separateMain(options, () => crossRegion(options))
  if (options.scenario === 'handover') return separateMain(options, () => handover(options))
  const started = performance.now()
  const stamp = timestamp()
  const machine = machineFacts()
  const loadAtStart = loadAverage()
  say(
    `bench:cluster${options.quick ? ' --quick' : ''}: ${machine.cores} cores, ${machine.cpuModel}, ` +
      `Node ${machine.node}; load average (1 min) ${loadAtStart}`,
  )
  say(
    `throughput: ${LOAD_GENERATOR}, ${options.connections} connections, ${options.warmupSec} s ` +
      `warm-up + ${options.repeats} × ${options.durationSec} s (median) per system; config: examples/cluster.yaml without its limits`,
  )
  const unlimited = await unlimitedCopyOf(CLUSTER_EXAMPLE)
  const upstream = await launchUpstream()
  const runs: Run[] = []
  const fixedRate: FixedRateCost[] = []
  try {
    runs.push(await throughputRun(async () => direct(upstream), options, upstream))
    runs.push(
      await throughputRun(
        async () => {
          // The same file and key as the nodes; without FAIRLANE_NATS_URL it runs embedded.
          const fairlane = await launchFairlane(unlimited, { env: { ECHO_URL: upstream.url } })
          return {
            name: 'fairlane',
            request: { url: `${fairlane.proxyUrl}/t/echo/bench`, headers: HEADERS },
            processes: { fairlane: fairlane.child },
            notes: fairlaneNotes(),
            stop: () => fairlane.stop(),
          }
        },
        options,
        upstream,
        { fairlane: ['fairlane'], into: fixedRate },
      ),
    )
    // Three embedded processes, each on its own: what three Node processes on these cores cost
    // per request at a third of the rate each, with no cluster path. The cluster's CPU per
    // request over embedded's is read against this row's: the part no cluster code explains.
    runs.push(
      await throughputRun(async () => embeddedTrio(unlimited, upstream), options, upstream, {
        fairlane: TRIO,
        into: fixedRate,
      }),
    )
    runs.push(
      await throughputRun(
        async () =>
          clusterSystem(
            'fairlane-cluster',
            await startFairlaneCluster({ configPath: unlimited, upstreamUrl: upstream.url }),
          ),
        options,
        upstream,
        { fairlane: ['node-1', 'node-2', 'node-3'], into: fixedRate },
      ),
    )
    // The same path on one node: what the NATS hop costs, apart from three nodes on two cores.
    runs.push(
      await throughputRun(
        async () =>
          clusterSystem(
            'fairlane-cluster-1-node',
            await startFairlaneCluster({
              configPath: unlimited,
              upstreamUrl: upstream.url,
              nodes: 1,
            }),
          ),
        options,
        upstream,
        // At the fixed rate too: the cluster path without three processes sharing two cores.
        { fairlane: ['node-1'], into: fixedRate },
      ),
    )
  } finally {
    await upstream.child.stop()
  }
  const [baseline] = runs
  if (!baseline) throw new Error('no runs')
  const comparisons = runs.slice(1).map((run) => compare(run, baseline))
  const problems = runs.flatMap((run) => run.problems)
  for (const { system, measurement: m } of fixedRate) {
    if (m.failed > 0 || m.refusedPerSec > 0)
      problems.push(`${system} at ${options.rate}/s: not every request answered 2xx`)
    if (m.sentPerSec < 0.95 * m.offeredPerSec)
      problems.push(
        `${system} at ${options.rate}/s: the generator sent ${perSec(m.sentPerSec)} req/s`,
      )
  }

  const accuracy = await accuracyRun(options)
  if (accuracy.client.failed > 0)
    problems.push(`accuracy: ${accuracy.client.failed} requests failed (neither 2xx nor 429/503)`)
  if (accuracy.client.sentPerSec < 0.95 * accuracy.offeredPerSec)
    problems.push(
      `accuracy: the generator sent ${perSec(accuracy.client.sentPerSec)} of ${accuracy.offeredPerSec} req/s`,
    )
  await stopAll()
  const loadAtEnd = loadAverage()

  const notes = [...new Set(runs.flatMap((r) => r.notes.map((n) => `${r.system}: ${n}`)))]
  const markdown = [
    `### Throughput: ${options.connections} connections, closed loop, nothing limited`,
    '',
    throughputMarkdown(runs, comparisons),
    '',
    `### Latency and CPU at ${perSec(options.rate)} req/s, open loop, nothing limited`,
    '',
    fixedRateMarkdown(fixedRate),
    '',
    `### Accuracy: examples/cluster.yaml, ${accuracy.offeredPerSec} req/s over ${accuracy.nodes} nodes`,
    '',
    accuracyMarkdown(accuracy),
    '',
    "### CPU during each system's median run",
    '',
    cpuMarkdown([
      ...runs.map((r) => ({ label: r.system, ...r })),
      { label: 'accuracy (3 nodes)', ...accuracy },
    ]),
    '',
    ...notes.map((n) => `- ${n}`),
    ...accuracy.notes.map((n) => `- accuracy: ${n}`),
    `- load average (1 min) ${loadAtStart} at start, ${loadAtEnd} at end`,
  ].join('\n')
  const tables = await writeResultFile(`cluster-${stamp}.md`, markdown + '\n')
  const elapsedSec = Math.round((performance.now() - started) / 1000)
  const path = await writeResult(
    'cluster',
    {
      valid: problems.length === 0,
      problems,
      quick: options.quick,
      elapsedSec,
      loadAverage1m: { start: loadAtStart, end: loadAtEnd },
      settings: {
        loadGenerator: LOAD_GENERATOR,
        connections: options.connections,
        durationSec: options.durationSec,
        warmupSec: options.warmupSec,
        repeats: options.repeats,
        accuracy: { loadFactor: LOAD_FACTOR, durationSec: options.accuracySec },
        fixedRate: {
          ratePerSec: options.rate,
          durationSec: options.durationSec,
          warmupSec: options.warmupSec,
        },
      },
      throughput: { runs, comparisons },
      fixedRate,
      accuracy,
      markdown,
    },
    stamp,
  )
  say()
  say(markdown)
  if (problems.length > 0) {
    const bar = '!'.repeat(78)
    say()
    say(bar)
    say('!! THESE FIGURES ARE NOT VALID:')
    for (const problem of problems) say(`!! ${problem.split('\n')[0]}`)
    say(bar)
  }
  say()
  say(`results: ${path}`)
  say(`tables:  ${tables}`)
  say(`took ${Math.floor(elapsedSec / 60)} min ${elapsedSec % 60} s`)
  return problems.length === 0 ? 0 : 1
}

const USAGE = `npm run bench:cluster -- [options]

Options:
  --connections N   concurrent connections of the throughput runs (default 32)
  --duration S      seconds per measured throughput run and 1000 req/s run (default 10)
  --warmup S        seconds of discarded warm-up before a system's throughput runs and
                    before its 1000 req/s run (default 2)
  --repeats N       throughput runs per system, the median reported (default 3)
  --rate N          requests per second of the fixed-rate runs (default 1000; lower it on a
                    machine busy enough that embedded Fairlane saturates near it)
  --quick           --duration 3 --warmup 1 --repeats 1 and 4 s of accuracy instead of 10: to
                    check that the bench works (cross-region: 1 s warm-up and 4 s per run;
                    handover: the owner stopped after 3 s and 12 s more, instead of 5 and 15)
  --scenario NAME   throughput-accuracy (default): throughput, 1000 req/s and accuracy;
                    cross-region: two regions 30 ms apart, the lane's owner in region a,
                    p50/p99 from each region under the limit (leased shares on and off) and
                    contended (--duration and --warmup apply per run);
                    handover: the lane's owner stopped mid-run by SIGKILL, then (a fresh
                    cluster) by SIGTERM, 5× the limit over the other two nodes; the busiest
                    one-second window at the upstream against limit + 1% + burst, and every
                    request's outcome (lost, hung past ingress's deadline); about 1.5 minutes
  --help            show this text`

await runBench('bench:cluster', clusterOptions, USAGE, main)
