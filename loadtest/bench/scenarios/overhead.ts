/**
 * Overhead: what a system in front of the upstream costs when nothing is limited. Each system
 * gets the same request (GET /bench with one tenant's Authorization header) at maximum
 * throughput (closed loop, the systems' runs taken in rounds) and then at two fixed rates
 * (open loop, also in rounds, each system's windows pooled): one far below every system's
 * maximum, where p50/p99 are the path's latency rather than queueing, and half of Fairlane's
 * own maximum, where its latency under real load is compared with the others' at the same
 * rate. Limiters run with a limit far above the load, so every request takes the limiter's
 * path and passes.
 */
import { randomBytes } from 'node:crypto'
import { closedLoop, type ClosedLoopRun } from '../lib/closed-loop.ts'
import { measureAtRate, PooledWindows, type RateMeasurement } from '../lib/fixed-rate.ts'
import { measureAtRateWithGo } from '../lib/go-sender.ts'
import { listenOverflows } from '../lib/listen-overflows.ts'
import { medianBy } from '../lib/median.ts'
import { fixed, perSec, ms, times } from '../lib/format.ts'
import { probe, problemsOf, type LoadRequest, type Measurement } from '../lib/measurement.ts'
import { sampleRoles, type ProcessFigures } from '../lib/probe.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import type { Contender, Deployment } from '../systems/contender.ts'
import {
  runEach,
  assertRunning,
  pick,
  skippedLines,
  watchDeployment,
  type ScenarioContext,
  type ScenarioOutcome,
  type Skip,
} from './scenario.ts'

interface OverheadRun {
  readonly system: string
  readonly description: string
  readonly notes: readonly string[]
  /** The median of the repeats by req/s, with its latency and CPU. */
  readonly max: Measurement
  /** req/s of every repeat, in order. */
  readonly maxRepeats: readonly number[]
  readonly maxCpuPercent: Readonly<Record<string, number | null>>
  readonly atRate: RateMeasurement
  readonly atRateCpuPercent: Readonly<Record<string, number | null>>
  /** Each round's own p99 at that rate; `atRate` pools every round's requests. */
  readonly atRateWindowsP99Ms: readonly number[]
  /** At half of Fairlane's median max req/s (the system's own when Fairlane is not measured). */
  readonly atHalf: RateMeasurement
  readonly atHalfCpuPercent: Readonly<Record<string, number | null>>
  readonly atHalfWindowsP99Ms: readonly number[]
  /**
   * Connections the kernel dropped from a full accept queue (machine-wide, one system runs at a
   * time) over the fixed-rate windows, warm-up included: each costs its request a SYN or data
   * retry (200 ms to seconds). Undefined where /proc/net/netstat cannot be read.
   */
  readonly listenOverflows: { readonly atRate?: number; readonly atHalf?: number }
  /** CPU time of the system's own processes per request at max req/s, µs (direct: the upstream's). */
  readonly cpuMicrosPerRequest: number
  /**
   * The same at the half rate, over that window: each request mostly alone in its event-loop
   * turn, so it pays what the closed loop's batches share. What a system spends there bears on
   * how much of the core is left to absorb a burst or a pause, and so on its p99 at that rate.
   */
  readonly cpuMicrosPerRequestAtHalf: number
  /** Per process: event-loop delay of the median max run and of each fixed-rate window. */
  readonly eventLoopDelayP99Ms: {
    readonly max: Readonly<Record<string, number | undefined>>
    readonly atRate: Readonly<Record<string, number | undefined>>
    readonly atHalf: Readonly<Record<string, number | undefined>>
  }
  /**
   * Per Node process: bytes allocated on the JS heap per request served, and the collections
   * with their pauses, over the median max run and over the half-rate window.
   */
  readonly gc: {
    readonly max: Readonly<Record<string, GcFigures>>
    readonly atHalf: Readonly<Record<string, GcFigures>>
  }
  /** Per process after the runs: RSS, and heap in use after a forced GC (Node processes). */
  readonly memory: Readonly<Record<string, ProcessFigures>>
}

