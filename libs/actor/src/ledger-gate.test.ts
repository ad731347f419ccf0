import { describe, expect, it } from 'vitest'
import { MemoryLedger, type ScopeLimit } from '@fairlane/limits'
import type { Ticket } from '@fairlane/protocol'
import { NodeQueueBudget, type QueuedTicket } from '@fairlane/scheduler'
import { AdaptiveLanes } from './adaptive-lanes.ts'
import { AllowanceWaiters } from './allowance-waiters.ts'
import { CheckpointBook } from './checkpoint-book.ts'
import { LedgerGate, levelOf } from './ledger-gate.ts'
import { PartitionHosts, type PartitionSettings } from './partition-hosts.ts'
import type { Pending } from './pending.ts'
import type { TicketPolicy } from './ticket-policy.ts'

const settings: PartitionSettings = {
  tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs: 2000 }],
  bounds: { perLane: 10, perWorkspace: 100, perPartition: 100 },
  quantum: 1,
  discipline: 'fair',
  capacity: 2,
  headroom: 1,
}
const ticket: Ticket = { requestId: 'r', workspace: 'w', keyId: 'a', target: 'echo', cost: 1 }

function setup(scopes: ScopeLimit[]) {
  let t = 0
  const now = () => t
  const ledger = new MemoryLedger({ now })
  const lanes = new AdaptiveLanes(now)
  const book = new CheckpointBook({ ledger, lanes, tracking: true })
  const gate = new LedgerGate({
    ledger,
    now,
    shared: undefined,
    lanes,
    waiters: new AllowanceWaiters<Pending>(),
    book,
  })
  const hosts = new PartitionHosts<Pending>({
    now,
    budget: new NodeQueueBudget(100),
    events: { gate: (q) => gate.verdict(q), dispatched: () => {}, refused: () => {} },
  })
  const policy: TicketPolicy = {
    identity: { lane: 'w/a', workspace: 'w', tier: 'free', laneWeight: 1, workspaceWeight: 1 },
    scopes,
    maxWaitMs: 1000,
    partition: 'echo#0',
    settings,
  }
  const host = hosts.host(policy.partition, settings)
  const queue = (): QueuedTicket<Pending> => {
    const pending: Pending = { ticket, policy, host, resolve: () => {} }
    const queued = host.scheduler.enqueue(pending, policy.identity, 1, policy.maxWaitMs)
    if (typeof queued === 'string') throw new Error(`refused by the ${queued} bound`)
    return queued
  }
  return { gate, ledger, book, lanes, host, policy, queue, advance: (ms: number) => (t += ms) }
}

describe('levelOf', () => {
  it('stops a lane for its own limits, a workspace for its own, a partition for the rest', () => {
    expect(['key', 'client', 'upstream', 'workspace', 'target', 'global'].map(levelOf)).toEqual([
      'lane',
      'lane',
      'lane',
      'workspace',
      'partition',
      'partition',
    ])
  })
})

describe('LedgerGate', () => {
  it('holds back a lane at the headroom before the ledger is asked', () => {
    const slots: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 2 }
    const { gate, ledger, host, queue } = setup([slots])
    host.headroom.took('w/a')
    expect(gate.verdict(queue())).toEqual({ go: false, level: 'lane' })
    expect(ledger.inFlight('target:echo')).toBe(0)
  })

  it('lets a ticket go when every scope passes, and books the change for the checkpoint', () => {
    const rate: ScopeLimit = {
      id: 'key:w/a',
      kind: 'key',
      rate: { limit: 1, periodMs: 100, burst: 1 },
    }
    const { gate, book, queue } = setup([rate])
    const first = queue()
    expect(gate.verdict(first)).toEqual({ go: true })
    expect(first.payload.decision?.allowed).toBe(true)
    expect(book.changedPartitions).toEqual(['echo#0'])
  })

  it('names when a rate allows the ticket, and rejects when that is past its deadline', () => {
    const fast: ScopeLimit = {
      id: 'key:w/a',
      kind: 'key',
      rate: { limit: 1, periodMs: 100, burst: 1 },
    }
    const within = setup([fast])
    expect(within.gate.verdict(within.queue())).toEqual({ go: true })
    expect(within.gate.verdict(within.queue())).toEqual({ go: false, level: 'lane', until: 100 })
    const slow: ScopeLimit = {
      id: 'workspace:w',
      kind: 'workspace',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
    }
    const past = setup([slow])
    expect(past.gate.verdict(past.queue())).toEqual({ go: true })
    expect(past.gate.verdict(past.queue())).toEqual({ go: false, reject: true })
  })

  it("decides a ticket that does not queue at once: a grant, or the ledger's refusal", async () => {
    const rate: ScopeLimit = {
      id: 'key:w/a',
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
    }
    const { gate, policy } = setup([rate])
    const granted = await gate.decideNow(ticket, policy)
    expect(granted).toMatchObject({ decision: { allowed: true }, hold: undefined })
    expect(await gate.decideNow(ticket, policy)).toMatchObject({
      allowed: false,
      code: 'rate_limited',
      refusedBy: 'key',
      reason: 'rate',
    })
    expect(await gate.decideNow({ ...ticket, cost: 2 }, policy)).toMatchObject({
      allowed: false,
      code: 'rate_limited',
      reason: 'cost',
    })
  })

  it('refuses a ticket that does not queue while the upstream blocks its lane, as rate_limited', async () => {
    const { gate, lanes, policy } = setup([])
    const adaptive = { enabled: true, decrease: 0.5, increasePerSecond: 1 }
    const learning = { ...policy, settings: { ...settings, adaptive } }
    lanes.observe(learning, { status: 429, retryAfterMs: 5_000 })
    expect(await gate.decideNow(ticket, learning)).toEqual({
      allowed: false,
      code: 'rate_limited',
      refusedBy: 'upstream',
      reason: 'rate',
      retryAfterMs: 5_000,
      views: [],
    })
  })
})
