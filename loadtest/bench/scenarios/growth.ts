/**
 * Growth: the cost of one scheduling decision as the number of active (backlogged) lanes grows
 * from 1 to 1M, measured on Fairlane's pure scheduler, one process per lane count (the runs of
 * bench:scheduler, without profiling). The peers have no such figure: their per-key decision
 * (nginx's limit_req node lookup, the Redis INCR of @fastify/rate-limit) happens inside their
 * request path and cannot be timed apart from it, and they queue nothing, so there is no
 * choice among waiting tenants to make. They are listed as skipped with that reason.
 */
import { fixed, perSec, times } from '../lib/format.ts'
import type { SchedulerRun } from '../lib/scheduler-process.ts'
import { runLanes, schedulerProblems, TARGET_PER_SEC } from '../lib/scheduler-runs.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import {
  errorText,
  pick,
  skippedLines,
  type ScenarioContext,
  type ScenarioOutcome,
} from './scenario.ts'

const PEER_REASON =
  'no per-decision figure: its per-key check runs inside its request path (see overhead), and it ' +
  'queues nothing, so there is no choice among waiting tenants to time'

export async function runGrowth(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const g = settings.growth
  const { run: contenders, skipped } = pick(context, (c) =>
    c.name === 'fairlane' ? undefined : PEER_REASON,
  )
  const runs: SchedulerRun[] = []
  const problems: string[] = []
  if (contenders.length > 0) {
    say(
      `growth: Fairlane's scheduler alone, ${g.lanes.map((l) => perSec(l)).join(', ')} backlogged lanes; ` +
        `${perSec(g.warmup)} decisions warm-up + ${g.repeats} × ${perSec(g.decisions)}`,
    )
    for (const lanes of g.lanes) {
      try {
        const run = await runLanes(lanes, { ...g, profileAll: false })
        say(`  ${perSec(lanes)} lanes: ${perSec(run.medianDecisionsPerSec)} decisions/s`)
        runs.push(run)
        problems.push(...schedulerProblems(run))
      } catch (err) {
        problems.push(`scheduler at ${lanes} lanes: ${errorText(err)}`)
      }
    }
  }
  const first = runs[0]
  const header = [
    'lanes',
    'decisions/s',
    'ns/decision',
    'relative to 1st row',
    'steps + gate calls/decision',
    'B/lane incl. 1 ticket',
  ]
  const rows = runs.map((r) => [
    perSec(r.lanes),
    perSec(r.medianDecisionsPerSec),
    fixed(1e9 / r.medianDecisionsPerSec, 0),
    first ? times(r.medianDecisionsPerSec / first.medianDecisionsPerSec) : '-',
    fixed(r.stepsPerDecision + r.gateCallsPerDecision, 2),
    fixed(r.bytes.perLaneWithOneTicket, 0),
  ])
  const markdown = [
    `Fairlane's scheduler on one core (target ≥ ${perSec(TARGET_PER_SEC)} decisions/s at every lane count).`,
    '',
    runs.length > 0 ? formatMarkdownTable(header, rows) : '(not run)',
    skipped.length > 0 ? '\n' + skippedLines(skipped) : '',
  ].join('\n')
  return {
    name: 'growth',
    title: 'Growth: cost per decision from 1 to 1M active lanes',
    settings: { ...g, targetPerSec: TARGET_PER_SEC },
    results: { runs },
    skipped,
    problems,
    markdown,
    chart: {
      title: 'Growth: scheduling decisions per second as active lanes grow',
      subtitle: [
        `Fairlane's scheduler alone, one process per lane count, median of ${g.repeats} × ${perSec(g.decisions)} decisions`,
      ],
      panels: [
        {
          title: 'Decisions per second, one core (higher is better)',
          unit: 'decisions/s',
          series: ['decisions/s'],
          rows: runs.map((r) => ({
            label: `${perSec(r.lanes)} lane${r.lanes === 1 ? '' : 's'}`,
            values: [r.medianDecisionsPerSec],
            highlight: true,
          })),
          reference: { value: TARGET_PER_SEC, label: 'target 1M/s' },
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