/** A Node process's garbage collection over a window (probe.ts), per request served. */
interface GcFigures {
  readonly allocatedBytesPerRequest: number
  readonly minorGcs: number
  readonly majorGcs: number
  readonly gcPauseMs: number
  readonly gcMaxPauseMs: number
}

/** What one open-loop window at a fixed rate measured, with the processes' CPU and event loop. */
interface RateWindow {
  readonly measurement: RateMeasurement
  readonly cpuPercent: Record<string, number | null>
  readonly eventLoop: Record<string, number | undefined>
  readonly gc: Record<string, GcFigures>
  readonly listenOverflows?: number
}

const eventLoopP99 = (figures: Record<string, ProcessFigures>) =>
  Object.fromEntries(Object.entries(figures).map(([r, f]) => [r, f.eventLoopDelayP99Ms]))

/** The collections of each probed process over a window that served `requests`. */
function gcOf(
  figures: Record<string, ProcessFigures>,
  requests: number,
): Record<string, GcFigures> {
  const gc: Record<string, GcFigures> = {}
  for (const [role, f] of Object.entries(figures)) {
    if (f.allocatedBytes === undefined) continue
    gc[role] = {
      allocatedBytesPerRequest: f.allocatedBytes / requests,
      minorGcs: f.minorGcs ?? 0,
      majorGcs: f.majorGcs ?? 0,
      gcPauseMs: f.gcPauseMs ?? 0,
      gcMaxPauseMs: f.gcMaxPauseMs ?? 0,
    }
  }
  return gc
}

/**
 * One open-loop window at `ratePerSec`, its records added to `pool`; problems for refusals,
 * failures and a generator that fell short.
 */
async function atFixedRate(
  d: Deployed,
  ratePerSec: number,
  pool: PooledWindows,
  context: ScenarioContext,
  problems: string[],
): Promise<RateWindow> {
  const { deployment, pids, probed, request } = d
  const name = d.contender.name
  const o = context.settings.overhead
  let cpuPercent: Record<string, number | null> = {}
  const overflowsBefore = listenOverflows()
  const measure = o.sender === 'go' ? measureAtRateWithGo : measureAtRate
  const measurement = await measure(
    [request],
    ratePerSec,
    o.rateDurationSec,
    o.rateWarmupSec,
    async () => {
      await sampleRoles(pids, probed)
      const cpu = watchDeployment(context.upstream, deployment)
      return () => (cpuPercent = cpu())
    },
    pool,
  )
  const overflowsAfter = listenOverflows()
  const closing = await sampleRoles(pids, probed)
  assertRunning([context.upstream.child, ...deployment.children])
  const eventLoop = eventLoopP99(closing)
  if (measurement.refusedPerSec > 0 || measurement.failed > 0)
    problems.push(
      `${name}: at ${ratePerSec} req/s, ${Math.round(measurement.refusedPerSec * measurement.durationSec)} refused and ${measurement.failed} failed`,
    )
  if (measurement.sentPerSec < 0.95 * ratePerSec)
    problems.push(
      `${name}: the generator sent ${perSec(measurement.sentPerSec)} of ${perSec(ratePerSec)} req/s`,
    )
  return {
    measurement,
    cpuPercent,
    eventLoop,
    gc: gcOf(closing, measurement.servedPerSec * measurement.durationSec),
    ...(overflowsBefore !== undefined && overflowsAfter !== undefined
      ? { listenOverflows: overflowsAfter - overflowsBefore }
      : {}),
  }
}

/** A system started for the overhead runs: what the bench sends it and which processes it watches. */
interface Deployed {
  readonly contender: Contender
  readonly deployment: Deployment
  readonly request: LoadRequest
  readonly pids: Readonly<Record<string, number>>
  /** The pids that answer the probe (event loop, memory). */
  readonly probed: ReadonlySet<number>
}

