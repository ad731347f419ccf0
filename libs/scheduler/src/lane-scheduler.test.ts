import { describe, expect, it } from 'vitest'
import {
  LaneScheduler,
  NodeQueueBudget,
  type GateVerdict,
  type LaneIdentity,
  type QueuedTicket,
  type TierSpec,
} from './lane-scheduler.ts'

const TIERS: TierSpec[] = [
  { name: 'reserved', priority: 0, minShare: 0, maxWaitMs: 30_000 },
  { name: 'paid', priority: 1, minShare: 0, maxWaitMs: 30_000 },
  { name: 'free', priority: 2, minShare: 0, maxWaitMs: 30_000 },
]

const BIG = { perLane: 1_000_000, perWorkspace: 1_000_000, perPartition: 10_000_000 }

function lane(
  workspace: string,
  key: string,
  tier = 'free',
  laneWeight = 1,
  workspaceWeight = 1,
): LaneIdentity {
  return { lane: `${workspace}/${key}`, workspace, tier, laneWeight, workspaceWeight }
}

/**
 * A target that serves one request at a time (concurrency 1): the gate refuses at partition
 * level while one is in flight, and each completion releases it. Every dispatch is recorded.
 */
function harness(
  options: {
    tiers?: TierSpec[]
    discipline?: 'fair' | 'fifo'
    bounds?: typeof BIG
    budget?: NodeQueueBudget
    gate?: (t: QueuedTicket<string>, now: number) => GateVerdict
  } = {},
) {
  let now = 0
  let inFlight = 0
  const served: QueuedTicket<string>[] = []
  const expired: QueuedTicket<string>[] = []
  const rejected: QueuedTicket<string>[] = []
  const scheduler = new LaneScheduler<string>({
    now: () => now,
    tiers: options.tiers ?? TIERS,
    bounds: options.bounds ?? BIG,
    budget: options.budget ?? new NodeQueueBudget(100_000_000),
    quantum: 1,
    discipline: options.discipline ?? 'fair',
    gate: options.gate
      ? (t) => (options.gate as (t: QueuedTicket<string>, now: number) => GateVerdict)(t, now)
      : () => (inFlight < 1 ? { go: true } : { go: false, level: 'partition' }),
    onDispatch: (t) => {
      inFlight++
      served.push(t)
    },
    onExpire: (t) => expired.push(t),
    onReject: (t) => rejected.push(t),
  })
  return {
    scheduler,
    served,
    expired,
    rejected,
    get now() {
      return now
    },
    set now(value: number) {
      now = value
    },
    /** Completes the request in flight and lets the next one go. */
    complete() {
      inFlight = Math.max(0, inFlight - 1)
      scheduler.released()
      scheduler.pump()
    },
    /**
     * Sleeps as the host does, from wake-up to wake-up (some early, from coarse timer slots),
     * until `done` holds; returns the time it held at.
     */
    wakeUntil(done: () => boolean): number {
      while (!done()) {
        const at = scheduler.nextWakeAt()
        if (at === undefined) throw new Error('nothing left to wake for')
        expect(at).toBeGreaterThan(now)
        now = at
        scheduler.pump()
      }
      return now
    },
  }
}

function enqueue(
  h: ReturnType<typeof harness>,
  identity: LaneIdentity,
  cost = 1,
): QueuedTicket<string> {
  const ticket = h.scheduler.enqueue(identity.lane, identity, cost)
  if (typeof ticket === 'string') throw new Error(`refused by ${ticket}`)
  return ticket
}

/** Keeps every lane backlogged and serves `rounds` requests; returns cost served per lane. */
function backlogged(
  h: ReturnType<typeof harness>,
  lanes: LaneIdentity[],
  rounds: number,
  costOf = (_l: LaneIdentity) => 1,
) {
  const byLane = new Map<string, number>()
  for (const l of lanes) for (let i = 0; i < 4; i++) enqueue(h, l, costOf(l))
  h.scheduler.pump()
  for (let i = 0; i < rounds; i++) {
    const last = h.served.at(-1) as QueuedTicket<string>
    byLane.set(last.identity.lane, (byLane.get(last.identity.lane) ?? 0) + last.cost)
    enqueue(h, last.identity, last.cost)
    h.complete()
  }
  return byLane
}

