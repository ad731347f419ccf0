import { describe, expect, it } from 'vitest'
import { DestinationPolicy, type ResolvedAddress } from '@fairlane/forward'
import { EndpointDestinations } from './endpoint-destinations.ts'
import { stageConfig } from './stages/exchange-fixture.ts'

const RULE = { allowHttp: true, allowPrivateAddresses: false }

function setup(ttlMs: number) {
  let clock = 0
  let lookups = 0
  const answers = new Map<string, readonly ResolvedAddress[]>([
    ['api.example.com', [{ address: '11.0.0.1', family: 4 }]],
  ])
  const policy = new DestinationPolicy({
    resolve: async (host) => {
      lookups++
      const found = answers.get(host)
      if (!found) throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' })
      return found
    },
    self: () => ({ addresses: [], ports: [] }),
  })
  const destinations = new EndpointDestinations({ policy, ttlMs, now: () => clock })
  return {
    destinations,
    answers,
    lookups: () => lookups,
    advance: (ms: number) => (clock += ms),
  }
}

const endpoint = (url: string) => ({
  id: url,
  url: `${url}/v1/x?q=1`,
  path: '/v1/x?q=1',
  weight: 1,
})

describe('EndpointDestinations', () => {
  it('reuses a checked endpoint within the DNS lifetime, then checks it again', async () => {
    const s = setup(5_000)
    const target = stageConfig().targets['echo']!
    const api = endpoint('https://api.example.com')
    expect(s.destinations.held(target, api)).toBeUndefined()
    const first = await s.destinations.check(target, endpoint('https://api.example.com'), RULE)
    expect(first.address).toBe('11.0.0.1')
    // What the request path takes without an await.
    expect(s.destinations.held(target, api)).toBe(first)
    await s.destinations.check(target, endpoint('https://api.example.com'), RULE)
    expect(s.lookups()).toBe(1)
    // The name now points elsewhere: the old answer is used until it expires, never after.
    s.answers.set('api.example.com', [{ address: '11.0.0.9', family: 4 }])
    s.advance(5_001)
    expect(s.destinations.held(target, api)).toBeUndefined()
    const later = await s.destinations.check(target, endpoint('https://api.example.com'), RULE)
    expect(later.address).toBe('11.0.0.9')
    expect(s.lookups()).toBe(2)
  })

  it('starts empty for the target of a reloaded config', async () => {
    const s = setup(5_000)
    await s.destinations.check(
      stageConfig().targets['echo']!,
      endpoint('https://api.example.com'),
      RULE,
    )
    await s.destinations.check(
      stageConfig().targets['echo']!,
      endpoint('https://api.example.com'),
      RULE,
    )
    expect(s.lookups()).toBe(2)
  })

  it('keeps no failed check, and nothing at all with a TTL of 0', async () => {
    const s = setup(5_000)
    const target = stageConfig().targets['echo']!
    await expect(
      s.destinations.check(target, endpoint('https://nx.example.com'), RULE),
    ).rejects.toMatchObject({
      code: 'destination_blocked',
    })
    s.answers.set('nx.example.com', [{ address: '11.0.0.3', family: 4 }])
    expect(
      (await s.destinations.check(target, endpoint('https://nx.example.com'), RULE)).address,
    ).toBe('11.0.0.3')
    const none = setup(0)
    await none.destinations.check(target, endpoint('https://api.example.com'), RULE)
    await none.destinations.check(target, endpoint('https://api.example.com'), RULE)
    expect(none.lookups()).toBe(2)
  })

  it('refuses a private address for a target that does not open them, cached or not', async () => {
    const s = setup(5_000)
    s.answers.set('inner.example.com', [{ address: '10.0.0.1', family: 4 }])
    const target = stageConfig().targets['echo']!
    for (let i = 0; i < 2; i++)
      await expect(
        s.destinations.check(target, endpoint('https://inner.example.com'), RULE),
      ).rejects.toMatchObject({
        code: 'destination_blocked',
      })
  })
})
