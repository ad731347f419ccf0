/**
 * Noisy neighbour: the phases of bench:fairness, given to every system. The upstream holds
 * each answer 40 ms and serves 8 at a time (the rest wait in arrival order, as in a server with
 * 8 workers): 200 req/s. Fairlane queues in front of it with target concurrency 8, headroom 1
 * and fair queueing (examples/noisy-neighbor.yaml). A peer either passes everything through
 * (the flood queues in the upstream, ahead of the quiet tenants) or rejects each tenant beyond
 * a rate limit of capacity ÷ 4 = 50 req/s keyed by its Authorization header. Peers are shown
 * as they behave: a refusal is their answer, not an error of the run.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { jainIndex, type CallerRecord } from '@fairlane/testing'
import { fixed, ms, percent, perSec, times } from '../lib/format.ts'
import { probe } from '../lib/measurement.ts'
import {
  CAPACITY_PER_SEC,
  flood,
  keyHeaders,
  PHASES,
  pooled,
  QUIET_RATE,
  snapshot,
  startTraffic,
  TARGET_CONCURRENCY,
  TENANTS,
  UPSTREAM_DELAY_MS,
  type PhaseName,
  type PhaseSpec,
} from '../lib/noisy-neighbour.ts'
import { RemoteTraffic, type RemoteRecord } from '../lib/remote-traffic.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import { launchUpstream, type Upstream } from '../lib/upstream.ts'
import type { Contender, Deployment, TenantLimit } from '../systems/contender.ts'
import {
  runEach,
  assertRunning,
  pick,
  skippedLines,
  watchDeployment,
  type ScenarioContext,
  type ScenarioOutcome,
} from './scenario.ts'

/**
 * Backlogged with equal floods is left out: under FIFO an equal flood gets an equal share too,
 * so it tells nothing that the unequal floods do not (bench:fairness runs it).
 */
const PHASE_NAMES: readonly PhaseName[] = ['baseline', 'flood', 'backlogged-unequal']
const TENANT_LIMIT: TenantLimit = {
  rps: CAPACITY_PER_SEC / TENANTS.length,
  burst: CAPACITY_PER_SEC / TENANTS.length,
}

/** One tenant's figures over the measured window. */
interface TenantFigures {
  readonly key: string
  readonly load: string
  readonly sent: number
  readonly served: number
  readonly servedPerSec: number
  readonly refused: number
  readonly failed: number
  /** Served ÷ answered (served + refused + failed); requests in flight at the end are not counted. */
  readonly successRate: number
  readonly p50Ms: number | null
  readonly p99Ms: number | null
}

interface PhaseRun {
  readonly phase: PhaseName
  readonly what: string
  readonly durationSec: number
  readonly tenants: readonly TenantFigures[]
  readonly quiet?: {
    readonly p50Ms: number
    readonly p99Ms: number
    readonly samples: number
    readonly successRate: number
  }
  readonly jain?: number
  readonly servedPerSec: number
  readonly cpuPercent: Readonly<Record<string, number | null>>
}

interface NoisySummary {
  readonly system: string
  readonly quietP99AloneMs: number
  readonly quietP99FloodMs: number
  readonly quietP99Ratio: number
  readonly quietSuccessFlood: number
  readonly floodServedPerSec: number
  /** What the flooding tenant sent: a closed loop answered with fast 429s sends thousands a second. */
  readonly floodSentPerSec: number
  readonly servedPerSecFlood: number
  readonly jainUnequal: number
}

const successOf = (served: number, refused: number, failed: number): number =>
  served + refused + failed > 0 ? served / (served + refused + failed) : NaN

/** A tenant's figures, from a local record (latencies kept here) or a remote one (percentiles sent). */
function figuresOf(
  record: CallerRecord | RemoteRecord,
  load: string,
  durationSec: number,
): TenantFigures {
  const local = 'percentile' in record
  return {
    key: record.name,
    load,
    sent: record.sent,
    served: record.served,
    servedPerSec: record.served / durationSec,
    refused: record.refused,
    failed: record.failed,
    successRate: successOf(record.served, record.refused, record.failed),
    p50Ms: local ? record.percentile(50) : record.p50Ms,
    p99Ms: local ? record.percentile(99) : record.p99Ms,
  }
}