function expectShares(byLane: Map<string, number>, ideal: Map<string, number>) {
  const total = [...byLane.values()].reduce((a, b) => a + b, 0)
  const idealTotal = [...ideal.values()].reduce((a, b) => a + b, 0)
  for (const [id, weight] of ideal) {
    const share = (byLane.get(id) ?? 0) / total
    const expected = weight / idealTotal
    expect(
      Math.abs(share - expected) / expected,
      `${id}: ${share} vs ${expected}`,
    ).toBeLessThanOrEqual(0.01)
  }
}

describe('LaneScheduler fairness (properties)', () => {
  it('gives each backlogged lane its weighted share within 1%, across workspaces and keys', () => {
    let seed = 3
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647
    for (let trial = 0; trial < 5; trial++) {
      const h = harness()
      const lanes: LaneIdentity[] = []
      const ideal = new Map<string, number>()
      const workspaces = 1 + Math.floor(random() * 5)
      const wsWeights = Array.from({ length: workspaces }, () => 1 + Math.floor(random() * 4))
      const wsTotal = wsWeights.reduce((a, b) => a + b, 0)
      wsWeights.forEach((wsWeight, w) => {
        const keys = 1 + Math.floor(random() * 6)
        const keyWeights = Array.from({ length: keys }, () => 1 + Math.floor(random() * 3))
        const keyTotal = keyWeights.reduce((a, b) => a + b, 0)
        keyWeights.forEach((keyWeight, k) => {
          const identity = lane(`ws${w}`, `k${k}`, 'free', keyWeight, wsWeight)
          lanes.push(identity)
          ideal.set(identity.lane, (wsWeight / wsTotal) * (keyWeight / keyTotal))
        })
      })
      expectShares(backlogged(h, lanes, 60_000), ideal)
    }
  })

  it('shares cost units, not requests: a lane of costly requests gets fewer of them', () => {
    const h = harness()
    const cheap = lane('a', 'cheap')
    const costly = lane('b', 'costly')
    const byLane = backlogged(h, [cheap, costly], 20_000, (l) => (l === costly ? 4 : 1))
    expectShares(
      byLane,
      new Map([
        [cheap.lane, 1],
        [costly.lane, 1],
      ]),
    )
  })

  it('serves everything a lane sends below its fair share, promptly', () => {
    const h = harness()
    const floods = [lane('a', 'flood1'), lane('b', 'flood2'), lane('c', 'flood3')]
    const quiet = lane('d', 'quiet')
    for (const f of floods) for (let i = 0; i < 50; i++) enqueue(h, f)
    h.scheduler.pump()
    const waits: number[] = []
    const sent = new Map<QueuedTicket<string>, number>()
    for (let round = 0; round < 20_000; round++) {
      // The quiet lane sends one request every 10 services: 10%, below its 25% share.
      if (round % 10 === 0) sent.set(enqueue(h, quiet), round)
      const last = h.served.at(-1) as QueuedTicket<string>
      if (last.identity !== quiet) enqueue(h, last.identity)
      else waits.push(round - (sent.get(last) as number))
      h.complete()
    }
    expect(waits.length).toBeGreaterThanOrEqual(1999)
    // Served within one round of the four lanes, whatever the floods queue up.
    expect(Math.max(...waits)).toBeLessThanOrEqual(4)
  })

  it('serves higher tiers first and starves a lower tier without a minimum share', () => {
    const h = harness()
    const paid = lane('p', 'k', 'paid')
    const free = lane('f', 'k', 'free')
    const byLane = backlogged(h, [paid, free], 5_000)
    expect(byLane.get(free.lane) ?? 0).toBe(0)
    expect(byLane.get(paid.lane)).toBe(5_000)
  })

  it('gives a tier its minimum share under a flood of a higher tier', () => {
    for (const minShare of [0.05, 0.1, 0.3]) {
      const tiers = TIERS.map((t) => (t.name === 'free' ? { ...t, minShare } : t))
      const h = harness({ tiers })
      const byLane = backlogged(
        h,
        [lane('p', 'k', 'paid'), lane('p2', 'k', 'paid'), lane('f', 'k', 'free')],
        50_000,
      )
      expectShares(
        byLane,
        new Map([
          ['p/k', (1 - minShare) / 2],
          ['p2/k', (1 - minShare) / 2],
          ['f/k', minShare],
        ]),
      )
    }
  })

  it('gives reserved priority over paid, and paid over free', () => {
    const h = harness()
    const free = enqueue(h, lane('f', 'k', 'free'))
    // The first arrival goes at once (nothing is in flight); then priority decides.
    h.scheduler.pump()
    const paid = enqueue(h, lane('p', 'k', 'paid'))
    const reserved = enqueue(h, lane('r', 'k', 'reserved'))
    h.scheduler.pump()
    h.complete()
    h.complete()
    expect(h.served).toEqual([free, reserved, paid])
  })

  it('charges an after-the-fact cost to the lane', () => {
    const h = harness()
    const a = lane('a', 'k')
    const b = lane('b', 'k')
    const byLane = new Map<string, number>()
    for (const l of [a, b]) for (let i = 0; i < 4; i++) enqueue(h, l)
    h.scheduler.pump()
    for (let i = 0; i < 30_000; i++) {
      const last = h.served.at(-1) as QueuedTicket<string>
      byLane.set(last.identity.lane, (byLane.get(last.identity.lane) ?? 0) + 1)
      // Lane a's responses turn out to cost 3 units each: 2 more than declared.
      if (last.identity === a) h.scheduler.charge(a.lane, a.workspace, a.tier, 2)
      enqueue(h, last.identity)
      h.complete()
    }
    const ratio = (byLane.get(b.lane) as number) / (byLane.get(a.lane) as number)
    expect(ratio).toBeGreaterThan(2.9)
    expect(ratio).toBeLessThan(3.1)
  })
})

