import { fileURLToPath } from 'node:url'
import { launch, NODE } from './child.ts'
import { REPO_ROOT } from './paths.ts'
import type { SchedulerRun } from './scheduler-process.ts'

const ENTRY = fileURLToPath(new URL('./scheduler-process.ts', import.meta.url))

/** The target: decisions per second on one core, whatever the number of lanes. */
export const TARGET_PER_SEC = 1_000_000

export interface SchedulerOptions {
  readonly lanes: readonly number[]
  readonly decisions: number
  readonly repeats: number
  readonly warmup: number
  /** Profile every lane count, not only those below the target. */
  readonly profileAll: boolean
}

/**
 * One lane count in a fresh process. With profileDir it is a profiling run instead: inlining
 * off, so that self time lands on the function and the file:line that spends it (V8 reports an
 * inlined callee's lines under its caller's file), and its rates are not reported.
 */
export async function runLanes(
  lanes: number,
  options: SchedulerOptions,
  profileDir?: string,
): Promise<SchedulerRun> {
  const profiling = profileDir
    ? ['--no-turbo-inlining', ENTRY, '--profile-dir', profileDir, '--repeats', '1']
    : [ENTRY, '--repeats', String(options.repeats)]
  const child = launch(
    `scheduler-${lanes}${profileDir ? '-profile' : ''}`,
    NODE,
    [
      '--conditions=development',
      '--expose-gc',
      ...profiling,
      ...['--lanes', String(lanes), '--decisions', String(options.decisions)],
      ...['--warmup', String(options.warmup)],
    ],
    { cwd: REPO_ROOT },
  )
  // A million lanes take seconds to build and GC; ten minutes means something is wrong.
  const [line] = await child.waitForLine(/^\{"schedulerRun":.*\}$/, 600_000)
  const exit = await child.exited
  if (exit !== 0) throw new Error(`${child.name} exited with ${exit}\n${child.output()}`)
  return (JSON.parse(line) as { schedulerRun: SchedulerRun }).schedulerRun
}

export function schedulerProblems(run: SchedulerRun): string[] {
  const problems: string[] = []
  if (run.expired > 0) problems.push(`${run.lanes} lanes: ${run.expired} tickets expired`)
  if (run.rejected > 0) problems.push(`${run.lanes} lanes: ${run.rejected} tickets rejected`)
  // Equal weights, every lane backlogged: DRR serves each lane once per round.
  if (run.servedPerLane.max - run.servedPerLane.min > 1)
    problems.push(
      `${run.lanes} lanes: tickets served per lane ranged ${run.servedPerLane.min}–${run.servedPerLane.max}, ` +
        'not one per lane per round',
    )
  return problems
}
