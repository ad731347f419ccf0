import { describe, expect, it } from 'vitest'
import { seededRandom as seeded } from '@fairlane/testing'
import {
  EndpointHealth,
  type CircuitTransition,
  type EndpointHealthOptions,
} from './endpoint-health.ts'
import { statusOutcome, type Outcome } from './upstream-outcome.ts'

const ok: Outcome = { ok: true, kind: 'success', latencyMs: 10 }
const fail: Outcome = { ok: false, kind: 'status-5xx', latencyMs: 10 }

function setup(options: Partial<EndpointHealthOptions> = {}) {
  const clock = { t: 1_000 }
  const transitions: CircuitTransition[] = []
  const health = new EndpointHealth({
    now: () => clock.t,
    onTransition: (t) => transitions.push(t),
    ...options,
  })
  return { clock, health, transitions }
}

/** Drives a closed circuit to open with failures in a row. */
function trip(health: EndpointHealth): void {
  for (let i = 0; i < 5; i++) health.record(fail)
  expect(health.state).toBe('open')
}

describe('EndpointHealth: opening', () => {
  it('starts closed and available, with a perfect score and no p95', () => {
    const { health } = setup()
    expect(health.state).toBe('closed')
    expect(health.available()).toBe(true)
    expect(health.score()).toBe(1)
    expect(health.p95Ms()).toBeUndefined()
  })

  it.each([
    { name: 'below minRequests, half failed', seq: 'SFSF', state: 'closed' },
    { name: 'minRequests reached, 3 of 5 failed', seq: 'SFSFF', state: 'open' },
    { name: 'minRequests reached, exactly half failed', seq: 'SFSFSF', state: 'open' },
    { name: 'minRequests reached, 2 of 5 failed', seq: 'SFSFS', state: 'closed' },
    { name: 'four failures in a row', seq: 'FFFF', state: 'closed' },
    { name: 'five failures in a row', seq: 'FFFFF', state: 'open' },
  ])('$name → $state', ({ seq, state }) => {
    const { health } = setup()
    for (const c of seq) health.record(c === 'F' ? fail : ok)
    expect(health.state).toBe(state)
  })

  it('opens on consecutive failures even when the window ratio is low', () => {
    const { health } = setup({ windowSize: 20, consecutiveFailures: 5 })
    for (let i = 0; i < 20; i++) health.record(ok)
    for (let i = 0; i < 4; i++) health.record(fail)
    expect(health.state).toBe('closed')
    expect(health.failures).toBe(4)
    health.record(fail)
    expect(health.state).toBe('open')
  })

  it('judges only the last windowSize outcomes', () => {
    const { health } = setup({
      windowSize: 10,
      minRequests: 10,
      failureRatio: 0.6,
      consecutiveFailures: 100,
    })
    const play = (seq: string) => {
      for (const c of seq) health.record(c === 'F' ? fail : ok)
    }
    play('FFFFF' + 'SSSSSSSSSS' + 'FFFFF')
    expect(health.requests).toBe(10)
    expect(health.failures).toBe(5)
    expect(health.state).toBe('closed')
    // 6 of the last 10 failed, though only 11 of all 21.
    play('F')
    expect(health.failures).toBe(6)
    expect(health.state).toBe('open')
  })

  it('forgets outcomes older than windowMs, from the failures in a row too', () => {
    const { clock, health } = setup({ windowMs: 10_000 })
    for (let i = 0; i < 4; i++) health.record(fail)
    clock.t += 10_000
    expect(health.requests).toBe(0)
    health.record(fail)
    expect(health.failures).toBe(1)
    expect(health.state).toBe('closed')
  })

  it('matches a reference model of the closed-state rule on random outcome sequences', () => {
    const windowSize = 8
    const options = { windowSize, minRequests: 4, failureRatio: 0.6, consecutiveFailures: 4 }
    for (let seed = 1; seed <= 300; seed++) {
      const random = seeded(seed)
      const { health } = setup(options)
      const seen: boolean[] = []
      for (let i = 0; i < 60; i++) {
        const failed = random() < 0.35
        health.record(failed ? fail : ok)
        seen.push(failed)
        const window = seen.slice(-windowSize)
        const failures = window.filter(Boolean).length
        let inRow = 0
        while (inRow < seen.length && seen[seen.length - 1 - inRow]) inRow++
        const shouldOpen =
          inRow >= options.consecutiveFailures ||
          (window.length >= options.minRequests && failures >= options.failureRatio * window.length)
        expect(health.state, `seed ${seed}, outcome ${i}`).toBe(shouldOpen ? 'open' : 'closed')
        if (shouldOpen) break
        expect(health.failures).toBe(failures)
      }
    }
  })
})

