/**
 * Global accuracy: one limit (say 100 req/s for one tenant) and ten times that load, spread
 * evenly over three instances as a round-robin balancer would. What matters is the admitted
 * rate against the limit. A per-node limiter configured with the limit the user wants admits
 * it on every node (×3); divided by three it holds while the load is even; a shared store
 * holds it whatever the spread. Fairlane embedded is one process, so it runs as one instance
 * with all the load; the Fairlane cluster runs as three nodes over NATS and Redis, the load
 * spread over them like every peer's.
 */
import { randomBytes } from 'node:crypto'
import { measureAtRate, type RateMeasurement } from '../lib/fixed-rate.ts'
import { fixed, ms, perSec, times } from '../lib/format.ts'
import { probe, type LoadRequest } from '../lib/measurement.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import type { Contender, TenantLimit } from '../systems/contender.ts'
import {
  runEach,
  assertRunning,
  pick,
  skippedLines,
  watchDeployment,
  type ScenarioContext,
  type ScenarioOutcome,
} from './scenario.ts'

interface AccuracyCase {
  readonly label: string
  readonly contender: Contender
  readonly instances: number
  /** The limit each instance is configured with. */
  readonly perInstance: TenantLimit
  readonly how: string
}

interface AccuracyRun {
  readonly system: string
  readonly label: string
  readonly how: string
  readonly instances: number
  readonly perInstanceLimitPerSec: number
  readonly limitPerSec: number
  readonly measured: RateMeasurement
  /** Admitted ÷ the one limit: 1 is exact, 3 is three nodes each admitting the whole limit. */
  readonly admittedOverLimit: number
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly notes: readonly string[]
}

function casesFor(contender: Contender, limit: number, instances: number): AccuracyCase[] {
  const whole: TenantLimit = { rps: limit, burst: limit }
  const n = Math.min(instances, contender.maxInstances)
  if (contender.limiter === 'per-instance') {
    const share = limit / n
    const cases: AccuracyCase[] = [
      {
        label: contender.name,
        contender,
        instances: n,
        perInstance: whole,
        how: `${n} instances, each configured with the limit (${limit}/s)`,
      },
    ]
    // nginx is the per-node limiter users know best; its ÷N form is the fair comparison.
    if (contender.name === 'nginx-limit-req')
      cases.push({
        label: `${contender.name} ÷${n}`,
        contender,
        instances: n,
        perInstance: { rps: share, burst: Math.ceil(limit / n) },
        how: `${n} instances, each configured with limit ÷ ${n} (${share.toFixed(1)}/s)`,
      })
    return cases
  }
  return [
    {
      label: contender.name,
      contender,
      instances: n,
      perInstance: whole,
      how:
        n === 1
          ? `1 instance (embedded mode is one process), all the load`
          : contender.limiter === 'fairlane'
            ? `${n} nodes over NATS; the queue actor that owns the lane holds the limit`
            : `${n} instances, one shared store`,
    },
  ]
}

async function runCase(
  c: AccuracyCase,
  context: ScenarioContext,
  token: string,
): Promise<{ run: AccuracyRun; problems: string[] }> {
  const { settings, upstream, say } = context
  const a = settings.accuracy
  const rate = a.limitPerSec * a.loadFactor
  const deployment = await c.contender.start({
    upstream,
    instances: c.instances,
    tenants: [token],
    limit: c.perInstance,
  })
  try {
    const headers = { authorization: `Bearer ${token}` }
    // Three callers whatever the instance count: the same sending pattern for every system.
    const requests: LoadRequest[] = Array.from({ length: a.instances }, (_, i) => ({
      url: `${deployment.bases[i % deployment.bases.length]}/bench`,
      headers,
    }))
    for (const base of deployment.bases) await probe(c.label, { url: `${base}/probe`, headers })
    say(`  ${c.label}: ${c.how}; ${rate} req/s for ${a.warmupSec} s warm-up + ${a.durationSec} s`)
    let cpuPercent: Record<string, number | null> = {}
    const measured = await measureAtRate(requests, rate, a.durationSec, a.warmupSec, () => {
      const cpu = watchDeployment(upstream, deployment)
      return () => (cpuPercent = cpu())
    })
    assertRunning([upstream.child, ...deployment.children])
    say(`  ${c.label}: admitted ${perSec(measured.servedPerSec)} req/s (limit ${a.limitPerSec})`)
    const problems: string[] = []
    if (measured.failed > 0)
      problems.push(`${c.label}: ${measured.failed} requests failed (neither 2xx nor 429/503)`)
    if (measured.sentPerSec < 0.95 * rate)
      problems.push(
        `${c.label}: the generator sent ${perSec(measured.sentPerSec)} of ${rate} req/s`,
      )
    return {
      run: {
        system: c.contender.name,
        label: c.label,
        how: c.how,
        instances: c.instances,
        perInstanceLimitPerSec: c.perInstance.rps,
        limitPerSec: a.limitPerSec,
        measured,
        admittedOverLimit: measured.servedPerSec / a.limitPerSec,
        cpuPercent,
        notes: deployment.notes,
      },
      problems,
    }
  } finally {
    await deployment.stop()
  }
}

