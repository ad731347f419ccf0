/**
 * `npm run bench`: Fairlane side by side with what users would pick instead, on the same
 * machine, in the same run, on the same scenarios. Starts every system it can (installing
 * nginx and redis-server with apt-get when missing), lists those it cannot with the reason,
 * runs overhead, global accuracy, noisy neighbour, caller flood, jobs, growth and resilience,
 * stops everything it started (also on Ctrl-C), writes loadtest/results/bench-<time>.json with
 * an SVG chart per scenario beside it, and prints the Markdown tables with Fairlane's ratio to
 * each peer.
 *
 *   npm run bench -- [--quick] [--systems direct,nginx,…]
 *                    [--scenarios overhead,accuracy,noisy-neighbour,caller-flood,jobs,growth,
 *                                 resilience]
 */
import { parseArgs } from 'node:util'
import { stopAll } from './lib/child.ts'
import { buildGoSender } from './lib/go-sender.ts'
import { runBench } from './lib/run-bench.ts'
import { machineFacts } from './lib/machine.ts'
import { timestamp, writeResult, writeResultFile } from './lib/result-file.ts'
import { chartSvg } from './lib/svg-chart.ts'
import { formatTable } from './lib/table.ts'
import { launchUpstream } from './lib/upstream.ts'
import { findWrk } from './lib/wrk.ts'
import { runAccuracy } from './scenarios/accuracy.ts'
import { runCallerFlood } from './scenarios/caller-flood.ts'
import { runGrowth } from './scenarios/growth.ts'
import { runJobs } from './scenarios/jobs.ts'
import { runNoisyNeighbour } from './scenarios/noisy-neighbour.ts'
import { runOverhead } from './scenarios/overhead.ts'
import { runResilience } from './scenarios/resilience.ts'
import {
  errorText,
  SCENARIOS,
  type BenchSettings,
  type ScenarioContext,
  type ScenarioName,
  type ScenarioOutcome,
  type Skip,
} from './scenarios/scenario.ts'
import type { Contender } from './systems/contender.ts'
import { directContender } from './systems/direct.ts'
import { fairlaneCluster } from './systems/fairlane-cluster.ts'
import { fairlaneEmbedded } from './systems/fairlane-embedded.ts'
import {
  fastifyProxy,
  fastifyRateLimitMemory,
  fastifyRateLimitRedis,
} from './systems/fastify-peer.ts'
import { fairlaneInbound } from './systems/fairlane-inbound.ts'
import { nginx, nginxLimitReq } from './systems/nginx.ts'
import { floorContender } from './systems/undici-floor.ts'

const CONTENDERS: readonly Contender[] = [
  directContender,
  nginx,
  nginxLimitReq,
  fastifyProxy,
  fastifyRateLimitMemory,
  fastifyRateLimitRedis,
  floorContender,
  fairlaneEmbedded,
  fairlaneInbound,
  fairlaneCluster,
]

/**
 * Who takes part where. The in-memory Fastify limiter only shows what the accuracy scenario
 * is about (per-node counting); elsewhere one instance of it behaves as the Redis one does,
 * minus the round trip, and would only lengthen the run.
 */
const ROSTER: Record<ScenarioName, readonly string[]> = {
  overhead: [
    'direct',
    'nginx',
    'nginx-limit-req',
    'fastify',
    'fastify-rate-limit-redis',
    'floor',
    'fairlane',
    'fairlane-cluster',
  ],
  accuracy: [
    'nginx-limit-req',
    'fastify-rate-limit-memory',
    'fastify-rate-limit-redis',
    'fairlane',
    'fairlane-cluster',
  ],
  'noisy-neighbour': [
    'direct',
    'nginx',
    'nginx-limit-req',
    'fastify',
    'fastify-rate-limit-redis',
    'fairlane',
    'fairlane-inbound',
    'fairlane-cluster',
  ],
  'caller-flood': ['fairlane-inbound'],
  jobs: ['fairlane'],
  growth: ['nginx-limit-req', 'fastify-rate-limit-redis', 'fairlane'],
  // Two regions: systems that can be given both and fail over between them.
  resilience: ['nginx', 'fairlane'],
}

const USAGE = `npm run bench -- [options]

Options:
  --quick              short runs (about eight minutes in all), to check that everything works
  --scenarios LIST     some of ${SCENARIOS.join(', ')} (default: all)
  --systems LIST       some of ${CONTENDERS.map((c) => c.name).join(', ')} (default: all)
  --sender auto|node|go
                       the overhead scenario's open-loop sender: go, loadtest/sender in a
                       process of its own (built with Go), or node, in the bench's process;
                       auto (default): go where Go builds it, node otherwise
  --help               show this text`

type SenderChoice = 'auto' | 'node' | 'go'

