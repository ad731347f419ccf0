import { describe, expect, it } from 'vitest'
import { HealthRegistry, type HealthTransition } from './health-registry.ts'
import type { Outcome } from './upstream-outcome.ts'

const fail: Outcome = { ok: false, kind: 'status-5xx', latencyMs: 3 }

function setup() {
  const clock = { t: 10_000 }
  const transitions: HealthTransition[] = []
  const registry = new HealthRegistry({
    now: () => clock.t,
    circuit: { openMs: 2_000 },
    onTransition: (t) => transitions.push(t),
  })
  registry.sync('openai', [
    { id: 'eu', region: 'eu-west' },
    { id: 'us', region: 'us-east' },
  ])
  registry.sync('echo', [{ id: 'local' }])
  return { clock, registry, transitions }
}

describe('HealthRegistry', () => {
  it('snapshots every endpoint as plain JSON', () => {
    const { registry } = setup()
    const eu = registry.health('openai', 'eu')
    for (let i = 0; i < 5; i++) eu?.record(fail)
    for (let i = 0; i < 10; i++)
      registry.health('echo', 'local')?.record({ ok: true, kind: 'success', latencyMs: 7 })

    const snapshot = registry.snapshot()
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot)
    expect(snapshot).toEqual([
      {
        target: 'openai',
        endpoint: 'eu',
        region: 'eu-west',
        state: 'open',
        failures: 5,
        requests: 5,
        p95Ms: null,
        lastFailure: { kind: 'status-5xx', at: 10_000 },
        openedAt: 10_000,
        halfOpenAt: 12_000,
      },
      {
        target: 'openai',
        endpoint: 'us',
        region: 'us-east',
        state: 'closed',
        failures: 0,
        requests: 0,
        p95Ms: null,
      },
      {
        target: 'echo',
        endpoint: 'local',
        region: null,
        state: 'closed',
        failures: 0,
        requests: 10,
        p95Ms: 7,
      },
    ])
  })

  it('shows a circuit turning half-open when its time is up, and reports the change', () => {
    const { clock, registry, transitions } = setup()
    for (let i = 0; i < 5; i++) registry.health('openai', 'us')?.record(fail)
    clock.t += 2_000
    const us = registry.snapshot().find((s) => s.endpoint === 'us')
    expect(us?.state).toBe('half-open')
    expect(us?.openedAt).toBe(10_000)
    expect(us?.halfOpenAt).toBeUndefined()
    expect(transitions).toEqual([
      { target: 'openai', endpoint: 'us', from: 'closed', to: 'open', at: 10_000, openMs: 2_000 },
      { target: 'openai', endpoint: 'us', from: 'open', to: 'half-open', at: 12_000 },
    ])
  })

  it('keeps the health of endpoints that survive a reload and drops the others', () => {
    const { registry } = setup()
    const eu = registry.health('openai', 'eu')
    for (let i = 0; i < 5; i++) eu?.record(fail)
    registry.sync('openai', [
      { id: 'eu', region: 'eu-central' },
      { id: 'ap', region: 'ap-south' },
    ])

    expect(registry.health('openai', 'eu')).toBe(eu)
    expect(registry.health('openai', 'us')).toBeUndefined()
    expect(
      registry
        .snapshot()
        .filter((s) => s.target === 'openai')
        .map((s) => [s.endpoint, s.region, s.state]),
    ).toEqual([
      ['eu', 'eu-central', 'open'],
      ['ap', 'ap-south', 'closed'],
    ])
  })

  it('starts an endpoint afresh when its circuit options change, not when they are restated', () => {
    const { registry } = setup()
    const eu = registry.health('openai', 'eu')
    registry.sync('openai', [{ id: 'eu' }], { openMs: 2_000, failureRatio: undefined })
    expect(registry.health('openai', 'eu')).toBe(eu)
    registry.sync('openai', [{ id: 'eu' }], { openMs: 9_000 })
    expect(registry.health('openai', 'eu')).not.toBe(eu)
  })

  it('forgets a removed target', () => {
    const { registry } = setup()
    registry.remove('echo')
    expect(registry.health('echo', 'local')).toBeUndefined()
    expect(registry.snapshot().map((s) => s.target)).toEqual(['openai', 'openai'])
  })
})