describe('LaneScheduler limits, bounds and deadlines', () => {
  it('blocks only the lane a limit names, until the time it names', () => {
    const blockedUntil = new Map<string, number>([['a/limited', 500]])
    const h = harness({
      gate: (t, now) => {
        const until = blockedUntil.get(t.identity.lane)
        if (until !== undefined && now < until) return { go: false, level: 'lane', until }
        return { go: true }
      },
    })
    const limited = enqueue(h, lane('a', 'limited'))
    const other = enqueue(h, lane('b', 'other'))
    h.scheduler.pump()
    expect(h.served).toEqual([other])
    const at = h.wakeUntil(() => h.served.length === 2)
    expect(at).toBe(500)
    expect(h.served).toEqual([other, limited])
  })

  it('rejects at once a ticket the gate says cannot make its deadline, and moves on', () => {
    const h = harness({
      gate: (t) => (t.identity.lane === 'w/hopeless' ? { go: false, reject: true } : { go: true }),
    })
    const hopeless = enqueue(h, lane('w', 'hopeless'))
    const fine = enqueue(h, lane('w', 'fine'))
    h.scheduler.pump()
    expect(h.rejected).toEqual([hopeless])
    expect(h.served).toEqual([fine])
    expect(h.scheduler.queued).toBe(0)
  })

  it('blocks a workspace without blocking another', () => {
    const h = harness({
      gate: (t) =>
        t.identity.workspace === 'full' ? { go: false, level: 'workspace' } : { go: true },
    })
    enqueue(h, lane('full', 'a'))
    enqueue(h, lane('full', 'b'))
    const free = enqueue(h, lane('open', 'c'))
    h.scheduler.pump()
    expect(h.served).toEqual([free])
    expect(h.scheduler.queued).toBe(2)
  })

  it('refuses at once at each bound, and a shared node budget spans partitions', () => {
    const budget = new NodeQueueBudget(5)
    const blockAll = () => ({ go: false, level: 'partition' }) as const
    const h = harness({
      bounds: { perLane: 2, perWorkspace: 3, perPartition: 4 },
      budget,
      gate: blockAll,
    })
    const other = harness({ bounds: BIG, budget, gate: blockAll })
    const results = [
      h.scheduler.enqueue('1', lane('w', 'a'), 1),
      h.scheduler.enqueue('2', lane('w', 'a'), 1),
      h.scheduler.enqueue('3', lane('w', 'a'), 1),
      h.scheduler.enqueue('4', lane('w', 'b'), 1),
      h.scheduler.enqueue('5', lane('w', 'c'), 1),
      h.scheduler.enqueue('6', lane('v', 'a'), 1),
      h.scheduler.enqueue('7', lane('u', 'a'), 1),
      other.scheduler.enqueue('8', lane('x', 'a'), 1),
      other.scheduler.enqueue('9', lane('x', 'b'), 1),
    ].map((r) => (typeof r === 'string' ? r : 'queued'))
    expect(results).toEqual([
      'queued',
      'queued',
      'lane',
      'queued',
      'workspace',
      'queued',
      'partition',
      'queued',
      'node',
    ])
    expect(budget.queued).toBe(5)
  })

  it('expires a ticket exactly at its maximum wait and frees its place', () => {
    const tiers = TIERS.map((t) => ({ ...t, maxWaitMs: 1000 }))
    const h = harness({ tiers, gate: () => ({ go: false, level: 'partition' }) })
    const t = enqueue(h, lane('w', 'a'))
    h.now = 400
    enqueue(h, lane('w', 'b'))
    h.scheduler.pump()
    expect(h.wakeUntil(() => h.expired.length === 1)).toBe(1000)
    expect(h.expired).toEqual([t])
    expect(h.scheduler.queued).toBe(1)
    expect(h.scheduler.queuedIn('w/a')).toBe(0)
    expect(h.wakeUntil(() => h.expired.length === 2)).toBe(1400)
    expect(h.scheduler.queued).toBe(0)
    expect(h.scheduler.lanes).toBe(0)
    expect(h.scheduler.nextWakeAt()).toBeUndefined()
  })

  it('cancels a waiting ticket: it is never dispatched and its place is free', () => {
    const h = harness()
    enqueue(h, lane('w', 'first'))
    h.scheduler.pump()
    const cancelled = enqueue(h, lane('w', 'a'))
    const kept = enqueue(h, lane('w', 'b'))
    expect(h.scheduler.cancel(cancelled)).toBe(true)
    expect(h.scheduler.cancel(cancelled)).toBe(false)
    h.complete()
    h.complete()
    expect(h.served.slice(1)).toEqual([kept])
    expect(h.scheduler.queued).toBe(0)
  })

  it('in fifo discipline serves arrival order and lets the head block everyone', () => {
    const h = harness({ discipline: 'fifo' })
    const order = [
      lane('a', 'x'),
      lane('b', 'y'),
      lane('a', 'x'),
      lane('c', 'z'),
      lane('b', 'y'),
    ].map((l) => enqueue(h, l))
    h.scheduler.pump()
    for (let i = 0; i < 5; i++) h.complete()
    expect(h.served).toEqual(order)
  })
})

