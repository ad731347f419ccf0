/**
 * Resilience: the same API in two regions, a and b (two loopback upstreams), and a proxy that
 * knows both, while region a fails. Each phase starts fresh (new upstreams, a new system),
 * sends a fixed rate of GETs, open loop, with both regions healthy for the warm-up, then
 * breaks region a at the moment the measured window opens:
 *
 * - region-down: a stops listening and drops its connections (its port refuses connections);
 * - region-slow: a holds every answer `slowMs` longer; b still answers at once.
 *
 * What the client sees is measured: the share of 2xx among the answers and the latency of the
 * 2xx, plus what reached each region (retries and hedges are extra upstream requests).
 * Fairlane runs embedded in region a (FAIRLANE_REGION) with the settings of
 * examples/failover.yaml and a short hedge delay; nginx has an upstream block of a and b,
 * round robin at its defaults, which is how a plain proxy knows a second region.
 */
import { randomBytes } from 'node:crypto'
import { watchCpu, watchMachineCpu } from '../lib/cpu.ts'
import { measureAtRate, type RateMeasurement } from '../lib/fixed-rate.ts'
import { ms, perSec, fixed } from '../lib/format.ts'
import { probe, type LoadRequest } from '../lib/measurement.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import { launchUpstream, type Upstream } from '../lib/upstream.ts'
import type { Contender, Regions } from '../systems/contender.ts'
import {
  assertRunning,
  pick,
  runEach,
  skippedLines,
  type ScenarioContext,
  type ScenarioOutcome,
} from './scenario.ts'

type ResiliencePhaseName = 'region-down' | 'region-slow'

interface PhaseSpec {
  readonly name: ResiliencePhaseName
  readonly what: (slowMs: number) => string
  /** Breaks region a, at the opening of the measured window; resolves with a's final hit count when it went down. */
  readonly fault: (a: Upstream, slowMs: number) => Promise<number | undefined>
}

const PHASES: readonly PhaseSpec[] = [
  {
    name: 'region-down',
    what: () => 'region a stops listening and drops its connections; b answers at once',
    fault: (a) => a.goDown(),
  },
  {
    name: 'region-slow',
    what: (slowMs) => `region a holds every answer ${slowMs} ms; b answers at once`,
    fault: (a, slowMs) => a.slowDown(slowMs).then(() => undefined),
  },
]

/** Region a is the proxy's home region, the one that fails; b is the other. */
const HOME = 'a'
const OTHER = 'b'

interface PhaseRun {
  readonly system: string
  readonly phase: ResiliencePhaseName
  readonly notes: readonly string[]
  readonly atRate: RateMeasurement
  /** Answers in the window: 2xx, 429/503, anything else (other statuses and transport errors). */
  readonly served: number
  readonly refused: number
  readonly failed: number
  /** 2xx ÷ answers: what the client saw succeed. */
  readonly successShare: number
  /** Requests each region's upstream received in the measured window (health probes included). */
  readonly upstreamHits: { readonly a: number; readonly b: number }
  /** Upstream requests (both regions) ÷ client requests sent: retries and hedges add to 1. */
  readonly upstreamPerRequest: number
  readonly cpuPercent: Readonly<Record<string, number | null>>
  readonly machineCpuPercent: number | null
}