interface Options {
  readonly settings: BenchSettings
  readonly sender: SenderChoice
  readonly scenarios: readonly ScenarioName[]
  readonly systems: readonly string[]
}

function settingsFor(quick: boolean, sender: 'node' | 'go'): BenchSettings {
  return {
    quick,
    overhead: {
      connections: 32,
      // A fresh Fairlane's first seconds under load cost it more than the peer's cost the
      // peer (V8 compiling more code): shorter, its first runs measured that. Quick runs too:
      // a quick figure is shorter, not of another kind (docs/performance.md, Rounds).
      warmupSec: 5,
      // Quick too takes a median: one run moves with where the processes land on the cores.
      durationSec: quick ? 2 : 5,
      repeats: 3,
      ratePerSec: 1000,
      rateDurationSec: quick ? 3 : 10,
      rateWarmupSec: 3,
      sender,
    },
    accuracy: {
      limitPerSec: 100,
      loadFactor: 10,
      instances: 3,
      warmupSec: quick ? 1 : 2,
      durationSec: quick ? 4 : 15,
    },
    noisy: { warmupSec: quick ? 1 : 3, durationSec: quick ? 3 : 15 },
    callerFlood: {
      // The figure: 100,000 distinct callers in one minute.
      callers: quick ? 30_000 : 100_000,
      spreadSec: quick ? 18 : 60,
      maxInFlight: 256,
      recurringCallers: 100,
      warmupSec: quick ? 5 : 15,
      aloneSec: quick ? 2 : 4,
      goodIntervalMs: 25,
    },
    jobs: { connections: 32, durationSec: quick ? 3 : 10 },
    growth: {
      lanes: [1, 1000, 100_000, 1_000_000],
      decisions: quick ? 300_000 : 2_000_000,
      repeats: quick ? 1 : 3,
      warmup: quick ? 100_000 : 500_000,
    },
    resilience: {
      ratePerSec: 200,
      warmupSec: quick ? 1 : 2,
      durationSec: quick ? 3 : 10,
      slowMs: 300,
      hedgeDelayMs: 50,
    },
  }
}

function list<T extends string>(flag: string, value: string | undefined, known: readonly T[]): T[] {
  if (value === undefined) return [...known]
  const wanted = value.split(',').map((s) => s.trim())
  for (const name of wanted)
    if (!(known as readonly string[]).includes(name))
      throw new Error(`--${flag}: unknown "${name}" (known: ${known.join(', ')})`)
  return known.filter((k) => wanted.includes(k))
}

