/**
 * Scenario "scheduler": decisions per second and bytes per lane of the pure lane scheduler
 * (`@fairlane/scheduler`) with 1, 1k, 100k and 1M lanes, every one of them backlogged. Each
 * lane count runs in a fresh process (lib/scheduler-process.ts). Prints a table; writes
 * loadtest/results/scheduler-<time>.json.
 *
 *   npm run bench:scheduler -- [--lanes 1,1000,100000,1000000] [--decisions D] [--repeats R]
 *                              [--warmup W] [--quick] [--profile]
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runBench } from './lib/run-bench.ts'
import { summarizeProfileFile, type SelfTime } from './lib/cpu-profile.ts'
import { machineFacts } from './lib/machine.ts'
import { numberFlag } from './lib/options.ts'
import { REPO_ROOT, RESULTS_DIR } from './lib/paths.ts'
import { timestamp, writeResult } from './lib/result-file.ts'
import type { SchedulerRun } from './lib/scheduler-process.ts'
import {
  runLanes,
  schedulerProblems,
  TARGET_PER_SEC,
  type SchedulerOptions,
} from './lib/scheduler-runs.ts'
import { formatTable } from './lib/table.ts'

const SCHEDULER_SOURCE = 'libs/scheduler/'

const USAGE = `npm run bench:scheduler -- [options]

Options:
  --lanes LIST      lane counts, comma-separated (default 1,1000,100000,1000000)
  --decisions D     decisions per measured repeat (default 2000000)
  --repeats R       measured repeats per lane count; the median is reported (default 3)
  --warmup W        decisions before measuring, discarded (default 500000)
  --quick           --decisions 300000 --repeats 1 --warmup 100000, to check that the bench works
  --profile         profile every lane count (by default only those below ${TARGET_PER_SEC.toLocaleString('en-US')}/s);
                    a profile is one more process per lane count, with inlining off
  --help            show this text`

/** A profile reduced to what the scheduler's owner needs. */
interface SchedulerProfile {
  readonly lanes: number
  readonly file: string
  readonly busyMs: number
  readonly garbageCollectorPercent: number
  readonly functions: readonly SelfTime[]
  readonly lines: readonly (SelfTime & { readonly source: string })[]
}

const say = (line = ''): void => void process.stdout.write(line + '\n')
const count = (n: number): string => Math.round(n).toLocaleString('en-US')
const millions = (n: number): string => `${(n / 1e6).toFixed(2)}M`

