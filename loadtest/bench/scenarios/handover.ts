/**
 * handover (bench:cluster -- --scenario handover): the owner of a lane stopped mid-run, once
 * with SIGKILL (a crash) and once with SIGTERM (a drain), each on a fresh cluster of three
 * nodes from examples/cluster.yaml (one limit: target `echo`, 100 req/s, burst 10).
 *
 * The load (5× the limit, open loop) goes round robin to the two nodes that are not the
 * lane's owner, so every request has a node to answer it; the owner is stopped after
 * `stopAtSec`, the load goes on for `afterSec` more. Two figures, from two ground truths:
 *
 * - the most requests the upstream received in any one-second window (sliding, over the
 *   whole run, start included), against the bound limit + 1% + burst: the upstream's own log
 *   of arrivals, not what the cluster says it admitted;
 * - every request's outcome as the client saw it: answered (2xx, 429, 503), failed (another
 *   status, a transport error) or hung (no answer within ingress's own deadline, the longest
 *   tier maxWaitMs + 2 × leaseTtlMs + 5 s).
 */
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { fixed, perSec } from '../lib/format.ts'
import { listenOverflows, watchAcceptQueues } from '../lib/listen-overflows.ts'
import { LoggedOpenLoop, type LoggedRequest } from '../lib/logged-open-loop.ts'
import { probe, type LoadRequest } from '../lib/measurement.ts'
import { sampleRoles } from '../lib/probe.ts'
import { busiestWindow, longestGap } from '../lib/sliding-window.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import { launchUpstream } from '../lib/upstream.ts'
import {
  CLUSTER_DEMO_KEY,
  CLUSTER_EXAMPLE,
  clusterNotes,
  startFairlaneCluster,
  type FairlaneCluster,
} from '../systems/fairlane-cluster.ts'
import { quietCopyOf, type FairlaneProcess } from '../systems/fairlane-embedded.ts'

/** The longest `maxWaitMs` of the default tiers (libs/config): examples/cluster.yaml sets none. */
const DEFAULT_LONGEST_WAIT_MS = 30_000
/**
 * Offered load ÷ the limit: far above it, yet half the accuracy run's 10×, since while the
 * shard has no owner every request sent waits (a socket each) until the next owner answers.
 */
const LOAD_FACTOR = 5
const HEADERS = { authorization: `Bearer ${CLUSTER_DEMO_KEY}` }

type StopWay = 'SIGKILL' | 'SIGTERM'

export interface HandoverSettings {
  readonly stopAtSec: number
  readonly afterSec: number
}

/** What examples/cluster.yaml says, read from it so the bench follows the example. */
interface ExampleFacts {
  readonly rps: number
  readonly burst: number
  readonly leaseTtlMs: number
}

async function exampleFacts(): Promise<ExampleFacts> {
  const text = await readFile(CLUSTER_EXAMPLE, 'utf8')
  const rate = /rate:\s*\{\s*rps:\s*(\d+),\s*burst:\s*(\d+)\s*\}/.exec(text)
  const ttl = /leaseTtlMs:\s*(\d+)/.exec(text)
  if (!rate || !ttl)
    throw new Error(`${CLUSTER_EXAMPLE}: no "rate: { rps: N, burst: N }" or "leaseTtlMs: N"`)
  return { rps: Number(rate[1]), burst: Number(rate[2]), leaseTtlMs: Number(ttl[1]) }
}

interface ClientOutcomes {
  readonly sent: number
  readonly ok: number
  readonly rateLimited: number
  readonly unavailable: number
  /** The 503s by their problem code. */
  readonly unavailableByCode: Readonly<Record<string, number>>
  /** Any other status, by status. */
  readonly otherStatuses: Readonly<Record<string, number>>
  /** Requests that got no HTTP answer, by the error's code. */
  readonly transportErrors: Readonly<Record<string, number>>
  /** No answer within ingress's deadline. */
  readonly hung: number
  /** The slowest answer of any status, ms from its send. */
  readonly slowestAnswerMs: number
  /** Requests sent in the second before the stop and answered after it: the ones the stop caught. */
  readonly caughtByStop: number
  readonly slowestCaughtMs: number
  /** Failed or hung requests by the node they were sent to: where to look. */
  readonly notAnsweredByNode: Readonly<Record<string, number>>
}

