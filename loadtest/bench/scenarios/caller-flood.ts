/**
 * Caller flood: Fairlane in inbound mode while a flood of distinct callers (a new
 * Authorization token on every request, as a credential-stuffing run or a botnet sends)
 * goes through one route, and one good caller keeps sending at a steady pace. What must hold
 * (issue 14, point 5): the process's memory stays bounded by the route's `callers.maxIdle`
 * whatever the number of callers, and the good caller's latency does not queue behind them.
 */
import { Agent, get } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { CallerRecord } from '@fairlane/testing'
import { fixed, ms, perSec, times } from '../lib/format.ts'
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
/** The route's limit per caller, as examples/inbound.yaml: the flood's callers each send one. */
const LIMIT = { rps: 50, burst: 50 } as const
const MB = 1024 * 1024

interface CallerFloodRun {
  readonly system: string
  readonly notes: readonly string[]
  readonly callers: number
  readonly floodSec: number
  readonly floodPerSec: number
  /** Flood answers other than 200: a caller's first request is never over its limit. */
  readonly floodRefused: number
  readonly good: { readonly alone: Latency; readonly flood: Latency; readonly refused: number }
  readonly rssMb: { readonly before: number; readonly peak: number; readonly after: number }
  readonly heapAfterGcMb: { readonly before: number; readonly after: number }
  readonly eventLoopDelayP99MaxMs: number
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

/** One GET of /bench as `token`; resolves with its status once the body is read. */
function send(base: string, agent: Agent, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${base}/bench`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    }).on('error', reject)
  })
}

/**
 * The flood: `count` requests, each from a new caller, sent at `perSec` whatever the answers
 * (open loop), at most `maxInFlight` at once; resolves when every answer is in.
 */
function floodAtRate(
  base: string,
  agent: Agent,
  count: number,
  perSec: number,
  maxInFlight: number,
): Promise<{ refused: number }> {
  let sent = 0
  let inFlight = 0
  let refused = 0
  const started = performance.now()
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * perSec))
      while (sent < due && inFlight < maxInFlight) {
        inFlight++
        send(base, agent, `flood-${sent++}`)
          .then(
            (status) => void (status !== 200 && refused++),
            () => void refused++,
          )
          .finally(() => {
            inFlight--
            if (sent === count && inFlight === 0) {
              clearInterval(timer)
              resolve({ refused })
            }
          })
      }
    }, 1)
  })
}

/** The good caller: one request every `intervalMs` until stopped, each timed. */
function goodCaller(base: string, agent: Agent, intervalMs: number) {
  const record = new CallerRecord(GOOD_TOKEN)
  let running = true
  const done = (async () => {
    while (running) {
      const started = performance.now()
      record.sent++
      if ((await send(base, agent, GOOD_TOKEN)) === 200) {
        record.served++
        record.latenciesMs.push(performance.now() - started)
      } else record.refused++
      await sleep(intervalMs)
    }
  })()
  return {
    async stop() {
      running = false
      await done
      return record
    },
  }
}

async function runOne(contender: Contender, context: ScenarioContext) {
  const { settings, upstream, say } = context
  const f = settings.callerFlood
  const deployment = await contender.start({
    upstream,
    instances: 1,
    tenants: [GOOD_TOKEN],
    limit: LIMIT,
  })
  const base = deployment.bases[0] as string
  const agent = new Agent({ keepAlive: true, maxSockets: f.maxInFlight + 2 })
  try {
    await probe(contender.name, {
      url: `${base}/bench`,
      headers: { authorization: `Bearer ${GOOD_TOKEN}` },
    })
    const probed = new Set(deployment.children.filter((c) => c.probed).map((c) => c.pid))
    const figures = (options?: { gc?: boolean }) =>
      sampleRoles(deployment.pids, probed, options).then((all) => all['fairlane'] ?? {})
    const before: ProcessFigures = await figures({ gc: true })

    say(`  ${contender.name}: good caller alone ${f.aloneSec} s`)
    const alone = goodCaller(base, agent, f.goodIntervalMs)
    await sleep(f.aloneSec * 1000)
    const aloneSeen = await alone.stop()

    say(
      `  ${contender.name}: ${perSec(f.callers)} distinct callers over ${f.spreadSec} s ` +
        `(${perSec(f.callers / f.spreadSec)}/s)`,
    )
    const good = goodCaller(base, agent, f.goodIntervalMs)
    let peakRss = before.rssBytes ?? 0
    let loopP99 = 0
    let flooding = true
    const sampler = (async () => {
      while (flooding) {
        await sleep(1000)
        const sample = await figures()
        peakRss = Math.max(peakRss, sample.rssBytes ?? 0)
        loopP99 = Math.max(loopP99, sample.eventLoopDelayP99Ms ?? 0)
      }
    })()
    const floodStarted = performance.now()
    const { refused: floodRefused } = await floodAtRate(
      base,
      agent,
      f.callers,
      f.callers / f.spreadSec,
      f.maxInFlight,
    )
    const floodSec = (performance.now() - floodStarted) / 1000
    flooding = false
    const [goodSeen] = await Promise.all([good.stop(), sampler])
    assertRunning(deployment.children)
    const after: ProcessFigures = await figures({ gc: true })
    const run: CallerFloodRun = {
      system: contender.name,
      notes: deployment.notes,
      callers: f.callers,
      floodSec,
      floodPerSec: f.callers / floodSec,
      floodRefused,
      good: {
        alone: latency(aloneSeen),
        flood: latency(goodSeen),
        refused: aloneSeen.refused + goodSeen.refused,
      },
      rssMb: {
        before: (before.rssBytes ?? NaN) / MB,
        peak: Math.max(peakRss, after.rssBytes ?? 0) / MB,
        after: (after.rssBytes ?? NaN) / MB,
      },
      heapAfterGcMb: {
        before: (before.heapUsedAfterGcBytes ?? NaN) / MB,
        after: (after.heapUsedAfterGcBytes ?? NaN) / MB,
      },
      eventLoopDelayP99MaxMs: loopP99,
    }
    return run
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
    if (run.floodRefused > 0)
      problems.push(`${run.system}: ${run.floodRefused} flood requests were refused`)
    if (run.good.refused > 0)
      problems.push(`${run.system}: the good caller was refused ${run.good.refused} times`)
  }
  const rows = runs.map((r) => [
    r.system,
    perSec(r.callers),
    perSec(r.floodPerSec),
    fixed(r.rssMb.before, 0),
    fixed(r.rssMb.peak, 0),
    fixed(r.heapAfterGcMb.before, 1),
    fixed(r.heapAfterGcMb.after, 1),
    ms(r.good.alone.p99Ms),
    ms(r.good.flood.p99Ms),
    times(r.good.flood.p99Ms / r.good.alone.p99Ms),
    ms(r.eventLoopDelayP99MaxMs),
  ])
  const markdown = [
    formatMarkdownTable(
      [
        'system',
        'distinct callers',
        'flood req/s',
        'RSS before MB',
        'RSS peak MB',
        'heap after GC before MB',
        'after MB',
        'good p99 alone ms',
        'good p99 in flood ms',
        'ratio',
        'event-loop p99 max ms',
      ],
      rows,
    ),
    '',
    `Each flood request carries a new Authorization token, ${perSec(f.callers)} of them sent ` +
      `over ${f.spreadSec} s whatever the answers (open loop, at most ${f.maxInFlight} in ` +
      'flight; flood req/s below the rate asked means Fairlane fell behind); the good caller ' +
      `sends one request every ${f.goodIntervalMs} ms, alone for ` +
      `${f.aloneSec} s and then through the whole flood. Every caller is limited to ` +
      `${LIMIT.rps}/s (burst ${LIMIT.burst}); the route keeps at most callers.maxIdle (default ` +
      '50,000) callers’ limit state. Heap after GC is taken after a forced full GC, before the ' +
      'good caller’s first request and after the flood.',
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
      title: 'Caller flood: memory and a good caller under distinct callers',
      subtitle: [`${perSec(f.callers)} distinct callers over ${f.spreadSec} s, open loop`],
      panels: [
        {
          title: 'RSS, MB (before, and the peak during the flood)',
          unit: 'MB',
          series: ['before', 'peak'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.rssMb.before, r.rssMb.peak],
            highlight: true,
          })),
        },
        {
          title: 'Good caller p99, ms (alone, and during the flood)',
          unit: 'ms',
          series: ['alone', 'flood'],
          rows: runs.map((r) => ({
            label: r.system,
            values: [r.good.alone.p99Ms, r.good.flood.p99Ms],
            highlight: true,
          })),
        },
      ],
      footer: skipped.map((s) => `skipped: ${s.system}: ${s.reason}`),
    },
  }
}