describe('LaneScheduler bookkeeping (properties)', () => {
  /** A fixed, well-spread sequence (multiplicative hashing): every run draws the same cases. */
  const pick = (i: number, n: number): number => (Math.imul(i + 1, 2654435761) >>> 0) % n

  it('accounts for every ticket once under mixed enqueues, cancels, blocks and expiries', () => {
    let now = 0
    let inFlight = 0
    const tiers: TierSpec[] = [
      { name: 'reserved', priority: 0, minShare: 0, maxWaitMs: 50 },
      { name: 'paid', priority: 1, minShare: 0.2, maxWaitMs: 80 },
      { name: 'free', priority: 2, minShare: 0.1, maxWaitMs: 120 },
    ]
    // Six workspaces, each with lanes in several tiers: a workspace's count spans its groups.
    const ids = Array.from({ length: 40 }, (_, i) =>
      lane(`w${i % 6}`, `k${i}`, (tiers[(i >> 1) % 3] as TierSpec).name, 1 + (i % 3), 1 + (i % 2)),
    )
    const bounds = { perLane: 5, perWorkspace: 12, perPartition: 200 }
    const budget = new NodeQueueBudget(150)
    const outstanding = new Set<QueuedTicket<number>>()
    const leave = (t: QueuedTicket<number>): void => {
      expect(outstanding.delete(t)).toBe(true)
      expect(t.done).toBe(true)
    }
    const scheduler = new LaneScheduler<number>({
      now: () => now,
      tiers,
      bounds,
      budget,
      quantum: 1,
      discipline: 'fair',
      gate: (t) => {
        if (inFlight >= 3) return { go: false, level: 'partition' }
        const p = t.payload % 20
        if (p === 7) return { go: false, level: 'lane', until: now + 1 + (t.payload % 13) }
        if (p === 8) return { go: false, level: 'workspace' }
        if (p === 9) return { go: false, reject: true }
        return { go: true }
      },
      onDispatch: (t) => {
        inFlight++
        leave(t)
      },
      onExpire: leave,
      onReject: leave,
    })
    const check = (): void => {
      expect(scheduler.queued).toBe(outstanding.size)
      expect(budget.queued).toBe(outstanding.size)
      const perLane = new Map<string, number>()
      const perWorkspace = new Map<string, number>()
      for (const t of outstanding) {
        perLane.set(t.identity.lane, (perLane.get(t.identity.lane) ?? 0) + 1)
        perWorkspace.set(t.identity.workspace, (perWorkspace.get(t.identity.workspace) ?? 0) + 1)
      }
      for (const id of ids) expect(scheduler.queuedIn(id.lane)).toBe(perLane.get(id.lane) ?? 0)
      expect(scheduler.lanes).toBe(perLane.size)
      for (const n of perWorkspace.values()) expect(n).toBeLessThanOrEqual(bounds.perWorkspace)
    }
    let payload = 0
    for (let i = 0; i < 5_000; i++) {
      const action = pick(i, 10)
      if (action <= 5) {
        const id = ids[pick(i * 7 + 3, ids.length)] as LaneIdentity
        const t = scheduler.enqueue(payload++, id, 1 + pick(i, 3))
        if (typeof t !== 'string') outstanding.add(t)
      } else if (action === 6) {
        const victim = [...outstanding][pick(i * 5, Math.max(1, outstanding.size))]
        if (victim) {
          expect(scheduler.cancel(victim)).toBe(true)
          leave(victim)
          expect(scheduler.cancel(victim)).toBe(false)
        }
      } else if (action <= 8) {
        const id = ids[pick(i * 3, ids.length)] as LaneIdentity
        inFlight = Math.max(0, inFlight - 1)
        scheduler.released(id.lane, id.workspace)
      } else {
        now += 1 + pick(i * 11, 5)
      }
      scheduler.pump()
      check()
    }
    // Every block ends by a time or a release, and every ticket by its deadline at the latest.
    while (outstanding.size > 0) {
      inFlight = 0
      for (const id of ids) scheduler.released(id.lane, id.workspace)
      now = scheduler.nextWakeAt() ?? now + 1
      scheduler.pump()
      check()
    }
    expect(scheduler.lanes).toBe(0)
    expect(scheduler.nextWakeAt()).toBeUndefined()
  })

  it('stamps a ticket queued from a dispatch callback with the time of its pump', () => {
    let now = 100
    const queued: QueuedTicket<string>[] = []
    const scheduler: LaneScheduler<string> = new LaneScheduler<string>({
      now: () => now,
      tiers: TIERS,
      bounds: BIG,
      budget: new NodeQueueBudget(100),
      quantum: 1,
      discipline: 'fair',
      gate: () => {
        now += 5
        return { go: true }
      },
      onDispatch: (t) => {
        if (t.payload === 'first')
          queued.push(scheduler.enqueue('second', t.identity, 1) as QueuedTicket<string>)
      },
      onExpire: () => {},
      onReject: () => {},
    })
    scheduler.enqueue('first', lane('w', 'k'), 1)
    scheduler.pump()
    expect(queued[0]?.enqueuedAt).toBe(100)
    expect(queued[0]?.done).toBe(true)
  })

  it("keeps the arrival time to the millisecond and the deadline on the caller's clock", () => {
    const h = harness()
    h.now = 1_000.75
    const t = enqueue(h, lane('w', 'k'))
    expect(t.enqueuedAt).toBe(1_000)
    expect(t.deadline).toBe(31_001)
  })
})

