import { watchCpu } from './cpu.ts'
import {
  LOAD_GENERATOR,
  measure,
  type LoadRequest,
  type LoadShape,
  type Measurement,
} from './measurement.ts'
import { runWrk } from './wrk.ts'

export interface ClosedLoopRun {
  readonly measurement: Measurement
  /** CPU during the run, % of one core, per role; `load` is the load generator. */
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly generator: string
}

/**
 * Maximum throughput: wrk where it is installed (C, one thread: it leaves more of two cores to
 * the systems than autocannon in the bench's own Node process), autocannon otherwise. Both
 * keep `connections` requests in flight, so req/s is where the system saturates.
 */
export async function closedLoop(
  wrk: { readonly path: string; readonly version: string } | undefined,
  request: LoadRequest,
  shape: LoadShape,
  pids: Readonly<Record<string, number>>,
): Promise<ClosedLoopRun> {
  if (!wrk) {
    const cpu = watchCpu({ load: process.pid, ...pids })
    const measurement = await measure(request, shape)
    return { measurement, cpuPercent: cpu(), generator: LOAD_GENERATOR }
  }
  let cpuPercent: Record<string, number | null> = {}
  const measurement = await runWrk(wrk.path, request, shape, (wrkPid) => {
    const cpu = watchCpu({ load: wrkPid, ...pids })
    // Read before wrk exits: a finished process has no /proc entry left to read.
    const timer = setTimeout(
      () => (cpuPercent = cpu()),
      Math.max(0, shape.durationSec * 1000 - 200),
    )
    return () => clearTimeout(timer)
  })
  return { measurement, cpuPercent, generator: wrk.version }
}