/** One closed-loop run at saturation, with each process's event loop and collections over it. */
type MaxRun = ClosedLoopRun & {
  readonly eventLoop: Record<string, number | undefined>
  readonly gc: Record<string, GcFigures>
}

async function deploy(
  contender: Contender,
  context: ScenarioContext,
  token: string,
): Promise<Deployed> {
  const { upstream } = context
  const deployment = await contender.start({ upstream, instances: 1, tenants: [token] })
  try {
    const request: LoadRequest = {
      url: `${deployment.bases[0]}/bench`,
      headers: { authorization: `Bearer ${token}` },
    }
    await probe(contender.name, request)
    const pids = { upstream: upstream.child.pid, ...deployment.pids }
    const probed = new Set(
      [upstream.child, ...deployment.children].filter((c) => c.probed).map((c) => c.pid),
    )
    return { contender, deployment, request, pids, probed }
  } catch (err) {
    await deployment.stop()
    throw err
  }
}

async function warmUp({ request, pids }: Deployed, context: ScenarioContext): Promise<void> {
  const o = context.settings.overhead
  await closedLoop(
    context.wrk,
    request,
    { connections: o.connections, durationSec: o.warmupSec },
    pids,
  )
}

async function maxRun(d: Deployed, context: ScenarioContext): Promise<MaxRun> {
  const o = context.settings.overhead
  // A sample opens each process's event-loop window; the one after the run closes it.
  await sampleRoles(d.pids, d.probed)
  const run = await closedLoop(
    context.wrk,
    d.request,
    { connections: o.connections, durationSec: o.durationSec },
    d.pids,
  )
  const closing = await sampleRoles(d.pids, d.probed)
  assertRunning([context.upstream.child, ...d.deployment.children])
  return {
    ...run,
    eventLoop: eventLoopP99(closing),
    gc: gcOf(closing, run.measurement.requestsPerSec * o.durationSec),
  }
}

/**
 * `repeats` rounds over the systems still in `live`, each running every one of them once,
 * the first of the round moving one place each round. A system whose step fails leaves
 * `live`, is stopped, and is reported by runEach.
 */
async function inRounds<T>(
  live: Map<Deployed, T>,
  repeats: number,
  step: (d: Deployed, state: T, round: number) => Promise<void>,
  failed: (d: Deployed) => Promise<void>,
  problems: string[],
  skipped: Skip[],
): Promise<void> {
  for (let round = 0; round < repeats; round++) {
    const order = [...live.keys()]
    const turn = order.map((_, i) => order[(i + round) % order.length] as Deployed)
    await runEach(
      turn,
      (d) => d.contender.name,
      async (d) => {
        const state = live.get(d)
        if (state === undefined) return
        try {
          await step(d, state, round)
        } catch (err) {
          live.delete(d)
          await failed(d)
          throw err
        }
      },
      problems,
      skipped,
    )
  }
}

/**
 * The max runs of every system, taken in rounds: each round runs every system once, the
 * first of the round moving one place each round, and a system's warm-up goes right before
 * its first run (warmed earlier, it would wait idle through the others' warm-ups).
 * Systems measured one after another met the shared machine at different moments (its
 * other tenants, where processes landed on the cores), which moved the ratio of two
 * systems' req/s by more than what separates them; in rounds, each system's runs span the
 * same stretch of time. A system whose warm-up or run fails is stopped and drops out.
 */
async function maxRounds(
  deployed: readonly Deployed[],
  context: ScenarioContext,
  failed: (d: Deployed) => Promise<void>,
  problems: string[],
  skipped: Skip[],
): Promise<Map<Deployed, MaxRun[]>> {
  const runs = new Map<Deployed, MaxRun[]>(deployed.map((d) => [d, []]))
  const o = context.settings.overhead
  await inRounds(
    runs,
    o.repeats,
    async (d, repeats, round) => {
      if (round === 0 && o.warmupSec > 0) await warmUp(d, context)
      repeats.push(await maxRun(d, context))
    },
    failed,
    problems,
    skipped,
  )
  const said = (d: Deployed, r: readonly MaxRun[]): string =>
    `  ${d.contender.name}: ${r.map((x) => perSec(x.measurement.requestsPerSec)).join(', ')} req/s`
  for (const [d, r] of runs) context.say(said(d, r))
  return runs
}

