/**
 * Caller flood: Fairlane in inbound mode while a flood of distinct callers (a new
 * Authorization token on every request, as a credential-stuffing run or a botnet sends)
 * goes through one route, and one good caller keeps sending at a steady pace. What must hold
 * (issue 14, point 5): the process's memory stays bounded by the route's `callers.maxIdle`
 * whatever the number of callers, and the good caller's latency does not queue behind them.
 * The route's bound on new callers (`callers.newCallers`, at its default) refuses most of the
 * distinct flood with 429 before it costs a lane or an upstream call; how many is reported.
 * A control flood first sends the same requests at the same rate from a few recurring
 * callers: what the distinct flood costs beyond it is the cost of new callers, not of load.
 * The floods are sent from a process of their own, so the good caller is timed from an event
 * loop that does nothing else.
 */
import { Agent, get } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { CallerRecord } from '@fairlane/testing'
import { fixed, ms, perSec, times } from '../lib/format.ts'
import { fileURLToPath } from 'node:url'
import { launch, NODE } from '../lib/child.ts'
import { watchCpuTime } from '../lib/cpu.ts'
import type { FloodSpec } from '../lib/flood-process.ts'
import { probe } from '../lib/measurement.ts'
import { sampleRoles, type ProcessFigures } from '../lib/probe.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import type { Contender } from '../systems/contender.ts'
import {
  assertRunning,
  pick,
  runEach,
  skippedLines,
  type ScenarioContext,
  type ScenarioOutcome,
} from './scenario.ts'

const GOOD_TOKEN = 'good-caller'
const FLOOD = fileURLToPath(new URL('../lib/flood-process.ts', import.meta.url))
/** The route's limit per caller, as examples/inbound.yaml: the flood's callers each send one. */
const LIMIT = { rps: 50, burst: 50 } as const
const MB = 1024 * 1024

/** One flood through the route while the good caller keeps its pace. */
interface FloodPhase {
  /** Distinct callers among the flood's requests. */
  readonly callers: number
  readonly requests: number
  readonly floodSec: number
  readonly floodPerSec: number
  /**
   * Flood answers other than 200 or 429: no flood caller ever goes over its own limit, so
   * none is expected.
   */
  readonly floodFailed: number
  /** Flood requests refused with 429: new callers beyond the route's bound on them. */
  readonly floodLimited: number
  readonly good: Latency
  readonly goodRefused: number
  /** The good caller's longest wait in its own lane (X-Fairlane-Queue-Ms). */
  readonly goodQueueMsMax: number
  /** The node's CPU time (user + system) over the phase, per request it answered. */
  readonly cpuUsPerRequest: number
  readonly rssPeakMb: number
  readonly heapAfterGcMb: number
  /** Worst of the one-second windows' p99 event-loop delay, and the longest delay seen. */
  readonly eventLoopDelayP99MaxMs: number
  readonly eventLoopDelayMaxMs: number
}

interface CallerFloodRun {
  readonly system: string
  readonly notes: readonly string[]
  readonly alone: {
    readonly good: Latency
    readonly goodRefused: number
    readonly rssMb: number
    readonly heapAfterGcMb: number
  }
  /** The control: the same requests at the same rate from a few callers that come back. */
  readonly recurring: FloodPhase
  readonly distinct: FloodPhase
}

interface Latency {
  readonly samples: number
  readonly p50Ms: number
  readonly p99Ms: number
}

const latency = (record: CallerRecord): Latency => ({
  samples: record.latenciesMs.length,
  p50Ms: record.percentile(50),
  p99Ms: record.percentile(99),
})

/**
 * One GET of /bench as `token`; resolves once the body is read with its status and the time
 * Fairlane says it waited in its lane (X-Fairlane-Queue-Ms).
 */
function send(
  base: string,
  agent: Agent,
  token: string,
): Promise<{ status: number; queueMs: number }> {
  return new Promise((resolve, reject) => {
    get(`${base}/bench`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume()
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          queueMs: Number(res.headers['x-fairlane-queue-ms'] ?? NaN),
        }),
      )
      res.on('error', reject)
    }).on('error', reject)
  })
}

