/**
 * Scenario "fairness": the noisy neighbour through the real proxy. Fairlane runs
 * examples/noisy-neighbor.yaml (target echo, concurrency 8; keys fl_demo_a..d) in front of an
 * upstream that holds every answer 40 ms, so the target serves at most 8 ÷ 40 ms = 200 req/s.
 * Quiet keys send a few requests a second; key a floods; then every key floods. Each phase is
 * run with fair queueing and with one FIFO queue. Prints the quiet keys' latency with and
 * without the flood, Jain's index of what backlogged keys get, and writes
 * loadtest/results/fairness-<time>.json.
 *
 *   npm run bench:fairness -- [--duration S] [--warmup S] [--quick] [--upstream-jitter MS]
 *                             [--quiet-phase spread|locked]
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { CallerRecord, jainIndex, Traffic } from '@fairlane/testing'
import { stopAll, type Child } from './lib/child.ts'
import { runBench } from './lib/run-bench.ts'
import { watchCpu } from './lib/cpu.ts'
import { machineFacts } from './lib/machine.ts'
import {
  BACKLOG_IN_FLIGHT,
  CAPACITY_PER_SEC,
  flood,
  FLOOD_IN_FLIGHT,
  keyHeaders,
  PHASES,
  pooled,
  QUIET_RATE,
  snapshot,
  startTraffic,
  TARGET_CONCURRENCY,
  UNEQUAL_IN_FLIGHT,
  UPSTREAM_DELAY_MS,
  type PhaseName,
  type PhaseSpec,
  type QuietPhase,
} from './lib/noisy-neighbour.ts'
import { numberFlag } from './lib/options.ts'
import { REPO_ROOT } from './lib/paths.ts'
import { writeResult } from './lib/result-file.ts'
import { formatTable } from './lib/table.ts'
import { launchUpstream, type Upstream } from './lib/upstream.ts'
import {
  fairlaneNotes,
  launchFairlane,
  quietCopyOf,
  type FairlaneProcess,
} from './systems/fairlane-embedded.ts'

const CONFIG = join(REPO_ROOT, 'examples/noisy-neighbor.yaml')
const TARGETS = { quietP99Ratio: 1.5, jain: 0.99 } as const

/** fair: the example as shipped (headroom 1); fair-no-headroom: the flood may take every slot. */
type Discipline = 'fair' | 'fair-no-headroom' | 'fifo'
const VARIANTS: readonly Discipline[] = ['fair', 'fair-no-headroom', 'fifo']
const VARIANT_ENV: Record<Discipline, Record<string, string>> = {
  fair: { QUEUE_DISCIPLINE: 'fair', QUEUE_HEADROOM: '1' },
  'fair-no-headroom': { QUEUE_DISCIPLINE: 'fair', QUEUE_HEADROOM: '0' },
  fifo: { QUEUE_DISCIPLINE: 'fifo', QUEUE_HEADROOM: '0' },
}

interface FairnessOptions {
  readonly durationSec: number
  readonly warmupSec: number
  /** The upstream's delay is spread over UPSTREAM_DELAY_MS ± this; 0 is a fixed service time. */
  readonly upstreamJitterMs: number
  readonly quietPhase: QuietPhase
}

const USAGE = `npm run bench:fairness -- [options]

Options:
  --duration S   seconds measured per phase (default 15)
  --warmup S     seconds of discarded warm-up before each phase (default 3)
  --quick        --duration 5 --warmup 1, to check that the bench works
  --upstream-jitter MS
                 spread the upstream's ${UPSTREAM_DELAY_MS} ms over ${UPSTREAM_DELAY_MS} ± MS (default 0: fixed);
                 with a fixed delay the target's 8 slots tend to free up together
  --quiet-phase spread|locked
                 spread (default): the quiet keys send at evenly spread instants;
                 locked: all three at the same instants (Traffic's own behaviour)
  --help         show this text`

/** One key's figures over the measured window (requests still in flight at its end are left out). */
interface CallerFigures {
  readonly key: string
  readonly role: string
  readonly sent: number
  readonly served: number
  readonly servedPerSec: number
  readonly refused: number
  readonly failed: number
  readonly p50Ms: number
  readonly p99Ms: number
}

/**
 * When the upstream received requests. With every slot of the target busy, each arrival is a
 * slot that just freed and was refilled at once, so the gaps between arrivals are what a newly
 * arriving request waits for a slot, however fair the choice of who gets it.
 */
