/**
 * Scenario "proxy overhead": the same loopback upstream, hit directly and through Fairlane
 * embedded (one key, far under its limits), by autocannon at a fixed number of connections.
 * Prints req/s, p50 and p99 of both and their ratios; writes loadtest/results/proxy-<time>.json.
 *
 *   npm run bench:proxy -- [--connections N] [--duration S] [--warmup S] [--quick] [--profile]
 */
import { join } from 'node:path'
import { stopAll, type Child } from './lib/child.ts'
import { runBench } from './lib/run-bench.ts'
import { summarizeProfile, type ProfileSummary } from './lib/cpu-profile.ts'
import { LOAD_GENERATOR, problemsOf } from './lib/measurement.ts'
import { machineFacts } from './lib/machine.ts'
import { benchOptions, OPTIONS_USAGE, type BenchOptions } from './lib/options.ts'
import { RESULTS_DIR } from './lib/paths.ts'
import { compare, runSystem, type Comparison, type Run } from './lib/proxy-run.ts'
import { timestamp, writeResult } from './lib/result-file.ts'
import { formatTable } from './lib/table.ts'
import { launchUpstream } from './lib/upstream.ts'
import { direct } from './systems/direct.ts'
import { startFairlaneEmbedded } from './systems/fairlane-embedded.ts'

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
      ['system', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx'],
      runs.map((r) => [
        r.system,
        perSec(r.requestsPerSec),
        ms(r.p50Ms),
        ms(r.p99Ms),
        String(r.errors),
        String(r.non2xx),
      ]),
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
    'CPU during each measured run, % of one core (the machine has ' +
      machineFacts().cores +
      ' cores):',
  )
  say(
    formatTable(
      ['run', ...roles],
      runs.map((r) => [r.system, ...roles.map((role) => String(r.cpuPercent[role] ?? '-'))]),
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
  say(`CPU profile ${profile.file} (${profile.busyMs} ms busy); self time:`)
  say(
    formatTable(
      ['function', 'ms', '%'],
      profile.topFunctions.map((f) => [f.frame, String(f.ms), f.percent.toFixed(1)]),
    ),
  )
  say()
  say(
    formatTable(
      ['file', 'ms', '%'],
      profile.topFiles.map((f) => [f.frame, String(f.ms), f.percent.toFixed(1)]),
    ),
  )
}

async function main(options: BenchOptions): Promise<number> {
  say(
    `proxy overhead: ${LOAD_GENERATOR}, ${options.connections} connections, ` +
      `${options.warmupSec} s warm-up + ${options.durationSec} s per system`,
  )
  const upstream = await launchUpstream()
  const profileDir = options.profile
    ? join(RESULTS_DIR, 'profiles', `fairlane-${timestamp()}`)
    : undefined
  const systems = [
    direct(upstream),
    await startFairlaneEmbedded(upstream, profileDir ? { profileDir } : {}),
  ]
  // Every process is watched during every run: an idle one shows ~0, a busy neighbour shows up.
  const watched: Record<string, Child> = { upstream: upstream.child }
  for (const system of systems) Object.assign(watched, system.processes)

  const runs: Run[] = []
  for (const system of systems) runs.push(await runSystem(system, options, watched, say))

  // Stopping first: a profile is written only when its process exits.
  for (const system of [...systems].reverse()) await system.stop()
  await stopAll()
  const profiles: ProfileSummary[] = []
  for (const system of systems)
    if (system.profileDir) profiles.push(await summarizeProfile(system.profileDir))

  const [baseline, ...others] = runs
  if (!baseline) throw new Error('no runs')
  const comparisons = others.map((run) => compare(run, baseline))
  const problems = runs.flatMap((run) => problemsOf(run.system, run))

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
      profile: options.profile,
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
  benchOptions,
  `npm run bench:proxy -- [options]\n\n${OPTIONS_USAGE}`,
  main,
)
