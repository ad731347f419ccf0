import { describe, expect, it } from 'vitest'
import { RetryBudget } from '@fairlane/forward'

describe('retry budget', () => {
  it('allows the fixed allowance, then a fraction of recent requests', () => {
    let now = 0
    const budget = new RetryBudget({ now: () => now, ratio: 0.2, perSecond: 1 })
    // 10 retries over ten seconds whatever the traffic.
    let allowed = 0
    while (budget.tryRetry()) allowed++
    expect(allowed).toBe(10)
    for (let i = 0; i < 100; i++) budget.request()
    allowed = 0
    while (budget.tryRetry()) allowed++
    expect(allowed).toBe(20)
    now = 5_000
    expect(budget.tryRetry()).toBe(false)
  })

  it('forgets what is older than ten seconds', () => {
    let now = 0
    const budget = new RetryBudget({ now: () => now, ratio: 0.5, perSecond: 0 })
    for (let i = 0; i < 10; i++) budget.request()
    expect(budget.tryRetry()).toBe(true)
    now = 10_500
    expect(budget.tryRetry()).toBe(false)
    budget.request()
    budget.request()
    expect(budget.tryRetry()).toBe(true)
    expect(budget.tryRetry()).toBe(false)
  })
})