/** One system's open-loop windows at the two fixed rates, taken in rounds. */
interface RateRounds {
  /** Half of Fairlane's median max req/s (the system's own when Fairlane is not measured). */
  readonly halfRate: number
  readonly low: PooledWindows
  readonly high: PooledWindows
  readonly lowWindows: RateWindow[]
  readonly highWindows: RateWindow[]
}

const halfOf = (repeats: readonly MaxRun[]): number =>
  Math.round(medianBy(repeats, (r) => r.measurement.requestsPerSec).measurement.requestsPerSec / 2)

/**
 * The fixed-rate windows of every system, in rounds as the max runs are: each round gives
 * every system a window at each rate, the first of the round moving one place each round.
 * One window of 10 s after the others' was decided by whatever the shared machine did in it
 * (a stall of 200 ms in one window of three is 1,500 requests at the half rate, twice a p99's
 * share); pooled over the rounds, each system's figures are over the same stretch of time as
 * the others'. A system whose window fails is stopped and drops out.
 */
async function rateRounds(
  runs: ReadonlyMap<Deployed, readonly MaxRun[]>,
  context: ScenarioContext,
  failed: (d: Deployed) => Promise<void>,
  problems: string[],
  skipped: Skip[],
): Promise<Map<Deployed, RateRounds>> {
  const o = context.settings.overhead
  const fairlane = [...runs].find(([d]) => d.contender.name === 'fairlane')
  const fairlaneHalf = fairlane ? halfOf(fairlane[1]) : undefined
  const taken = new Map<Deployed, RateRounds>()
  for (const [d, repeats] of runs) {
    taken.set(d, {
      halfRate: fairlaneHalf ?? halfOf(repeats),
      low: new PooledWindows(),
      high: new PooledWindows(),
      lowWindows: [],
      highWindows: [],
    })
  }
  const halves = [...new Set([...taken.values()].map((t) => perSec(t.halfRate)))].join(', ')
  context.say(
    `  ${o.repeats} rounds of ${o.ratePerSec} and ${halves} req/s per system, ` +
      `${o.rateWarmupSec} + ${o.rateDurationSec} s each`,
  )
  await inRounds(
    taken,
    o.repeats,
    async (d, t) => {
      t.lowWindows.push(await atFixedRate(d, o.ratePerSec, t.low, context, problems))
      t.highWindows.push(await atFixedRate(d, t.halfRate, t.high, context, problems))
    },
    failed,
    problems,
    skipped,
  )
  return taken
}

/** A system's windows at one rate as one: requests pooled, CPU averaged, the worst event loop. */
function pooledWindow(
  windows: readonly RateWindow[],
  pool: PooledWindows,
  ratePerSec: number,
): RateWindow {
  const cpuPercent: Record<string, number | null> = {}
  const eventLoop: Record<string, number | undefined> = {}
  const gc: Record<string, GcFigures> = {}
  for (const role of new Set(windows.flatMap((w) => Object.keys(w.cpuPercent)))) {
    const values = windows.map((w) => w.cpuPercent[role] ?? null)
    cpuPercent[role] = values.includes(null)
      ? null
      : (values as number[]).reduce((sum, v) => sum + v, 0) / values.length
  }
  for (const role of new Set(windows.flatMap((w) => Object.keys(w.eventLoop)))) {
    const values = windows.flatMap((w) => w.eventLoop[role] ?? [])
    eventLoop[role] = values.length > 0 ? Math.max(...values) : undefined
  }
  for (const role of new Set(windows.flatMap((w) => Object.keys(w.gc))))
    gc[role] = pooledGc(windows, role)
  const overflows = windows.map((w) => w.listenOverflows)
  return {
    measurement: pool.measurement(ratePerSec),
    cpuPercent,
    eventLoop,
    gc,
    ...(overflows.every((n) => n !== undefined)
      ? { listenOverflows: overflows.reduce((sum, n) => sum + n, 0) }
      : {}),
  }
}

