/**
 * Scenario "proxy overhead": the same loopback upstream, hit directly, through the Fastify
 * peer (@fastify/http-proxy), through the floor of Fairlane's design (node:http + undici and
 * nothing else) and through Fairlane embedded (one key, far under its limits, default
 * logging), by autocannon at a fixed number of connections. Prints req/s, p50, p99,
 * CPU µs per request, event-loop delay p99 and memory of each, and their ratios; with
 * --profile, Fairlane's top functions by self time and top packages by inclusive time; with
 * --traces RATIO, a second Fairlane exporting traces (sampler traceidratio at RATIO) to an
 * OTLP/HTTP receiver in the bench process, for what tracing costs.
 * Writes loadtest/results/proxy-<time>.json.
 *
 *   npm run bench:proxy -- [--connections N] [--duration S] [--warmup S] [--repeats N] [--quick]
 *                          [--profile] [--traces RATIO]
 */
import { join } from 'node:path'
import { startOtlpReceiver, type OtlpReceiver } from '@fairlane/testing'
import { stopAll, type Child } from './lib/child.ts'
import { runBench } from './lib/run-bench.ts'
import { summarizeProfile, type ProfileSummary } from './lib/cpu-profile.ts'
import { LOAD_GENERATOR } from './lib/measurement.ts'
import { machineFacts } from './lib/machine.ts'
import {
  benchOptions,
  numberFlag,
  OPTIONS_USAGE,
  takeFlag,
  type BenchOptions,
} from './lib/options.ts'
import { RESULTS_DIR } from './lib/paths.ts'
import { compare, runSystem, type Comparison, type Run } from './lib/proxy-run.ts'
import { timestamp, writeResult } from './lib/result-file.ts'
import { formatTable } from './lib/table.ts'
import { launchUpstream, type Upstream } from './lib/upstream.ts'
import { direct } from './systems/direct.ts'
import { fastifyPeer } from './systems/fastify-peer.ts'
import { startFairlaneEmbedded } from './systems/fairlane-embedded.ts'
import { undiciFloor } from './systems/undici-floor.ts'
import type { System } from './systems/system.ts'