describe('LaneScheduler work per decision (O(1) by counting)', () => {
  it('takes a bounded number of steps per decision, whatever the number of lanes', () => {
    const perDecision: number[] = []
    for (const lanes of [1, 1_000, 100_000]) {
      const h = harness()
      const identities = Array.from({ length: lanes }, (_, i) => lane(`w${i % 100}`, `k${i}`))
      for (const l of identities) enqueue(h, l)
      h.scheduler.pump()
      const before = { ...h.scheduler.work }
      const rounds = 50_000
      for (let i = 0; i < rounds; i++) {
        enqueue(h, (h.served.at(-1) as QueuedTicket<string>).identity)
        h.complete()
      }
      const work = h.scheduler.work
      const decisions = work.decisions - before.decisions
      expect(decisions).toBe(rounds)
      perDecision.push((work.steps - before.steps + work.gateCalls - before.gateCalls) / decisions)
    }
    for (const steps of perDecision) expect(steps).toBeLessThanOrEqual(4)
  })

  it('ignores the lane an identity remembers once it emptied or belongs to another scheduler', () => {
    const a = harness()
    const b = harness()
    const shared = lane('w', 'k')
    enqueue(a, shared)
    a.scheduler.pump()
    a.complete()
    // The lane in `a` has emptied and been dropped; `b` must build its own.
    const inB = enqueue(b, shared)
    const again = enqueue(a, shared)
    expect(b.scheduler.queuedIn(shared.lane)).toBe(1)
    expect(a.scheduler.queuedIn(shared.lane)).toBe(1)
    b.scheduler.pump()
    a.scheduler.pump()
    expect(b.served).toEqual([inB])
    expect(a.served.at(-1)).toBe(again)
  })

  it('keeps nothing for a lane once it is empty', () => {
    const h = harness({ gate: () => ({ go: true }) })
    for (let i = 0; i < 10_000; i++) h.scheduler.enqueue(String(i), lane('w', `k${i}`), 1)
    h.scheduler.pump()
    expect(h.scheduler.lanes).toBe(0)
    expect(h.scheduler.nextWakeAt()).toBeUndefined()
  })
})

