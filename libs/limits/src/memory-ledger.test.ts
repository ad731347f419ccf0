import { describe, expect, it } from 'vitest'
import { MemoryLedger } from './memory-ledger.ts'
import type { ScopeLimit } from './ledger.ts'

function clock() {
  let now = 0
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

const key: ScopeLimit = {
  id: 'key:demo/a',
  kind: 'key',
  rate: { limit: 2, periodMs: 1000, burst: 2 },
}
const workspace: ScopeLimit = {
  id: 'workspace:demo',
  kind: 'workspace',
  rate: { limit: 10, periodMs: 1000, burst: 10 },
  concurrency: 3,
}

describe('MemoryLedger', () => {
  it('passes only when every scope passes', async () => {
    const ledger = new MemoryLedger(clock())
    expect((await ledger.acquire([key, workspace], 1)).allowed).toBe(true)
    expect((await ledger.acquire([key, workspace], 1)).allowed).toBe(true)
    const third = await ledger.acquire([key, workspace], 1)
    expect(third.allowed).toBe(false)
    if (!third.allowed) {
      expect(third.refusedBy).toBe('key')
      expect(third.reason).toBe('rate')
      expect(third.retryAfterMs).toBeCloseTo(500)
    }
  })

  it('takes nothing from any scope when one refuses', async () => {
    const ledger = new MemoryLedger(clock())
    const tightKey: ScopeLimit = { ...key, rate: { limit: 1, periodMs: 1000, burst: 1 } }
    await ledger.acquire([tightKey], 1)
    for (let i = 0; i < 50; i++)
      expect((await ledger.acquire([workspace, tightKey], 1)).allowed).toBe(false)
    // The workspace bucket (burst 10) and its concurrency are untouched by 50 refusals.
    expect(ledger.inFlight('workspace:demo')).toBe(0)
    let passed = 0
    for (let i = 0; i < 20; i++) {
      const d = await ledger.acquire([workspace], 1)
      if (d.allowed) {
        passed++
        d.lease.release()
      }
    }
    expect(passed).toBe(10)
  })

  it('holds concurrency until the lease is released, once', async () => {
    const ledger = new MemoryLedger(clock())
    const only: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 2 }
    const a = await ledger.acquire([only], 1)
    const b = await ledger.acquire([only], 1)
    const c = await ledger.acquire([only], 1)
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false])
    if (!c.allowed) expect(c.reason).toBe('concurrency')
    if (a.allowed) {
      a.lease.release()
      a.lease.release()
    }
    expect(ledger.inFlight('target:echo')).toBe(1)
    expect((await ledger.acquire([only], 1)).allowed).toBe(true)
    expect((await ledger.acquire([only], 1)).allowed).toBe(false)
  })

  it('reports the longest wait among refusing scopes', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const slow: ScopeLimit = {
      id: 'global',
      kind: 'global',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
    }
    const fast: ScopeLimit = { ...key, rate: { limit: 1, periodMs: 1000, burst: 1 } }
    await ledger.acquire([fast, slow], 1)
    const refused = await ledger.acquire([fast, slow], 1)
    expect(refused.allowed).toBe(false)
    if (!refused.allowed) {
      expect(refused.refusedBy).toBe('global')
      expect(refused.retryAfterMs).toBeCloseTo(60_000)
    }
    expect(refused.views.map((v) => v.name)).toEqual(['key', 'global'])
  })

  it('reports what remains without the refused request in the scopes that passed', async () => {
    const ledger = new MemoryLedger(clock())
    const tight: ScopeLimit = {
      id: 'key:t',
      kind: 'key',
      rate: { limit: 1, periodMs: 1000, burst: 1 },
    }
    await ledger.acquire([tight], 1)
    const refused = await ledger.acquire([workspace, tight], 1)
    expect(refused.allowed).toBe(false)
    expect(refused.views[0]).toMatchObject({ name: 'workspace', remaining: 10 })
    // Several that passed, a window among them: each reports its own remaining.
    const windowed: ScopeLimit = {
      id: 'global:w',
      kind: 'global',
      window: { limit: 5, windowMs: 60_000 },
    }
    const again = await ledger.acquire([workspace, windowed, key, tight], 3)
    expect(again.allowed).toBe(false)
    expect(again.views.map((v) => [v.name, v.remaining])).toEqual([
      ['workspace', 10],
      ['global', 5],
      ['key', 2],
      ['key', 0],
    ])
  })

  it('refills with time', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    await ledger.acquire([key], 1)
    await ledger.acquire([key], 1)
    expect((await ledger.acquire([key], 1)).allowed).toBe(false)
    time.advance(500)
    expect((await ledger.acquire([key], 1)).allowed).toBe(true)
  })
})