export async function runAccuracy(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const a = settings.accuracy
  const rate = a.limitPerSec * a.loadFactor
  const { run: contenders, skipped } = pick(context, (c) =>
    c.limiter === 'none' ? 'no limiter: it admits everything' : undefined,
  )
  say(
    `accuracy: one tenant, limit ${a.limitPerSec} req/s, ${rate} req/s offered (open loop) over ` +
      `${a.instances} instances round robin; ${a.warmupSec} s warm-up + ${a.durationSec} s`,
  )
  const token = 'fl_bench_' + randomBytes(24).toString('base64url')
  const problems: string[] = []
  const runs: AccuracyRun[] = await runEach(
    contenders.flatMap((contender) => casesFor(contender, a.limitPerSec, a.instances)),
    (c) => c.label,
    async (c) => {
      const { run, problems: found } = await runCase(c, context, token)
      problems.push(...found)
      return run
    },
    problems,
    skipped,
  )

  const fairlane = runs.find((r) => r.system === 'fairlane')
  const header = [
    'system',
    'instances × limit each',
    'admitted req/s',
    'admitted ÷ limit',
    'per instance req/s',
    'refused req/s',
    'p99 ms of admitted',
    'Fairlane ÷ system, admitted',
  ]
  const rows = runs.map((r) => [
    r.label,
    `${r.instances} × ${fixed(r.perInstanceLimitPerSec, Number.isInteger(r.perInstanceLimitPerSec) ? 0 : 1)}/s`,
    perSec(r.measured.servedPerSec),
    times(r.admittedOverLimit),
    r.measured.servedPerSecByTarget.length > 1 && r.instances > 1
      ? r.measured.servedPerSecByTarget.map((v) => perSec(v)).join(' / ')
      : '-',
    perSec(r.measured.refusedPerSec),
    ms(r.measured.p99Ms),
    fairlane ? times(fairlane.measured.servedPerSec / r.measured.servedPerSec) : '-',
  ])
  const markdown = [
    `Limit ${a.limitPerSec} req/s for one tenant; ${rate} req/s offered.`,
    '',
    formatMarkdownTable(header, rows),
    skipped.length > 0 ? '\n' + skippedLines(skipped) : '',
  ].join('\n')

  return {
    name: 'accuracy',
    title: `Global accuracy: one limit of ${a.limitPerSec} req/s, ${a.loadFactor}× the load over ${a.instances} instances`,
    settings: { ...a, offeredPerSec: rate, spread: 'even, round robin by caller' },
    results: { runs },
    skipped,
    problems,
    markdown,
    chart: {
      title: `Global accuracy: one limit of ${a.limitPerSec} req/s, ${rate} req/s offered`,
      subtitle: [
        `load spread evenly over ${a.instances} instances (Fairlane embedded: 1 instance, all the load); ` +
          `${a.durationSec} s measured after ${a.warmupSec} s`,
      ],
      panels: [
        {
          title: 'Admitted rate (closer to the limit is better)',
          unit: 'req/s admitted (2xx)',
          series: ['admitted'],
          rows: runs.map((r) => ({
            label: r.label,
            values: [r.measured.servedPerSec],
            highlight: r.system.startsWith('fairlane'),
          })),
          reference: { value: a.limitPerSec, label: `limit ${a.limitPerSec}/s` },
          format: (v) => v.toFixed(1),
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