/** One process's collections over several windows: summed, allocation per request weighted. */
function pooledGc(windows: readonly RateWindow[], role: string): GcFigures {
  let requests = 0
  let allocated = 0
  const pooled = { minorGcs: 0, majorGcs: 0, gcPauseMs: 0, gcMaxPauseMs: 0 }
  for (const { gc, measurement } of windows) {
    const figures = gc[role]
    if (!figures) continue
    const served = measurement.servedPerSec * measurement.durationSec
    requests += served
    allocated += figures.allocatedBytesPerRequest * served
    pooled.minorGcs += figures.minorGcs
    pooled.majorGcs += figures.majorGcs
    pooled.gcPauseMs += figures.gcPauseMs
    pooled.gcMaxPauseMs = Math.max(pooled.gcMaxPauseMs, figures.gcMaxPauseMs)
  }
  return { allocatedBytesPerRequest: allocated / requests, ...pooled }
}

/** One system's figures once every round is done: the median max run, the pooled windows. */
function overheadRun(
  d: Deployed,
  repeats: readonly MaxRun[],
  rates: RateRounds,
  memory: Record<string, ProcessFigures>,
  context: ScenarioContext,
): OverheadRun {
  const o = context.settings.overhead
  const { contender, deployment } = d
  const max = medianBy(repeats, (r) => r.measurement.requestsPerSec)
  const low = pooledWindow(rates.lowWindows, rates.low, o.ratePerSec)
  const high = pooledWindow(rates.highWindows, rates.high, rates.halfRate)
  return {
    system: contender.name,
    description: contender.description,
    notes: deployment.notes,
    max: max.measurement,
    maxRepeats: repeats.map((r) => r.measurement.requestsPerSec),
    maxCpuPercent: max.cpuPercent,
    atRate: low.measurement,
    atRateCpuPercent: low.cpuPercent,
    atRateWindowsP99Ms: rates.low.windowsP99Ms,
    atHalf: high.measurement,
    atHalfCpuPercent: high.cpuPercent,
    atHalfWindowsP99Ms: rates.high.windowsP99Ms,
    listenOverflows: {
      ...(low.listenOverflows !== undefined ? { atRate: low.listenOverflows } : {}),
      ...(high.listenOverflows !== undefined ? { atHalf: high.listenOverflows } : {}),
    },
    cpuMicrosPerRequest: microsPerRequest(
      contender.name,
      max.cpuPercent,
      max.measurement.requestsPerSec,
    ),
    cpuMicrosPerRequestAtHalf: microsPerRequest(
      contender.name,
      high.cpuPercent,
      high.measurement.servedPerSec,
    ),
    eventLoopDelayP99Ms: { max: max.eventLoop, atRate: low.eventLoop, atHalf: high.eventLoop },
    gc: { max: max.gc, atHalf: high.gc },
    memory,
  }
}

/**
 * Every system, started together and idle but for its own runs: the max runs go in rounds
 * (maxRounds), then the fixed-rate windows (rateRounds); then each, in turn, gets its memory
 * sampled and is stopped.
 */