/**
 * The flood, in a process of its own (flood-process.ts): `count` requests, the i-th as caller
 * `<prefix><i mod callers>`, at `perSec` whatever the answers, at most `maxInFlight` at once;
 * resolves when every answer is in.
 */
async function floodAtRate(
  spec: FloodSpec,
): Promise<{ refused: number; limited: number; seconds: number }> {
  const child = launch('flood', NODE, ['--conditions=development', FLOOD, JSON.stringify(spec)])
  try {
    const timeoutMs = (spec.count / spec.perSec) * 3_000 + 30_000
    const [line] = await child.waitForLine(/^\{"done":true,.*\}$/, timeoutMs)
    return JSON.parse(line) as { refused: number; limited: number; seconds: number }
  } finally {
    await child.stop()
  }
}

/**
 * The good caller: one request every `intervalMs` until stopped, each timed, and the longest
 * wait in its own lane that Fairlane reported.
 */
function goodCaller(base: string, agent: Agent, intervalMs: number) {
  const record = new CallerRecord(GOOD_TOKEN)
  let queueMsMax = 0
  let running = true
  const done = (async () => {
    while (running) {
      const started = performance.now()
      record.sent++
      const { status, queueMs } = await send(base, agent, GOOD_TOKEN)
      if (status === 200) {
        record.served++
        record.latenciesMs.push(performance.now() - started)
        queueMsMax = Math.max(queueMsMax, queueMs)
      } else record.refused++
      await sleep(intervalMs)
    }
  })()
  return {
    async stop() {
      running = false
      await done
      return { record, queueMsMax }
    },
  }
}

/** What the flood phases share: the node, its probe and the good caller's pace. */
interface PhaseContext {
  readonly base: string
  readonly agent: Agent
  readonly settings: ScenarioContext['settings']['callerFlood']
  readonly figures: (options?: { gc?: boolean }) => Promise<ProcessFigures>
  readonly pid: number
}

/**
 * One flood of `settings.callers` requests at the scenario's rate from `callers` callers named
 * `<prefix><n>`,
 * with the good caller sending through it and the node sampled every second; its heap after
 * a forced GC once every answer is in.
 */
async function floodPhase(
  phase: PhaseContext,
  callers: number,
  prefix: string,
): Promise<FloodPhase> {
  const { base, agent, settings: f, figures } = phase
  await figures() // opens the phase's event-loop window
  const good = goodCaller(base, agent, f.goodIntervalMs)
  let peakRss = 0
  let loopP99 = 0
  let loopMax = 0
  let flooding = true
  const sampler = (async () => {
    while (flooding) {
      await sleep(1000)
      const sample = await figures()
      peakRss = Math.max(peakRss, sample.rssBytes ?? 0)
      loopP99 = Math.max(loopP99, sample.eventLoopDelayP99Ms ?? 0)
      loopMax = Math.max(loopMax, sample.eventLoopDelayMaxMs ?? 0)
    }
  })()
  const cpu = watchCpuTime({ fairlane: phase.pid })
  const {
    refused,
    limited,
    seconds: floodSec,
  } = await floodAtRate({
    url: `${base}/bench`,
    count: f.callers,
    perSec: f.callers / f.spreadSec,
    maxInFlight: f.maxInFlight,
    prefix,
    callers,
  })
  flooding = false
  const [{ record: goodSeen, queueMsMax }] = await Promise.all([good.stop(), sampler])
  const cpuMs = cpu()['fairlane'] ?? NaN
  const after = await figures({ gc: true })
  return {
    callers,
    requests: f.callers,
    floodSec,
    floodPerSec: f.callers / floodSec,
    floodFailed: refused - limited,
    floodLimited: limited,
    good: latency(goodSeen),
    goodRefused: goodSeen.refused,
    goodQueueMsMax: queueMsMax,
    cpuUsPerRequest: (cpuMs * 1000) / (f.callers + goodSeen.sent),
    rssPeakMb: Math.max(peakRss, after.rssBytes ?? 0) / MB,
    heapAfterGcMb: (after.heapUsedAfterGcBytes ?? NaN) / MB,
    eventLoopDelayP99MaxMs: loopP99,
    eventLoopDelayMaxMs: loopMax,
  }
}

