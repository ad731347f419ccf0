import { setTimeout as sleep } from 'node:timers/promises'
import type { System } from '../systems/system.ts'
import type { Child } from './child.ts'
import { clusterCounters, countedBetween, type ClusterCounters } from './cluster-counters.ts'
import { watchCpuTime, watchMachineCpu } from './cpu.ts'
import { measureAtRate, type RateMeasurement } from './fixed-rate.ts'
import { sampleRoles, type ProcessFigures } from './probe.ts'
import { fixed, ms, perSec, times } from './format.ts'
import { formatMarkdownTable } from './table.ts'

/** One system at a fixed rate, open loop: its latency below saturation and what each process spent per request. */
export interface FixedRateCost {
  readonly system: string
  readonly instances: number
  readonly measurement: RateMeasurement
  /** CPU time of each watched process over the measured window ÷ every request served, µs. */
  readonly cpuMicrosPerRequest: Readonly<Record<string, number | null>>
  /**
   * Each Fairlane process's CPU ÷ the requests it took from clients, µs: a cluster node's cost
   * per request it serves, its share of the owner's work included (embedded: the same as above).
   */
  readonly ownMicrosPerRequest: Readonly<Record<string, number | null>>
  /** The Fairlane processes together (embedded, or every node) ÷ every request served, µs. */
  readonly fairlaneMicrosPerRequest: number
  /**
   * Each watched process's CPU with no load, % of one core, over IDLE_SEC before the run: the
   * fixed cost (lease heartbeats, checkpoints, probes) that a modest rate spreads thin.
   */
  readonly idlePercent: Readonly<Record<string, number | null>>
  /** fairlaneMicrosPerRequest less the Fairlane processes' idle CPU: what a request adds. */
  readonly fairlaneMarginalMicrosPerRequest: number
  /** The whole machine's busy CPU during the window, % of one core: shows other work. */
  readonly machineCpuPercent: number | null
  /** A cluster's NATS traffic during the measured window, summed over its nodes. */
  readonly counted?: ClusterCounters
  /**
   * Each Fairlane process's event-loop delay over the measured window (p99 and max, ms): a
   * stall of a few ms in a node is a p99 of the requests it holds then.
   */
  readonly eventLoop: Readonly<Record<string, ProcessFigures>>
}

/** Seconds of no load, watched, before the fixed-rate run. */
const IDLE_SEC = 3

/**
 * Watches every process in `watched` idle for IDLE_SEC, then measures `system` at
 * `ratePerSec` spread round robin over its instances (open loop, see fixed-rate.ts), watching
 * their CPU time. `fairlane` names the Fairlane processes, in the order of the system's
 * instances.
 */
export async function fixedRateCost(
  system: System,
  watched: Readonly<Record<string, Child>>,
  fairlane: readonly string[],
  ratePerSec: number,
  durationSec: number,
  warmupSec: number,
): Promise<FixedRateCost> {
  const load = system.requests ?? [system.request]
  const pids = Object.fromEntries(Object.entries(watched).map(([role, child]) => [role, child.pid]))
  const idle = watchCpuTime(pids)
  await sleep(IDLE_SEC * 1000)
  const idleMs = idle()
  const idlePercent = Object.fromEntries(
    Object.entries(idleMs).map(([role, ms]) => [role, ms === null ? null : ms / (IDLE_SEC * 10)]),
  )
  let used: Record<string, number | null> = {}
  let machineCpuPercent: number | null = null
  const urls = system.metricsUrls
  let counting: [Promise<ClusterCounters>, Promise<ClusterCounters>] | undefined
  const fairlanePids = Object.fromEntries(fairlane.map((role) => [role, pids[role] ?? 0]))
  const probed = new Set(Object.values(fairlanePids))
  let looping: Promise<Record<string, ProcessFigures>> | undefined
  const measurement = await measureAtRate(load, ratePerSec, durationSec, warmupSec, async () => {
    // Opens each Fairlane process's event-loop window; the sample at the end closes it.
    await sampleRoles(fairlanePids, probed)
    const cpu = watchCpuTime({ bench: process.pid, ...pids })
    const machine = watchMachineCpu()
    const before = urls && clusterCounters(urls)
    return () => {
      used = cpu()
      machineCpuPercent = machine()
      if (before && urls) counting = [before, clusterCounters(urls)]
      looping = sampleRoles(fairlanePids, probed)
    }
  })
  const eventLoop = (await looping) ?? {}
  const counted = counting && countedBetween(await counting[0], await counting[1])
  const served = measurement.servedPerSec * measurement.durationSec
  const perRequest = (cpuMs: number | null, requests: number): number | null =>
    cpuMs === null || requests === 0 ? null : (cpuMs * 1000) / requests
  const own = Object.fromEntries(
    fairlane.map((role, i) => [
      role,
      perRequest(
        used[role] ?? null,
        (measurement.servedPerSecByTarget[i] ?? 0) * measurement.durationSec,
      ),
    ]),
  )
  const sum = (values: readonly (number | null)[]): number | null =>
    values.includes(null) ? null : values.reduce<number>((total, v) => total + (v ?? 0), 0)
  const fairlaneMs = sum(fairlane.map((role) => used[role] ?? null))
  const fairlaneIdlePercent = sum(fairlane.map((role) => idlePercent[role] ?? null))
  // % of a core × 10 = ms of CPU per second.
  const fairlaneIdleMs =
    fairlaneIdlePercent === null ? null : fairlaneIdlePercent * 10 * measurement.durationSec
  return {
    system: system.name,
    instances: load.length,
    measurement,
    cpuMicrosPerRequest: Object.fromEntries(
      Object.entries(used).map(([role, cpuMs]) => [role, perRequest(cpuMs, served)]),
    ),
    ownMicrosPerRequest: own,
    fairlaneMicrosPerRequest: perRequest(fairlaneMs, served) ?? Number.NaN,
    idlePercent,
    fairlaneMarginalMicrosPerRequest:
      perRequest(
        fairlaneMs === null || fairlaneIdleMs === null ? null : fairlaneMs - fairlaneIdleMs,
        served,
      ) ?? Number.NaN,
    machineCpuPercent,
    ...(counted ? { counted } : {}),
    eventLoop,
  }
}