function benchOptions(args: readonly string[]): Options | undefined {
  const { values } = parseArgs({
    args: [...args],
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      systems: { type: 'string' },
      sender: { type: 'string', default: 'auto' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) return undefined
  const sender = values.sender
  if (sender !== 'auto' && sender !== 'node' && sender !== 'go')
    throw new Error(`--sender: auto, node or go (got "${sender}")`)
  return {
    // The sender is settled in main, once it is known whether Go builds the Go one.
    settings: settingsFor(values.quick, sender === 'go' ? 'go' : 'node'),
    sender,
    scenarios: list('scenarios', values.scenarios, SCENARIOS),
    systems: list(
      'systems',
      values.systems,
      CONTENDERS.map((c) => c.name),
    ),
  }
}

const say = (line = ''): void => void process.stdout.write(line + '\n')

interface SystemStatus {
  readonly system: string
  readonly description: string
  readonly status: 'ready' | 'skipped'
  readonly reason?: string
  readonly facts?: Readonly<Record<string, string>>
}

async function survey(names: readonly string[]): Promise<SystemStatus[]> {
  const statuses: SystemStatus[] = []
  for (const contender of CONTENDERS.filter((c) => names.includes(c.name))) {
    const reason = await contender.check()
    statuses.push(
      reason === undefined
        ? {
            system: contender.name,
            description: contender.description,
            status: 'ready',
            facts: await contender.facts(),
          }
        : { system: contender.name, description: contender.description, status: 'skipped', reason },
    )
  }
  return statuses
}

/**
 * The overhead scenario's sender, said: the Go one when asked for or, with auto, when Go
 * builds it (a failed build then falls back to the Node one, with the reason).
 */
async function withSender(options: Options): Promise<Options> {
  if (options.sender === 'node') {
    say("overhead's open loop: the Node sender (--sender node)")
    return options
  }
  let binary: string
  try {
    binary = await buildGoSender()
  } catch (err) {
    if (options.sender === 'go') throw err
    say(`overhead's open loop: the Node sender (${(err as Error).message})`)
    return options
  }
  say(`overhead's open loop: ${binary}`)
  const { settings } = options
  return { ...options, settings: { ...settings, overhead: { ...settings.overhead, sender: 'go' } } }
}

async function main(initial: Options): Promise<number> {
  let options = initial
  const started = performance.now()
  const stamp = timestamp()
  const machine = machineFacts()
  say(
    `npm run bench${options.settings.quick ? ' --quick' : ''}: ${machine.cores} cores, ${machine.cpuModel}, ` +
      `Node ${machine.node}`,
  )
  say('systems under test:')
  const statuses = await survey(options.systems)
  say(
    formatTable(
      ['system', 'status', 'what / why not'],
      statuses.map((s) => [s.system, s.status, s.reason ?? s.description]),
    ),
  )
  const wrk = await findWrk()
  say(
    wrk
      ? `closed-loop load: ${wrk.version}`
      : 'closed-loop load: autocannon (wrk is not installed)',
  )
  if (options.scenarios.includes('overhead')) options = await withSender(options)
  say()

  const ready = new Set(statuses.filter((s) => s.status === 'ready').map((s) => s.system))
  const unavailable = new Map(
    statuses.filter((s) => s.status === 'skipped').map((s) => [s.system, s.reason ?? '']),
  )
  const upstream = await launchUpstream()
  const outcomes: ScenarioOutcome[] = []
  const problems: string[] = []
  const runners: Record<ScenarioName, (context: ScenarioContext) => Promise<ScenarioOutcome>> = {
    overhead: runOverhead,
    accuracy: runAccuracy,
    'noisy-neighbour': runNoisyNeighbour,
    'caller-flood': runCallerFlood,
    jobs: runJobs,
    growth: runGrowth,
    resilience: runResilience,
  }
  for (const scenario of options.scenarios) {
    const roster = ROSTER[scenario].filter((name) => options.systems.includes(name))
    const context: ScenarioContext = {
      settings: options.settings,
      contenders: CONTENDERS.filter((c) => roster.includes(c.name) && ready.has(c.name)),
      unavailable: roster.flatMap((name): Skip[] => {
        const reason = unavailable.get(name)
        return reason === undefined ? [] : [{ system: name, reason }]
      }),
      upstream,
      wrk,
      say,
    }
    const scenarioStarted = performance.now()
    try {
      const outcome = await runners[scenario](context)
      outcomes.push(outcome)
      problems.push(...outcome.problems.map((p) => `${scenario}: ${p}`))
    } catch (err) {
      problems.push(`${scenario}: ${errorText(err)}`)
    }
    say(`${scenario}: ${Math.round((performance.now() - scenarioStarted) / 1000)} s`)
    say()
  }
  await upstream.child.stop()
  await stopAll()

  const charts: Record<string, string> = {}
  for (const outcome of outcomes) {
    const chart = {
      ...outcome.chart,
      subtitle: [
        ...outcome.chart.subtitle,
        `${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}, ${machine.date.slice(0, 16)}Z` +
          (options.settings.quick ? ', --quick' : ''),
      ],
    }
    charts[outcome.name] = await writeResultFile(
      `bench-${stamp}-${outcome.name}.svg`,
      chartSvg(chart),
    )
  }
  const markdown = outcomes.map((o) => `### ${o.title}\n\n${o.markdown.trim()}`).join('\n\n')
  const tables = await writeResultFile(`bench-${stamp}.md`, markdown + '\n')
  const elapsedSec = Math.round((performance.now() - started) / 1000)
  const path = await writeResult(
    'bench',
    {
      valid: problems.length === 0,
      problems,
      quick: options.settings.quick,
      elapsedSec,
      settings: options.settings,
      loadGenerators: {
        closedLoop: wrk ? `${wrk.version}, 1 thread` : 'autocannon',
        openLoop: 'Traffic from @fairlane/testing (undici)',
        overheadOpenLoop:
          options.settings.overhead.sender === 'go'
            ? 'loadtest/sender (Go), a process of its own'
            : 'node:http in the bench process (lib/fixed-rate.ts)',
      },
      systems: statuses,
      scenarios: outcomes.map((o) => ({
        name: o.name,
        title: o.title,
        settings: o.settings,
        skipped: o.skipped,
        problems: o.problems,
        results: o.results,
        chart: charts[o.name],
      })),
      markdown,
    },
    stamp,
  )

  say(markdown)
  if (problems.length > 0) {
    const bar = '!'.repeat(78)
    say()
    say(bar)
    say('!! SOME FIGURES ARE NOT VALID:')
    for (const problem of problems) say(`!! ${problem.split('\n')[0]}`)
    say(bar)
  }
  say()
  say(`results: ${path}`)
  say(`tables:  ${tables}`)
  for (const chart of Object.values(charts)) say(`chart:   ${chart}`)
  say(`took ${Math.floor(elapsedSec / 60)} min ${elapsedSec % 60} s`)
  return problems.length === 0 ? 0 : 1
}

await runBench('bench', benchOptions, USAGE, main)
