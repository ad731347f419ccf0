/**
 * One lane count of the scheduler benchmark, in a process of its own: a heap of a million
 * lanes must not be measured as the baseline of the next run, nor its GC pauses slow it down.
 * Needs `--expose-gc`. Prints one line `{"schedulerRun":{…}}` on stdout and exits.
 *
 *   node --conditions=development --expose-gc scheduler-process.ts \
 *     --lanes N --decisions D --repeats R --warmup W [--profile-dir DIR]
 *
 * With --profile-dir, one extra repeat runs under the V8 sampling profiler, after the measured
 * ones and not counted in them (bench/scheduler.ts runs that in a process of its own).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  LaneScheduler,
  NodeQueueBudget,
  type GateVerdict,
  type LaneIdentity,
  type QueuedTicket,
  type TierSpec,
} from '@fairlane/scheduler'
import { numberFlag } from './options.ts'

/** What one process reports for one lane count. */
export interface SchedulerRun {
  readonly lanes: number
  readonly workspaces: number
  /** Decisions per second of each measured repeat, in order. */
  readonly decisionsPerSec: readonly number[]
  readonly medianDecisionsPerSec: number
  readonly decisions: number
  /** Round-robin steps and gate calls per decision over all measured repeats. */
  readonly stepsPerDecision: number
  readonly gateCallsPerDecision: number
  /** CPU time of the process ÷ wall time during the measured repeats, % of one core. */
  readonly cpuPercent: number
  /** Tickets served per lane over the measured repeats: DRR with equal weights keeps these within 1 of each other. */
  readonly servedPerLane: { readonly min: number; readonly max: number }
  readonly expired: number
  readonly rejected: number
  /** Lanes weighed for `bytes`: the lane count times the schedulers built for weighing. */
  readonly bytesWeighedOver: number
  /** heapUsed growth after a full GC, ÷ lanes weighed. */
  readonly bytes: {
    /** Everything the scheduler holds for one backlogged lane with one ticket queued. */
    readonly perLaneWithOneTicket: number
    /** What a second ticket in an existing lane adds. */
    readonly perExtraTicket: number
  }
  /** The .cpuprofile of one extra, profiled repeat (not counted above). */
  readonly profile?: string
}

// Fairlane's default tiers (the scheduler walks them on every dispatch, so the bench pays that
// too), with a longer maxWait: building a million lanes takes seconds, and no ticket may expire.
const TIERS: readonly TierSpec[] = [
  { name: 'reserved', priority: 0, minShare: 0, maxWaitMs: 60_000 },
  { name: 'paid', priority: 1, minShare: 0.1, maxWaitMs: 60_000 },
  { name: 'free', priority: 2, minShare: 0.05, maxWaitMs: 60_000 },
]
const MAX_WORKSPACES = 100
/** At least this many lanes are weighed for the bytes per lane, whatever the lane count. */
const MIN_LANES_WEIGHED = 10_000

// One verdict object each: the gate must not allocate, or the bench would measure its own garbage.
const GO: GateVerdict = { go: true }
const PARTITION_FULL: GateVerdict = { go: false, level: 'partition' }

function fullGc(): void {
  if (!globalThis.gc) throw new Error('run with --expose-gc: heap figures need a full GC')
  // Twice: the first pass may leave objects that only a finaliser or weak callback frees.
  globalThis.gc()
  globalThis.gc()
}

function heapUsed(): number {
  fullGc()
  return process.memoryUsage().heapUsed
}

function options(): {
  lanes: number
  decisions: number
  repeats: number
  warmup: number
  profileDir: string | undefined
} {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      lanes: { type: 'string' },
      decisions: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      'profile-dir': { type: 'string' },
    },
    strict: true,
  })
  return {
    lanes: Math.round(numberFlag('lanes', values.lanes, 1, 1)),
    decisions: Math.round(numberFlag('decisions', values.decisions, 2_000_000, 1)),
    repeats: Math.round(numberFlag('repeats', values.repeats, 3, 1)),
    warmup: Math.round(numberFlag('warmup', values.warmup, 500_000, 0)),
    profileDir: values['profile-dir'],
  }
}

/** The lanes of one scheduler, one per identity, spread over min(lanes, 100) workspaces. */
function identities(lanes: number): LaneIdentity[] {
  const workspaces = Math.min(lanes, MAX_WORKSPACES)
  return Array.from({ length: lanes }, (_, i) => {
    const workspace = `ws${i % workspaces}`
    return {
      lane: `${workspace}/key${i}`,
      workspace,
      tier: 'free',
      laneWeight: 1,
      workspaceWeight: 1,
      // Present from the start, as the scheduler writes it: the identity's shape is then final
      // before the baseline and its own size stays out of the lane's figure.
      lastLane: undefined,
    }
  })
}

/** One scheduler whose lanes are all backlogged, in front of a saturated target. */
interface Partition {
  readonly scheduler: LaneScheduler<number>
  /** Tickets dispatched per lane (the payload is the lane's index). */
  readonly served: Uint32Array
  readonly expired: number
  readonly rejected: number
  /** Queues one more ticket in every lane. */
  fill(): void
  /** Each decision completes the request in flight, which lets exactly one ticket go. */
  decide(count: number): void
}