const micros = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : String(Math.round(n))

/**
 * Two tables: latency and Fairlane's CPU per request against the first run (embedded), then
 * every process's CPU per request. `rest of machine` is busy CPU no watched process explains.
 */
export function fixedRateMarkdown(runs: readonly FixedRateCost[]): string {
  const [baseline] = runs
  const latency = formatMarkdownTable(
    [
      'system',
      'instances',
      'offered req/s',
      '2xx/s',
      'p50 ms',
      'p99 ms',
      `p99 − ${baseline?.system ?? '-'} ms`,
      'Fairlane CPU µs/req',
      `÷ ${baseline?.system ?? '-'}`,
      'less idle µs/req',
      `÷ ${baseline?.system ?? '-'}`,
      'per node, µs per request it took',
      'event loop p99 / max ms',
    ],
    runs.map((r) => [
      r.system,
      String(r.instances),
      perSec(r.measurement.offeredPerSec),
      fixed(r.measurement.servedPerSec, 0),
      ms(r.measurement.p50Ms),
      ms(r.measurement.p99Ms),
      baseline ? fixed(r.measurement.p99Ms - baseline.measurement.p99Ms, 2) : '-',
      micros(r.fairlaneMicrosPerRequest),
      baseline ? times(r.fairlaneMicrosPerRequest / baseline.fairlaneMicrosPerRequest) : '-',
      micros(r.fairlaneMarginalMicrosPerRequest),
      baseline
        ? times(r.fairlaneMarginalMicrosPerRequest / baseline.fairlaneMarginalMicrosPerRequest)
        : '-',
      Object.entries(r.ownMicrosPerRequest)
        .map(([role, us]) => `${role} ${micros(us)}`)
        .join(', '),
      Object.entries(r.eventLoop)
        .map(
          ([role, f]) =>
            `${role} ${ms(f.eventLoopDelayP99Ms ?? null)} / ${ms(f.eventLoopDelayMaxMs ?? null)}`,
        )
        .join(', '),
    ]),
  )
  const roles = [...new Set(runs.flatMap((r) => Object.keys(r.cpuMicrosPerRequest)))]
  const perProcess = formatMarkdownTable(
    ['per process', ...roles, 'rest of machine, % of a core'],
    runs.flatMap((r) => {
      const microsSum = Object.values(r.cpuMicrosPerRequest).reduce<number>(
        (sum, us) => sum + (us ?? 0),
        0,
      )
      // µs per request × requests per second = µs of CPU per second: ÷ 10⁴ gives % of a core.
      const watched = (microsSum * r.measurement.servedPerSec) / 1e4
      return [
        [
          `${r.system}: CPU µs per request served`,
          ...roles.map((role) => micros(r.cpuMicrosPerRequest[role])),
          r.machineCpuPercent === null
            ? '-'
            : String(Math.max(0, Math.round(r.machineCpuPercent - watched))),
        ],
        [
          `${r.system}: idle before, % of a core`,
          ...roles.map((role) => {
            const idle = r.idlePercent[role]
            return idle === null || idle === undefined ? '-' : fixed(idle, 1)
          }),
          '',
        ],
      ]
    }),
  )
  const clusters = runs.filter((r) => r.counted)
  if (clusters.length === 0) return `${latency}\n\n${perProcess}`
  const traffic = formatMarkdownTable(
    [
      'NATS traffic, per request served',
      'admitted locally',
      'admitted by the owner',
      'lent',
      'revocations',
      'messages to owners',
      'items per message',
      'messages to ingress',
      'items per message',
    ],
    clusters.map((r) => {
      const c = r.counted as ClusterCounters
      const served = r.measurement.servedPerSec * r.measurement.durationSec
      const share = (n: number): string => (served > 0 ? fixed(n / served, 3) : '-')
      return [
        r.system,
        share(c.local),
        share(c.owner),
        share(c.lent),
        String(c.revoked),
        share(c.toOwnerMessages),
        c.toOwnerMessages > 0 ? fixed(c.toOwnerItems / c.toOwnerMessages, 1) : '-',
        share(c.toIngressMessages),
        c.toIngressMessages > 0 ? fixed(c.toIngressItems / c.toIngressMessages, 1) : '-',
      ]
    }),
  )
  return `${latency}\n\n${perProcess}\n\n${traffic}`
}
