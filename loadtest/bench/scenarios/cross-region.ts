/**
 * cross-region (bench:cluster -- --scenario cross-region): what a client 30 ms from the owner
 * of its lane sees. Two regions on this machine (systems/fairlane-regions.ts); open-loop load
 * at a fixed rate, one node at a time, so each p50/p99 is that node's alone:
 *
 * 1. Uncontended, under the limit (half of it): from region a (a-1, the owner's region: the
 *    baseline), from region b with leased shares (b-1) and without them (b-2). What leases save
 *    is b-2's p50 less b-1's; what the distance still costs is b-1's p50 less a-1's.
 * 2. Contended: 1.5× the limit, half from a-1 and half from b-1 at once: the lane queues, the
 *    owner revokes the shares, every request of both regions goes through the owner's queue.
 *    What the distance adds when fairness needs the hop is region b's p50 less region a's,
 *    each less the wait in the owner's queue its answer names: the queue is full, so a raw p50
 *    is about the queue's length, and which region's tickets find room in it (the near one
 *    more often) moves it by more than the round trip.
 *
 * "One RTT" is measured as well as set: a probe sends a byte at a time through a relay like
 * the regions' (link-probe.ts) during every run, and each difference is also given ÷ that.
 */
import { measureAtRate, type RateMeasurement } from '../lib/fixed-rate.ts'
import { fixed, ms, perSec } from '../lib/format.ts'
import { startLinkProbe, type LinkProbe } from '../lib/link-probe.ts'
import { probe, type LoadRequest } from '../lib/measurement.ts'
import { formatMarkdownTable } from '../lib/table.ts'
import { launchUpstream } from '../lib/upstream.ts'
import {
  REGIONS_HEADERS,
  REGIONS_LIMIT,
  startFairlaneRegions,
  type FairlaneRegions,
} from '../systems/fairlane-regions.ts'

export interface CrossRegionSettings {
  readonly oneWayMs: number
  readonly warmupSec: number
  readonly durationSec: number
}

interface CrossRegionRow {
  readonly run: 'uncontended' | 'contended'
  readonly node: string
  readonly region: 'a' | 'b'
  readonly shares: boolean
  readonly measurement: RateMeasurement
  /** p50 round trip of the emulated link during the run (link-probe.ts), ms. */
  readonly linkRttMs: number
}

export interface CrossRegionResult {
  readonly settings: CrossRegionSettings
  readonly rttMs: number
  readonly limitPerSec: number
  readonly rows: readonly CrossRegionRow[]
  /** b-1's p50 less a-1's, uncontended: what the distance costs with leased shares. */
  readonly uncontendedAddedP50Ms: number
  /** b-2's p50 less b-1's, uncontended: what leased shares save. */
  readonly sharesSaveP50Ms: number
  /** b-1's p50 less a-1's, contended. */
  readonly contendedAddedP50Ms: number
  /** The same, each p50 taken of latencies less the queue wait the answer names. */
  readonly contendedAddedPathP50Ms: number
  readonly notes: readonly string[]
  readonly problems: readonly string[]
}

const request = (node: { proxyUrl: string }, path: string): LoadRequest => ({
  url: `${node.proxyUrl}/t/echo/${path}`,
  headers: REGIONS_HEADERS,
})