async function runOne(contender: Contender, context: ScenarioContext): Promise<CallerFloodRun> {
  const { settings, upstream, say } = context
  const f = settings.callerFlood
  const deployment = await contender.start({
    upstream,
    instances: 1,
    tenants: [GOOD_TOKEN],
    limit: LIMIT,
  })
  const base = deployment.bases[0] as string
  // The good caller's: one request at a time, on a connection kept open.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    await probe(contender.name, {
      url: `${base}/bench`,
      headers: { authorization: `Bearer ${GOOD_TOKEN}` },
    })
    const probed = new Set(deployment.children.filter((c) => c.probed).map((c) => c.pid))
    const figures = (options?: { gc?: boolean }) =>
      sampleRoles(deployment.pids, probed, options).then((all) => all['fairlane'] ?? {})
    const pid = deployment.pids['fairlane']
    if (pid === undefined) throw new Error(`${contender.name}: no fairlane process to watch`)
    const phase: PhaseContext = { base, agent, settings: f, figures, pid }
    const perSecond = f.callers / f.spreadSec
    say(`  ${contender.name}: warm-up ${f.warmupSec} s of the flood's rate`)
    // Whichever flood came first would otherwise pay for compiling the path and growing the heap.
    await floodAtRate({
      url: `${base}/bench`,
      count: Math.round(perSecond * f.warmupSec),
      perSec: perSecond,
      maxInFlight: f.maxInFlight,
      prefix: 'warm-',
      callers: f.recurringCallers,
    })
    const before: ProcessFigures = await figures({ gc: true })

    say(`  ${contender.name}: good caller alone ${f.aloneSec} s`)
    const alone = goodCaller(base, agent, f.goodIntervalMs)
    await sleep(f.aloneSec * 1000)
    const { record: aloneSeen } = await alone.stop()

    const rate = perSec(perSecond)
    say(
      `  ${contender.name}: ${perSec(f.callers)} requests from ${perSec(f.recurringCallers)} ` +
        `recurring callers over ${f.spreadSec} s (${rate}/s)`,
    )
    const recurring = await floodPhase(phase, f.recurringCallers, 'regular-')
    assertRunning(deployment.children)
    say(
      `  ${contender.name}: ${perSec(f.callers)} distinct callers over ${f.spreadSec} s (${rate}/s)`,
    )
    const distinct = await floodPhase(phase, f.callers, 'flood-')
    assertRunning(deployment.children)
    return {
      system: contender.name,
      notes: deployment.notes,
      alone: {
        good: latency(aloneSeen),
        goodRefused: aloneSeen.refused,
        rssMb: (before.rssBytes ?? NaN) / MB,
        heapAfterGcMb: (before.heapUsedAfterGcBytes ?? NaN) / MB,
      },
      recurring,
      distinct,
    }
  } finally {
    agent.destroy()
    await deployment.stop()
  }
}

