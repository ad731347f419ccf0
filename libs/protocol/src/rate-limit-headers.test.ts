import { describe, expect, it } from 'vitest'
import { rateLimitHeaders, retryAfterHeader, tightest, wholePolicy } from './rate-limit-headers.ts'

const key = { name: 'key', quota: 5, windowSeconds: 1, remaining: 3, resetMs: 400 }
const workspace = { name: 'workspace', quota: 600, windowSeconds: 60, remaining: 0, resetMs: 1500 }

describe('rateLimitHeaders', () => {
  it('lists every policy and reports the tightest one', () => {
    const headers = rateLimitHeaders([key, workspace], 1_700_000_000_000)
    expect(headers['ratelimit-policy']).toBe('"key";q=5;w=1, "workspace";q=600;w=60')
    expect(headers['ratelimit']).toBe('"workspace";r=0;t=2')
    expect(headers['x-ratelimit-limit']).toBe('600')
    expect(headers['x-ratelimit-remaining']).toBe('0')
    expect(headers['x-ratelimit-reset']).toBe('1700000002')
  })

  it('gives nothing when no rate limit applies', () => {
    expect(rateLimitHeaders([], 0)).toEqual({})
  })

  it('never reports negative or fractional remaining units', () => {
    const headers = rateLimitHeaders([{ ...key, remaining: -0.5 }], 0)
    expect(headers['x-ratelimit-remaining']).toBe('0')
    expect(rateLimitHeaders([{ ...key, remaining: 2.7 }], 0)['x-ratelimit-remaining']).toBe('2')
  })

  it('breaks ties on remaining by the longer reset', () => {
    expect(tightest([{ ...key, remaining: 0 }, workspace])?.name).toBe('workspace')
  })
})

describe('Retry-After', () => {
  it('rounds up and never says 0 for a refusal', () => {
    expect(retryAfterHeader(0)).toBe('1')
    expect(retryAfterHeader(1001)).toBe('2')
    expect(retryAfterHeader(3000)).toBe('3')
  })
})

describe('wholePolicy', () => {
  it.each([
    [5, 1, 5, 1],
    [0.01, 1, 1, 100],
    [2.5, 1, 5, 2],
    [0.3, 1, 3, 10],
    [1 / 3, 1, 1, 3],
    [100, 60, 100, 60],
  ])('restates %d per %ds as whole numbers', (quota, window, q, w) => {
    expect(wholePolicy(quota, window)).toEqual({ quota: q, windowSeconds: w })
  })
})