interface Dispatches {
  readonly count: number
  /** Share of arrivals less than 1 ms after the previous one: slots freeing together. */
  readonly withinOneMs: number
  /** Time from a random instant to the next arrival (p50, p99): the wait for a free slot. */
  readonly slotWaitP50Ms: number
  readonly slotWaitP99Ms: number
}

interface PhaseResult {
  readonly phase: PhaseName
  readonly discipline: Discipline
  readonly what: string
  readonly durationSec: number
  readonly callers: readonly CallerFigures[]
  /** The quiet keys' latencies pooled; samples says how many requests the percentiles rank. */
  readonly quiet?: { readonly p50Ms: number; readonly p99Ms: number; readonly samples: number }
  /** Jain's index of the served counts of the backlogged keys: 1 is an equal split. */
  readonly jain?: number
  readonly servedPerSec: number
  /** Whether every slot of the target was busy (≥ 90% of capacity served): dispatches then tell the wait for a slot. */
  readonly saturated: boolean
  readonly dispatches: Dispatches
  readonly cpuPercent: Readonly<Record<string, number | null>>
}

const say = (line = ''): void => void process.stdout.write(line + '\n')
const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-')

function fairnessOptions(args: readonly string[]): FairnessOptions | undefined {
  const { values } = parseArgs({
    args: [...args],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'upstream-jitter': { type: 'string' },
      'quiet-phase': { type: 'string', default: 'spread' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) return undefined
  const quietPhase = values['quiet-phase']
  if (quietPhase !== 'spread' && quietPhase !== 'locked')
    throw new Error(`--quiet-phase: must be spread or locked (got "${quietPhase}")`)
  return {
    quietPhase,
    durationSec: numberFlag('duration', values.duration, values.quick ? 5 : 15, 1),
    warmupSec: numberFlag('warmup', values.warmup, values.quick ? 1 : 3, 0),
    upstreamJitterMs: Math.min(
      UPSTREAM_DELAY_MS,
      numberFlag('upstream-jitter', values['upstream-jitter'], 0, 0),
    ),
  }
}

/**
 * For an instant drawn uniformly over the window, the wait R until the next arrival:
 * P(R > t) = Σ max(0, gap − t) ÷ Σ gap, inverted by bisection.
 */
function dispatches(arrivals: readonly number[]): Dispatches {
  const gaps = arrivals.slice(1).map((at, i) => at - (arrivals[i] ?? at))
  const total = gaps.reduce((sum, g) => sum + g, 0)
  const waitAt = (p: number): number => {
    if (total <= 0) return NaN
    let low = 0
    let high = gaps.reduce((max, g) => Math.max(max, g), 0)
    for (let i = 0; i < 50; i++) {
      const t = (low + high) / 2
      const beyond = gaps.reduce((sum, g) => sum + Math.max(0, g - t), 0) / total
      if (beyond > 1 - p) low = t
      else high = t
    }
    return high
  }
  return {
    count: arrivals.length,
    withinOneMs: gaps.length > 0 ? gaps.filter((g) => g < 1).length / gaps.length : NaN,
    slotWaitP50Ms: waitAt(0.5),
    slotWaitP99Ms: waitAt(0.99),
  }
}

/** Load before the first phase, thrown away: every process's JIT warms up, not only Fairlane's. */
async function prime(fairlane: FairlaneProcess, seconds: number): Promise<void> {
  if (seconds <= 0) return
  say(`priming: a, b, c, d with 8 in flight each for ${seconds} s (discarded)`)
  const url = `${fairlane.proxyUrl}/t/echo/work`
  const traffic = new Traffic(['a', 'b', 'c', 'd'].map((key) => flood(url, key, 8)))
  await sleep(seconds * 1000)
  await traffic.stop()
}

/** One request through Fairlane before the load: a wrong key or config fails here, clearly. */
async function probe(fairlane: FairlaneProcess): Promise<void> {
  const url = `${fairlane.proxyUrl}/t/echo/probe`
  const response = await fetch(url, { headers: keyHeaders('a') })
  const body = await response.text()
  if (!response.ok)
    throw new Error(`probe ${url} answered ${response.status}: ${body.slice(0, 500)}`)
}

async function runPhase(
  spec: PhaseSpec,
  discipline: Discipline,
  fairlane: FairlaneProcess,
  upstream: Upstream,
  watched: Readonly<Record<string, Child>>,
  options: FairnessOptions,
): Promise<PhaseResult> {
  say(
    `${discipline} ${spec.name}: ${spec.what}; ${options.warmupSec} s warm-up + ${options.durationSec} s`,
  )
  const specs = spec.callers(`${fairlane.proxyUrl}/t/echo/work`)
  const traffics = await startTraffic(specs, options.quietPhase)
  const live = (): CallerRecord[] => traffics.flatMap((t) => [...t.records.values()])
  let records: CallerRecord[]
  let cpuPercent: Record<string, number | null>
  let durationSec: number
  let arrivals: number[]
  try {
    await sleep(options.warmupSec * 1000)
    for (const record of live()) record.reset()
    await upstream.arrivals()
    const cpu = watchCpu({
      bench: process.pid,
      ...Object.fromEntries(Object.entries(watched).map(([role, child]) => [role, child.pid])),
    })
    const started = performance.now()
    await sleep(options.durationSec * 1000)
    records = live().map(snapshot)
    durationSec = (performance.now() - started) / 1000
    cpuPercent = cpu()
    arrivals = await upstream.arrivals()
  } finally {
    // Waits for every request in flight: the next phase starts with empty lanes.
    await Promise.all(traffics.map((t) => t.stop()))
  }
  for (const child of Object.values(watched))
    if (!child.running)
      throw new Error(
        `${child.name} exited (${child.exitStatus}) during the run\n${child.output()}`,
      )

  const byKey = new Map(records.map((r) => [r.name, r]))
  const quiet = spec.quiet.flatMap((key) => byKey.get(key) ?? [])
  const backlogged = spec.backlogged.flatMap((key) => byKey.get(key) ?? [])
  const pool = pooled(quiet)
  const served = records.reduce((sum, r) => sum + r.served, 0)
  return {
    phase: spec.name,
    discipline,
    what: spec.what,
    durationSec,
    callers: specs.map((caller) => {
      const r = byKey.get(caller.name) ?? new CallerRecord(caller.name)
      return {
        key: caller.name,
        role: caller.concurrency ? `${caller.concurrency} in flight` : `${caller.ratePerSecond}/s`,
        sent: r.sent,
        served: r.served,
        servedPerSec: r.served / durationSec,
        refused: r.refused,
        failed: r.failed,
        p50Ms: r.percentile(50),
        p99Ms: r.percentile(99),
      }
    }),
    ...(quiet.length > 0
      ? {
          quiet: {
            p50Ms: pool.percentile(50),
            p99Ms: pool.percentile(99),
            samples: pool.latenciesMs.length,
          },
        }
      : {}),
    ...(backlogged.length > 0 ? { jain: jainIndex(backlogged.map((r) => r.served)) } : {}),
    servedPerSec: served / durationSec,
    saturated: served / durationSec >= 0.9 * CAPACITY_PER_SEC,
    dispatches: dispatches(arrivals),
    cpuPercent,
  }
}

function problemsOf(result: PhaseResult): string[] {
  return result.callers
    .filter((c) => c.refused + c.failed > 0)
    .map(
      (c) =>
        `${result.discipline} ${result.phase}: key ${c.key} had ${c.refused} refused (429/503) and ` +
        `${c.failed} failed requests`,
    )
}

interface Summary {
  readonly discipline: Discipline
  readonly quietP50Ms: { readonly baseline: number; readonly flood: number }
  readonly quietP99Ms: { readonly baseline: number; readonly flood: number }
  /** Quiet p99 under the flood ÷ without it; the target (fair) is ≤ 1.5. */
  readonly quietP99Ratio: number
  readonly jain: { readonly equal: number; readonly unequal: number }
  /** The flooding key's throughput next to the quiet keys: fair queueing still lets it use what they leave. */
  readonly floodServedPerSec: number
}

function summarize(results: readonly PhaseResult[], discipline: Discipline): Summary {
  const find = (phase: PhaseName): PhaseResult | undefined =>
    results.find((r) => r.phase === phase && r.discipline === discipline)
  const baseline = find('baseline')?.quiet
  const flood = find('flood')
  return {
    discipline,
    quietP50Ms: { baseline: baseline?.p50Ms ?? NaN, flood: flood?.quiet?.p50Ms ?? NaN },
    quietP99Ms: { baseline: baseline?.p99Ms ?? NaN, flood: flood?.quiet?.p99Ms ?? NaN },
    quietP99Ratio: (flood?.quiet?.p99Ms ?? NaN) / (baseline?.p99Ms ?? NaN),
    jain: {
      equal: find('backlogged')?.jain ?? NaN,
      unequal: find('backlogged-unequal')?.jain ?? NaN,
    },
    floodServedPerSec: flood?.callers.find((c) => c.key === 'a')?.servedPerSec ?? NaN,
  }
}

function report(
  results: readonly PhaseResult[],
  summaries: readonly Summary[],
  processes: Readonly<Record<string, Child>>,
  problems: readonly string[],
  jitterMs: number,
): void {
  say()
  say(
    formatTable(
      ['phase', 'key', 'load', 'served/s', 'p50 ms', 'p99 ms', 'refused+failed'],
      results.flatMap((r) =>
        r.callers.map((c, i) => [
          i === 0 ? `${r.discipline} ${r.phase}` : '',
          c.key,
          c.role,
          c.servedPerSec.toFixed(1),
          ms(c.p50Ms),
          ms(c.p99Ms),
          String(c.refused + c.failed),
        ]),
      ),
    ),
  )
  say()
  say(
    formatTable(
      [
        'phase',
        'quiet p50 ms',
        'quiet p99 ms',
        'samples',
        'Jain',
        'served/s',
        'of capacity',
        'arrivals <1 ms apart',
        'slot wait p50/p99 ms',
      ],
      results.map((r) => [
        `${r.discipline} ${r.phase}`,
        r.quiet ? ms(r.quiet.p50Ms) : '',
        r.quiet ? ms(r.quiet.p99Ms) : '',
        r.quiet ? String(r.quiet.samples) : '',
        r.jain === undefined ? '' : r.jain.toFixed(4),
        r.servedPerSec.toFixed(1),
        `${Math.round((r.servedPerSec / CAPACITY_PER_SEC) * 100)}%`,
        `${Math.round(r.dispatches.withinOneMs * 100)}%`,
        r.saturated
          ? `${ms(r.dispatches.slotWaitP50Ms)} / ${ms(r.dispatches.slotWaitP99Ms)}`
          : '(slots free)',
      ]),
    ),
  )
  const samples = results.find((r) => r.quiet)?.quiet?.samples ?? 0
  say(
    `quiet = b, c and d pooled. p99 is a nearest rank: of ${samples} samples it is the ` +
      `${samples - Math.ceil(0.99 * samples) + 1}. slowest, so one slow request moves it.`,
  )
  say(
    `capacity = ${TARGET_CONCURRENCY} slots ÷ ${UPSTREAM_DELAY_MS} ms = ${CAPACITY_PER_SEC} req/s. ` +
      'arrivals and slot wait are seen by the upstream: with every slot busy, a request that ' +
      'arrives at a random instant waits for the next slot to free, whoever the scheduler picks.',
  )
  say()
  for (const s of summaries) {
    const meets = (ok: boolean): string => (ok ? 'met' : 'MISSED')
    const fairTargets = s.discipline === 'fair'
    say(
      `${s.discipline}: quiet p99 ${ms(s.quietP99Ms.baseline)} ms alone → ${ms(s.quietP99Ms.flood)} ms under the flood, ` +
        `×${s.quietP99Ratio.toFixed(2)}` +
        (fairTargets
          ? ` (target ≤ ${TARGETS.quietP99Ratio}: ${meets(s.quietP99Ratio <= TARGETS.quietP99Ratio)})`
          : ''),
    )
    say(
      `${s.discipline}: quiet p50 ${ms(s.quietP50Ms.baseline)} ms alone → ${ms(s.quietP50Ms.flood)} ms under the flood; ` +
        `the flooding key got ${s.floodServedPerSec.toFixed(1)} req/s`,
    )
    say(
      `${s.discipline}: Jain's index of backlogged keys ${s.jain.equal.toFixed(4)} (equal floods), ` +
        `${s.jain.unequal.toFixed(4)} (unequal floods)` +
        (fairTargets
          ? ` (target ≥ ${TARGETS.jain}: ${meets(Math.min(s.jain.equal, s.jain.unequal) >= TARGETS.jain)})`
          : ''),
    )
  }

  const roles = Object.keys(processes)
  say()
  say(
    `Processes (${machineFacts().cores} cores, nothing pinned: the kernel places them): ` +
      `bench pid ${process.pid} runs the load generator (Traffic, undici) and this script; ` +
      Object.entries(processes)
        .map(([role, child]) => `${role} pid ${child.pid}`)
        .join(', ') +
      '. CPU during each measured window, % of one core:',
  )
  say(
    formatTable(
      ['phase', 'bench', ...roles],
      results.map((r) => [
        `${r.discipline} ${r.phase}`,
        String(r.cpuPercent['bench'] ?? '-'),
        ...roles.map((role) => String(r.cpuPercent[role] ?? '-')),
      ]),
    ),
  )
  for (const note of fairlaneNotes()) say(`note: fairlane: ${note}`)
  say(
    `note: upstream holds every answer ${UPSTREAM_DELAY_MS} ms` +
      (jitterMs > 0 ? ` ± ${jitterMs} ms (uniform)` : '; no request is faster than that'),
  )
  if (problems.length > 0) {
    const bar = '!'.repeat(78)
    say()
    say(bar)
    say('!! THESE FIGURES ARE NOT VALID: not every request was served')
    for (const problem of problems) say(`!! ${problem}`)
    say(bar)
  }
}

async function main(options: FairnessOptions): Promise<number> {
  say(
    `fairness: examples/noisy-neighbor.yaml through Fairlane, upstream ${UPSTREAM_DELAY_MS}` +
      `${options.upstreamJitterMs > 0 ? ` ± ${options.upstreamJitterMs}` : ''} ms per request ` +
      `(capacity ${CAPACITY_PER_SEC} req/s); quiet keys ${options.quietPhase}; ` +
      `${options.warmupSec} s warm-up + ${options.durationSec} s per phase`,
  )
  const upstream: Upstream = await launchUpstream({
    delayMs: UPSTREAM_DELAY_MS,
    jitterMs: options.upstreamJitterMs,
    arrivals: true,
  })
  const config = await quietCopyOf(CONFIG)
  const concurrency = /^\s+concurrency:\s*(\d+)/m.exec(await readFile(config, 'utf8'))?.[1]
  if (Number(concurrency) !== TARGET_CONCURRENCY)
    throw new Error(
      `${CONFIG}: target concurrency is ${concurrency ?? 'not set'}; this bench's capacity ` +
        `figures assume ${TARGET_CONCURRENCY}`,
    )
  const results: PhaseResult[] = []
  let processes: Record<string, Child> = { upstream: upstream.child }
  for (const discipline of VARIANTS) {
    const fairlane = await launchFairlane(config, {
      env: { ECHO_URL: upstream.url, ...VARIANT_ENV[discipline] },
      name: `fairlane-${discipline}`,
    })
    try {
      await probe(fairlane)
      await prime(fairlane, options.warmupSec)
      processes = { fairlane: fairlane.child, upstream: upstream.child }
      for (const phase of PHASES)
        results.push(await runPhase(phase, discipline, fairlane, upstream, processes, options))
    } finally {
      await fairlane.stop()
    }
  }
  await stopAll()

  const summaries = VARIANTS.map((d) => summarize(results, d))
  const problems = results.flatMap(problemsOf)
  report(results, summaries, processes, problems, options.upstreamJitterMs)
  const path = await writeResult('fairness', {
    valid: problems.length === 0,
    problems,
    settings: {
      config: 'examples/noisy-neighbor.yaml (+ logging.level warn)',
      loadGenerator: 'Traffic from @fairlane/testing (undici), in the bench process',
      upstreamDelayMs: UPSTREAM_DELAY_MS,
      upstreamJitterMs: options.upstreamJitterMs,
      quietPhase: options.quietPhase,
      targetConcurrency: TARGET_CONCURRENCY,
      capacityPerSec: CAPACITY_PER_SEC,
      quietRatePerSec: QUIET_RATE,
      floodInFlight: FLOOD_IN_FLIGHT,
      backlogInFlight: BACKLOG_IN_FLIGHT,
      unequalInFlight: UNEQUAL_IN_FLIGHT,
      durationSec: options.durationSec,
      warmupSec: options.warmupSec,
      targets: TARGETS,
    },
    results,
    summaries,
  })
  say()
  say(`results: ${path}`)
  return problems.length === 0 ? 0 : 1
}

await runBench('bench:fairness', fairnessOptions, USAGE, main)