describe('MemoryLedger windows, debits and sweeping', () => {
  const perMinute: ScopeLimit = {
    id: 'key:w/m',
    kind: 'key',
    window: { limit: 3, windowMs: 60_000 },
  }

  it('applies a sliding window beside the other limits', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    for (let i = 0; i < 3; i++) expect((await ledger.acquire([perMinute], 1)).allowed).toBe(true)
    time.advance(30_000)
    const refused = await ledger.acquire([perMinute], 1)
    expect(refused.allowed).toBe(false)
    if (!refused.allowed) expect(refused.retryAfterMs).toBe(30_000)
    expect(refused.views[0]).toMatchObject({ quota: 3, windowSeconds: 60, remaining: 0 })
  })

  it('charges a cost known only afterwards, delaying later requests', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const rate: ScopeLimit = {
      id: 'target:llm',
      kind: 'target',
      rate: { limit: 10, periodMs: 1000, burst: 10 },
    }
    expect((await ledger.acquire([rate], 1)).allowed).toBe(true)
    await ledger.debit([rate], 9)
    const next = await ledger.acquire([rate], 1)
    expect(next.allowed).toBe(false)
    time.advance(100)
    expect((await ledger.acquire([rate], 1)).allowed).toBe(true)
  })

  it('refunds the units of admissions never used, never above the burst', () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const both: ScopeLimit = {
      id: 'key:w/both',
      kind: 'key',
      rate: { limit: 2, periodMs: 1000, burst: 2 },
      window: { limit: 2, windowMs: 60_000 },
    }
    expect(ledger.decide([both], 1).allowed).toBe(true)
    expect(ledger.decide([both], 1).allowed).toBe(true)
    expect(ledger.decide([both], 1).allowed).toBe(false)
    ledger.refund([both], 1)
    expect(ledger.decide([both], 1).allowed).toBe(true)
    expect(ledger.decide([both], 1).allowed).toBe(false)
    // A refund larger than what was taken leaves a full bucket and an empty window, no more.
    ledger.refund([both], 10)
    expect(ledger.decide([both], 1).allowed).toBe(true)
    expect(ledger.decide([both], 1).allowed).toBe(true)
    expect(ledger.decide([both], 1).allowed).toBe(false)
  })

  it('forgets idle scopes and keeps those that still limit', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const concurrency: ScopeLimit = { id: 'target:c', kind: 'target', concurrency: 1 }
    const held = await ledger.acquire([concurrency], 1)
    await ledger.acquire([key], 1)
    await ledger.acquire([perMinute], 1)
    expect(ledger.sweep()).toBe(0)
    time.advance(1000)
    expect(ledger.sweep()).toBe(1)
    if (held.allowed) held.lease.release()
    time.advance(60_000)
    expect(ledger.sweep()).toBe(2)
    expect(ledger.size).toBe(0)
  })

  it('forgets states that no longer limit as new ones are made, before any sweep, and keeps the others', () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const caller = (name: string): ScopeLimit => ({
      id: `caller:${name}`,
      kind: 'key',
      rate: { limit: 50, periodMs: 1000, burst: 2 },
      concurrency: 1,
    })
    const spent: ScopeLimit = {
      id: 'caller:spent',
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
    }
    const busy = ledger.decide([caller('busy')], 1)
    expect(busy.allowed).toBe(true)
    expect(ledger.decide([spent], 1).allowed).toBe(true)
    // A flood of callers with one request each, 1 ms apart: each bucket is full again 20 ms later.
    for (let i = 0; i < 10_000; i++) {
      const decision = ledger.decide([caller(`flood-${i}`)], 1)
      if (decision.allowed) decision.lease.release()
      time.advance(1)
    }
    expect(ledger.size).toBeLessThan(100)
    // What still limits was kept: the request in flight holds its slot ...
    expect(ledger.inFlight('caller:busy')).toBe(1)
    expect(ledger.decide([caller('busy')], 1).allowed).toBe(false)
    // ... and a caller that spent its bucket is still refused.
    expect(ledger.decide([spent], 1).allowed).toBe(false)
  })
})