export async function runCallerFlood(context: ScenarioContext): Promise<ScenarioOutcome> {
  const f = context.settings.callerFlood
  const problems: string[] = []
  const { run: contenders, skipped } = pick(context, (c) =>
    c.name === 'fairlane-inbound' ? undefined : 'inbound routes are Fairlane’s alone here',
  )
  context.say(`caller flood: ${perSec(f.callers)} distinct callers through one route`)
  const runs = await runEach(
    contenders,
    (c) => c.name,
    (c) => runOne(c, context),
    problems,
    skipped,
  )
  for (const run of runs) {
    for (const [name, phase] of [
      ['recurring', run.recurring],
      ['distinct', run.distinct],
    ] as const) {
      if (phase.floodFailed > 0)
        problems.push(`${run.system}: ${phase.floodFailed} ${name} flood requests failed`)
      // The recurring callers are known after their first request: none is ever new again.
      if (name === 'recurring' && phase.floodLimited > 0)
        problems.push(`${run.system}: ${phase.floodLimited} recurring flood requests were refused`)
    }
    const goodRefused = run.alone.goodRefused + run.recurring.goodRefused + run.distinct.goodRefused
    if (goodRefused > 0)
      problems.push(`${run.system}: the good caller was refused ${goodRefused} times`)
  }
  const phaseRow = (r: CallerFloodRun, name: string, phase: FloodPhase) => [
    r.system,
    name,
    perSec(phase.callers),
    perSec(phase.floodPerSec),
    perSec(phase.floodLimited),
    perSec(phase.cpuUsPerRequest),
    fixed(phase.rssPeakMb, 0),
    fixed(phase.heapAfterGcMb, 1),
    ms(phase.good.p50Ms),
    ms(phase.good.p99Ms),
    times(phase.good.p99Ms / r.alone.good.p99Ms),
    ms(phase.goodQueueMsMax),
    ms(phase.eventLoopDelayP99MaxMs),
    ms(phase.eventLoopDelayMaxMs),
  ]
  const rows = runs.flatMap((r) => [
    [
      r.system,
      'good caller alone',
      '-',
      '-',
      '-',
      '-',
      fixed(r.alone.rssMb, 0),
      fixed(r.alone.heapAfterGcMb, 1),
      ms(r.alone.good.p50Ms),
      ms(r.alone.good.p99Ms),
      times(1),
      '-',
      '-',
      '-',
    ],
    phaseRow(r, 'recurring flood', r.recurring),
    phaseRow(r, 'distinct flood', r.distinct),
  ])
  const markdown = [
    formatMarkdownTable(
      [
        'system',
        'phase',
        'flood callers',
        'flood req/s',
        'flood refused 429',
        'CPU µs/req',
        'RSS peak MB',
        'heap after GC MB',
        'good p50 ms',
        'good p99 ms',
        'p99 ÷ alone',
        'good lane wait max ms',
        'event-loop p99 max ms',
        'event-loop max ms',
      ],
      rows,
    ),
    '',
    `Two floods of ${perSec(f.callers)} requests each, sent over ${f.spreadSec} s whatever ` +
      `the answers (open loop, at most ${f.maxInFlight} in flight; flood req/s below the rate ` +
      'asked means Fairlane fell behind): first from ' +
      `${perSec(f.recurringCallers)} recurring callers (the control: the same load, no new ` +
      'caller), then each with a new Authorization token (distinct callers). The good caller ' +
      `sends one request every ${f.goodIntervalMs} ms, alone for ${f.aloneSec} s and then ` +
      `through both floods, after a warm-up of ${f.warmupSec} s of recurring callers at the ` +
      `flood’s rate. Every caller is limited to ${LIMIT.rps}/s (burst ${LIMIT.burst}); ` +
      'the route keeps at most callers.maxIdle (default 50,000) callers’ limit state and ' +
      'lets in new callers at callers.newCallers (default 200/s, burst 2,000): flood refused ' +
      '429 counts the flood requests refused for it (each its first and only request). RSS ' +
      'peak is sampled every second (alone: after the warm-up); heap after GC is taken ' +
      'after a forced full GC once the phase’s answers are in; event-loop figures are the ' +
      'worst of the one-second windows; CPU µs/req is the node’s user + system time over the ' +
      'flood per request answered; good lane wait max is the longest X-Fairlane-Queue-Ms the ' +
      'good caller was answered with (time in its own lane).',
    skippedLines(skipped),
  ].join('\n')
  return {
    name: 'caller-flood',
    title: 'Caller flood: distinct callers through one inbound route',
    settings: { ...f, limit: LIMIT },
    results: runs,
    skipped,
    problems,
    markdown,
    chart: {
      title: 'Caller flood: memory and a good caller under recurring and distinct callers',
      subtitle: [
        `${perSec(f.callers)} requests over ${f.spreadSec} s, open loop, from ` +
          `${perSec(f.recurringCallers)} recurring callers, then from as many distinct callers`,
      ],
      panels: [
        {
          title: 'RSS, MB (before, and the peak during each flood)',
          unit: 'MB',
          series: ['before', 'recurring', 'distinct'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.alone.rssMb, r.recurring.rssPeakMb, r.distinct.rssPeakMb],
            highlight: true,
          })),
        },
        {
          title: 'Good caller p99, ms (alone, and during each flood)',
          unit: 'ms',
          series: ['alone', 'recurring', 'distinct'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.alone.good.p99Ms, r.recurring.good.p99Ms, r.distinct.good.p99Ms],
            highlight: true,
          })),
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