function partition(lanes: readonly LaneIdentity[]): Partition {
  let inFlight = 0
  let expired = 0
  let rejected = 0
  const served = new Uint32Array(lanes.length)
  const enqueue = (lane: number): void => {
    const queued = scheduler.enqueue(lane, lanes[lane] as LaneIdentity, 1)
    if (typeof queued === 'string') throw new Error(`lane ${lane}: refused by the ${queued} bound`)
  }
  const scheduler: LaneScheduler<number> = new LaneScheduler<number>({
    // A real clock, so the timing wheel advances and cascades as it does in Fairlane.
    now: () => performance.now(),
    tiers: TIERS,
    bounds: { perLane: 2, perWorkspace: 2 * lanes.length, perPartition: 2 * lanes.length },
    budget: new NodeQueueBudget(2 * lanes.length),
    quantum: 1,
    discipline: 'fair',
    // A target of concurrency 1: every pump dispatches one ticket and the next gate call
    // refuses at partition level, as in any saturated target.
    gate: () => (inFlight === 0 ? GO : PARTITION_FULL),
    onDispatch: (ticket: QueuedTicket<number>) => {
      inFlight++
      served[ticket.payload] = (served[ticket.payload] ?? 0) + 1
      // The lane gets a new ticket at once, so every lane stays backlogged for the whole run.
      enqueue(ticket.payload)
    },
    onExpire: () => expired++,
    onReject: () => rejected++,
  })
  return {
    scheduler,
    served,
    get expired() {
      return expired
    },
    get rejected() {
      return rejected
    },
    fill() {
      for (let i = 0; i < lanes.length; i++) enqueue(i)
    },
    decide(count) {
      for (let i = 0; i < count; i++) {
        inFlight = 0
        scheduler.released()
        scheduler.pump()
      }
    },
  }
}

/**
 * Compiled code and feedback live on the heap too: they are made here, in a scheduler that is
 * gone before the baseline, so they are not counted as the lanes' bytes.
 */
function warmUp(lanes: number): void {
  const warm = partition(identities(lanes))
  warm.fill()
  warm.fill()
  warm.decide(20_000)
}

async function run(): Promise<SchedulerRun> {
  const { lanes, decisions, repeats, warmup, profileDir } = options()

  warmUp(Math.min(lanes, 1_000))

  // Small lane counts are weighed in many schedulers at once, so that the heap's own noise
  // (tens of KB) is a small fraction of what is weighed; decisions run in the first one only.
  const replicas = Math.ceil(MIN_LANES_WEIGHED / lanes)
  const weighed = replicas * lanes
  // The caller's identities (and lane-name strings) are made before the baseline: they are
  // the request's, and the figure is what the scheduler adds.
  const lanesOf = Array.from({ length: replicas }, () => identities(lanes))
  const partitions = lanesOf.map(partition)
  const empty = heapUsed()
  for (const p of partitions) p.fill()
  const oneTicket = heapUsed()
  // A second ticket per lane: a dispatch then never empties a lane, so no lane is dropped and
  // rebuilt during the run and every decision is a choice among all N backlogged lanes.
  for (const p of partitions) p.fill()
  const twoTickets = heapUsed()
  const measured = partitions[0] as Partition
  partitions.length = 0
  lanesOf.length = 0
  // The other schedulers are garbage now: collected here, not during the measured decisions.
  fullGc()
  const { scheduler, served, decide } = measured

  decide(warmup)
  served.fill(0)
  const work = { ...scheduler.work }
  const rates: number[] = []
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now()
    decide(decisions)
    rates.push(decisions / ((performance.now() - t0) / 1000))
  }
  const wallMs = performance.now() - started
  const cpu = process.cpuUsage(cpuBefore)
  const done = scheduler.work.decisions - work.decisions
  if (done !== decisions * repeats)
    throw new Error(`expected ${decisions * repeats} decisions, the scheduler made ${done}`)
  let min = Infinity
  let max = 0
  for (const count of served) {
    if (count < min) min = count
    if (count > max) max = count
  }
  const measuredWork = {
    steps: scheduler.work.steps - work.steps,
    gateCalls: scheduler.work.gateCalls - work.gateCalls,
  }
  const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)] ?? 0

  let profile: string | undefined
  if (profileDir) {
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    // 200 µs instead of the default 1 ms: a few seconds of a tight loop need more samples to rank lines.
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
    decide(decisions)
    const { profile: data } = await session.post('Profiler.stop')
    session.disconnect()
    await mkdir(profileDir, { recursive: true })
    profile = join(profileDir, `scheduler-lanes-${lanes}.cpuprofile`)
    await writeFile(profile, JSON.stringify(data))
  }

  return {
    lanes,
    workspaces: Math.min(lanes, MAX_WORKSPACES),
    bytesWeighedOver: weighed,
    decisionsPerSec: rates,
    medianDecisionsPerSec: median,
    decisions: done,
    stepsPerDecision: measuredWork.steps / done,
    gateCallsPerDecision: measuredWork.gateCalls / done,
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
    servedPerLane: { min, max },
    expired: measured.expired,
    rejected: measured.rejected,
    bytes: {
      perLaneWithOneTicket: (oneTicket - empty) / weighed,
      perExtraTicket: (twoTickets - oneTicket) / weighed,
    },
    ...(profile ? { profile } : {}),
  }
}

process.stdout.write(JSON.stringify({ schedulerRun: await run() }) + '\n')