describe('MemoryLedger costs that no wait can satisfy, and changed limits', () => {
  it('says at once that a cost above the burst or window limit can never pass', async () => {
    const ledger = new MemoryLedger(clock())
    const rate: ScopeLimit = {
      id: 'key:big',
      kind: 'key',
      rate: { limit: 10, periodMs: 1000, burst: 10 },
    }
    const window: ScopeLimit = {
      id: 'target:w',
      kind: 'target',
      window: { limit: 20, windowMs: 60_000 },
    }
    const tooBig = await ledger.acquire([rate], 11)
    expect(tooBig).toMatchObject({
      allowed: false,
      impossible: true,
      refusedBy: 'key',
      retryAfterMs: 1000,
    })
    expect((await ledger.acquire([window], 21)) as unknown).toMatchObject({
      allowed: false,
      impossible: true,
    })
    expect((await ledger.acquire([rate, window], 10)).allowed).toBe(true)
  })

  it('resizes a window whose limit changed, keeping its newest history', async () => {
    const time = clock()
    const ledger = new MemoryLedger(time)
    const before: ScopeLimit = { id: 'key:r', kind: 'key', window: { limit: 5, windowMs: 60_000 } }
    for (let i = 0; i < 5; i++) await ledger.acquire([before], 1)
    const after: ScopeLimit = { ...before, window: { limit: 7, windowMs: 60_000 } }
    expect((await ledger.acquire([after], 1)).allowed).toBe(true)
    expect((await ledger.acquire([after], 1)).allowed).toBe(true)
    expect((await ledger.acquire([after], 1)).allowed).toBe(false)
    const smaller: ScopeLimit = { ...before, window: { limit: 3, windowMs: 60_000 } }
    const refused = await ledger.acquire([smaller], 1)
    expect(refused.allowed).toBe(false)
    time.advance(60_000)
    expect((await ledger.acquire([smaller], 1)).allowed).toBe(true)
  })
  it('holds at most maxStates, dropping the oldest idle ones and never one with a request in flight', async () => {
    const time = clock()
    const ledger = new MemoryLedger({ ...time, maxStates: () => 100 })
    const caller = (i: number): ScopeLimit => ({
      id: `caller:${i}`,
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
      concurrency: 1,
    })
    const held = await ledger.acquire([caller(0)], 1)
    expect(held.allowed).toBe(true)
    for (let i = 1; i < 1000; i++) {
      const decision = await ledger.acquire([caller(i)], 1)
      if (decision.allowed) decision.lease.release()
      expect(ledger.size).toBeLessThanOrEqual(100)
    }
    // The caller with a request in flight kept its state: its slot is still taken.
    expect(ledger.inFlight('caller:0')).toBe(1)
    expect((await ledger.acquire([caller(0)], 1)).allowed).toBe(false)
    // A dropped caller starts afresh: the price of the bound.
    expect((await ledger.acquire([caller(1)], 1)).allowed).toBe(true)
  })
  it('bounds a group apart: a flood into one group forgets its own idle states, not the others', () => {
    const time = clock()
    const ledger = new MemoryLedger({ ...time, maxStates: () => 10_000 })
    const member = (group: string, i: number): ScopeLimit => ({
      id: `caller:${group}/${i}`,
      kind: 'key',
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
      concurrency: 1,
      group: { id: group, maxStates: 50 },
    })
    // A quiet route's callers, each of which has spent its bucket.
    for (let i = 0; i < 10; i++) {
      const decision = ledger.decide([member('quiet', i)], 1)
      if (decision.allowed) decision.lease.release()
    }
    const busy = ledger.decide([member('flood', 0)], 1)
    expect(busy.allowed).toBe(true)
    for (let i = 1; i < 1000; i++) {
      const decision = ledger.decide([member('flood', i)], 1)
      if (decision.allowed) decision.lease.release()
      expect(ledger.size).toBeLessThanOrEqual(10 + 50)
    }
    // The quiet route's callers kept their state (their buckets are still empty) ...
    for (let i = 0; i < 10; i++) expect(ledger.decide([member('quiet', i)], 1).allowed).toBe(false)
    // ... and the flood's member with a request in flight kept its slot.
    expect(ledger.inFlight('caller:flood/0')).toBe(1)
    // Nothing outlives its limit: the sweep forgets every state, grouped or not.
    time.advance(120_000)
    if (busy.allowed) busy.lease.release()
    ledger.sweep()
    expect(ledger.size).toBe(0)
  })
  it('keeps a group of one bounded: each new member makes room by forgetting the idle one', () => {
    const ledger = new MemoryLedger({ now: clock().now })
    const member = (i: number): ScopeLimit => ({
      id: `caller:${i}`,
      kind: 'key',
      concurrency: 1,
      group: { id: 'tiny', maxStates: 1 },
    })
    for (let i = 0; i < 10; i++) {
      const decision = ledger.decide([member(i)], 1)
      if (decision.allowed) decision.lease.release()
      expect(ledger.size).toBe(1)
    }
  })
})