async function runAll(
  order: readonly Contender[],
  context: ScenarioContext,
  problems: string[],
  skipped: Skip[],
): Promise<OverheadRun[]> {
  const token = 'fl_bench_' + randomBytes(24).toString('base64url')
  const name = (d: Deployed): string => d.contender.name
  const running = new Set<Deployed>()
  const stop = async (d: Deployed): Promise<void> => {
    running.delete(d)
    await d.deployment.stop()
  }
  try {
    const deployed = await runEach(
      order,
      (c) => c.name,
      async (c) => {
        const d = await deploy(c, context, token)
        running.add(d)
        return d
      },
      problems,
      skipped,
    )
    const o = context.settings.overhead
    context.say(
      `  ${o.repeats} rounds of ${o.durationSec} s per system at ${o.connections} connections, ` +
        `each system's first after ${o.warmupSec} s of warm-up`,
    )
    const maxRuns = await maxRounds(deployed, context, stop, problems, skipped)
    for (const [d, repeats] of maxRuns)
      problems.push(...repeats.flatMap((r) => problemsOf(d.contender.name, r.measurement)))
    const rates = await rateRounds(maxRuns, context, stop, problems, skipped)
    return await runEach(
      [...rates.keys()],
      name,
      async (d) => {
        try {
          const memory = await sampleRoles(d.pids, d.probed, { gc: true })
          assertRunning([context.upstream.child, ...d.deployment.children])
          const rounds = rates.get(d)
          if (!rounds) throw new Error(`${name(d)} has no fixed-rate windows`)
          return overheadRun(d, maxRuns.get(d) ?? [], rounds, memory, context)
        } finally {
          await stop(d)
        }
      },
      problems,
      skipped,
    )
  } finally {
    await Promise.allSettled([...running].map((d) => d.deployment.stop()))
  }
}

/** CPU of what serves the requests: the system's own processes, or the upstream for direct. */
function ownCpu(system: string, cpu: Readonly<Record<string, number | null>>): number {
  return system === 'direct' ? (cpu['upstream'] ?? Number.NaN) : systemCpu(cpu)
}

/** The system's own CPU per request, µs: % of one core is 10^4 µs of CPU each second. */
function microsPerRequest(
  system: string,
  cpu: Readonly<Record<string, number | null>>,
  requestsPerSec: number,
): number {
  return (ownCpu(system, cpu) * 1e4) / requestsPerSec
}

/** The system's own process that serves requests (direct: the upstream), for per-process figures. */
function mainRole(system: string, figures: Readonly<Record<string, unknown>>): string | undefined {
  if (system === 'direct') return 'upstream'
  return Object.keys(figures).find((role) => !['bench', 'load', 'upstream'].includes(role))
}

const mb = (bytes: number | undefined): string =>
  bytes === undefined ? '-' : (bytes / 1024 / 1024).toFixed(1)

/** CPU of the system's own processes (not the upstream, bench or load generator), summed. */
function systemCpu(cpu: Readonly<Record<string, number | null>>): number {
  return Object.entries(cpu)
    .filter(([role]) => !['bench', 'load', 'upstream'].includes(role))
    .reduce((sum, [, value]) => sum + (value ?? 0), 0)
}

function eventLoopOf(run: OverheadRun, window: 'max' | 'atRate' | 'atHalf'): number | null {
  const figures = run.eventLoopDelayP99Ms[window]
  const role = mainRole(run.system, figures)
  return role === undefined ? null : (figures[role] ?? null)
}

/**
 * The upstream serves every system in turn: it is warmed once, directly, as a system is before
 * its own runs. Cold, its JIT still compiling on the two cores, it made the first system
 * measured (Fairlane, for the half rate) slower than the ones after it met it warm.
 */
async function warmUpstream(context: ScenarioContext): Promise<void> {
  const { settings, upstream, wrk } = context
  const o = settings.overhead
  if (o.warmupSec <= 0) return
  const request: LoadRequest = { url: `${upstream.url}/bench`, headers: {} }
  await probe('upstream', request)
  await closedLoop(
    wrk,
    request,
    { connections: o.connections, durationSec: o.warmupSec },
    { upstream: upstream.child.pid },
  )
}

