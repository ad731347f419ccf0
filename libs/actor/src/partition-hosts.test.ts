import { setTimeout as sleep } from 'node:timers/promises'
import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeQueueBudget, type GateVerdict } from '@fairlane/scheduler'
import { PartitionHosts, type PartitionSettings } from './partition-hosts.ts'

const settings: PartitionSettings = {
  tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs: 5000 }],
  bounds: { perLane: 10, perWorkspace: 100, perPartition: 100 },
  quantum: 1,
  discipline: 'fair',
}
const identity = { lane: 'w/a', workspace: 'w', tier: 'free', laneWeight: 1, workspaceWeight: 1 }

let partitions: PartitionHosts<string> | undefined
afterEach(() => partitions?.close())

/** Hosts whose gate lets a ticket go from `openAt` on; answers what was dispatched and when. */
function setup(openAt: () => number) {
  const now = () => performance.now()
  const dispatched: { payload: string; at: number }[] = []
  partitions = new PartitionHosts<string>({
    now,
    budget: new NodeQueueBudget(100),
    events: {
      gate: (): GateVerdict =>
        now() >= openAt() ? { go: true } : { go: false, level: 'partition', until: openAt() },
      dispatched: (queued) => dispatched.push({ payload: queued.payload, at: now() }),
      refused: () => {},
    },
  })
  return { partitions, dispatched, now }
}

describe('PartitionHosts', () => {
  it('dispatches a waiting ticket on a real timer at the time its gate names', async () => {
    const openAt = performance.now() + 100
    const { partitions: hosts, dispatched } = setup(() => openAt)
    const host = hosts.host('echo#0', settings)
    host.scheduler.enqueue('t1', identity, 1, 5000)
    hosts.pump(host)
    expect(dispatched).toEqual([])
    await sleep(1000)
    expect(dispatched.map((d) => d.payload)).toEqual(['t1'])
    expect(dispatched[0]?.at).toBeGreaterThanOrEqual(openAt - 1)
  })

  it('gives new settings a new scheduler, and lets the old one drain before it goes', async () => {
    const openAt = performance.now() + 100
    const { partitions: hosts, dispatched } = setup(() => openAt)
    const old = hosts.host('echo#0', settings)
    expect(hosts.host('echo#0', settings)).toBe(old)
    old.scheduler.enqueue('old', identity, 1, 5000)
    hosts.pump(old)
    const reloaded = hosts.host('echo#0', { ...settings })
    expect(reloaded).not.toBe(old)
    expect(hosts.get('echo#0')).toBe(reloaded)
    expect(hosts.all()).toEqual([reloaded, old])
    await sleep(1000)
    expect(dispatched.map((d) => d.payload)).toEqual(['old'])
    expect(hosts.all()).toEqual([reloaded])
  })

  it('stops every timer on close', async () => {
    const openAt = performance.now() + 50
    const { partitions: hosts, dispatched } = setup(() => openAt)
    const host = hosts.host('echo#0', settings)
    host.scheduler.enqueue('t1', identity, 1, 5000)
    hosts.pump(host)
    hosts.close()
    await sleep(300)
    expect(dispatched).toEqual([])
  })
})