interface HandoverRun {
  readonly way: StopWay
  readonly stoppedNode: string
  /** The node that owned the lane afterwards (the one holding its limit state), if found. */
  readonly nextOwner: string | undefined
  /** From the signal to the stopped process's exit, ms. */
  readonly exitedAfterMs: number
  readonly offeredPerSec: number
  readonly sentPerSec: number
  readonly limitPerSec: number
  readonly burst: number
  /** Requests the upstream received from the first arrival to the end of the run. */
  readonly admitted: number
  readonly busiest: { readonly count: number; readonly atSec: number }
  readonly busiestBeforeStop: number
  readonly busiestAfterStop: number
  /** limit × 1.01 + burst: what the issue allows in any one-second window. */
  readonly bound: number
  readonly withinBound: boolean
  /** The longest time the upstream received nothing (the lane without an owner), ms. */
  readonly longestGapMs: number
  readonly client: ClientOutcomes
  /** Answered 2xx less upstream arrivals: 0 when every forwarded request reached the client once. */
  readonly okLessArrivals: number
  /**
   * Longest event-loop stall of the upstream and of the nodes that took the load while it was
   * sent, ms: an arrival is stamped when the upstream's loop runs, so a stall of d ms can put
   * up to d ms of arrivals into one window.
   */
  readonly eventLoopDelayMaxMs: Readonly<Record<string, number | undefined>>
  /**
   * Connections the kernel dropped from full accept queues during the run, machine-wide (other
   * work on the machine counts too): what turns a node's stall into clients' ECONNRESET.
   */
  readonly listenOverflows: number | undefined
  /** The deepest accept queue of each loaded node's proxy port, sampled every 100 ms. */
  readonly acceptQueueMax: Readonly<Record<string, number>>
}

export interface HandoverResult {
  readonly settings: HandoverSettings
  readonly leaseTtlMs: number
  readonly deadlineMs: number
  readonly runs: readonly HandoverRun[]
  readonly notes: readonly string[]
  readonly problems: readonly string[]
}

/** Limit states held in memory: only the node that owns a lane holds any for it. */
async function limitStates(node: FairlaneProcess): Promise<number> {
  try {
    const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
    return Number(/^fairlane_limit_states (\d+)/m.exec(text)?.[1] ?? 0)
  } catch {
    return 0
  }
}

async function ownerAmong(nodes: readonly FairlaneProcess[]): Promise<FairlaneProcess[]> {
  const states = await Promise.all(nodes.map(limitStates))
  return nodes.filter((_, i) => (states[i] ?? 0) > 0)
}

function outcomesOf(
  log: readonly LoggedRequest[],
  stoppedAt: number,
  nodes: readonly string[],
): ClientOutcomes {
  const count = (test: (r: LoggedRequest) => boolean): number => log.filter(test).length
  const otherStatuses: Record<string, number> = {}
  const transportErrors: Record<string, number> = {}
  const unavailableByCode: Record<string, number> = {}
  for (const r of log) {
    if (typeof r.outcome === 'number' && ![200, 429, 503].includes(r.outcome))
      otherStatuses[r.outcome] = (otherStatuses[r.outcome] ?? 0) + 1
    if (r.outcome === 'error')
      transportErrors[r.error ?? '?'] = (transportErrors[r.error ?? '?'] ?? 0) + 1
    if (r.outcome === 503)
      unavailableByCode[r.code ?? '?'] = (unavailableByCode[r.code ?? '?'] ?? 0) + 1
  }
  const notAnsweredByNode: Record<string, number> = {}
  for (const r of log) {
    const failed = typeof r.outcome !== 'number' || ![200, 429, 503].includes(r.outcome)
    const node = nodes[r.target] ?? String(r.target)
    if (failed) notAnsweredByNode[node] = (notAnsweredByNode[node] ?? 0) + 1
  }
  const answered = log.filter((r) => typeof r.outcome === 'number')
  const caught = answered.filter((r) => r.sentAt > stoppedAt - 1000 && r.endedAt > stoppedAt)
  const slowest = (rows: readonly LoggedRequest[]): number =>
    rows.reduce((max, r) => Math.max(max, r.endedAt - r.sentAt), 0)
  return {
    sent: log.length,
    ok: count((r) => r.outcome === 200),
    rateLimited: count((r) => r.outcome === 429),
    unavailable: count((r) => r.outcome === 503),
    unavailableByCode,
    otherStatuses,
    transportErrors,
    hung: count((r) => r.outcome === 'hung'),
    slowestAnswerMs: slowest(answered),
    caughtByStop: caught.length,
    slowestCaughtMs: slowest(caught),
    notAnsweredByNode,
  }
}

