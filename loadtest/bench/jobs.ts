/**
 * `npm run bench:jobs`: the jobs scenario on its own (lib/jobs-run.ts says what it measures).
 * Writes loadtest/results/jobs-<time>.json.
 *
 *   npm run bench:jobs -- [--connections N] [--duration S] [--quick]
 */
import { JOBS_COLUMNS, jobsRow, measureJobs } from './lib/jobs-run.ts'
import { benchOptions, OPTIONS_USAGE, type BenchOptions } from './lib/options.ts'
import { writeResult } from './lib/result-file.ts'
import { runBench } from './lib/run-bench.ts'
import { formatTable } from './lib/table.ts'

const say = (line = ''): void => void process.stdout.write(line + '\n')

async function main(options: BenchOptions): Promise<number> {
  const figures = await measureJobs({
    connections: options.connections,
    durationSec: options.durationSec,
    say,
  })
  say()
  say(formatTable(JOBS_COLUMNS, [jobsRow(figures)]))
  const valid = figures.delivered === figures.accepted && figures.refused === 0
  if (!valid)
    say(
      `!! NOT VALID: ${figures.accepted - figures.delivered} webhooks missing, ` +
        `${figures.refused} refused`,
    )
  const path = await writeResult('jobs', {
    valid,
    settings: { connections: options.connections, durationSec: options.durationSec },
    ...figures,
  })
  say(`results: ${path}`)
  return valid ? 0 : 1
}

await runBench(
  'bench:jobs',
  benchOptions,
  `npm run bench:jobs -- [options]\n\n${OPTIONS_USAGE}`,
  main,
)
