import { describe, expect, it } from 'vitest'
import type { AdaptiveSettings, ScopeLimit } from '@fairlane/limits'
import { AdaptiveLanes, MAX_ADAPTIVE_LANES, ceilingOf } from './adaptive-lanes.ts'
import type { PartitionSettings } from './partition-hosts.ts'
import type { TicketPolicy } from './ticket-policy.ts'

const adaptive: AdaptiveSettings = { enabled: true, decrease: 0.5, increasePerSecond: 1 }
const settings: PartitionSettings = {
  tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs: 2000 }],
  bounds: { perLane: 10, perWorkspace: 100, perPartition: 100 },
  quantum: 1,
  discipline: 'fair',
  adaptive,
}
const keyRate: ScopeLimit = {
  id: 'key:w/a',
  kind: 'key',
  rate: { limit: 20, periodMs: 1000, burst: 1 },
}

function policyOf(lane: string, partitionSettings = settings): TicketPolicy {
  return {
    identity: { lane, workspace: 'w', tier: 'free', laneWeight: 1, workspaceWeight: 1 },
    scopes: [keyRate],
    maxWaitMs: 2000,
    partition: 'echo#0',
    settings: partitionSettings,
  }
}

describe('ceilingOf', () => {
  it('is the tightest configured rate per second and concurrency', () => {
    expect(
      ceilingOf([
        keyRate,
        { id: 'workspace:w', kind: 'workspace', rate: { limit: 600, periodMs: 60_000, burst: 1 } },
        { id: 'target:echo', kind: 'target', concurrency: 4 },
        { id: 'global', kind: 'global', concurrency: 8 },
      ]),
    ).toEqual({ rps: 10, concurrency: 4 })
    expect(ceilingOf([])).toEqual({})
  })
})

describe('AdaptiveLanes', () => {
  it('keeps nothing for a stated limit no tighter than the configured one', () => {
    const lanes = new AdaptiveLanes(() => 0)
    expect(lanes.observe(policyOf('w/a'), { status: 200, rps: 50 })).toBe(false)
    expect(lanes.learned(policyOf('w/a'), 0)).toBeUndefined()
  })

  it('adopts a tighter stated rate as a scope of the lane', () => {
    const lanes = new AdaptiveLanes(() => 0)
    expect(lanes.observe(policyOf('w/a'), { status: 200, rps: 5 })).toBe(true)
    const learned = lanes.learned(policyOf('w/a'), 0)
    expect(learned && 'scope' in learned ? learned.scope.rate?.limit : undefined).toBeDefined()
    expect(lanes.learned(policyOf('w/b'), 0)).toBeUndefined()
  })

  it('blocks the lane until a Retry-After, refusing tickets whose deadline comes first', () => {
    let t = 1_000
    const lanes = new AdaptiveLanes(() => t)
    lanes.observe(policyOf('w/a'), { status: 429, retryAfterMs: 500 })
    expect(lanes.learned(policyOf('w/a'), 2_000)).toEqual({ until: 1_500 })
    expect(lanes.learned(policyOf('w/a'), 1_200)).toMatchObject({
      until: 1_500,
      refusal: { allowed: false, refusedBy: 'upstream', reason: 'rate', retryAfterMs: 500 },
    })
    t = 1_600
    const after = lanes.learned(policyOf('w/a'), 2_000)
    expect(after && 'until' in after).toBeFalsy()
  })

  it('forgets what a lane learned once a reload turns adaptive limits off', () => {
    const lanes = new AdaptiveLanes(() => 0)
    lanes.observe(policyOf('w/a'), { status: 200, rps: 5 })
    const off = { ...settings, adaptive: { ...adaptive, enabled: false } }
    expect(lanes.learned(policyOf('w/a', off), 0)).toBeUndefined()
    expect(lanes.learned(policyOf('w/a'), 0)).toBeUndefined()
  })

  it('hands what lanes learned to a next owner', () => {
    const lanes = new AdaptiveLanes(() => 0)
    lanes.observe(policyOf('w/a'), { status: 200, rps: 5 })
    const saved = lanes.save('echo#0')
    expect(Object.keys(saved)).toEqual(['w/a'])
    const next = new AdaptiveLanes(() => 10_000)
    next.restore('echo#0', saved, 100)
    expect(next.learned(policyOf('w/a'), 10_000)).toHaveProperty('scope')
  })

  it('keeps at most MAX_ADAPTIVE_LANES lanes per partition, dropping the oldest', () => {
    const lanes = new AdaptiveLanes(() => 0)
    for (let i = 0; i <= MAX_ADAPTIVE_LANES; i++) {
      lanes.observe(policyOf(`w/${i}`), { status: 200, rps: 5 })
    }
    expect(Object.keys(lanes.save('echo#0'))).toHaveLength(MAX_ADAPTIVE_LANES)
    expect(lanes.learned(policyOf('w/0'), 0)).toBeUndefined()
    expect(lanes.learned(policyOf(`w/${MAX_ADAPTIVE_LANES}`), 0)).toHaveProperty('scope')
  })

  it('cuts a bare 429 from the rate the lane was admitted at', () => {
    const t = 5_000
    const lanes = new AdaptiveLanes(() => t)
    const policy = policyOf('w/a')
    for (let i = 0; i < 8; i++) lanes.admitted(policy.identity)
    expect(lanes.observe(policy, { status: 429 })).toBe(true)
    const learned = lanes.learned(policy, t)
    const rate = learned && 'scope' in learned ? learned.scope.rate : undefined
    // Half of the 8 per second it was admitted at.
    expect(rate ? (rate.limit * 1000) / rate.periodMs : undefined).toBeCloseTo(4)
  })
})
