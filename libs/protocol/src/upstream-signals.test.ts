import { describe, expect, it } from 'vitest'
import {
  parseRetryAt,
  upstreamSignals,
  UPSTREAM_SIGNAL_HORIZON_MS,
  type UpstreamHeaders,
  type UpstreamSignals,
} from './upstream-signals.ts'

// Wed, 25 Nov 2026 10:00:00 GMT
const now = Date.UTC(2026, 10, 25, 10, 0, 0)
const s = (seconds: number): number => now + seconds * 1000
const horizon = now + UPSTREAM_SIGNAL_HORIZON_MS

describe('parseRetryAt', () => {
  it.each<[string, string | undefined, number | undefined]>([
    ['delta-seconds', '7', s(7)],
    ['zero', '0', now],
    ['surrounding spaces', '  7 ', s(7)],
    ['a decimal, rounded up', '1.2', s(2)],
    ['a whole decimal', '3.0', s(3)],
    ['IMF-fixdate', 'Wed, 25 Nov 2026 10:00:03 GMT', s(3)],
    ['IMF-fixdate in any case', 'wed, 25 nov 2026 10:00:03 gmt', s(3)],
    ['RFC 850 date', 'Wednesday, 25-Nov-26 10:01:00 GMT', s(60)],
    ['asctime date, read as GMT', 'Wed Nov 25 10:00:30 2026', s(30)],
    ['a date in the past', 'Wed, 25 Nov 2026 09:00:00 GMT', now],
    ['RFC 850 year 94 is 1994, in the past', 'Sunday, 06-Nov-94 08:49:37 GMT', now],
    ['joined duplicates, the latest', '30, 45', s(45)],
    ['beyond the horizon, clamped', '172800', horizon],
    ['a date beyond the horizon, clamped', 'Fri, 25 Dec 2026 10:00:00 GMT', horizon],
    ['a delta too long for a double, clamped', '9'.repeat(400), horizon],
    ['absent', undefined, undefined],
    ['empty', '', undefined],
    ['negative', '-1', undefined],
    ['a sign', '+5', undefined],
    ['an exponent', '1e3', undefined],
    ['a unit', '5s', undefined],
    ['a word', 'soon', undefined],
    ['a number Date.parse would take as a year', '2026-11-25', undefined],
    ['a date with no zone', 'Wed, 25 Nov 2026 10:00:03', undefined],
    ['a date that does not exist', 'Mon, 31 Feb 2026 10:00:00 GMT', undefined],
    ['an hour that does not exist', 'Wed, 25 Nov 2026 25:00:00 GMT', undefined],
    ['an unknown month', 'Wed, 25 Foo 2026 10:00:00 GMT', undefined],
    ['a date and a number joined', 'Wed, 25 Nov 2026 10:00:03 GMT, 5', undefined],
    ['a trailing comma', '5,', undefined],
  ])('%s: %j', (_, value, expected) => {
    expect(parseRetryAt(value, now)).toBe(expected)
  })

  it('reads an asctime date with a one-digit day', () => {
    const early = Date.UTC(2026, 11, 6, 9, 0, 0)
    expect(parseRetryAt('Sun Dec  6 10:00:00 2026', early)).toBe(early + 3_600_000)
  })

  it('reads an RFC 850 two-digit year in the current century unless that is 50+ years ahead', () => {
    const in2070 = Date.UTC(2070, 0, 1)
    expect(parseRetryAt('Thursday, 01-Jan-70 00:00:10 GMT', in2070)).toBe(in2070 + 10_000)
    // 2099 is only 29 years ahead, so it stays 2099: beyond the horizon, clamped.
    expect(parseRetryAt('Thursday, 01-Jan-99 00:00:00 GMT', in2070)).toBe(
      in2070 + UPSTREAM_SIGNAL_HORIZON_MS,
    )
  })
})