async function handoverRun(
  way: StopWay,
  facts: ExampleFacts,
  deadlineMs: number,
  settings: HandoverSettings,
  say: (line?: string) => void,
): Promise<{ run: HandoverRun; cluster: string[] }> {
  const upstream = await launchUpstream({ arrivals: true })
  let cluster: FairlaneCluster | undefined
  try {
    cluster = await startFairlaneCluster({
      configPath: await quietCopyOf(CLUSTER_EXAMPLE),
      upstreamUrl: upstream.url,
    })
    const { nodes } = cluster
    const request = (node: FairlaneProcess): LoadRequest => ({
      url: `${node.proxyUrl}/t/echo/handover`,
      headers: HEADERS,
    })
    await probe('fairlane-cluster', request(nodes[0] as FairlaneProcess))
    const owners = await ownerAmong(nodes)
    if (owners.length !== 1)
      throw new Error(
        `handover: expected one node holding the lane's limit state, found ${owners.length}`,
      )
    const owner = owners[0] as FairlaneProcess
    const survivors = nodes.filter((n) => n !== owner)
    for (const node of survivors) await probe('fairlane-cluster', request(node))
    // The probes spent part of the burst; a second refills it before the load.
    await sleep(1000)
    await upstream.arrivals()
    const rate = facts.rps * LOAD_FACTOR
    say(
      `handover (${way}): ${rate} req/s open loop round robin over ${survivors.map((n) => n.child.name).join(' and ')}; ` +
        `${owner.child.name}, the lane's owner, stopped after ${settings.stopAtSec} s, then ${settings.afterSec} s more`,
    )
    const watched = Object.fromEntries(
      [upstream.child, ...survivors.map((n) => n.child)].map((c) => [c.name, c.pid]),
    )
    const probed = new Set(Object.values(watched))
    // Opens each probed process's event-loop window.
    await sampleRoles(watched, probed)
    const overflowsBefore = listenOverflows()
    const queues = watchAcceptQueues(
      Object.fromEntries(survivors.map((n) => [n.child.name, Number(new URL(n.proxyUrl).port)])),
    )
    const loop = new LoggedOpenLoop(survivors.map(request), rate, deadlineMs)
    await sleep(settings.stopAtSec * 1000)
    // Asking for the arrivals starts a new list: this one ends at the stop.
    const before = await upstream.arrivals()
    const stoppedAt = performance.now()
    const exited =
      way === 'SIGKILL'
        ? (owner.child.killNow(), owner.child.exited)
        : // Longer than the node's own drain bound, so the bench never turns the drain into a kill.
          owner.child.stop(30_000)
    const exitedAt = exited.then(() => performance.now())
    await sleep(settings.afterSec * 1000)
    say(`handover (${way}): load stopped; waiting for every answer (deadline ${deadlineMs} ms)`)
    const stalls = await sampleRoles(watched, probed)
    const log = await loop.stop()
    const overflowsAfter = listenOverflows()
    const acceptQueueMax = queues()
    const after = await upstream.arrivals()
    const nextOwner = (await ownerAmong(survivors))[0]?.child.name
    for (const node of survivors)
      if (!node.child.running)
        throw new Error(`${node.child.name} exited (${node.child.exitStatus}) during the run`)
    const arrivals = [...before, ...after]
    const busiest = busiestWindow(arrivals, 1000)
    const bound = facts.rps * 1.01 + facts.burst
    const client = outcomesOf(
      log,
      stoppedAt,
      survivors.map((n) => n.child.name),
    )
    return {
      run: {
        way,
        stoppedNode: owner.child.name,
        nextOwner,
        exitedAfterMs: (await exitedAt) - stoppedAt,
        offeredPerSec: rate,
        sentPerSec: loop.sentPerSec,
        limitPerSec: facts.rps,
        burst: facts.burst,
        admitted: arrivals.length,
        busiest: { count: busiest.count, atSec: (busiest.startsAt - (arrivals[0] ?? 0)) / 1000 },
        busiestBeforeStop: busiestWindow(before, 1000).count,
        busiestAfterStop: busiestWindow(after, 1000).count,
        bound,
        withinBound: busiest.count <= bound,
        longestGapMs: longestGap(arrivals).ms,
        client,
        okLessArrivals: client.ok - arrivals.length,
        listenOverflows:
          overflowsBefore === undefined || overflowsAfter === undefined
            ? undefined
            : overflowsAfter - overflowsBefore,
        acceptQueueMax,
        eventLoopDelayMaxMs: Object.fromEntries(
          Object.entries(stalls).map(([role, f]) => [role, f.eventLoopDelayMaxMs]),
        ),
      },
      cluster: clusterNotes(cluster),
    }
  } finally {
    await cluster?.stop()
    await upstream.child.stop()
  }
}

