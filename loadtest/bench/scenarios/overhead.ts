/**
 * Overhead: what a system in front of the upstream costs when nothing is limited. Each system
 * gets the same request (GET /bench with one tenant's Authorization header) at maximum
 * throughput (closed loop) and then at a fixed rate far below every system's maximum (open
 * loop), where p50/p99 are the path's latency rather than queueing. Limiters run with a limit
 * far above the load, so every request takes the limiter's path and passes.
 */
import { randomBytes } from 'node:crypto'
import { closedLoop, type ClosedLoopRun } from '../lib/closed-loop.ts'
import { measureAtRate, type RateMeasurement } from '../lib/fixed-rate.ts'
import { fixed, perSec, ms, times } from '../lib/format.ts'
import { probe, problemsOf, type LoadRequest, type Measurement } from '../lib/measurement.ts'
import { sampleRoles, type ProcessFigures } from '../lib/probe.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import type { Contender } from '../systems/contender.ts'
import {
  runEach,
  assertRunning,
  pick,
  skippedLines,
  watchDeployment,
  type ScenarioContext,
  type ScenarioOutcome,
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
  /** CPU time of the system's own processes per request at max req/s, µs (direct: the upstream's). */
  readonly cpuMicrosPerRequest: number
  /** Per process: event-loop delay of the median max run and of the fixed-rate window. */
  readonly eventLoopDelayP99Ms: {
    readonly max: Readonly<Record<string, number | undefined>>
    readonly atRate: Readonly<Record<string, number | undefined>>
  }
  /** Per process after the runs: RSS, and heap in use after a forced GC (Node processes). */
  readonly memory: Readonly<Record<string, ProcessFigures>>
}

async function runOne(
  contender: Contender,
  context: ScenarioContext,
  token: string,
): Promise<{ run: OverheadRun; problems: string[] }> {
  const { settings, upstream, say } = context
  const o = settings.overhead
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
    const eventLoopP99 = (figures: Record<string, ProcessFigures>) =>
      Object.fromEntries(Object.entries(figures).map(([r, f]) => [r, f.eventLoopDelayP99Ms]))
    const shape = { connections: o.connections }
    say(
      `  ${contender.name}: warm-up ${o.warmupSec} s, then ${o.repeats} × ${o.durationSec} s ` +
        `at ${o.connections} connections`,
    )
    if (o.warmupSec > 0)
      await closedLoop(context.wrk, request, { ...shape, durationSec: o.warmupSec }, pids)
    const repeats: (ClosedLoopRun & { eventLoop: Record<string, number | undefined> })[] = []
    for (let i = 0; i < o.repeats; i++) {
      // A sample opens each process's event-loop window; the one after the run closes it.
      await sampleRoles(pids, probed)
      const run = await closedLoop(
        context.wrk,
        request,
        { ...shape, durationSec: o.durationSec },
        pids,
      )
      repeats.push({ ...run, eventLoop: eventLoopP99(await sampleRoles(pids, probed)) })
      assertRunning([upstream.child, ...deployment.children])
    }
    const byRate = [...repeats].sort(
      (x, y) => x.measurement.requestsPerSec - y.measurement.requestsPerSec,
    )
    const max = byRate[Math.floor(byRate.length / 2)] as (typeof repeats)[number]
    say(
      `  ${contender.name}: ${repeats.map((r) => perSec(r.measurement.requestsPerSec)).join(', ')} req/s; ` +
        `then ${o.ratePerSec} req/s for ${o.rateDurationSec} s`,
    )
    let atRateCpu: Record<string, number | null> = {}
    const atRate = await measureAtRate([request], o.ratePerSec, o.rateDurationSec, 1, async () => {
      await sampleRoles(pids, probed)
      const cpu = watchDeployment(upstream, deployment)
      return () => (atRateCpu = cpu())
    })
    const atRateEventLoop = eventLoopP99(await sampleRoles(pids, probed))
    const memory = await sampleRoles(pids, probed, { gc: true })
    assertRunning([upstream.child, ...deployment.children])
    const problems = repeats.flatMap((r) => problemsOf(contender.name, r.measurement))
    if (atRate.refusedPerSec > 0 || atRate.failed > 0)
      problems.push(
        `${contender.name}: at ${o.ratePerSec} req/s, ${Math.round(atRate.refusedPerSec * atRate.durationSec)} refused and ${atRate.failed} failed`,
      )
    if (atRate.sentPerSec < 0.95 * o.ratePerSec)
      problems.push(
        `${contender.name}: the generator sent ${perSec(atRate.sentPerSec)} of ${o.ratePerSec} req/s`,
      )
    return {
      run: {
        system: contender.name,
        description: contender.description,
        notes: deployment.notes,
        max: max.measurement,
        maxRepeats: repeats.map((r) => r.measurement.requestsPerSec),
        maxCpuPercent: max.cpuPercent,
        atRate,
        atRateCpuPercent: atRateCpu,
        cpuMicrosPerRequest:
          (ownCpu(contender.name, max.cpuPercent) * 1e4) / max.measurement.requestsPerSec,
        eventLoopDelayP99Ms: { max: max.eventLoop, atRate: atRateEventLoop },
        memory,
      },
      problems,
    }
  } finally {
    await deployment.stop()
  }
}

/** CPU of what serves the requests: the system's own processes, or the upstream for direct. */
function ownCpu(system: string, cpu: Readonly<Record<string, number | null>>): number {
  return system === 'direct' ? (cpu['upstream'] ?? Number.NaN) : systemCpu(cpu)
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

function eventLoopOf(run: OverheadRun, window: 'max' | 'atRate'): number | null {
  const figures = run.eventLoopDelayP99Ms[window]
  const role = mainRole(run.system, figures)
  return role === undefined ? null : (figures[role] ?? null)
}

export async function runOverhead(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const o = settings.overhead
  const { run: contenders, skipped } = pick(context, () => undefined)
  const token = 'fl_bench_' + randomBytes(24).toString('base64url')
  const generator = context.wrk ? `${context.wrk.version} (1 thread)` : 'autocannon'
  say(
    `overhead: ${generator}, ${o.connections} connections, ${o.warmupSec} s warm-up + ` +
      `${o.repeats} × ${o.durationSec} s (median); then ${o.ratePerSec} req/s open loop for ${o.rateDurationSec} s`,
  )
  const problems: string[] = []
  const runs: OverheadRun[] = await runEach(
    contenders,
    (contender) => contender.name,
    async (contender) => {
      const { run, problems: found } = await runOne(contender, context, token)
      problems.push(...found)
      return run
    },
    problems,
    skipped,
  )

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
  const markdown = [
    formatMarkdownTable(header, rows),
    '',
    'CPU µs/req: CPU time (user + system, /proc/<pid>/stat) of the system’s own processes over ' +
      'the median max run ÷ its requests (direct: the upstream’s). Event-loop p99: ' +
      '`monitorEventLoopDelay` inside the system’s Node process over the same window.',
    '',
    cpuTable,
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
          `latency: open loop at ${o.ratePerSec} req/s for ${o.rateDurationSec} s`,
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
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
