import { afterEach, describe, expect, it, vi } from 'vitest'
import { NodeQueueBudget } from '@fairlane/scheduler'
import { AllowanceWaiters, NEXT_CHANGE_WAIT_MS } from './allowance-waiters.ts'
import { PartitionHosts, type PartitionSettings } from './partition-hosts.ts'

const settings: PartitionSettings = {
  tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs: 2000 }],
  bounds: { perLane: 10, perWorkspace: 100, perPartition: 100 },
  quantum: 1,
  discipline: 'fair',
}

function hosts() {
  return new PartitionHosts<string>({
    now: () => 0,
    budget: new NodeQueueBudget(100),
    events: { gate: () => ({ go: true }), dispatched: () => {}, refused: () => {} },
  })
}

afterEach(() => {
  vi.useRealTimers()
})

describe('AllowanceWaiters', () => {
  it('wakes the tickets waiting on a scope when it changes, and only those', async () => {
    const waiters = new AllowanceWaiters<string>()
    let woken = ''
    const onA = waiters.nextChange('global').then(() => (woken += 'global'))
    void waiters.nextChange('workspace:w').then(() => (woken += 'workspace'))
    waiters.changed('global')
    await onA
    expect(woken).toBe('global')
  })

  it('gives up waiting after NEXT_CHANGE_WAIT_MS, so a silent ledger turns into its onLedgerDown policy', async () => {
    vi.useFakeTimers()
    const waiters = new AllowanceWaiters<string>()
    let done = false
    void waiters.nextChange('global').then(() => (done = true))
    await vi.advanceTimersByTimeAsync(NEXT_CHANGE_WAIT_MS - 1)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(done).toBe(true)
  })

  it('answers each host whose lanes waited on the scope once, then forgets them', () => {
    const partitions = hosts()
    const a = partitions.host('a#0', settings)
    const b = partitions.host('b#0', settings)
    const waiters = new AllowanceWaiters<string>()
    waiters.laneWaits('global', a, 'w/1', 'w')
    waiters.laneWaits('global', a, 'w/2', 'w')
    waiters.laneWaits('global', b, 'w/1', 'w')
    waiters.laneWaits('workspace:w', b, 'w/3', 'w')
    expect([...waiters.changed('global')]).toEqual([a, b])
    expect([...waiters.changed('global')]).toEqual([])
    expect([...waiters.changed('workspace:w')]).toEqual([b])
    partitions.close()
  })
})