const say = (line = ''): void => void process.stdout.write(line + '\n')
const perSec = (n: number): string => Math.round(n).toLocaleString('en-US')
const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-')
const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '-')
const added = (n: number): string =>
  Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(2)} ms` : '-'

function report(
  runs: readonly Run[],
  comparisons: readonly Comparison[],
  problems: readonly string[],
): void {
  say()
  say(
    formatTable(
      [
        'system',
        'req/s',
        'each run, req/s',
        'p50 ms',
        'p99 ms',
        'CPU µs/req',
        'event-loop p99 ms',
        'errors',
        'non-2xx',
      ],
      runs.map((r) => {
        const role = mainRole(r)
        return [
          r.system,
          perSec(r.requestsPerSec),
          r.repeatsPerSec.map(perSec).join(' / '),
          ms(r.p50Ms),
          ms(r.p99Ms),
          Number.isFinite(r.cpuMicrosPerRequest) ? String(Math.round(r.cpuMicrosPerRequest)) : '-',
          ms(r.eventLoopDelayP99Ms[role] ?? Number.NaN),
          String(r.errors),
          String(r.non2xx),
        ]
      }),
    ),
  )
  say()
  say(
    formatTable(
      ['ratio', 'req/s', 'p50', 'p99', 'added p50', 'added p99'],
      comparisons.map((c) => [
        `${c.system} / ${c.baseline}`,
        ratio(c.throughputRatio),
        ratio(c.p50Ratio),
        ratio(c.p99Ratio),
        added(c.addedP50Ms),
        added(c.addedP99Ms),
      ]),
    ),
  )
  const roles = [...new Set(runs.flatMap((r) => Object.keys(r.cpuPercent)))]
  say()
  say(
    "CPU during each system's median run, % of one core (the machine has " +
      machineFacts().cores +
      ' cores):',
  )
  say(
    formatTable(
      ['run', ...roles],
      runs.map((r) => [r.system, ...roles.map((role) => String(r.cpuPercent[role] ?? '-'))]),
    ),
  )
  say()
  say('Memory of each system’s process, MB (heap: in use after a forced full GC):')
  say(
    formatTable(
      [
        'system',
        'process',
        'RSS after warm-up',
        'RSS after run',
        'heap after warm-up',
        'heap after run',
      ],
      runs.map((r) => {
        const role = mainRole(r)
        const [w, a] = [r.memory.afterWarmup[role], r.memory.afterRun[role]]
        return [
          r.system,
          role,
          mb(w?.rssBytes),
          mb(a?.rssBytes),
          mb(w?.heapUsedAfterGcBytes),
          mb(a?.heapUsedAfterGcBytes),
        ]
      }),
    ),
  )
  for (const run of runs) for (const note of run.notes) say(`note: ${run.system}: ${note}`)
  if (problems.length > 0) {
    const bar = '!'.repeat(78)
    say()
    say(bar)
    say('!! THESE FIGURES ARE NOT VALID: not every request got a 2xx response')
    for (const problem of problems) say(`!! ${problem}`)
    say(bar)
  }
}

function reportProfile(profile: ProfileSummary): void {
  say()
  say(`CPU profile ${profile.file} (${profile.busyMs} ms busy); top functions by self time:`)
  say(
    formatTable(
      ['function', 'ms', '%'],
      profile.topFunctions.map((f) => [f.frame, String(f.ms), f.percent.toFixed(1)]),
    ),
  )
  say()
  say('Top packages by inclusive time (a sample counts for every package on its stack):')
  say(
    formatTable(
      ['package', 'ms', '%'],
      profile.topPackages.map((f) => [f.frame, String(f.ms), f.percent.toFixed(1)]),
    ),
  )
}

/** The process that serves a system's requests: its first own one, or the upstream (direct). */
function mainRole(run: Run): string {
  const own = Object.keys(run.memory.afterRun).filter((r) => !['bench', 'upstream'].includes(r))
  return run.system === 'direct'
    ? 'upstream'
    : (own.find((r) => r === run.system) ?? own[0] ?? 'upstream')
}

const mb = (bytes: number | undefined): string =>
  bytes === undefined ? '-' : (bytes / 1024 / 1024).toFixed(1)

interface ProxyOptions extends BenchOptions {
  /** Sampler ratio of a second, traced Fairlane; none when undefined. */
  readonly traces: number | undefined
}

function proxyOptions(argv: readonly string[]): ProxyOptions | undefined {
  const { value, rest } = takeFlag(argv, 'traces')
  const options = benchOptions(rest)
  if (!options) return undefined
  const traces = value === undefined ? undefined : numberFlag('traces', value, 0, 0)
  if (traces !== undefined && traces > 1) throw new Error(`--traces: a ratio 0-1 (got "${value}")`)
  return { ...options, traces }
}

/** Fairlane with traces exported to `receiver`, sampled at `ratio` (the OTEL_* variables alone). */
async function tracedFairlane(
  upstream: Upstream,
  receiver: OtlpReceiver,
  ratio: number,
): Promise<System> {
  return startFairlaneEmbedded(upstream, {
    name: 'fairlane-traced',
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: String(ratio),
    },
  })
}

async function main(options: ProxyOptions): Promise<number> {
  say(
    `proxy overhead: ${LOAD_GENERATOR}, ${options.connections} connections, ` +
      `${options.warmupSec} s warm-up + ${options.repeats} × ${options.durationSec} s (median) per system`,
  )
  const upstream = await launchUpstream()
  const profileDir = options.profile
    ? join(RESULTS_DIR, 'profiles', `fairlane-${timestamp()}`)
    : undefined
  const peer = await fastifyPeer(upstream)
  if (!peer) say('note: the Fastify peer is not installed (npm install at the root); left out')
  const receiver = options.traces !== undefined ? await startOtlpReceiver() : undefined
  const systems = [
    direct(upstream),
    ...(peer ? [peer] : []),
    await undiciFloor(upstream),
    await startFairlaneEmbedded(upstream, profileDir ? { profileDir } : {}),
    ...(receiver && options.traces !== undefined
      ? [await tracedFairlane(upstream, receiver, options.traces)]
      : []),
  ]
  // Every process is watched during every run: an idle one shows ~0, a busy neighbour shows up.
  const watched: Record<string, Child> = { upstream: upstream.child }
  for (const system of systems) Object.assign(watched, system.processes)

  const runs: Run[] = []
  for (const system of systems) runs.push(await runSystem(system, options, watched, say))

  // Stopping first: a profile is written only when its process exits.
  for (const system of [...systems].reverse()) await system.stop()
  await stopAll()
  if (receiver) {
    say(`traces: ${receiver.spans.length} spans received at sampler ratio ${options.traces}`)
    await receiver.close()
  }
  const profiles: ProfileSummary[] = []
  for (const system of systems)
    if (system.profileDir) profiles.push(await summarizeProfile(system.profileDir))

  const [baseline, ...others] = runs
  if (!baseline) throw new Error('no runs')
  const comparisons = others.map((run) => compare(run, baseline))
  const problems = runs.flatMap((run) => run.problems)

  report(runs, comparisons, problems)
  for (const profile of profiles) reportProfile(profile)
  const path = await writeResult('proxy', {
    valid: problems.length === 0,
    problems,
    settings: {
      loadGenerator: LOAD_GENERATOR,
      connections: options.connections,
      durationSec: options.durationSec,
      warmupSec: options.warmupSec,
      repeats: options.repeats,
      profile: options.profile,
      traces: options.traces ?? null,
    },
    runs,
    comparisons,
    profiles,
  })
  say()
  say(`results: ${path}`)
  return problems.length === 0 ? 0 : 1
}

await runBench(
  'bench:proxy',
  proxyOptions,
  `npm run bench:proxy -- [options]\n\n${OPTIONS_USAGE}\n  --repeats N       measured runs per system, the median reported (default 3; 1 with --quick)\n  --traces RATIO    also run a Fairlane exporting traces sampled at RATIO (0-1)`,
  main,
)