async function runPhase(
  contender: Contender,
  phase: PhaseSpec,
  context: ScenarioContext,
  token: string,
): Promise<{ run: PhaseRun; problems: string[] }> {
  const r = context.settings.resilience
  const a = await launchUpstream({ name: `upstream-${HOME}` })
  const b = await launchUpstream({ name: `upstream-${OTHER}` }).catch(async (err: unknown) => {
    await a.child.stop()
    throw err
  })
  try {
    const regions: Regions = {
      regions: [
        { name: HOME, upstream: a },
        { name: OTHER, upstream: b },
      ],
      home: HOME,
      hedgeDelayMs: r.hedgeDelayMs,
    }
    const deployment = await contender.start({
      upstream: a,
      instances: 1,
      tenants: [token],
      regions,
    })
    try {
      const request: LoadRequest = {
        url: `${deployment.bases[0]}/bench`,
        headers: { authorization: `Bearer ${token}` },
      }
      await probe(contender.name, request)
      context.say(
        `  ${contender.name}, ${phase.name}: ${r.warmupSec} s both regions healthy, then ` +
          `${phase.what(r.slowMs)} for ${r.durationSec} s`,
      )
      let cpuPercent: Record<string, number | null> = {}
      let machineCpuPercent: number | null = null
      let hitsAtStart: [number, number] = [0, 0]
      let aHitsWhenDown: number | undefined
      let hitsAtEnd: Promise<[number | undefined, number]> = Promise.resolve([undefined, 0])
      const atRate = await measureAtRate(
        [request],
        r.ratePerSec,
        r.durationSec,
        r.warmupSec,
        async () => {
          const cpu = watchCpu({
            bench: process.pid,
            [`upstream-${HOME}`]: a.child.pid,
            [`upstream-${OTHER}`]: b.child.pid,
            ...deployment.pids,
          })
          const machine = watchMachineCpu()
          hitsAtStart = await Promise.all([a.hits(), b.hits()])
          aHitsWhenDown = await phase.fault(a, r.slowMs)
          return () => {
            cpuPercent = cpu()
            machineCpuPercent = machine()
            hitsAtEnd = Promise.all([aHitsWhenDown === undefined ? a.hits() : undefined, b.hits()])
          }
        },
      )
      const [aEnd, bEnd] = await hitsAtEnd
      assertRunning([a.child, b.child, ...deployment.children])
      const upstreamHits = {
        a: (aEnd ?? aHitsWhenDown ?? hitsAtStart[0]) - hitsAtStart[0],
        b: bEnd - hitsAtStart[1],
      }
      const served = atRate.samples
      const refused = Math.round(atRate.refusedPerSec * atRate.durationSec)
      const failed = atRate.failed
      const answered = served + refused + failed
      const sent = Math.round(atRate.sentPerSec * atRate.durationSec)
      const problems: string[] = []
      if (atRate.sentPerSec < 0.95 * r.ratePerSec)
        problems.push(
          `${contender.name} ${phase.name}: the generator sent ${perSec(atRate.sentPerSec)} of ${r.ratePerSec} req/s`,
        )
      return {
        run: {
          system: contender.name,
          phase: phase.name,
          notes: deployment.notes,
          atRate,
          served,
          refused,
          failed,
          successShare: answered > 0 ? served / answered : Number.NaN,
          upstreamHits,
          upstreamPerRequest: sent > 0 ? (upstreamHits.a + upstreamHits.b) / sent : Number.NaN,
          cpuPercent,
          machineCpuPercent,
        },
        problems,
      }
    } finally {
      await deployment.stop()
    }
  } finally {
    await a.child.stop()
    await b.child.stop()
  }
}

/** 100% only when every answer was 2xx; otherwise two decimals, so one failure in 2,000 shows. */
function share(value: number): string {
  if (!Number.isFinite(value)) return '-'
  return value === 1 ? '100%' : `${(value * 100).toFixed(2)}%`
}

/** Per process, their sum, and the rest of the machine (busy CPU the bench's processes do not explain). */
function cpuMarkdown(runs: readonly PhaseRun[]): string {
  const roles = [...new Set(runs.flatMap((r) => Object.keys(r.cpuPercent)))]
  return formatMarkdownTable(
    ['CPU % of one core', ...roles, 'sum', 'rest of machine'],
    runs.map((r) => {
      const sum = Object.values(r.cpuPercent).reduce<number>((total, v) => total + (v ?? 0), 0)
      return [
        `${r.phase}, ${r.system}`,
        ...roles.map((role) => String(r.cpuPercent[role] ?? '-')),
        String(sum),
        r.machineCpuPercent === null ? '-' : String(Math.max(0, r.machineCpuPercent - sum)),
      ]
    }),
  )
}

