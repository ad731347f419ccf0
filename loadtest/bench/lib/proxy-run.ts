import type { Child } from './child.ts'
import { watchCpu, watchMachineCpu } from './cpu.ts'
import { measure, probe, problemsOf, type LoadRequest, type Measurement } from './measurement.ts'
import { medianBy } from './median.ts'
import { sampleRoles, type ProcessFigures } from './probe.ts'
import type { BenchOptions } from './options.ts'
import type { System } from '../systems/system.ts'

/** One closed-loop run of bench:proxy (and bench:cluster) against one system. */
export interface Run extends Measurement {
  readonly system: string
  readonly path: string
  /** Instances the load was spread over (the nodes of a cluster); 1 otherwise. */
  readonly instances: number
  readonly notes: readonly string[]
  /** req/s of every measured run, in order; the figures here are the median run's. */
  readonly repeatsPerSec: readonly number[]
  /** Failures and non-2xx answers of every measured run, the median's and the others'. */
  readonly problems: readonly string[]
  /** CPU use during the measured run, % of one core, per process. */
  readonly cpuPercent: Readonly<Record<string, number | null>>
  /** The whole machine's busy CPU during the measured run, % of one core: shows other work. */
  readonly machineCpuPercent: number | null
  /**
   * CPU time of the system's own processes (the upstream's for direct) over the measured run
   * ÷ the requests it served, µs.
   */
  readonly cpuMicrosPerRequest: number
  /** Event-loop delay p99 during the measured run, per probed process (ms). */
  readonly eventLoopDelayP99Ms: Readonly<Record<string, number | undefined>>
  /** Per process, after a forced GC: once after the warm-up, once after the measured run. */
  readonly memory: {
    readonly afterWarmup: Readonly<Record<string, ProcessFigures>>
    readonly afterRun: Readonly<Record<string, ProcessFigures>>
  }
}

export interface Comparison {
  readonly system: string
  readonly baseline: string
  /** system ÷ baseline: below 1 for throughput and above 1 for latency means the system costs something. */
  readonly throughputRatio: number
  readonly p50Ratio: number
  readonly p99Ratio: number
  /** system − baseline: the latency the system adds to each request. */
  readonly addedP50Ms: number
  readonly addedP99Ms: number
}

export function compare(run: Run, baseline: Run): Comparison {
  return {
    system: run.system,
    baseline: baseline.system,
    throughputRatio: run.requestsPerSec / baseline.requestsPerSec,
    p50Ratio: run.p50Ms / baseline.p50Ms,
    p99Ratio: run.p99Ms / baseline.p99Ms,
    addedP50Ms: run.p50Ms - baseline.p50Ms,
    addedP99Ms: run.p99Ms - baseline.p99Ms,
  }
}

function assertAlive(children: readonly Child[]): void {
  for (const child of children) {
    if (!child.running)
      throw new Error(
        `${child.name} exited (${child.exitStatus}) during the run\n${child.output()}`,
      )
  }
}

/** One measured closed-loop window, with the CPU and event loop of the processes over it. */
interface MeasuredWindow extends Measurement {
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly machineCpuPercent: number | null
  /** What the probed processes reported at its end (their event-loop delay over it); it opens the next window. */
  readonly closing: Readonly<Record<string, ProcessFigures>>
}

async function measureWindow(
  load: readonly LoadRequest[],
  shape: { readonly connections: number },
  durationSec: number,
  pids: Readonly<Record<string, number>>,
  probed: ReadonlySet<number>,
): Promise<MeasuredWindow> {
  const cpu = watchCpu({ bench: process.pid, ...pids })
  const machine = watchMachineCpu()
  const measurement = await measure(load, { ...shape, durationSec })
  const cpuPercent = cpu()
  const machineCpuPercent = machine()
  return { ...measurement, cpuPercent, machineCpuPercent, closing: await sampleRoles(pids, probed) }
}

/**
 * Probes the system, runs the discarded warm-up, then measures closed loop `options.repeats`
 * times for `options.durationSec` each and keeps the median run by req/s, watching the CPU of
 * the bench and of every process in `watched`. A system with several instances gets the
 * connections spread over them.
 */
export async function runSystem(
  system: System,
  options: BenchOptions,
  watched: Readonly<Record<string, Child>>,
  say: (line: string) => void,
): Promise<Run> {
  const load = system.requests ?? [system.request]
  for (const request of load) await probe(system.name, request)
  const shape = { connections: options.connections }
  const over = load.length > 1 ? ` over ${load.length} instances` : ''
  if (options.warmupSec > 0) {
    say(`${system.name}: warm-up ${options.warmupSec} s (discarded)`)
    await measure(load, { ...shape, durationSec: options.warmupSec })
  }
  const runs = options.repeats > 1 ? `${options.repeats} × ` : ''
  say(
    `${system.name}: measuring ${runs}${options.durationSec} s at ${options.connections} connections${over}`,
  )
  const pids = Object.fromEntries(Object.entries(watched).map(([role, child]) => [role, child.pid]))
  const probed = new Set(
    Object.values(watched)
      .filter((c) => c.probed)
      .map((c) => c.pid),
  )
  // The GC sample (the heap after the warm-up) also opens each probed process's event-loop
  // window; the runs after the first follow no forced GC.
  const afterWarmup = await sampleRoles(pids, probed, { gc: true })
  const windows: MeasuredWindow[] = []
  for (let i = 0; i < options.repeats; i++) {
    windows.push(await measureWindow(load, shape, options.durationSec, pids, probed))
  }
  const { closing, ...median } = medianBy(windows, (w) => w.requestsPerSec)
  const afterRun = await sampleRoles(pids, probed, { gc: true })
  assertAlive(Object.values(watched))
  const own = Object.keys(system.processes)
  const roles = own.length > 0 ? own : ['upstream']
  const cpuSum = roles.reduce((sum, role) => sum + (median.cpuPercent[role] ?? Number.NaN), 0)
  return {
    system: system.name,
    path: new URL(system.request.url).pathname,
    instances: load.length,
    notes: system.notes,
    ...median,
    repeatsPerSec: windows.map((w) => w.requestsPerSec),
    problems: windows.flatMap((w, i) =>
      problemsOf(windows.length > 1 ? `${system.name} (run ${i + 1})` : system.name, w),
    ),
    cpuMicrosPerRequest: (cpuSum * 1e4) / median.requestsPerSec,
    eventLoopDelayP99Ms: Object.fromEntries(
      Object.entries(closing).map(([role, f]) => [role, f.eventLoopDelayP99Ms]),
    ),
    memory: { afterWarmup, afterRun },
  }
}