export async function runOverhead(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const o = settings.overhead
  const { run: contenders, skipped } = pick(context, () => undefined)
  const generator = context.wrk ? `${context.wrk.version} (1 thread)` : 'autocannon'
  say(
    `overhead: ${generator}, ${o.connections} connections, ${o.warmupSec} s warm-up, then ` +
      `${o.repeats} rounds of ${o.durationSec} s per system (median); then open loop ` +
      `(${o.sender} sender), ${o.repeats} rounds of ${o.rateDurationSec} s at ${o.ratePerSec} ` +
      `req/s and at half of Fairlane's max per system (pooled; the upstream is warmed ` +
      `directly for ${o.warmupSec} s before any system)`,
  )
  const problems: string[] = []
  if (contenders.length > 0) await warmUpstream(context)
  const order = [...contenders].sort(
    (a, b) => Number(b.name === 'fairlane') - Number(a.name === 'fairlane'),
  )
  const measured = await runAll(order, context, problems, skipped)
  const runs = contenders.flatMap((c) => measured.filter((r) => r.system === c.name))
  const half = (r: OverheadRun): string => perSec(r.atHalf.offeredPerSec)

  const fairlane = runs.find((r) => r.system === 'fairlane')
  const header = [
    'system',
    'max req/s',
    'min–max',
    `p50 ms @ ${o.ratePerSec}/s`,
    `p99 ms @ ${o.ratePerSec}/s`,
    'system CPU % at max',
    'CPU µs/req',
    'event-loop p99 ms at max',
    `event-loop p99 ms @ ${o.ratePerSec}/s`,
    'half rate req/s',
    'p50 ms @ half',
    'p99 ms @ half',
    'CPU µs/req @ half',
    'event-loop p99 ms @ half',
    'accept-queue overflows @ half',
    'Fairlane ÷ system, max req/s',
    'Fairlane ÷ system, p99',
  ]
  const rows = runs.map((r) => [
    r.system,
    perSec(r.max.requestsPerSec),
    `${perSec(Math.min(...r.maxRepeats))}–${perSec(Math.max(...r.maxRepeats))}`,
    ms(r.atRate.p50Ms),
    ms(r.atRate.p99Ms),
    r.system === 'direct' ? '-' : String(Math.round(systemCpu(r.maxCpuPercent))),
    fixed(r.cpuMicrosPerRequest, 0),
    ms(eventLoopOf(r, 'max')),
    ms(eventLoopOf(r, 'atRate')),
    half(r),
    ms(r.atHalf.p50Ms),
    ms(r.atHalf.p99Ms),
    fixed(r.cpuMicrosPerRequestAtHalf, 0),
    ms(eventLoopOf(r, 'atHalf')),
    r.listenOverflows.atHalf === undefined ? '-' : perSec(r.listenOverflows.atHalf),
    fairlane ? times(fairlane.max.requestsPerSec / r.max.requestsPerSec) : '-',
    fairlane ? times(fairlane.atRate.p99Ms / r.atRate.p99Ms) : '-',
  ])
  const roles = [...new Set(runs.flatMap((r) => Object.keys(r.maxCpuPercent)))]
  const cpuTable = formatMarkdownTable(
    ['CPU % at max req/s', ...roles],
    runs.map((r) => [r.system, ...roles.map((role) => String(r.maxCpuPercent[role] ?? '-'))]),
  )
  const memoryTable = formatMarkdownTable(
    ['memory after the runs, MB', 'process', 'RSS', 'heap used after GC'],
    runs.flatMap((r) =>
      Object.entries(r.memory)
        .filter(([role]) => r.system === 'direct' || role !== 'upstream')
        .map(([role, f]) => [r.system, role, mb(f.rssBytes), mb(f.heapUsedAfterGcBytes)]),
    ),
  )
  const gcTable = formatMarkdownTable(
    [
      'garbage collection',
      'process',
      'KB allocated/req at max',
      'KB allocated/req @ half',
      'minor GCs @ half',
      'major GCs @ half',
      'GC pauses ms @ half (all / longest)',
    ],
    runs.flatMap((r) => {
      const role = mainRole(r.system, r.gc.atHalf)
      const [max, half] = [r.gc.max[role ?? ''], r.gc.atHalf[role ?? '']]
      if (role === undefined || !half) return []
      return [
        [
          r.system,
          role,
          max ? fixed(max.allocatedBytesPerRequest / 1024, 1) : '-',
          fixed(half.allocatedBytesPerRequest / 1024, 1),
          String(half.minorGcs),
          String(half.majorGcs),
          `${fixed(half.gcPauseMs, 0)} / ${fixed(half.gcMaxPauseMs, 1)}`,
        ],
      ]
    }),
  )
  const markdown = [
    formatMarkdownTable(header, rows),
    '',
    'CPU µs/req: CPU time (user + system, /proc/<pid>/stat) of the system’s own processes over ' +
      'the median max run ÷ its requests (direct: the upstream’s); @ half, over the half-rate ' +
      'windows ÷ the requests served in them, each mostly alone in its event-loop turn. ' +
      `Fixed rates: ${o.repeats} windows of ${o.rateDurationSec} s per system and rate, taken in ` +
      'rounds, their requests pooled (each window’s own p99 is in the result JSON). ' +
      'Event-loop p99: `monitorEventLoopDelay` inside the system’s Node process over each ' +
      'column’s window (the worst of the rounds’ at a fixed rate), beyond its 10 ms sampling ' +
      'interval. Half rate: ' +
      'half of Fairlane’s median max req/s, the same for every system (open loop, ' +
      (o.sender === 'go'
        ? 'from loadtest/sender, a Go process of its own'
        : 'one sender in the bench process') +
      '; a system refusing or failing there, or a sender falling short, is ' +
      'listed under problems). Accept-queue overflows: connections the kernel dropped because ' +
      'the listening socket’s queue was full (TcpExt ListenOverflows over the half-rate runs, ' +
      'warm-up included); each costs its request a retry of 200 ms or more.',
    '',
    cpuTable,
    '',
    gcTable,
    '',
    'Garbage collection: V8’s own account (GCProfiler) inside each Node process, over the median ' +
      'max run and the half-rate windows: bytes allocated on the JS heap ÷ the requests served, ' +
      'the minor (scavenge) and major (mark-compact) collections, and the collector’s pauses. ' +
      'Each pause holds every request that arrives during it, and the backlog drains only as ' +
      'fast as the core has time to spare.',
    '',
    memoryTable,
    skipped.length > 0 ? '\n' + skippedLines(skipped) : '',
  ].join('\n')

  return {
    name: 'overhead',
    title: 'Overhead: pass-through, limits far above the load',
    settings: { ...o, generator },
    results: { runs },
    skipped,
    problems,
    markdown,
    chart: {
      title: 'Overhead: the same GET through each system, nothing limited',
      subtitle: [
        `max req/s: ${generator}, ${o.connections} connections, median of ${o.repeats} × ${o.durationSec} s; ` +
          `latency: open loop at ${o.ratePerSec} req/s and at half of Fairlane's max, ${o.repeats} × ${o.rateDurationSec} s each, pooled`,
      ],
      panels: [
        {
          title: 'Maximum throughput (higher is better)',
          unit: 'req/s (2xx)',
          series: ['req/s'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.max.requestsPerSec],
            highlight: r.system.startsWith('fairlane'),
          })),
        },
        {
          title: `Latency at ${o.ratePerSec} req/s (lower is better)`,
          unit: 'ms',
          series: ['p50', 'p99'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.atRate.p50Ms, r.atRate.p99Ms],
            highlight: r.system.startsWith('fairlane'),
          })),
        },
        {
          title: `Latency at half of Fairlane's max req/s (lower is better)`,
          unit: 'ms',
          series: ['p50', 'p99'],
          rows: runs.map((r) => ({
            label: `${r.system} @ ${half(r)}/s`,
            values: [r.atHalf.p50Ms, r.atHalf.p99Ms],
            highlight: r.system.startsWith('fairlane'),
          })),
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