export async function runCrossRegion(
  settings: CrossRegionSettings,
  say: (line?: string) => void,
): Promise<CrossRegionResult> {
  const upstream = await launchUpstream()
  let regions: FairlaneRegions | undefined
  let link: LinkProbe | undefined
  try {
    regions = await startFairlaneRegions({ upstreamUrl: upstream.url, oneWayMs: settings.oneWayMs })
    link = await startLinkProbe(settings.oneWayMs)
    const probeLink = link
    // The probe's samples start with each measured window, after the warm-up.
    const resetLinkProbe = (): (() => void) => {
      probeLink.reset()
      return () => undefined
    }
    const { ownerA, sharesB, noSharesB } = regions
    const nodes = [
      { node: ownerA, name: 'a-1', region: 'a', shares: true },
      { node: sharesB, name: 'b-1', region: 'b', shares: true },
      { node: noSharesB, name: 'b-2', region: 'b', shares: false },
    ] as const
    // A request through each: the echo shard is owned and the gateway carries its interest.
    for (const { node, name } of nodes) await probe(name, request(node, 'probe'))
    const rows: CrossRegionRow[] = []
    const under = REGIONS_LIMIT.rps / 2
    for (const { node, name, region, shares } of nodes) {
      say(`cross-region: uncontended, ${under} req/s from ${name} (region ${region})`)
      const measurement = await measureAtRate(
        [request(node, 'uncontended')],
        under,
        settings.durationSec,
        settings.warmupSec,
        resetLinkProbe,
      )
      rows.push({
        run: 'uncontended',
        node: name,
        region,
        shares,
        measurement,
        linkRttMs: probeLink.p50(),
      })
    }
    const each = (REGIONS_LIMIT.rps * 1.5) / 2
    say(`cross-region: contended, ${each} req/s from a-1 and ${each} req/s from b-1 at once`)
    const [fromA, fromB] = await Promise.all(
      [ownerA, sharesB].map((node, i) =>
        measureAtRate(
          [request(node, 'contended')],
          each,
          settings.durationSec,
          settings.warmupSec,
          // One of the two runs' windows is the probe's: they open together.
          i === 0 ? resetLinkProbe : undefined,
        ),
      ),
    )
    const contendedRtt = probeLink.p50()
    rows.push(
      {
        run: 'contended',
        node: 'a-1',
        region: 'a',
        shares: true,
        measurement: fromA as RateMeasurement,
        linkRttMs: contendedRtt,
      },
      {
        run: 'contended',
        node: 'b-1',
        region: 'b',
        shares: true,
        measurement: fromB as RateMeasurement,
        linkRttMs: contendedRtt,
      },
    )
    const row = (run: CrossRegionRow['run'], node: string): CrossRegionRow | undefined =>
      rows.find((r) => r.run === run && r.node === node)
    const p50 = (run: CrossRegionRow['run'], node: string): number =>
      row(run, node)?.measurement.p50Ms ?? Number.NaN
    const pathP50 = (run: CrossRegionRow['run'], node: string): number =>
      row(run, node)?.measurement.p50LessQueueMs ?? Number.NaN
    const problems = rows.flatMap((r) => {
      const m = r.measurement
      const found: string[] = []
      if (m.failed > 0) found.push(`${r.run} ${r.node}: ${m.failed} requests failed`)
      if (m.sentPerSec < 0.95 * m.offeredPerSec)
        found.push(`${r.run} ${r.node}: sent ${perSec(m.sentPerSec)} of ${m.offeredPerSec} req/s`)
      if (r.run === 'uncontended' && m.refusedPerSec > 0)
        found.push(`uncontended ${r.node}: ${fixed(m.refusedPerSec, 1)} refused/s under the limit`)
      return found
    })
    return {
      settings,
      rttMs: 2 * settings.oneWayMs,
      limitPerSec: REGIONS_LIMIT.rps,
      rows,
      uncontendedAddedP50Ms: p50('uncontended', 'b-1') - p50('uncontended', 'a-1'),
      sharesSaveP50Ms: p50('uncontended', 'b-2') - p50('uncontended', 'b-1'),
      contendedAddedP50Ms: p50('contended', 'b-1') - p50('contended', 'a-1'),
      contendedAddedPathP50Ms: pathP50('contended', 'b-1') - pathP50('contended', 'a-1'),
      notes: [
        ...regions.notes,
        `open loop at a fixed rate, ${settings.warmupSec} s warm-up thrown away, then ` +
          `${settings.durationSec} s measured; latency of 2xx answers from the client's send`,
        'contended: both regions at once on one lane at 1.5× its limit; the queue (bounded by the ' +
          "tier's maxWaitMs) is most of every latency; 'less queue wait' takes off the wait in " +
          "the owner's queue each answer names (X-Fairlane-Queue-Ms, whole ms)",
        `link RTT: one byte at a time through a relay like the regions' (${settings.oneWayMs} ms ` +
          'each way, in the bench process) to an echo server, at most every 20 ms, over each measured window',
      ],
      problems,
    }
  } finally {
    await link?.stop()
    await regions?.stop()
    await upstream.child.stop()
  }
}

const signed = (n: number): string =>
  Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(2)}` : '-'

export function crossRegionMarkdown(result: CrossRegionResult): string {
  const table = formatMarkdownTable(
    [
      'run',
      'node',
      'region',
      'leased shares',
      'offered req/s',
      '2xx/s',
      '429+503/s',
      'p50 ms',
      'p99 ms',
      'p50 ms less queue wait',
      'link RTT p50 ms',
    ],
    result.rows.map((r) => [
      r.run,
      r.node,
      r.region,
      r.shares ? 'on' : 'off',
      perSec(r.measurement.offeredPerSec),
      fixed(r.measurement.servedPerSec, 1),
      fixed(r.measurement.refusedPerSec, 1),
      ms(r.measurement.p50Ms),
      ms(r.measurement.p99Ms),
      ms(r.measurement.p50LessQueueMs),
      ms(r.linkRttMs),
    ]),
  )
  const rttOf = (run: CrossRegionRow['run'], node: string): number =>
    result.rows.find((r) => r.run === run && r.node === node)?.linkRttMs ?? Number.NaN
  const line = (label: string, addedMs: number, measuredRttMs: number): string[] => [
    label,
    signed(addedMs),
    fixed(addedMs / result.rttMs, 2),
    fixed(addedMs / measuredRttMs, 2),
  ]
  const summary = formatMarkdownTable(
    ['p50 difference', 'ms', `÷ RTT set (${result.rttMs} ms)`, '÷ link RTT measured in that run'],
    [
      line(
        'uncontended: region b with shares − region a',
        result.uncontendedAddedP50Ms,
        rttOf('uncontended', 'b-1'),
      ),
      line(
        'uncontended: region b without shares − with',
        result.sharesSaveP50Ms,
        rttOf('uncontended', 'b-2'),
      ),
      line(
        'contended: region b − region a, less the queue wait',
        result.contendedAddedPathP50Ms,
        rttOf('contended', 'b-1'),
      ),
      line(
        'contended: region b − region a, queue wait included',
        result.contendedAddedP50Ms,
        rttOf('contended', 'b-1'),
      ),
    ],
  )
  return `${table}\n\n${summary}`
}
