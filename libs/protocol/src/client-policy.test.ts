import { describe, expect, it } from 'vitest'
import { FairlaneError } from './fairlane-error.ts'
import { parseClientPolicies } from './client-policy.ts'

describe('Fairlane-RateLimit-Policy', () => {
  it('parses a full policy and applies defaults', () => {
    expect(parseClientPolicies('100;w=60;u=cost;s=batch-jobs')).toEqual([
      { limit: 100, windowSeconds: 60, unit: 'cost', scope: 'batch-jobs' },
    ])
    expect(parseClientPolicies('5;w=1')).toEqual([
      { limit: 5, windowSeconds: 1, unit: 'request', scope: 'user' },
    ])
    expect(parseClientPolicies(' 10 ; w=60 ; s=global , 2;w=1')).toHaveLength(2)
  })

  it('counts cents with u=cents', () => {
    expect(parseClientPolicies('500;w=86400;u=cents')).toEqual([
      { limit: 500, windowSeconds: 86_400, unit: 'cents', scope: 'user' },
    ])
  })

  it('reads the header as a structured-field List: quoted values, segment ids of any allowed form', () => {
    expect(parseClientPolicies('10;w="60";u="cost";s=2024-q1, 3;w=1;s="_batch.v2"')).toEqual([
      { limit: 10, windowSeconds: 60, unit: 'cost', scope: '2024-q1' },
      { limit: 3, windowSeconds: 1, unit: 'request', scope: '_batch.v2' },
    ])
    expect(parseClientPolicies(['5;w=1', '6;w=2'])).toHaveLength(2)
  })

  it('is absent when the header is', () => {
    expect(parseClientPolicies(undefined)).toBeUndefined()
  })

  it.each([
    ['empty', ''],
    ['no limit', 'w=60'],
    ['negative', '-5;w=60'],
    ['fraction', '2.5;w=60'],
    ['zero', '0;w=60'],
    ['too large', '10001;w=60'],
    ['missing window', '10'],
    ['zero window', '10;w=0'],
    ['unknown unit', '10;w=60;u=tokens'],
    ['bad segment', '10;w=60;s=a b'],
    ['unknown parameter', '10;w=60;x=1'],
    ['duplicate parameter', '10;w=60;w=30'],
    ['a comma inside a quoted segment', '10;w=60;s="a,b"'],
    ['an unterminated string', '10;w=60;s="abc'],
    ['a dictionary member', 'limit=10;w=60'],
    ['too many policies', '1;w=1,1;w=1,1;w=1,1;w=1,1;w=1'],
  ])('rejects %s with bad_request at stage limit', (_name, value) => {
    try {
      parseClientPolicies(value)
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(FairlaneError)
      expect((err as FairlaneError).code).toBe('bad_request')
      expect((err as FairlaneError).stage).toBe('limit')
    }
  })
})