async function runPhase(
  spec: PhaseSpec,
  deployment: Deployment,
  upstream: Upstream,
  context: ScenarioContext,
): Promise<PhaseRun> {
  const n = context.settings.noisy
  const url = `${deployment.bases[0]}/work`
  const specs = spec.callers(url)
  const floods = specs.filter((s) => s.concurrency !== undefined)
  const steadyOnes = specs.filter((s) => s.ratePerSecond !== undefined)
  const remote = floods.length > 0 ? await RemoteTraffic.start(floods) : undefined
  const local = steadyOnes.length > 0 ? await startTraffic(steadyOnes, 'spread') : []
  const live = (): CallerRecord[] => local.flatMap((t) => [...t.records.values()])
  let localRecords: CallerRecord[]
  let remoteRecords: RemoteRecord[]
  let durationSec: number
  let cpuPercent: Record<string, number | null>
  try {
    await sleep(n.warmupSec * 1000)
    for (const record of live()) record.reset()
    await remote?.reset()
    const cpu = watchDeployment(upstream, deployment, remote ? { traffic: remote.child.pid } : {})
    const started = performance.now()
    await sleep(n.durationSec * 1000)
    localRecords = live().map(snapshot)
    remoteRecords = (await remote?.snapshot()) ?? []
    durationSec = (performance.now() - started) / 1000
    cpuPercent = cpu()
  } finally {
    // Waits for every request in flight: the next phase starts with empty queues.
    await Promise.all([...local.map((t) => t.stop()), remote?.stop()])
  }
  assertRunning([upstream.child, ...deployment.children])

  const loadOf = (key: string): string => {
    const caller = specs.find((s) => s.name === key)
    return caller?.concurrency ? `${caller.concurrency} in flight` : `${QUIET_RATE}/s`
  }
  const tenants = [
    ...remoteRecords.map((r) => figuresOf(r, loadOf(r.name), durationSec)),
    ...localRecords.map((r) => figuresOf(r, loadOf(r.name), durationSec)),
  ].sort((x, y) => x.key.localeCompare(y.key))
  const quietRecords = localRecords.filter((r) => spec.quiet.includes(r.name))
  const pool = pooled(quietRecords)
  const backlogged = tenants.filter((t) => spec.backlogged.includes(t.key))
  return {
    phase: spec.name,
    what: spec.what,
    durationSec,
    tenants,
    ...(quietRecords.length > 0
      ? {
          quiet: {
            p50Ms: pool.percentile(50),
            p99Ms: pool.percentile(99),
            samples: pool.latenciesMs.length,
            successRate: successOf(pool.served, pool.refused, pool.failed),
          },
        }
      : {}),
    ...(backlogged.length > 0 ? { jain: jainIndex(backlogged.map((t) => t.served)) } : {}),
    servedPerSec: tenants.reduce((sum, t) => sum + t.servedPerSec, 0),
    cpuPercent,
  }
}

/** Closed-loop load on every tenant before the first phase, thrown away: every JIT warms up. */
async function prime(url: string, seconds: number): Promise<void> {
  if (seconds <= 0) return
  const traffic = await RemoteTraffic.start(TENANTS.map((key) => flood(url, key, 8)))
  await sleep(seconds * 1000)
  await traffic.stop()
}

function summarize(system: string, phases: readonly PhaseRun[]): NoisySummary {
  const find = (name: PhaseName): PhaseRun | undefined => phases.find((p) => p.phase === name)
  const alone = find('baseline')?.quiet
  const flooded = find('flood')
  const a = flooded?.tenants.find((t) => t.key === 'a')
  return {
    system,
    quietP99AloneMs: alone?.p99Ms ?? NaN,
    quietP99FloodMs: flooded?.quiet?.p99Ms ?? NaN,
    quietP99Ratio: (flooded?.quiet?.p99Ms ?? NaN) / (alone?.p99Ms ?? NaN),
    quietSuccessFlood: flooded?.quiet?.successRate ?? NaN,
    floodServedPerSec: a?.servedPerSec ?? NaN,
    floodSentPerSec: a && flooded ? a.sent / flooded.durationSec : NaN,
    servedPerSecFlood: flooded?.servedPerSec ?? NaN,
    jainUnequal: find('backlogged-unequal')?.jain ?? NaN,
  }
}

async function runContender(
  contender: Contender,
  upstream: Upstream,
  context: ScenarioContext,
): Promise<{ phases: PhaseRun[]; notes: readonly string[] }> {
  const n = context.settings.noisy
  const deployment = await contender.start({
    upstream,
    instances: 1,
    tenants: TENANTS.map((key) => `fl_demo_${key}`),
    ...(contender.limiter === 'none' || contender.limiter === 'fairlane'
      ? {}
      : { limit: TENANT_LIMIT }),
    upstreamConcurrency: { limit: TARGET_CONCURRENCY, headroom: 1 },
  })
  try {
    await probe(contender.name, { url: `${deployment.bases[0]}/probe`, headers: keyHeaders('b') })
    context.say(`  ${contender.name}: priming ${n.warmupSec} s (discarded)`)
    await prime(`${deployment.bases[0]}/work`, n.warmupSec)
    const phases: PhaseRun[] = []
    for (const spec of PHASES.filter((p) => PHASE_NAMES.includes(p.name))) {
      context.say(
        `  ${contender.name} ${spec.name}: ${spec.what}; ${n.warmupSec} s + ${n.durationSec} s`,
      )
      phases.push(await runPhase(spec, deployment, upstream, context))
    }
    return { phases, notes: deployment.notes }
  } finally {
    await deployment.stop()
  }
}