function schedulerOptions(args: readonly string[]): SchedulerOptions | undefined {
  const { values } = parseArgs({
    args: [...args],
    options: {
      lanes: { type: 'string' },
      decisions: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) return undefined
  const lanes = (values.lanes ?? '1,1000,100000,1000000')
    .split(',')
    .map((n) => Math.round(numberFlag('lanes', n.trim(), 1, 1)))
  return {
    lanes,
    decisions: Math.round(
      numberFlag('decisions', values.decisions, values.quick ? 300_000 : 2_000_000, 1),
    ),
    repeats: Math.round(numberFlag('repeats', values.repeats, values.quick ? 1 : 3, 1)),
    warmup: Math.round(numberFlag('warmup', values.warmup, values.quick ? 100_000 : 500_000, 0)),
    profileAll: values.profile,
  }
}

function sourceLine(frame: string): string {
  const match = /^(.*):(\d+)$/.exec(frame)
  if (!match) return ''
  try {
    const text = readFileSync(join(REPO_ROOT, match[1] ?? ''), 'utf8').split('\n')
    return (text[Number(match[2]) - 1] ?? '').trim().slice(0, 70)
  } catch {
    return ''
  }
}

async function schedulerProfile(run: SchedulerRun): Promise<SchedulerProfile | undefined> {
  if (!run.profile) return undefined
  // Every frame, so the scheduler's own can be picked out below whatever else is on top.
  const summary = await summarizeProfileFile(run.profile, 10_000)
  const ours = (t: SelfTime): boolean => t.frame.includes(SCHEDULER_SOURCE)
  return {
    lanes: run.lanes,
    file: summary.file,
    busyMs: summary.busyMs,
    garbageCollectorPercent:
      summary.topFunctions.find((f) => f.frame.startsWith('(garbage collector)'))?.percent ?? 0,
    functions: summary.topFunctions.filter(ours).slice(0, 8),
    lines: summary.topLines
      .filter(ours)
      .slice(0, 8)
      .map((line) => ({ ...line, source: sourceLine(line.frame) })),
  }
}

function report(
  runs: readonly SchedulerRun[],
  profiles: readonly SchedulerProfile[],
  problems: readonly string[],
): void {
  say()
  say(
    formatTable(
      [
        'lanes',
        'workspaces',
        'decisions/s',
        'min–max',
        'ns/decision',
        'steps/dec',
        'gate calls/dec',
        'CPU %',
        'served/lane',
      ],
      runs.map((r) => [
        count(r.lanes),
        count(r.workspaces),
        count(r.medianDecisionsPerSec),
        `${millions(Math.min(...r.decisionsPerSec))}–${millions(Math.max(...r.decisionsPerSec))}`,
        (1e9 / r.medianDecisionsPerSec).toFixed(0),
        r.stepsPerDecision.toFixed(2),
        r.gateCallsPerDecision.toFixed(2),
        String(r.cpuPercent),
        `${r.servedPerLane.min}–${r.servedPerLane.max}`,
      ]),
    ),
  )
  say()
  say('Heap per lane (heapUsed growth after a full GC ÷ lanes weighed; identities not counted):')
  say(
    formatTable(
      ['lanes', 'lanes weighed', 'B/backlogged lane incl. 1 ticket', 'B/extra ticket'],
      runs.map((r) => [
        count(r.lanes),
        count(r.bytesWeighedOver),
        r.bytes.perLaneWithOneTicket.toFixed(0),
        r.bytes.perExtraTicket.toFixed(0),
      ]),
    ),
  )

  say()
  const below = runs.filter((r) => r.medianDecisionsPerSec < TARGET_PER_SEC)
  say(
    below.length === 0
      ? `target ≥ ${count(TARGET_PER_SEC)} decisions/s on one core: met at every lane count`
      : `target ≥ ${count(TARGET_PER_SEC)} decisions/s on one core: MISSED at ` +
          below
            .map((r) => `${count(r.lanes)} lanes (${count(r.medianDecisionsPerSec)}/s)`)
            .join(', '),
  )
  const rates = runs.map((r) => r.medianDecisionsPerSec)
  say(
    `flat from ${count(runs[0]?.lanes ?? 0)} to ${count(runs.at(-1)?.lanes ?? 0)} lanes: slowest ÷ fastest = ` +
      `${(Math.min(...rates) / Math.max(...rates)).toFixed(2)} (1.00 is flat); ` +
      `steps + gate calls per decision: ${[...new Set(runs.map((r) => (r.stepsPerDecision + r.gateCallsPerDecision).toFixed(2)))].join(', ')}`,
  )

  for (const profile of profiles) {
    say()
    say(
      `Profile at ${count(profile.lanes)} lanes, one repeat with inlining off (${profile.busyMs} ms busy, ` +
        `garbage collector ${profile.garbageCollectorPercent.toFixed(1)}%): ${profile.file}`,
    )
    say(
      formatTable(
        ['libs/scheduler function, self time', 'ms', '%'],
        profile.functions.map((f) => [f.frame, String(f.ms), f.percent.toFixed(1)]),
      ),
    )
    say(
      formatTable(
        ['libs/scheduler line, self time', '%', 'source'],
        profile.lines.map((l) => [l.frame, l.percent.toFixed(1), l.source]),
      ),
    )
  }
  if (problems.length > 0) {
    const bar = '!'.repeat(78)
    say()
    say(bar)
    say('!! THESE FIGURES ARE NOT VALID: the run did not keep every lane backlogged')
    for (const problem of problems) say(`!! ${problem}`)
    say(bar)
  }
}

async function main(options: SchedulerOptions): Promise<number> {
  say(
    `scheduler: ${options.lanes.map(count).join(', ')} backlogged lanes, one process each; ` +
      `${count(options.warmup)} decisions warm-up + ${options.repeats} × ${count(options.decisions)} measured ` +
      `(${machineFacts().cores} cores; the scheduler runs on one)`,
  )
  // Made by a run only when it profiles: most runs at the target leave no empty folder behind.
  const profileDir = join(RESULTS_DIR, 'profiles', `scheduler-${timestamp()}`)
  const runs: SchedulerRun[] = []
  const profiles: SchedulerProfile[] = []
  for (const lanes of options.lanes) {
    say(`${count(lanes)} lanes…`)
    const run = await runLanes(lanes, options)
    say(`  ${count(run.medianDecisionsPerSec)} decisions/s`)
    runs.push(run)
    if (options.profileAll || run.medianDecisionsPerSec < TARGET_PER_SEC) {
      say(`  profiling ${count(lanes)} lanes in another process (inlining off)…`)
      const profile = await schedulerProfile(await runLanes(lanes, options, profileDir))
      if (profile) profiles.push(profile)
    }
  }
  const problems = runs.flatMap(schedulerProblems)
  report(runs, profiles, problems)
  const path = await writeResult('scheduler', {
    valid: problems.length === 0,
    problems,
    settings: {
      lanes: options.lanes,
      decisions: options.decisions,
      repeats: options.repeats,
      warmup: options.warmup,
      targetPerSec: TARGET_PER_SEC,
      shape:
        'every lane backlogged with 2 tickets; lanes over min(N, 100) workspaces in tier free of the ' +
        'default three tiers; gate of concurrency 1 (each decision is one go and one partition refusal); ' +
        'each dispatch enqueues a new ticket in the same lane; clock performance.now()',
    },
    runs,
    profiles,
  })
  say()
  say(`results: ${path}`)
  return problems.length === 0 ? 0 : 1
}

await runBench('bench:scheduler', schedulerOptions, USAGE, main)