export async function runHandover(
  settings: HandoverSettings,
  say: (line?: string) => void,
): Promise<HandoverResult> {
  const facts = await exampleFacts()
  const deadlineMs = DEFAULT_LONGEST_WAIT_MS + 2 * facts.leaseTtlMs + 5_000
  const runs: HandoverRun[] = []
  let clusterFacts: string[] = []
  for (const way of ['SIGKILL', 'SIGTERM'] as const) {
    const { run, cluster } = await handoverRun(way, facts, deadlineMs, settings, say)
    runs.push(run)
    clusterFacts = cluster
  }
  const problems = runs.flatMap((r) => {
    const found: string[] = []
    const sum = (counts: Readonly<Record<string, number>>): number =>
      Object.values(counts).reduce((a, b) => a + b, 0)
    const lost = sum(r.client.transportErrors) + sum(r.client.otherStatuses)
    if (lost > 0) found.push(`${r.way}: ${lost} requests failed (neither 2xx, 429 nor 503)`)
    if (r.client.hung > 0) found.push(`${r.way}: ${r.client.hung} requests hung past the deadline`)
    return found
  })
  return {
    settings,
    leaseTtlMs: facts.leaseTtlMs,
    deadlineMs,
    runs,
    notes: [
      ...clusterFacts,
      `examples/cluster.yaml with logging.level warn added (cluster.leaseTtlMs ${facts.leaseTtlMs}); ` +
        `each way on a fresh cluster; ${LOAD_FACTOR}× the limit open loop to the two nodes that ` +
        `do not own the lane, the owner stopped after ${settings.stopAtSec} s, load for ` +
        `${settings.afterSec} s more`,
      'busiest 1 s window: the most requests the upstream received in any window [t, t + 1 s), ' +
        'sliding over the whole run (the initial burst included); the upstream stamps an arrival ' +
        'when its event loop runs, so a stall (last column) can crowd up to its length of ' +
        'arrivals into one window',
      `hung: no answer within ingress's deadline, the longest tier maxWaitMs (${DEFAULT_LONGEST_WAIT_MS} ms, ` +
        `the default tiers) + 2 × leaseTtlMs + 5 s = ${deadlineMs} ms; caught by the stop: sent in ` +
        'the second before it and answered after it',
    ],
    problems,
  }
}

export function handoverMarkdown(result: HandoverResult): string {
  const limits = formatMarkdownTable(
    [
      'owner stopped by',
      'offered → sent req/s',
      'admitted (upstream)',
      'busiest 1 s window',
      'bound: limit + 1% + burst',
      'within bound',
      'busiest before / after the stop',
      'longest time nothing admitted',
      'next owner',
    ],
    result.runs.map((r) => [
      `${r.way} (${r.stoppedNode})`,
      `${perSec(r.offeredPerSec)} → ${perSec(r.sentPerSec)}`,
      perSec(r.admitted),
      `${r.busiest.count} (from ${fixed(r.busiest.atSec, 1)} s)`,
      fixed(r.bound, 0),
      r.withinBound ? 'yes' : 'NO',
      `${r.busiestBeforeStop} / ${r.busiestAfterStop}`,
      `${fixed(r.longestGapMs / 1000, 2)} s`,
      r.nextOwner ?? '-',
    ]),
  )
  const clients = formatMarkdownTable(
    [
      'owner stopped by',
      'sent',
      '2xx',
      '429',
      '503',
      'other status',
      'transport errors',
      'hung',
      'failed or hung, by node',
      'slowest answer',
      'caught by the stop (slowest)',
      '2xx − upstream arrivals',
      'stopped node exited after',
      'event-loop stall max ms',
      'accept queue overflows (machine)',
      'deepest accept queue',
    ],
    result.runs.map((r) => {
      const c = r.client
      const listed = (counts: Readonly<Record<string, number>>): string =>
        Object.entries(counts)
          .map(([what, n]) => `${n}×${what}`)
          .join(', ') || '0'
      return [
        r.way,
        perSec(c.sent),
        perSec(c.ok),
        perSec(c.rateLimited),
        listed(c.unavailableByCode),
        listed(c.otherStatuses),
        listed(c.transportErrors),
        String(c.hung),
        listed(c.notAnsweredByNode),
        `${fixed(c.slowestAnswerMs / 1000, 2)} s`,
        `${perSec(c.caughtByStop)} (${fixed(c.slowestCaughtMs / 1000, 2)} s)`,
        String(r.okLessArrivals),
        `${fixed(r.exitedAfterMs / 1000, 2)} s`,
        Object.entries(r.eventLoopDelayMaxMs)
          .map(([role, v]) => `${role} ${v === undefined ? '-' : fixed(v, 0)}`)
          .join(', '),
        r.listenOverflows === undefined ? '-' : perSec(r.listenOverflows),
        Object.entries(r.acceptQueueMax)
          .map(([node, n]) => `${node} ${n}`)
          .join(', '),
      ]
    }),
  )
  return `${limits}\n\n${clients}`
}