export async function runResilience(context: ScenarioContext): Promise<ScenarioOutcome> {
  const { settings, say } = context
  const r = settings.resilience
  const { run: contenders, skipped } = pick(context, (c) =>
    c.failover ? undefined : 'knows one upstream only here',
  )
  const token = 'fl_bench_' + randomBytes(24).toString('base64url')
  say(
    `resilience: regions ${HOME} and ${OTHER} (two loopback upstreams), the proxy in ${HOME}; ` +
      `${r.ratePerSec} req/s open loop, ${r.warmupSec} s warm-up + ${r.durationSec} s per phase; ` +
      `phases ${PHASES.map((p) => p.name).join(', ')}`,
  )
  const problems: string[] = []
  const cases = contenders.flatMap((contender) => PHASES.map((phase) => ({ contender, phase })))
  const runs: PhaseRun[] = await runEach(
    cases,
    (c) => `${c.contender.name} ${c.phase.name}`,
    async (c) => {
      const { run, problems: found } = await runPhase(c.contender, c.phase, context, token)
      problems.push(...found)
      say(
        `  ${run.system}, ${run.phase}: ${share(run.successShare)} 2xx, p50 ${ms(run.atRate.p50Ms)} ms, ` +
          `p99 ${ms(run.atRate.p99Ms)} ms`,
      )
      return run
    },
    problems,
    skipped,
  )

  // Phase by phase, the systems side by side.
  const byPhase = PHASES.flatMap((p) => runs.filter((run) => run.phase === p.name))
  const header = [
    'phase',
    'system',
    'success (2xx ÷ answers)',
    'not 2xx',
    'p50 ms of 2xx',
    'p99 ms of 2xx',
    'mean ms of 2xx',
    `upstream req/s, ${HOME} / ${OTHER}`,
    'upstream ÷ client requests',
  ]
  const rows = byPhase.map((run) => [
    run.phase,
    run.system,
    share(run.successShare),
    String(run.refused + run.failed),
    ms(run.atRate.p50Ms),
    ms(run.atRate.p99Ms),
    ms(run.atRate.meanMs),
    `${perSec(run.upstreamHits.a / run.atRate.durationSec)} / ${perSec(run.upstreamHits.b / run.atRate.durationSec)}`,
    fixed(run.upstreamPerRequest, 2),
  ])
  const phaseLines = PHASES.map((p) => `- **${p.name}**: ${p.what(r.slowMs)}`).join('\n')
  const markdown = [
    `${r.ratePerSec} req/s of GET, open loop; ${r.warmupSec} s with both regions healthy (discarded), ` +
      `then region ${HOME} fails as the ${r.durationSec} s measured window opens. The proxy runs in region ${HOME}.`,
    '',
    phaseLines,
    '',
    formatMarkdownTable(header, rows, 2),
    '',
    cpuMarkdown(byPhase),
    skipped.length > 0 ? '\n' + skippedLines(skipped) : '',
  ].join('\n')

  const label = (run: PhaseRun): string => `${run.phase}, ${run.system}`
  return {
    name: 'resilience',
    title: `Resilience: region ${HOME} down or slow, region ${OTHER} healthy`,
    settings: { ...r, home: HOME, other: OTHER, phases: PHASES.map((p) => p.name) },
    results: { runs },
    skipped,
    problems,
    markdown,
    chart: {
      title: `Resilience: region ${HOME} fails, region ${OTHER} answers at once; the proxy runs in ${HOME}`,
      subtitle: [
        `${r.ratePerSec} req/s open loop, ${r.warmupSec} s warm-up (both healthy) + ${r.durationSec} s ` +
          `measured from the fault; region-slow: ${HOME} +${r.slowMs} ms; Fairlane hedge delay ${r.hedgeDelayMs} ms`,
      ],
      panels: [
        {
          title: 'Success: 2xx share of answers (higher is better)',
          unit: '%',
          series: ['2xx'],
          axisMax: 100,
          format: (v) => `${v.toFixed(v === 100 ? 0 : 2)}%`,
          rows: byPhase.map((run) => ({
            label: label(run),
            values: [run.successShare * 100],
            highlight: run.system.startsWith('fairlane'),
          })),
        },
        {
          title: 'Latency of 2xx (lower is better)',
          unit: 'ms',
          series: ['p50', 'mean', 'p99'],
          rows: byPhase.map((run) => ({
            label: label(run),
            values: [run.atRate.p50Ms, run.atRate.meanMs, run.atRate.p99Ms],
            highlight: run.system.startsWith('fairlane'),
          })),
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