export async function runNoisyNeighbour(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const n = settings.noisy
  const { run: contenders, skipped } = pick(context, () => undefined)
  say(
    `noisy neighbour: upstream ${UPSTREAM_DELAY_MS} ms per answer, ${TARGET_CONCURRENCY} at a time ` +
      `(${CAPACITY_PER_SEC} req/s); peers' per-tenant limit ${TENANT_LIMIT.rps} req/s; ` +
      `${n.warmupSec} s warm-up + ${n.durationSec} s per phase`,
  )
  const upstream = await launchUpstream({
    delayMs: UPSTREAM_DELAY_MS,
    capacity: TARGET_CONCURRENCY,
  })
  const problems: string[] = []
  const runs: { system: string; notes: readonly string[]; phases: PhaseRun[] }[] = await runEach(
    contenders,
    (contender) => contender.name,
    async (contender) => ({
      system: contender.name,
      ...(await runContender(contender, upstream, context)),
    }),
    problems,
    skipped,
  ).finally(() => upstream.child.stop())

  const summaries = runs.map((r) => summarize(r.system, r.phases))
  // Fairlane (embedded, inbound or cluster) is expected to serve every request here: a refusal
  // marks its run, not a peer's.
  for (const run of runs.filter((r) => r.system.startsWith('fairlane')))
    for (const phase of run.phases)
      for (const t of phase.tenants)
        if (t.refused + t.failed > 0)
          problems.push(
            `${run.system} ${phase.phase}: tenant ${t.key} had ${t.refused} refused and ${t.failed} failed`,
          )

  const fairlane = summaries.find((s) => s.system === 'fairlane')
  const header = [
    'system',
    'quiet p99 ms alone',
    'quiet p99 ms under flood',
    'flood ÷ alone',
    'quiet success under flood',
    'flood a: sent/s → served/s',
    'all served/s',
    'Jain, unequal floods',
    'Fairlane ÷ system, quiet p99 under flood',
  ]
  const rows = summaries.map((s) => [
    s.system,
    ms(s.quietP99AloneMs),
    ms(s.quietP99FloodMs),
    times(s.quietP99Ratio),
    percent(s.quietSuccessFlood),
    `${perSec(s.floodSentPerSec)} → ${perSec(s.floodServedPerSec)}`,
    perSec(s.servedPerSecFlood),
    fixed(s.jainUnequal, 3),
    fairlane ? times(fairlane.quietP99FloodMs / s.quietP99FloodMs) : '-',
  ])
  const markdown = [
    `Upstream: ${UPSTREAM_DELAY_MS} ms per answer, ${TARGET_CONCURRENCY} at a time (${CAPACITY_PER_SEC} req/s). ` +
      `Quiet tenants b, c, d at ${QUIET_RATE} req/s each; flood: a keeps 64 in flight; unequal floods: 64/32/16/8 in flight.`,
    '',
    formatMarkdownTable(header, rows),
    skipped.length > 0 ? '\n' + skippedLines(skipped) : '',
  ].join('\n')

  return {
    name: 'noisy-neighbour',
    title: 'Noisy neighbour: one tenant floods, three send lightly',
    settings: {
      ...n,
      upstreamDelayMs: UPSTREAM_DELAY_MS,
      upstreamWorkers: TARGET_CONCURRENCY,
      capacityPerSec: CAPACITY_PER_SEC,
      quietRatePerSec: QUIET_RATE,
      peerTenantLimit: TENANT_LIMIT,
      phases: PHASE_NAMES,
      loadGenerator:
        'Traffic from @fairlane/testing (undici): quiet tenants in the bench process, floods in a child process',
    },
    results: { runs, summaries },
    skipped,
    problems,
    markdown,
    chart: {
      title: 'Noisy neighbour: quiet tenants while one tenant floods',
      subtitle: [
        `upstream ${UPSTREAM_DELAY_MS} ms, ${TARGET_CONCURRENCY} at a time; quiet b, c, d at ${QUIET_RATE}/s; ` +
          `flood a: 64 in flight; peers' limit ${TENANT_LIMIT.rps}/s per tenant; ${n.durationSec} s per phase`,
      ],
      panels: [
        {
          title: 'Quiet tenants’ p99 latency (lower is better)',
          unit: 'ms',
          series: ['alone', 'under the flood'],
          rows: summaries.map((s) => ({
            label: s.system,
            values: [s.quietP99AloneMs, s.quietP99FloodMs],
            highlight: s.system.startsWith('fairlane'),
          })),
        },
        {
          title: 'Served per second during the flood (the flood gets what the quiet leave)',
          unit: 'req/s',
          series: ['flooding tenant a', 'all tenants'],
          rows: summaries.map((s) => ({
            label: s.system,
            values: [s.floodServedPerSec, s.servedPerSecFlood],
            highlight: s.system.startsWith('fairlane'),
          })),
          reference: { value: CAPACITY_PER_SEC, label: `capacity ${CAPACITY_PER_SEC}/s` },
        },
        {
          title: 'Jain’s index of served, floods of 64/32/16/8 in flight (1 = equal shares)',
          unit: 'Jain’s index',
          series: ['Jain'],
          rows: summaries.map((s) => ({
            label: s.system,
            values: [s.jainUnequal],
            highlight: s.system.startsWith('fairlane'),
          })),
          format: (v) => v.toFixed(3),
          axisMax: 1,
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