describe('MemoryLedger scopes counted in cents', () => {
  const tokens: ScopeLimit = {
    id: 'key:w/t',
    kind: 'key',
    window: { limit: 1000, windowMs: 60_000 },
  }
  const cents: ScopeLimit = {
    id: 'key:w/c',
    kind: 'key',
    unit: 'cents',
    rate: { limit: 10, periodMs: 86_400_000, burst: 10 },
  }

  it('takes a request’s price from cents scopes and its cost from the others', () => {
    const ledger = new MemoryLedger({ now: clock().now })
    expect(ledger.decide([tokens, cents], 300, 4).allowed).toBe(true)
    expect(ledger.decide([tokens, cents], 300, 4).allowed).toBe(true)
    // 8 of 10 cents spent: 4 more do not fit, though 400 tokens would.
    expect(ledger.decide([tokens, cents], 300, 4)).toMatchObject({
      allowed: false,
      refusedBy: 'key',
    })
    expect(ledger.decide([tokens, cents], 300, 2).allowed).toBe(true)
    // Spent, it still lets through what costs no cents.
    expect(ledger.decide([tokens, cents], 100, 0).allowed).toBe(true)
  })

  it('charges and gives back cents apart from cost units, fractions included', () => {
    const ledger = new MemoryLedger({ now: clock().now })
    expect(ledger.decide([cents], 1, 9.5).allowed).toBe(true)
    ledger.refund([cents], 0, 9)
    expect(ledger.decide([cents], 1, 9.4).allowed).toBe(true)
    ledger.charge([cents], 500, 0)
    expect(ledger.decide([cents], 1, 0.1).allowed).toBe(true)
    ledger.charge([cents], 0, 1)
    expect(ledger.decide([cents], 1, 0.1).allowed).toBe(false)
  })
})
