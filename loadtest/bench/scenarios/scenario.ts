import type { Child } from '../lib/child.ts'
import { watchCpu } from '../lib/cpu.ts'
import type { Chart } from '../lib/svg-chart.ts'
import type { Upstream } from '../lib/upstream.ts'
import type { Contender, Deployment } from '../systems/contender.ts'

export type ScenarioName =
  'overhead' | 'accuracy' | 'noisy-neighbour' | 'caller-flood' | 'jobs' | 'growth' | 'resilience'
export const SCENARIOS: readonly ScenarioName[] = [
  'overhead',
  'accuracy',
  'noisy-neighbour',
  'caller-flood',
  'jobs',
  'growth',
  'resilience',
]

/** Every duration and load of one `npm run bench`; --quick shrinks the durations only. */
export interface BenchSettings {
  readonly quick: boolean
  readonly overhead: {
    readonly connections: number
    readonly warmupSec: number
    /** Each closed-loop run; the median of `repeats` runs is reported. */
    readonly durationSec: number
    /** Placement of three busy processes on two cores moves single runs by up to 40%. */
    readonly repeats: number
    /** The fixed rate for p50/p99: far below every system's maximum, so latency is not queueing. */
    readonly ratePerSec: number
    readonly rateDurationSec: number
    /**
     * Open loop at each fixed rate before its window, thrown away. A system (and the sender)
     * moved to a new rate takes seconds to settle: its first second there had a p99 of 200 ms
     * or more where later windows at the same rate had 2-20 ms (Fairlane at half its max).
     */
    readonly rateWarmupSec: number
    /**
     * What sends the open loop: `node`, fixed-rate.ts in the bench's own process, or `go`,
     * loadtest/sender in a process of its own (lib/go-sender.ts).
     */
    readonly sender: 'node' | 'go'
  }
  readonly accuracy: {
    readonly limitPerSec: number
    /** Offered load ÷ limit. */
    readonly loadFactor: number
    readonly instances: number
    readonly warmupSec: number
    readonly durationSec: number
  }
  readonly noisy: {
    readonly warmupSec: number
    readonly durationSec: number
  }
  readonly callerFlood: {
    /** Distinct callers, one request each, sent evenly over `spreadSec` (open loop). */
    readonly callers: number
    readonly spreadSec: number
    readonly maxInFlight: number
    /** The control flood's callers: the same requests and rate, these callers in turn. */
    readonly recurringCallers: number
    /** Recurring callers at the flood's rate before anything is measured. */
    readonly warmupSec: number
    readonly aloneSec: number
    readonly goodIntervalMs: number
  }
  readonly jobs: {
    /** Submitters, each posting its next job as soon as the last is accepted. */
    readonly connections: number
    readonly durationSec: number
  }
  readonly growth: {
    readonly lanes: readonly number[]
    readonly decisions: number
    readonly repeats: number
    readonly warmup: number
  }
  readonly resilience: {
    /** Offered GETs per second, open loop, in every phase. */
    readonly ratePerSec: number
    /** Both regions healthy; discarded. */
    readonly warmupSec: number
    /** Measured from the moment region a fails. */
    readonly durationSec: number
    /** What region a adds to every answer in the region-slow phase. */
    readonly slowMs: number
    /** Fairlane's fixed hedge delay. */
    readonly hedgeDelayMs: number
  }
}

/** A contender that was not run in a scenario, and why. */
export interface Skip {
  readonly system: string
  readonly reason: string
}

export interface ScenarioContext {
  readonly settings: BenchSettings
  /** The contenders that can run here, in table order. */
  readonly contenders: readonly Contender[]
  /** Those that cannot, with the reason, listed in every table they would have been in. */
  readonly unavailable: readonly Skip[]
  /** The loopback echo upstream (no delay) shared by overhead and accuracy. */
  readonly upstream: Upstream
  /** wrk's path and version when installed; autocannon drives the closed loop otherwise. */
  readonly wrk: { readonly path: string; readonly version: string } | undefined
  say(line?: string): void
}

export interface ScenarioOutcome {
  readonly name: ScenarioName
  readonly title: string
  /** What the scenario did, in figures: recorded in the JSON as is. */
  readonly settings: object
  readonly results: object
  readonly skipped: readonly Skip[]
  /** Anything that makes a figure untrustworthy (a process died, the generator fell short). */
  readonly problems: readonly string[]
  /** The table printed at the end and pasted into docs/performance.md. */
  readonly markdown: string
  readonly chart: Chart
}

/** CPU of the bench, the upstream and the deployment's processes, % of one core. */
export function watchDeployment(
  upstream: Upstream | undefined,
  deployment: Deployment,
  extra: Readonly<Record<string, number>> = {},
): () => Record<string, number | null> {
  return watchCpu({
    bench: process.pid,
    ...(upstream ? { upstream: upstream.child.pid } : {}),
    ...deployment.pids,
    ...extra,
  })
}

/** Throws when a process of the run exited during it: its figures would be of a dead system. */
export function assertRunning(children: readonly Child[]): void {
  for (const child of children)
    if (!child.running)
      throw new Error(
        `${child.name} exited (${child.exitStatus}) during the run\n${child.output()}`,
      )
}

/** "Skipped" lines under a table: each system left out, and why. */
export function skippedLines(skipped: readonly Skip[]): string {
  return skipped.map((s) => `- **${s.system}** skipped: ${s.reason}`).join('\n')
}

/** Contenders that fit a scenario; the others are skipped with `reason`. */
export function pick(
  context: ScenarioContext,
  fits: (contender: Contender) => string | undefined,
): { readonly run: Contender[]; readonly skipped: Skip[] } {
  const run: Contender[] = []
  const skipped: Skip[] = [...context.unavailable]
  for (const contender of context.contenders) {
    const reason = fits(contender)
    if (reason === undefined) run.push(contender)
    else skipped.push({ system: contender.name, reason })
  }
  return { run, skipped }
}

/**
 * Runs each case in turn and keeps what it returns; a case that throws becomes a problem and
 * a "failed" skip line, so one broken system never costs the others their figures.
 */
export async function runEach<Case, Result>(
  cases: readonly Case[],
  label: (c: Case) => string,
  run: (c: Case) => Promise<Result>,
  problems: string[],
  skipped: Skip[],
): Promise<Result[]> {
  const results: Result[] = []
  for (const c of cases) {
    try {
      results.push(await run(c))
    } catch (err) {
      problems.push(`${label(c)}: ${errorText(err)}`)
      skipped.push({ system: label(c), reason: `failed: ${String(err).split('\n')[0]}` })
    }
  }
  return results
}

export const errorText = (err: unknown): string =>
  err instanceof Error ? (err.stack ?? err.message) : String(err)
