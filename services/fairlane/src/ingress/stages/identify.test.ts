import { describe, expect, it } from 'vitest'
import { hashKeySecret } from '../../keys/key-secret.ts'
import { routeTableOf } from '../inbound/route-table.ts'
import { exchangeFor, stageConfig } from './exchange-fixture.ts'
import { credentialIn, identify } from './identify.ts'

const config = stageConfig({
  routes: {
    keyed: { target: 'echo', pathPrefix: '/keyed', callers: { header: 'authorization' } },
    open: {
      target: 'echo',
      pathPrefix: '/open',
      callers: { header: 'x-api-key', ip: { ipv4Prefix: 24 } },
    },
  },
  customers: { big: { credential: hashKeySecret('tok_big') } },
})

async function callerOf(url: string, headers: Record<string, string> = {}) {
  const x = exchangeFor({ url, headers }, config)
  x.inbound = routeTableOf(config).find((r) => url.startsWith(r.prefix))
  await identify(x)
  return x.caller
}

describe('identify', () => {
  it('takes the Authorization credential after its scheme, or whole without one', () => {
    expect(credentialIn({ authorization: 'Bearer tok_1' }, 'authorization')).toBe('tok_1')
    expect(credentialIn({ authorization: 'tok_1' }, 'authorization')).toBe('tok_1')
    expect(credentialIn({ authorization: '  ' }, 'authorization')).toBeUndefined()
    expect(credentialIn({ 'x-api-key': 'a b' }, 'x-api-key')).toBe('a b')
  })

  it('names a known credential by its customer, any other by its SHA-256', async () => {
    expect(await callerOf('/keyed/x', { authorization: 'Bearer tok_big' })).toBe('c:big')
    const hashed = await callerOf('/keyed/x', { authorization: 'Bearer tok_other' })
    expect(hashed).toBe(`h:${hashKeySecret('tok_other').slice('sha256:'.length)}`)
  })

  it('refuses a route without IP callers when the credential is missing', async () => {
    await expect(callerOf('/keyed/x')).rejects.toMatchObject({ code: 'caller_unauthenticated' })
  })

  it('falls back to the client network when the route has IP callers', async () => {
    // The fixture's request has no socket address: it counts as 0.0.0.0.
    expect(await callerOf('/open/x')).toBe('ip:0.0.0.0/24')
    expect(await callerOf('/open/x', { 'x-api-key': 'k' })).toMatch(/^h:[0-9a-f]{64}$/)
  })
})
