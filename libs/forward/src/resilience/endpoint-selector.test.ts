import { describe, expect, it } from 'vitest'
import { seededRandom as seeded } from '@fairlane/testing'
import { EndpointHealth } from './endpoint-health.ts'
import { EndpointSelector, type HealthView, type UpstreamEndpoint } from './endpoint-selector.ts'

function endpoint(id: string, region?: string, weight?: number): UpstreamEndpoint {
  return {
    id,
    url: `https://${id}.example`,
    ...(region === undefined ? {} : { region }),
    ...(weight === undefined ? {} : { weight }),
  }
}

function view(overrides: Partial<{ available: boolean; score: number; p95: number }>): HealthView {
  return {
    available: () => overrides.available ?? true,
    score: () => overrides.score ?? 1,
    p95Ms: () => overrides.p95,
  }
}

const ids = (list: readonly UpstreamEndpoint[]) => list.map((e) => e.id)

/** How often each endpoint comes first over `draws` orders. */
function firstShares(
  selector: EndpointSelector,
  endpoints: readonly UpstreamEndpoint[],
  health: (e: UpstreamEndpoint) => HealthView | undefined,
  draws: number,
): Record<string, number> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < draws; i++) {
    const first = selector.order(endpoints, health)[0]?.id ?? ''
    counts[first] = (counts[first] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(counts).map(([id, n]) => [id, n / draws]))
}

