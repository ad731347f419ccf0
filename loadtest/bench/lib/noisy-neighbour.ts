/**
 * The noisy neighbour's traffic, shared by bench:fairness (Fairlane fair vs FIFO) and the
 * noisy-neighbour scenario of `npm run bench` (Fairlane against its peers): four tenants a, b,
 * c, d with the demo keys of examples/noisy-neighbor.yaml; a floods, b, c and d send lightly.
 * Every system gets the same requests with the same `Authorization: Bearer fl_demo_<tenant>`
 * header: Fairlane authenticates it, a peer's per-tenant rate limit is keyed by it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CallerRecord, Traffic, type CallerSpec } from '@fairlane/testing'

export const TENANTS = ['a', 'b', 'c', 'd'] as const
const QUIET_KEYS = ['b', 'c', 'd'] as const
export const QUIET_RATE = 5
export const FLOOD_IN_FLIGHT = 64
export const BACKLOG_IN_FLIGHT = 32
/** Unequal floods: FIFO shares the target by requests in flight, fair queueing by lane. */
export const UNEQUAL_IN_FLIGHT = { a: 64, b: 32, c: 16, d: 8 } as const
/** The upstream's service time and workers; examples/noisy-neighbor.yaml has the same concurrency. */
export const UPSTREAM_DELAY_MS = 40
export const TARGET_CONCURRENCY = 8
export const CAPACITY_PER_SEC = (TARGET_CONCURRENCY * 1000) / UPSTREAM_DELAY_MS

export type PhaseName = 'baseline' | 'flood' | 'backlogged' | 'backlogged-unequal'
/** How the quiet keys' request times relate: evenly spread over the interval, or all at once. */
export type QuietPhase = 'spread' | 'locked'

export interface PhaseSpec {
  readonly name: PhaseName
  readonly what: string
  /** Keys whose latency is the quiet figure. */
  readonly quiet: readonly string[]
  /** Keys that always have requests waiting: their served counts go into Jain's index. */
  readonly backlogged: readonly string[]
  readonly callers: (url: string) => CallerSpec[]
}

export const keyHeaders = (key: string): Record<string, string> => ({
  authorization: `Bearer fl_demo_${key}`,
})

export function flood(url: string, key: string, inFlight: number): CallerSpec {
  return { name: key, url, headers: keyHeaders(key), concurrency: inFlight }
}

function steady(url: string, key: string): CallerSpec {
  return { name: key, url, headers: keyHeaders(key), ratePerSecond: QUIET_RATE }
}

export const PHASES: readonly PhaseSpec[] = [
  {
    name: 'baseline',
    what: `b, c, d at ${QUIET_RATE} req/s each, no flood`,
    quiet: QUIET_KEYS,
    backlogged: [],
    callers: (url) => QUIET_KEYS.map((key) => steady(url, key)),
  },
  {
    name: 'flood',
    what: `a keeps ${FLOOD_IN_FLIGHT} in flight; b, c, d at ${QUIET_RATE} req/s each`,
    quiet: QUIET_KEYS,
    backlogged: [],
    callers: (url) => [
      flood(url, 'a', FLOOD_IN_FLIGHT),
      ...QUIET_KEYS.map((key) => steady(url, key)),
    ],
  },
  {
    name: 'backlogged',
    what: `a, b, c, d keep ${BACKLOG_IN_FLIGHT} in flight each`,
    quiet: [],
    backlogged: [...TENANTS],
    callers: (url) => TENANTS.map((key) => flood(url, key, BACKLOG_IN_FLIGHT)),
  },
  {
    name: 'backlogged-unequal',
    what: `a, b, c, d keep ${Object.values(UNEQUAL_IN_FLIGHT).join(', ')} in flight`,
    quiet: [],
    backlogged: [...TENANTS],
    callers: (url) =>
      Object.entries(UNEQUAL_IN_FLIGHT).map(([key, inFlight]) => flood(url, key, inFlight)),
  },
]

/** A copy taken at the end of the window: what completes after it belongs to no phase. */
export function snapshot(record: CallerRecord): CallerRecord {
  const copy = new CallerRecord(record.name)
  copy.sent = record.sent
  copy.served = record.served
  copy.refused = record.refused
  copy.failed = record.failed
  for (const latency of record.latenciesMs) copy.latenciesMs.push(latency)
  return copy
}

export function pooled(records: readonly CallerRecord[]): CallerRecord {
  const pool = new CallerRecord('pooled')
  for (const record of records) addInto(pool, record)
  return pool
}

/** Adds one record's counts and latencies to another's. */
export function addInto(into: CallerRecord, record: CallerRecord): void {
  into.sent += record.sent
  into.served += record.served
  into.refused += record.refused
  into.failed += record.failed
  for (const latency of record.latenciesMs) into.latenciesMs.push(latency)
}

/**
 * Floods in one Traffic; steady callers too when locked. Spread, each steady caller gets its
 * own Traffic, started a fraction of its interval after the previous one: Traffic starts every
 * steady caller of one instance on the same tick with the same interval, so they would stay in
 * lockstep and every quiet request would arrive together with the other quiet keys' requests.
 */
export async function startTraffic(
  specs: readonly CallerSpec[],
  quietPhase: QuietPhase,
): Promise<Traffic[]> {
  const steadyOnes = specs.filter((s) => s.ratePerSecond !== undefined)
  const rest = specs.filter((s) => s.ratePerSecond === undefined)
  if (quietPhase === 'locked' || steadyOnes.length < 2) return [new Traffic(specs)]
  const traffics = rest.length > 0 ? [new Traffic(rest)] : []
  const offsetSec = 1 / QUIET_RATE / steadyOnes.length
  for (const [i, spec] of steadyOnes.entries()) {
    if (i > 0) await sleep(offsetSec * 1000)
    traffics.push(new Traffic([spec]))
  }
  return traffics
}