describe('EndpointHealth: a 429 is not a failure', () => {
  it.each([
    [200, true],
    [204, true],
    [301, true],
    [404, true],
    [429, true],
    [500, false],
    [502, false],
    [503, false],
    [504, false],
  ])('status %i → ok %s', (status, expected) => {
    const outcome = statusOutcome(status, 5)
    expect(outcome.ok).toBe(expected)
    expect(outcome.kind).toBe(expected ? 'success' : 'status-5xx')
  })

  it('stays closed under nothing but 429s', () => {
    const { health } = setup()
    for (let i = 0; i < 100; i++) health.record(statusOutcome(429, 3))
    expect(health.state).toBe('closed')
    expect(health.failures).toBe(0)
  })
})

describe('EndpointHealth: open and half-open', () => {
  it('stays open for openMs, then lets exactly one trial through', () => {
    const { clock, health, transitions } = setup({ openMs: 1_000 })
    trip(health)
    expect(transitions).toEqual([{ from: 'closed', to: 'open', at: 1_000, openMs: 1_000 }])
    expect(health.openedAt).toBe(1_000)
    expect(health.halfOpenAt).toBe(2_000)

    clock.t = 1_999
    expect(health.state).toBe('open')
    expect(health.available()).toBe(false)
    expect(health.tryAcquireTrial()).toBe(false)

    clock.t = 2_000
    expect(health.state).toBe('half-open')
    expect(health.available()).toBe(true)
    expect(health.tryAcquireTrial()).toBe(true)
    expect(health.available()).toBe(false)
    expect(health.tryAcquireTrial()).toBe(false)
  })

  it('lets halfOpenProbes trials through at once', () => {
    const { clock, health } = setup({ openMs: 1_000, halfOpenProbes: 3 })
    trip(health)
    clock.t += 1_000
    const granted = Array.from({ length: 5 }, () => health.tryAcquireTrial())
    expect(granted).toEqual([true, true, true, false, false])
  })

  it('closes only after successesToClose successes in a row, with a fresh window', () => {
    const { clock, health, transitions } = setup({ openMs: 1_000 })
    trip(health)
    clock.t += 1_000
    expect(health.tryAcquireTrial()).toBe(true)
    health.record(ok)
    expect(health.state).toBe('half-open')
    // The record gave the trial slot back.
    expect(health.tryAcquireTrial()).toBe(true)
    health.record(ok)
    expect(health.state).toBe('closed')
    expect(health.failures).toBe(0)
    expect(health.requests).toBe(0)
    expect(health.openedAt).toBeUndefined()
    expect(transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed'])
  })

  it('re-opens on a failed trial with the open time doubled, up to maxOpenMs', () => {
    const { clock, health, transitions } = setup({ openMs: 1_000, maxOpenMs: 5_000 })
    trip(health)
    const openTimes = [1_000]
    for (let i = 0; i < 4; i++) {
      clock.t = health.halfOpenAt ?? Number.NaN
      expect(health.tryAcquireTrial()).toBe(true)
      health.record({ ok: false, kind: 'timeout', latencyMs: 30_000 })
      expect(health.state).toBe('open')
      openTimes.push((health.halfOpenAt ?? 0) - clock.t)
    }
    expect(openTimes).toEqual([1_000, 2_000, 4_000, 5_000, 5_000])
    expect(transitions.filter((t) => t.to === 'open').map((t) => t.openMs)).toEqual(openTimes)
  })

  it('a success between failed trials does not reset the doubling; closing does', () => {
    const { clock, health } = setup({ openMs: 1_000, successesToClose: 2 })
    trip(health)
    clock.t = health.halfOpenAt ?? 0
    health.record(ok)
    health.record(fail)
    expect((health.halfOpenAt ?? 0) - clock.t).toBe(2_000)

    clock.t = health.halfOpenAt ?? 0
    health.record(ok)
    health.record(ok)
    expect(health.state).toBe('closed')
    trip(health)
    expect((health.halfOpenAt ?? 0) - clock.t).toBe(1_000)
  })

  it('keeps outcomes that arrive while open out of the circuit', () => {
    const { clock, health } = setup({ openMs: 1_000 })
    trip(health)
    for (let i = 0; i < 10; i++) health.record(ok)
    expect(health.state).toBe('open')
    clock.t += 1_000
    expect(health.state).toBe('half-open')
  })

  it('frees a trial that never reports back after trialTimeoutMs, or on releaseTrial', () => {
    const { clock, health } = setup({ openMs: 1_000, trialTimeoutMs: 5_000 })
    trip(health)
    clock.t += 1_000
    expect(health.tryAcquireTrial()).toBe(true)
    clock.t += 4_999
    expect(health.available()).toBe(false)
    clock.t += 1
    expect(health.available()).toBe(true)

    expect(health.tryAcquireTrial()).toBe(true)
    health.releaseTrial()
    expect(health.available()).toBe(true)
  })

  it('remembers the last failure in every state', () => {
    const { clock, health } = setup()
    expect(health.lastFailure).toBeUndefined()
    health.record({ ok: false, kind: 'reset', latencyMs: 1 })
    clock.t = 5_000
    health.record({ ok: false, kind: 'connect-error', latencyMs: 1 })
    expect(health.lastFailure).toEqual({ kind: 'connect-error', at: 5_000 })
  })
})

describe('EndpointHealth: latency and score', () => {
  it('has no p95 below 10 samples, then the nearest-rank p95 of successes only', () => {
    const { health } = setup({ consecutiveFailures: 1_000, minRequests: 1_000 })
    for (let i = 1; i <= 9; i++) health.record({ ...ok, latencyMs: i })
    expect(health.p95Ms()).toBeUndefined()
    for (let i = 10; i <= 100; i++) health.record({ ...ok, latencyMs: i })
    // A quick connect error says nothing about how fast the endpoint answers.
    for (let i = 0; i < 50; i++) health.record({ ok: false, kind: 'connect-error', latencyMs: 0 })
    expect(health.p95Ms()).toBe(95)
  })

  it('keeps only the most recent latencySamples', () => {
    const { health } = setup({ latencySamples: 10 })
    for (let i = 0; i < 10; i++) health.record({ ...ok, latencyMs: 1_000 })
    expect(health.p95Ms()).toBe(1_000)
    for (let i = 0; i < 10; i++) health.record({ ...ok, latencyMs: 5 })
    expect(health.p95Ms()).toBe(5)
  })

  it('scores the smoothed success share of the window', () => {
    const { health } = setup({ consecutiveFailures: 100, failureRatio: 1 })
    health.record(ok)
    health.record(ok)
    health.record(fail)
    expect(health.score()).toBeCloseTo(3 / 4)
    health.record(fail)
    health.record(fail)
    health.record(fail)
    expect(health.score()).toBeCloseTo(3 / 7)
    expect(health.score()).toBeGreaterThan(0)
  })
})