describe('LaneScheduler decisions at once while idle', () => {
  /** A target of capacity 2; `atOnce` lets a ticket go without queueing whenever it may. */
  function run(atOnce: boolean): string[] {
    let now = 0
    let inFlight = 0
    const tiers: TierSpec[] = [
      { name: 'paid', priority: 1, minShare: 0, maxWaitMs: 1_000 },
      // Short waits: tickets of the lower tiers expire, leaving credits behind them.
      { name: 'free', priority: 2, minShare: 0.3, maxWaitMs: 40 },
      { name: 'batch', priority: 3, minShare: 0.1, maxWaitMs: 25 },
    ]
    const served: string[] = []
    const scheduler = new LaneScheduler<string>({
      now: () => now,
      tiers,
      bounds: BIG,
      budget: new NodeQueueBudget(1_000),
      quantum: 1,
      discipline: 'fair',
      gate: () => (inFlight < 2 ? { go: true } : { go: false, level: 'partition' }),
      onDispatch: (t) => {
        inFlight++
        served.push(t.payload)
      },
      onExpire: () => undefined,
      onReject: () => undefined,
    })
    const ids = ['paid', 'free', 'batch'].flatMap((tier) =>
      [0, 1, 2].map((k) => lane(`w-${tier}`, `k${k}`, tier)),
    )
    const pick = (i: number, n: number): number => (Math.imul(i + 7, 2654435761) >>> 0) % n
    for (let i = 0; i < 20_000; i++) {
      now += 1
      const identity = ids[pick(i, ids.length)] as LaneIdentity
      // Bursts of arrivals and of completions, so the partition empties and fills again.
      if (pick(i * 3, 10) < (pick(i >> 6, 2) === 0 ? 7 : 3)) {
        const name = `${identity.lane}#${i}`
        if (atOnce && scheduler.idle(identity) && inFlight < 2) {
          scheduler.dispatchedAtOnce(identity, 1)
          inFlight++
          served.push(name)
        } else {
          scheduler.enqueue(name, identity, 1)
          scheduler.pump()
        }
      } else if (inFlight > 0) {
        inFlight--
        scheduler.released()
        scheduler.pump()
      }
    }
    return served
  }

  it('serves the same tickets in the same order as queueing each one would', () => {
    const queued = run(false)
    expect(queued.length).toBeGreaterThan(5_000)
    expect(run(true)).toEqual(queued)
  })

  it('clears a credit left by tickets that went away, as a dispatch from the queue would', () => {
    const tiers = TIERS.map((t) => (t.name === 'free' ? { ...t, minShare: 0.5 } : t))
    const nextTier = (atOnce: boolean): string | undefined => {
      const h = harness({ tiers })
      const paid = lane('p', 'k', 'paid')
      const free = lane('f', 'k', 'free')
      // Free is owed a share while it waits behind paid, then its ticket goes away: the
      // partition empties with that credit still on the free tier.
      const f1 = enqueue(h, free)
      const waiting = [1, 2, 3].map(() => enqueue(h, paid))
      h.scheduler.pump()
      for (const ticket of [f1, ...waiting]) h.scheduler.cancel(ticket)
      h.complete()
      // A paid request into the idle partition, decided at once or through the queue.
      if (atOnce && h.scheduler.idle(paid)) h.scheduler.dispatchedAtOnce(paid, 1)
      else {
        enqueue(h, paid)
        h.scheduler.pump()
      }
      // Both tiers backlogged: strict priority, unless free is (wrongly) still owed.
      enqueue(h, free)
      enqueue(h, paid)
      h.complete()
      return h.served.at(-1)?.identity.tier
    }
    expect(nextTier(false)).toBe('paid')
    expect(nextTier(true)).toBe('paid')
  })

  it('is idle only with nothing queued, nothing holding the partition and room in every bound', () => {
    const h = harness()
    const a = lane('w', 'a')
    expect(h.scheduler.idle(a)).toBe(true)
    expect(h.scheduler.idle(lane('w', 'a', 'platinum'))).toBe(false)
    enqueue(h, a)
    h.scheduler.pump()
    expect(h.scheduler.idle(a)).toBe(true)
    // One in flight: the next waits, and the partition is held until a release.
    const waiting = enqueue(h, a)
    h.scheduler.pump()
    expect(h.scheduler.idle(lane('w', 'b'))).toBe(false)
    h.scheduler.cancel(waiting)
    expect(h.scheduler.queued).toBe(0)
    expect(h.scheduler.idle(lane('w', 'b'))).toBe(false)
    h.complete()
    expect(h.scheduler.idle(lane('w', 'b'))).toBe(true)

    const budget = new NodeQueueBudget(1)
    const full = harness({ budget, gate: () => ({ go: false, level: 'lane' }) })
    const other = harness({ budget })
    enqueue(full, a)
    expect(other.scheduler.idle(a)).toBe(false)
    expect(harness({ bounds: { ...BIG, perLane: 0 } }).scheduler.idle(a)).toBe(false)
  })
})