describe('upstreamSignals', () => {
  it.each<[string, UpstreamHeaders, UpstreamSignals]>([
    ['no headers', {}, {}],
    ['unrelated headers', { 'content-type': 'application/json', date: 'x' }, {}],
    ['undefined values', { 'retry-after': undefined, 'x-fairlane-rps': undefined }, {}],

    // Retry-After
    ['Retry-After seconds', { 'retry-after': '10' }, { retryAt: s(10) }],
    ['Retry-After date', { 'retry-after': 'Wed, 25 Nov 2026 10:00:20 GMT' }, { retryAt: s(20) }],
    [
      'Retry-After in the past',
      { 'retry-after': 'Tue, 24 Nov 2026 10:00:00 GMT' },
      { retryAt: now },
    ],
    ['Retry-After garbage', { 'retry-after': 'later' }, {}],
    ['Retry-After as an array, the latest', { 'retry-after': ['5', '9', 'x'] }, { retryAt: s(9) }],
    [
      'Retry-After dates as an array',
      { 'retry-after': ['Wed, 25 Nov 2026 10:00:20 GMT', 'Wed, 25 Nov 2026 10:00:40 GMT'] },
      { retryAt: s(40) },
    ],
    ['Retry-After past the horizon', { 'retry-after': '999999' }, { retryAt: horizon }],

    // Current drafts
    [
      'RateLimit-Policy: the tightest rate of several items',
      { 'ratelimit-policy': '"default";q=100;w=60, "burst";q=10;w=1' },
      { rps: 100 / 60 },
    ],
    [
      'RateLimit-Policy: the tightest is not the first',
      { 'ratelimit-policy': '"burst";q=10;w=1, "daily";q=1000;w=86400' },
      { rps: 1000 / 86400 },
    ],
    [
      'RateLimit-Policy: token names and extra parameters',
      { 'ratelimit-policy': 'day;q=1000;w=86400;pk=:cHsdsRa894==:, sec;q=5;w=1;qu="requests"' },
      { rps: 1000 / 86400 },
    ],
    [
      'RateLimit-Policy: split over two field lines',
      { 'ratelimit-policy': ['"a";q=10;w=1', '"b";q=30;w=60'] },
      { rps: 0.5 },
    ],
    [
      'RateLimit-Policy: a malformed item is dropped, the rest kept',
      { 'ratelimit-policy': '"a";q=10;w=1, "b";q=;w=60, "c" junk, "d";q=-5;w=1' },
      { rps: 10 },
    ],
    ['RateLimit-Policy: no window, no rate', { 'ratelimit-policy': '"a";q=10' }, {}],
    [
      'RateLimit-Policy: a zero window or zero quota states no rate',
      { 'ratelimit-policy': '"a";q=10;w=0, "b";q=0;w=1' },
      {},
    ],
    [
      'RateLimit-Policy: a quoted number is a name, not a quota',
      { 'ratelimit-policy': '"100";w=1' },
      {},
    ],
    [
      'RateLimit-Policy: byte quotas state no request rate',
      { 'ratelimit-policy': '"bytes";q=1000;w=1;qu="content-bytes", "req";q=50;w=1' },
      { rps: 50 },
    ],
    [
      'RateLimit-Policy: a concurrent-requests quota is a concurrency limit',
      { 'ratelimit-policy': '"conc";q=4;qu="concurrent-requests", "req";q=50;w=1' },
      { rps: 50, maxConcurrent: 4 },
    ],
    [
      'RateLimit-Policy: draft 07 bare integer quotas',
      { 'ratelimit-policy': '10;w=1;burst=1000, 1000;w=3600' },
      { rps: 1000 / 3600 },
    ],
    [
      'RateLimit: remaining and reset',
      { ratelimit: '"default";r=50;t=30' },
      { remaining: 50, resetAt: s(30) },
    ],
    [
      'RateLimit: nothing remaining asks to wait for the reset',
      { ratelimit: '"default";r=0;t=30' },
      { retryAt: s(30), remaining: 0, resetAt: s(30) },
    ],
    [
      'RateLimit: the tightest of several items',
      { ratelimit: '"day";r=900;t=40000, "burst";r=2;t=1, "hour";r=2;t=600' },
      { remaining: 2, resetAt: s(600) },
    ],
    [
      'RateLimit: an exhausted item among others',
      { ratelimit: '"day";r=900;t=40000, "burst";r=0;t=1' },
      { retryAt: s(1), remaining: 0, resetAt: s(1) },
    ],
    [
      'RateLimit: two exhausted items, the later reset',
      { ratelimit: '"a";r=0;t=5, "b";r=0;t=50' },
      { retryAt: s(50), remaining: 0, resetAt: s(50) },
    ],
    ['RateLimit: remaining without a reset', { ratelimit: '"default";r=0' }, { remaining: 0 }],
    ['RateLimit: a reset without remaining', { ratelimit: '"default";t=30' }, {}],
    [
      'RateLimit: a decimal reset',
      { ratelimit: '"default";r=0;t=1.5' },
      { retryAt: s(1.5), remaining: 0, resetAt: s(1.5) },
    ],
    [
      'RateLimit: a reset beyond the horizon is clamped',
      { ratelimit: '"month";r=0;t=2592000' },
      { retryAt: horizon, remaining: 0, resetAt: horizon },
    ],
    [
      'RateLimit with its policy',
      {
        'ratelimit-policy': '"default";q=100;w=60, "burst";q=10;w=1',
        ratelimit: '"default";r=50;t=30, "burst";r=9;t=1',
      },
      { rps: 100 / 60, remaining: 9, resetAt: s(1) },
    ],
    ['RateLimit: garbage', { ratelimit: 'r=;;t, "unterminated;r=0;t=5' }, {}],
    ['RateLimit: negative numbers', { ratelimit: '"a";r=-1;t=-5' }, {}],

    // Draft 07 dictionary
    [
      'RateLimit dictionary (draft 07)',
      { ratelimit: 'limit=100, remaining=0, reset=30' },
      { retryAt: s(30), remaining: 0, resetAt: s(30) },
    ],
    [
      'RateLimit dictionary with its policy',
      { ratelimit: 'limit=100, remaining=40, reset=30', 'ratelimit-policy': '100;w=60' },
      { rps: 100 / 60, remaining: 40, resetAt: s(30) },
    ],

    // Early drafts
    [
      'RateLimit-Limit/-Remaining/-Reset',
      { 'ratelimit-limit': '100', 'ratelimit-remaining': '0', 'ratelimit-reset': '12' },
      { retryAt: s(12), remaining: 0, resetAt: s(12) },
    ],
    [
      'RateLimit-Limit with quota policies',
      { 'ratelimit-limit': '10, 10;w=1, 50;w=60', 'ratelimit-remaining': '7' },
      { rps: 50 / 60, remaining: 7 },
    ],
    [
      'RateLimit-Remaining repeated, the smallest',
      { 'ratelimit-remaining': ['7', '3'], 'ratelimit-reset': '5, 9' },
      { remaining: 3, resetAt: s(9) },
    ],

    // Legacy X-RateLimit-*
    [
      'X-RateLimit-* with a delta reset',
      { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30' },
      { retryAt: s(30), remaining: 0, resetAt: s(30) },
    ],
    [
      'X-RateLimit-Reset in epoch seconds (GitHub)',
      {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(now / 1000 + 600),
      },
      { retryAt: s(600), remaining: 0, resetAt: s(600) },
    ],
    [
      'X-RateLimit-Reset in fractional epoch seconds (Discord)',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 2.5) },
      { retryAt: s(2.5), remaining: 0, resetAt: s(2.5) },
    ],
    [
      'X-RateLimit-Reset in epoch ms',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + 4000) },
      { retryAt: s(4), remaining: 0, resetAt: s(4) },
    ],
    [
      'X-RateLimit-Reset in the past',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 - 60) },
      { retryAt: now, remaining: 0, resetAt: now },
    ],
    [
      'X-RateLimit-Reset-After wins over an absolute reset (Discord)',
      {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(now / 1000 + 9),
        'x-ratelimit-reset-after': '1.25',
      },
      { retryAt: s(1.25), remaining: 0, resetAt: s(1.25) },
    ],
    [
      'X-RateLimit-Window gives the limit a rate',
      { 'x-ratelimit-limit': '120', 'x-ratelimit-window': '60', 'x-ratelimit-remaining': '100' },
      { rps: 2, remaining: 100 },
    ],
    [
      'X-RateLimit-Window as a duration',
      { 'x-ratelimit-limit': '30', 'x-ratelimit-window': '1m' },
      { rps: 0.5 },
    ],
    [
      'X-RateLimit-Limit takes the window of a policy with its quota',
      { 'x-ratelimit-limit': '100', 'ratelimit-policy': '"a";q=100;w=50, "b";q=10;w=1' },
      { rps: 2 },
    ],
    [
      'X-RateLimit-Limit with no window states no rate',
      { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999' },
      { remaining: 4999 },
    ],
    [
      'OpenAI: per-unit limits with duration resets',
      {
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-limit-tokens': '150000',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-reset-tokens': '6m0s',
      },
      { retryAt: s(360), remaining: 0, resetAt: s(360) },
    ],
    [
      'OpenAI: the tightest per-unit limit',
      {
        'x-ratelimit-remaining-requests': '3',
        'x-ratelimit-remaining-tokens': '14000',
        'x-ratelimit-reset-requests': '1h2m3.5s',
        'x-ratelimit-reset-tokens': '250ms',
      },
      { remaining: 3, resetAt: s(3723.5) },
    ],
    [
      'X-RateLimit-* garbage',
      {
        'x-ratelimit-limit': 'lots',
        'x-ratelimit-remaining': '-3',
        'x-ratelimit-reset': 'soon',
        'x-ratelimit-window': '-1',
      },
      {},
    ],
    [
      'X-RateLimit-Reset garbage leaves the remaining',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '5m-1s' },
      { remaining: 0 },
    ],
    [
      'X-RateLimit-Remaining as an array, the smallest',
      { 'x-ratelimit-remaining': ['10', '4'], 'x-ratelimit-reset': '8' },
      { remaining: 4, resetAt: s(8) },
    ],

    // Provider signals
    ['X-Fairlane-RPS', { 'x-fairlane-rps': '12.5' }, { rps: 12.5 }],
    ['X-Fairlane-RPS repeated, the smallest', { 'x-fairlane-rps': ['12', '3'] }, { rps: 3 }],
    ['X-Fairlane-RPS zero', { 'x-fairlane-rps': '0' }, {}],
    ['X-Fairlane-RPS negative', { 'x-fairlane-rps': '-2' }, {}],
    ['X-Fairlane-RPS not finite', { 'x-fairlane-rps': 'Infinity' }, {}],
    ['X-Fairlane-RPS overflowing', { 'x-fairlane-rps': '9'.repeat(400) }, {}],
    ['X-Fairlane-RPS garbage', { 'x-fairlane-rps': 'fast' }, {}],
    ['X-Fairlane-Max-Concurrent', { 'x-fairlane-max-concurrent': '8' }, { maxConcurrent: 8 }],
    ['X-Fairlane-Max-Concurrent zero', { 'x-fairlane-max-concurrent': '0' }, {}],
    ['X-EZTHROTTLE-RPS, an alias', { 'x-ezthrottle-rps': '7' }, { rps: 7 }],
    [
      'X-EZTHROTTLE-RPS beside X-Fairlane-RPS, the smaller',
      { 'x-fairlane-rps': '9', 'x-ezthrottle-rps': '4' },
      { rps: 4 },
    ],
    [
      'X-EZTHROTTLE-MAX-CONCURRENT, an alias',
      { 'x-ezthrottle-max-concurrent': '5' },
      { maxConcurrent: 5 },
    ],
    ['X-EZTHROTTLE-MAX-CONCURRENT garbage', { 'x-ezthrottle-max-concurrent': 'many' }, {}],
    ['X-Fairlane-Max-Concurrent fractional', { 'x-fairlane-max-concurrent': '2.5' }, {}],
    ['X-Fairlane-Max-Concurrent negative', { 'x-fairlane-max-concurrent': '-4' }, {}],
    ['X-Fairlane-Max-Concurrent huge', { 'x-fairlane-max-concurrent': '1'.repeat(30) }, {}],
    [
      'X-Fairlane-Max-Concurrent and a concurrency policy, the smaller',
      {
        'x-fairlane-max-concurrent': '3',
        'ratelimit-policy': '"c";q=6;qu="concurrent-requests"',
      },
      { maxConcurrent: 3 },
    ],

    // Names in any case
    [
      'header names in any case',
      {
        'Retry-After': '4',
        'X-Fairlane-RPS': '5',
        'X-RateLimit-Remaining': '1',
        'RateLimit-Policy': '"a";q=3;w=1',
      },
      { retryAt: s(4), rps: 3, remaining: 1 },
    ],
    [
      'the same header under two spellings',
      { 'x-fairlane-rps': '5', 'X-Fairlane-Rps': '2' },
      { rps: 2 },
    ],
  ])('%s', (_, headers, expected) => {
    expect(upstreamSignals(headers, now)).toEqual(expected)
  })

  describe('the tightest of several sources', () => {
    it('takes the lowest rate from policies, legacy limits and the provider signal', () => {
      const headers = {
        'ratelimit-policy': '"default";q=600;w=60',
        'x-ratelimit-limit': '300',
        'x-ratelimit-window': '60',
        'x-fairlane-rps': '20',
      }
      expect(upstreamSignals(headers, now).rps).toBe(5)
      expect(upstreamSignals({ ...headers, 'x-fairlane-rps': '2' }, now).rps).toBe(2)
    })

    it('takes the fewest remaining across formats', () => {
      const signals = upstreamSignals(
        {
          ratelimit: '"default";r=50;t=30',
          'x-ratelimit-remaining': '12',
          'x-ratelimit-reset': '40',
          'ratelimit-remaining': '20',
        },
        now,
      )
      expect(signals).toEqual({ remaining: 12, resetAt: s(40) })
    })

    it('breaks a tie on remaining by the later reset', () => {
      const signals = upstreamSignals(
        { ratelimit: '"a";r=5;t=10', 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '90' },
        now,
      )
      expect(signals).toEqual({ remaining: 5, resetAt: s(90) })
    })

    it('waits for the later of Retry-After and an exhausted limit', () => {
      expect(
        upstreamSignals({ 'retry-after': '10', ratelimit: '"default";r=0;t=30' }, now).retryAt,
      ).toBe(s(30))
      expect(
        upstreamSignals({ 'retry-after': '60', ratelimit: '"default";r=0;t=30' }, now).retryAt,
      ).toBe(s(60))
    })

    it('does not wait on a limit that still has units', () => {
      expect(
        upstreamSignals({ 'retry-after': '10', ratelimit: '"default";r=1;t=30' }, now).retryAt,
      ).toBe(s(10))
    })
  })

  describe('bounds', () => {
    const garbage = [
      '',
      ',',
      ';;;',
      '"',
      '\\',
      '(',
      ')',
      '((()))',
      '"a";q=(1 2);w=1',
      '"a";q=?1;w=:abc:',
      '=;=;=',
      'limit=limit=limit',
      '\u0000\u00ff\u{1f600}',
      '1'.repeat(10_000),
      '"a";q=1;w=1, '.repeat(5000),
      'NaN',
      'Infinity',
      '-0',
      '0x10',
      '1e400',
    ]
    const names = [
      'retry-after',
      'ratelimit',
      'ratelimit-policy',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
      'x-ratelimit-reset-after',
      'x-ratelimit-reset-tokens',
      'x-ratelimit-window',
      'x-fairlane-rps',
      'x-fairlane-max-concurrent',
    ]

    it('never throws, and every value it gives is within its bounds', () => {
      for (const name of names) {
        for (const value of garbage) {
          for (const headers of [{ [name]: value }, { [name]: [value, value] }]) {
            const signals = upstreamSignals(headers, now)
            if (signals.retryAt !== undefined) {
              expect(signals.retryAt).toBeGreaterThanOrEqual(now)
              expect(signals.retryAt).toBeLessThanOrEqual(horizon)
            }
            if (signals.resetAt !== undefined) {
              expect(signals.resetAt).toBeGreaterThanOrEqual(now)
              expect(signals.resetAt).toBeLessThanOrEqual(horizon)
            }
            if (signals.rps !== undefined) {
              expect(Number.isFinite(signals.rps) && signals.rps > 0).toBe(true)
            }
            if (signals.maxConcurrent !== undefined) {
              expect(Number.isSafeInteger(signals.maxConcurrent)).toBe(true)
              expect(signals.maxConcurrent).toBeGreaterThan(0)
            }
            if (signals.remaining !== undefined) {
              expect(Number.isFinite(signals.remaining) && signals.remaining >= 0).toBe(true)
            }
          }
        }
      }
    })

    it('keeps every time within the horizon, whatever the reset format', () => {
      for (const reset of ['1e300', '99999999999', String(now / 1000 + 9e6), '1000000h']) {
        const signals = upstreamSignals(
          { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset },
          now,
        )
        if (signals.retryAt !== undefined) expect(signals.retryAt).toBeLessThanOrEqual(horizon)
        if (signals.resetAt !== undefined) expect(signals.resetAt).toBeLessThanOrEqual(horizon)
      }
    })

    it('is a function of its inputs: the clock moves every time with it', () => {
      const headers = { 'retry-after': '10', ratelimit: '"default";r=0;t=30' }
      const later = 1_000_000
      expect(upstreamSignals(headers, now + later).retryAt).toBe(
        (upstreamSignals(headers, now).retryAt ?? 0) + later,
      )
    })

    it('reads at most 64 members of one field', () => {
      const items = Array.from({ length: 100 }, (_, i) => `"p${i}";q=${100 - i};w=1`)
      expect(upstreamSignals({ 'ratelimit-policy': items.join(', ') }, now).rps).toBe(37)
    })
  })
})