describe('EndpointSelector', () => {
  it('always returns every endpoint once', () => {
    const random = seeded(7)
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(random() * 6)
      const endpoints = Array.from({ length: n }, (_, i) =>
        endpoint(`e${i}`, random() < 0.5 ? 'eu' : 'us', Math.floor(random() * 4)),
      )
      const health = new Map(endpoints.map((e) => [e.id, view({ available: random() < 0.6 })]))
      const order = new EndpointSelector({ region: 'eu', random }).order(endpoints, (e) =>
        health.get(e.id),
      )
      expect(ids(order).toSorted()).toEqual(ids(endpoints).toSorted())
    }
  })

  it("puts the node's region first, then the other regions", () => {
    const endpoints = [
      endpoint('us1', 'us'),
      endpoint('eu1', 'eu'),
      endpoint('x'),
      endpoint('eu2', 'eu'),
    ]
    for (let seed = 1; seed <= 50; seed++) {
      const order = ids(
        new EndpointSelector({ region: 'eu', random: seeded(seed) }).order(
          endpoints,
          () => undefined,
        ),
      )
      expect(order.slice(0, 2).toSorted()).toEqual(['eu1', 'eu2'])
      expect(order.slice(2).toSorted()).toEqual(['us1', 'x'])
    }
  })

  it('treats every endpoint alike when the node has no region', () => {
    const endpoints = [endpoint('us1', 'us'), endpoint('eu1', 'eu')]
    const shares = firstShares(
      new EndpointSelector({ random: seeded(3) }),
      endpoints,
      () => undefined,
      10_000,
    )
    expect(shares['us1']).toBeCloseTo(0.5, 1)
    expect(shares['eu1']).toBeCloseTo(0.5, 1)
  })

  it('picks first in proportion to weight', () => {
    const endpoints = [endpoint('a', 'eu', 1), endpoint('b', 'eu', 2), endpoint('c', 'eu', 3)]
    const selector = new EndpointSelector({ region: 'eu', random: seeded(42) })
    const shares = firstShares(selector, endpoints, () => undefined, 60_000)
    expect(Math.abs((shares['a'] ?? 0) - 1 / 6)).toBeLessThan(0.01)
    expect(Math.abs((shares['b'] ?? 0) - 2 / 6)).toBeLessThan(0.01)
    expect(Math.abs((shares['c'] ?? 0) - 3 / 6)).toBeLessThan(0.01)
  })

  it('draws the failover order by weight too: second place among those left', () => {
    const endpoints = [endpoint('a', 'eu', 1), endpoint('b', 'eu', 1), endpoint('c', 'eu', 8)]
    const selector = new EndpointSelector({ region: 'eu', random: seeded(9) })
    let bSecondAfterC = 0
    let cFirst = 0
    for (let i = 0; i < 40_000; i++) {
      const order = ids(selector.order(endpoints, () => undefined))
      if (order[0] === 'c') {
        cFirst++
        if (order[1] === 'b') bSecondAfterC++
      }
    }
    // With c first, a and b are left with equal weights.
    expect(Math.abs(bSecondAfterC / cFirst - 0.5)).toBeLessThan(0.02)
  })

  it('tries a weight-0 endpoint only after the weighted ones of its group', () => {
    const endpoints = [
      endpoint('standby', 'eu', 0),
      endpoint('a', 'eu'),
      endpoint('b', 'eu'),
      endpoint('us', 'us'),
    ]
    const selector = new EndpointSelector({ region: 'eu', random: seeded(5) })
    for (let i = 0; i < 100; i++) {
      expect(ids(selector.order(endpoints, () => undefined))[2]).toBe('standby')
    }
  })

  it('puts unavailable endpoints last, local ones first among them, and still lists them', () => {
    const endpoints = [
      endpoint('eu-open', 'eu'),
      endpoint('us-open', 'us'),
      endpoint('us1', 'us'),
      endpoint('eu1', 'eu'),
    ]
    const down = new Set(['eu-open', 'us-open'])
    const selector = new EndpointSelector({ region: 'eu', random: seeded(11) })
    for (let i = 0; i < 50; i++) {
      const order = selector.order(endpoints, (e) => view({ available: !down.has(e.id) }))
      expect(ids(order)).toEqual(['eu1', 'us1', 'eu-open', 'us-open'])
    }
    const allDown = selector.order(endpoints, () => view({ available: false }))
    expect(allDown).toHaveLength(4)
    expect(ids(allDown).slice(0, 2).toSorted()).toEqual(['eu-open', 'eu1'])
  })

  it('offers a half-open endpoint only while it can take a trial', () => {
    const clock = { t: 0 }
    const health = new EndpointHealth({ now: () => clock.t, openMs: 1_000 })
    for (let i = 0; i < 5; i++) health.record({ ok: false, kind: 'status-5xx', latencyMs: 1 })
    clock.t = 1_000
    const endpoints = [endpoint('half', 'eu', 1_000_000), endpoint('other', 'us')]
    const selector = new EndpointSelector({ region: 'eu', random: seeded(1) })
    const healthOf = (e: UpstreamEndpoint) => (e.id === 'half' ? health : undefined)

    expect(health.state).toBe('half-open')
    expect(ids(selector.order(endpoints, healthOf))).toEqual(['half', 'other'])
    // The order took nothing: the caller takes the trial when it sends.
    expect(health.tryAcquireTrial()).toBe(true)
    expect(ids(selector.order(endpoints, healthOf))).toEqual(['other', 'half'])
  })

  it('sends less to a failing endpoint and to a slower one, never nothing', () => {
    const endpoints = [endpoint('good', 'eu'), endpoint('flaky', 'eu'), endpoint('slow', 'eu')]
    const health: Record<string, HealthView> = {
      good: view({ score: 1, p95: 100 }),
      flaky: view({ score: 0.5, p95: 100 }),
      slow: view({ score: 1, p95: 400 }),
    }
    const selector = new EndpointSelector({ region: 'eu', random: seeded(8) })
    const shares = firstShares(selector, endpoints, (e) => health[e.id], 60_000)
    // Effective weights 1 : 0.5 : 0.25.
    expect(Math.abs((shares['good'] ?? 0) - 1 / 1.75)).toBeLessThan(0.01)
    expect(Math.abs((shares['flaky'] ?? 0) - 0.5 / 1.75)).toBeLessThan(0.01)
    expect(Math.abs((shares['slow'] ?? 0) - 0.25 / 1.75)).toBeLessThan(0.01)
  })

  it('is deterministic for a seed', () => {
    const endpoints = ['a', 'b', 'c', 'd', 'e'].map((id, i) =>
      endpoint(id, i % 2 ? 'eu' : 'us', i + 1),
    )
    const run = (seed: number) => {
      const selector = new EndpointSelector({ region: 'eu', random: seeded(seed) })
      return Array.from({ length: 20 }, () =>
        ids(selector.order(endpoints, () => undefined)).join(''),
      )
    }
    expect(run(1234)).toEqual(run(1234))
    expect(run(1234)).not.toEqual(run(4321))
  })
})

describe('a slow home region', () => {
  const view = (p95: number | undefined) => ({
    available: () => true,
    score: () => 1,
    p95Ms: () => p95,
  })
  const endpoints = [
    { id: 'home', url: 'http://a', region: 'a' },
    { id: 'away', url: 'http://b', region: 'b' },
  ]
  const firstPicks = (homeP95: number, awayP95: number) => {
    const selector = new EndpointSelector({ region: 'a', random: seeded(1) })
    let home = 0
    for (let i = 0; i < 2_000; i++) {
      const first = selector.order(endpoints, (e) => view(e.id === 'home' ? homeP95 : awayP95))[0]
      if (first?.id === 'home') home++
    }
    return home / 2_000
  }

  it('stays preferred while it is not much slower', () => {
    expect(firstPicks(40, 20)).toBe(1)
  })

  it('loses its preference when its p95 is over 4× and 50 ms above another region’s', () => {
    // Latency weighting then gives it the minimum share (a tenth of the weight).
    const share = firstPicks(300, 5)
    expect(share).toBeGreaterThan(0.03)
    expect(share).toBeLessThan(0.2)
  })
})
