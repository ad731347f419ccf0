/**
 * Jobs: queued requests with signed webhooks, end to end through Fairlane embedded
 * (lib/jobs-run.ts, the same measurement as `npm run bench:jobs`). Fairlane only: none of
 * the peers queues requests for later.
 */
import { JOBS_COLUMNS, jobsRow, measureJobs, type JobsFigures } from '../lib/jobs-run.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import { errorText, type ScenarioContext, type ScenarioOutcome, type Skip } from './scenario.ts'

export async function runJobs(context: ScenarioContext): Promise<ScenarioOutcome> {
  const j = context.settings.jobs
  const problems: string[] = []
  const skipped: Skip[] = [...context.unavailable]
  let figures: JobsFigures | undefined
  if (!context.contenders.some((c) => c.name === 'fairlane')) {
    if (!skipped.some((s) => s.system === 'fairlane'))
      skipped.push({ system: 'fairlane', reason: 'not among --systems' })
  } else {
    try {
      figures = await measureJobs({ ...j, say: (line) => context.say(`  ${line ?? ''}`) })
    } catch (err) {
      problems.push(`fairlane: ${errorText(err)}`)
      skipped.push({ system: 'fairlane', reason: `failed: ${String(err).split('\n')[0]}` })
    }
  }
  if (figures && figures.delivered < figures.accepted)
    problems.push(`${figures.accepted - figures.delivered} accepted jobs got no webhook`)
  if (figures && figures.refused > 0) problems.push(`${figures.refused} submissions refused`)
  const markdown = [
    formatMarkdownTable(
      ['system', ...JOBS_COLUMNS],
      figures ? [['fairlane', ...jobsRow(figures)]] : [],
    ),
    '',
    `${j.connections} submitters POST /v1/jobs for ${j.durationSec} s (a job: POST to a ` +
      'loopback upstream that answers at once, webhook to a loopback receiver answering 204); ' +
      'then every accepted job’s webhook is awaited. delivered/s counts from the first ' +
      'submission to the last webhook; answer → webhook is the upstream’s answer to the ' +
      'webhook’s arrival, per job.',
  ].join('\n')
  return {
    name: 'jobs',
    title: 'Jobs: queued requests delivered to a signed webhook',
    settings: j,
    results: figures ? [{ system: 'fairlane', ...figures }] : [],
    skipped,
    problems,
    markdown,
    chart: {
      title: 'Jobs: accepted and delivered per second',
      subtitle: [`${j.connections} submitters for ${j.durationSec} s, embedded`],
      panels: [
        {
          title: 'Jobs per second (higher is better)',
          unit: 'jobs/s',
          series: ['accepted', 'delivered end to end'],
          rows: figures
            ? [
                {
                  label: 'fairlane',
                  values: [figures.acceptedPerSec, figures.deliveredPerSec],
                  highlight: true,
                },
              ]
            : [],
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
