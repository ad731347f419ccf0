import { mkdtemp, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from 'jose'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_test_inbound_key'
const HS_SECRET = 'inbound-test-secret-of-at-least-32-chars'
const ISSUER = 'https://id.example.com'

let upstream: LoopbackUpstream
let node: TestNode
let rsPrivate: CryptoKey

/** Tiers that refuse at once instead of queueing, so a spent limit shows as a 429. */
const tiers = {
  reserved: { priority: 0, maxWaitMs: 0 },
  free: { priority: 1, maxWaitMs: 0 },
}

/** Callers by client IP /32, one request each. */
const ipRoute = {
  target: 'api',
  pathPrefix: '/ip',
  callers: { ip: {} },
  limits: { rate: { rps: 0.01, burst: 1 } },
  forwardCaller: true,
}

beforeAll(async () => {
  upstream = await startUpstream()
  const rs = await generateKeyPair('RS256')
  rsPrivate = rs.privateKey
  node = await startNode({
    tiers,
    targets: {
      api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true },
      orders: { endpoints: [{ url: `${upstream.url}/base` }], allowPrivateAddresses: true },
    },
    routes: {
      v1: {
        target: 'api',
        pathPrefix: '/v1',
        callers: { header: 'authorization', ip: { ipv4Prefix: 24 } },
        limits: { rate: { rps: 0.01, burst: 2 } },
        forwardCaller: true,
        forwardTier: true,
      },
      orders: { target: 'orders', pathPrefix: '/v1/orders' },
      ip: ipRoute,
      keyed: {
        target: 'api',
        pathPrefix: '/keyed',
        callers: { header: 'x-api-key' },
        limits: { rate: { rps: 0.01, burst: 1 } },
      },
      jwt: {
        target: 'api',
        pathPrefix: '/jwt',
        callers: {
          jwt: { algorithm: 'HS256', secret: HS_SECRET, issuer: ISSUER, tierClaim: 'plan' },
        },
        limits: { rate: { rps: 0.01, burst: 1 } },
        forwardCaller: true,
        forwardTier: true,
      },
      rsa: {
        target: 'api',
        pathPrefix: '/rsa',
        callers: {
          jwt: {
            header: 'x-token',
            algorithm: 'RS256',
            publicKey: await exportSPKI(rs.publicKey),
            claim: 'org',
          },
        },
        forwardCaller: true,
      },
    },
    customers: {
      big: { credential: hashKeySecret('cust_big'), tier: 'reserved', limits: {} },
      acme: { claim: 'acme', tier: 'reserved' },
    },
    workspaces: {
      demo: { targets: ['api'], keys: [{ id: 'k', hash: hashKeySecret(KEY) }] },
    },
  })
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

afterEach(() => upstream.clear())

async function problem(response: Response) {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  return (await response.json()) as Record<string, unknown>
}

function hs256(claims: Record<string, unknown>, expires = '1m', secret = HS_SECRET) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(secret))
}

/** A request with headers fetch will not send as given (Connection and its tokens). */
function rawGet(path: string, headers: Record<string, string>) {
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest(node.proxyUrl, { path, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('routes', () => {
  it('forwards a request matching a route with no Fairlane key and no /t/ prefix, path and query unchanged', async () => {
    const response = await node.proxy('/v1/things%2Fx?q=a%20b', {
      headers: { authorization: 'Bearer cust_a1' },
    })
    expect(response.status).toBe(200)
    expect(upstream.requests[0]?.url).toBe('/v1/things%2Fx?q=a%20b')
  })

  it('takes the longest prefix: /v1/orders goes to its own target', async () => {
    expect((await node.proxy('/v1/orders/7?x=1')).status).toBe(200)
    expect(upstream.requests[0]?.url).toBe('/base/v1/orders/7?x=1')
    expect((await node.proxy('/v1/ordersx')).status).toBe(200)
    expect(upstream.requests[1]?.url).toBe('/v1/ordersx')
  })

  it('answers 404 not_found problem+json for a path no route matches, and sends nothing upstream', async () => {
    const response = await node.proxy('/v2/things')
    expect(response.status).toBe(404)
    expect(await problem(response)).toMatchObject({ code: 'not_found', stage: 'resolve' })
    expect(upstream.hits).toBe(0)
  })

  it('refuses dot segments on a route path', async () => {
    expect(await rawGet('/v1/a/../../admin', {})).toBe(400)
    expect(upstream.requests).toHaveLength(0)
  })

  it('keeps the key forms working on the same port', async () => {
    const keyed = await node.proxy('/t/api/v1/x', { headers: bearer(KEY) })
    expect(keyed.status).toBe(200)
    expect(upstream.requests[0]?.url).toBe('/v1/x')
    expect(upstream.requests[0]?.headers.authorization).toBeUndefined()
    const without = await node.proxy('/t/api/v1/x')
    expect(without.status).toBe(401)
    expect(await problem(without)).toMatchObject({ code: 'unauthenticated' })
  })
})

describe('callers', () => {
  it('gives each credential its own lane with the route’s limits', async () => {
    const a = { authorization: 'Bearer cust_lane_a' }
    expect((await node.proxy('/v1/a', { headers: a })).status).toBe(200)
    expect((await node.proxy('/v1/a', { headers: a })).status).toBe(200)
    const refused = await node.proxy('/v1/a', { headers: a })
    expect(refused.status).toBe(429)
    expect(await problem(refused)).toMatchObject({
      code: 'rate_limited',
      error: 'Rate limit exceeded',
    })
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
    const b = await node.proxy('/v1/a', { headers: { authorization: 'Bearer cust_lane_b' } })
    expect(b.status).toBe(200)
  })

  it('puts a customer in its tier with its own limits, by the hash of its credential', async () => {
    for (let i = 0; i < 5; i++) {
      const response = await node.proxy('/v1/big', {
        headers: { authorization: 'Bearer cust_big' },
      })
      expect(response.status).toBe(200)
    }
    expect(upstream.requests.map((r) => r.headers['x-fairlane-tier'])).toEqual(
      Array(5).fill('reserved'),
    )
    expect(upstream.requests[0]?.headers['x-fairlane-caller']).toBe('c:big')
  })

  it('never lets a client header choose the tier or the caller', async () => {
    const response = await node.proxy('/v1/spoof', {
      headers: {
        authorization: 'Bearer cust_spoof',
        'x-fairlane-tier': 'reserved',
        'x-fairlane-caller': 'c:big',
      },
    })
    expect(response.status).toBe(200)
    const seen = upstream.requests[0]?.headers
    expect(seen?.['x-fairlane-tier']).toBe('free')
    expect(seen?.['x-fairlane-caller']).toMatch(/^h:[0-9a-f]{64}$/)
  })

  it('hashes the credential: neither it nor its lane reveals the value', async () => {
    await node.proxy('/v1/secret', { headers: { authorization: 'Bearer cust_s3cr3t_value' } })
    expect(upstream.requests[0]?.headers['x-fairlane-caller']).not.toContain('s3cr3t')
    expect(node.logs.text).not.toContain('cust_s3cr3t_value')
  })

  it('uses a whole custom header value as the credential, and 401s a request without it', async () => {
    expect((await node.proxy('/keyed/x', { headers: { 'x-api-key': 'k-1' } })).status).toBe(200)
    expect((await node.proxy('/keyed/x', { headers: { 'x-api-key': 'k-1' } })).status).toBe(429)
    expect((await node.proxy('/keyed/x', { headers: { 'x-api-key': 'k-2' } })).status).toBe(200)
    const none = await node.proxy('/keyed/x')
    expect(none.status).toBe(401)
    expect(await problem(none)).toMatchObject({
      code: 'caller_unauthenticated',
      stage: 'authenticate',
    })
  })

  it('falls back to the client IP /24 without a credential: one lane for 127.0.0.0/24', async () => {
    expect((await node.proxy('/v1/anon')).status).toBe(200)
    expect(upstream.requests[0]?.headers['x-fairlane-caller']).toBe('ip:127.0.0.0/24')
  })
})

describe('JWT callers', () => {
  it('makes the verified claim the lane, and lets a verified claim set the tier', async () => {
    const token = await hs256({ sub: 'user-1', plan: 'reserved' })
    const response = await node.proxy('/jwt/x', { headers: { authorization: `Bearer ${token}` } })
    expect(response.status).toBe(200)
    const seen = upstream.requests[0]?.headers
    expect(seen?.['x-fairlane-tier']).toBe('reserved')
    expect(seen?.['x-fairlane-caller']).toMatch(/^j:[0-9a-f]{64}:reserved$/)
    // The customer's own token reaches the API untouched.
    expect(seen?.authorization).toBe(`Bearer ${token}`)
    const again = await node.proxy('/jwt/x', {
      headers: { authorization: `Bearer ${await hs256({ sub: 'user-1', plan: 'reserved' })}` },
    })
    expect(again.status).toBe(429)
    const other = await hs256({ sub: 'user-2', plan: 'platinum' })
    const second = await node.proxy('/jwt/x', { headers: { authorization: `Bearer ${other}` } })
    expect(second.status).toBe(200)
    expect(upstream.requests[1]?.headers['x-fairlane-tier']).toBe('free')
  })

  it('answers 401 problem+json for an expired, forged, unsigned or claimless token, and sends nothing', async () => {
    const expired = await hs256({ sub: 'u' }, '-10m')
    const forged = await hs256({ sub: 'u' }, '1m', 'another-secret-of-at-least-32-characters')
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')
    const body = Buffer.from(JSON.stringify({ sub: 'u', iss: ISSUER })).toString('base64url')
    const unsigned = `${header}.${body}.`
    const claimless = await hs256({})
    for (const [token, detail] of [
      [expired, 'the token has expired'],
      [forged, 'the token is not valid'],
      [unsigned, 'the token is not valid'],
      [claimless, 'the token has no sub claim'],
    ] as const) {
      const response = await node.proxy('/jwt/x', { headers: { authorization: `Bearer ${token}` } })
      expect(response.status, detail).toBe(401)
      expect(await problem(response)).toMatchObject({
        code: 'caller_unauthenticated',
        stage: 'authenticate',
        detail,
      })
    }
    expect(upstream.hits).toBe(0)
  })

  it('verifies RS256 with a public key, and maps a claim value to its customer', async () => {
    const sign = (org: string) =>
      new SignJWT({ org })
        .setProtectedHeader({ alg: 'RS256' })
        .setExpirationTime('1m')
        .sign(rsPrivate)
    const response = await node.proxy('/rsa/x', { headers: { 'x-token': await sign('acme') } })
    expect(response.status).toBe(200)
    expect(upstream.requests[0]?.headers['x-fairlane-caller']).toBe('c:acme')
    const hs = await hs256({ org: 'acme' })
    expect((await node.proxy('/rsa/x', { headers: { 'x-token': hs } })).status).toBe(401)
  })
})

describe('client IP and trusted proxies', () => {
  it('ignores X-Forwarded-For from a peer that is not a trusted proxy: a spoofed header changes nothing', async () => {
    expect(await rawGet('/ip/x', { 'x-forwarded-for': '203.0.113.1' })).toBe(200)
    expect(upstream.requests[0]?.headers['x-fairlane-caller']).toBe('ip:127.0.0.1/32')
    expect(await rawGet('/ip/x', { 'x-forwarded-for': '203.0.113.2' })).toBe(429)
    expect(await rawGet('/ip/x', { forwarded: 'for=203.0.113.3' })).toBe(429)
  })

  describe('behind a trusted proxy', () => {
    let trusting: TestNode
    beforeAll(async () => {
      trusting = await startNode({
        tiers,
        trustedProxies: ['127.0.0.0/8'],
        targets: { api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
        routes: { ip: ipRoute },
      })
    })
    afterAll(() => trusting.close())

    it('takes the right-most untrusted X-Forwarded-For address as the client', async () => {
      const get = (xff: string) => trusting.proxy('/ip/x', { headers: { 'x-forwarded-for': xff } })
      expect((await get('203.0.113.1')).status).toBe(200)
      expect((await get('203.0.113.2')).status).toBe(200)
      expect((await get('6.6.6.6, 203.0.113.2')).status).toBe(429)
      expect(upstream.requests.map((r) => r.headers['x-fairlane-caller'])).toEqual([
        'ip:203.0.113.1/32',
        'ip:203.0.113.2/32',
      ])
      // The proxy's own view of scheme and host is kept; the hop to Fairlane is appended.
      await trusting.proxy('/ip/y', {
        headers: {
          'x-forwarded-for': '203.0.113.9',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'api.example.com',
        },
      })
      expect(upstream.requests[2]?.headers).toMatchObject({
        'x-forwarded-for': '203.0.113.9, 127.0.0.1',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'api.example.com',
      })
    })
  })
})

describe('what the upstream receives', () => {
  it('the customer credential untouched, X-Forwarded-* from Fairlane, hop-by-hop and Fairlane headers stripped', async () => {
    const status = await rawGet('/v1/headers', {
      authorization: 'Bearer cust_headers',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      connection: 'x-drop',
      'x-drop': '1',
      'keep-alive': 'timeout=5',
      'x-fairlane-key': KEY,
      'x-other': 'kept',
    })
    expect(status).toBe(200)
    const seen = upstream.requests[0]?.headers ?? {}
    expect(seen.authorization).toBe('Bearer cust_headers')
    expect(seen['x-forwarded-for']).toBe('198.51.100.7, 127.0.0.1')
    // The peer is no trusted proxy: its claims about scheme and host are replaced.
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe(new URL(node.proxyUrl).host)
    expect(seen['x-other']).toBe('kept')
    for (const name of ['x-drop', 'keep-alive', 'x-fairlane-key'])
      expect(seen[name], name).toBeUndefined()
    expect(JSON.stringify(seen)).not.toContain(KEY)
  })

  it('no X-Fairlane-Caller or X-Fairlane-Tier unless the route asks for them', async () => {
    await node.proxy('/v1/orders/1', { headers: { 'x-fairlane-tier': 'reserved' } })
    const seen = upstream.requests[0]?.headers ?? {}
    expect(seen['x-fairlane-caller']).toBeUndefined()
    expect(seen['x-fairlane-tier']).toBeUndefined()
  })
})

describe('the queue contract for callers, as for keys', () => {
  let slow: LoopbackUpstream
  let queued: TestNode
  let jwksDir: string
  let es: Awaited<ReturnType<typeof generateKeyPair>>

  beforeAll(async () => {
    slow = await startUpstream()
    slow.behave(() => ({ kind: 'delay', ms: 300 }))
    es = await generateKeyPair('ES256')
    jwksDir = await mkdtemp(join(tmpdir(), 'fairlane-jwks-'))
    const jwk = { ...(await exportJWK(es.publicKey)), kid: 'k1', alg: 'ES256' }
    await writeFile(join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [jwk] }))
    queued = await startNode({
      queue: { perLane: 2 },
      tiers: {
        reserved: { priority: 0, maxWaitMs: 10_000 },
        free: { priority: 1, maxWaitMs: 10_000 },
      },
      targets: {
        slow: {
          endpoints: [{ url: slow.url }],
          allowPrivateAddresses: true,
          limits: { concurrency: 1 },
        },
      },
      routes: {
        q: { target: 'slow', pathPrefix: '/q', callers: { header: 'x-api-key' } },
        jwks: {
          target: 'slow',
          pathPrefix: '/jwks',
          callers: {
            jwt: { algorithm: 'ES256', jwksFile: join(jwksDir, 'jwks.json'), tierClaim: 'plan' },
          },
          forwardCaller: true,
          forwardTier: true,
        },
      },
      customers: { vip: { credential: hashKeySecret('vip'), tier: 'reserved' } },
    })
  })

  afterAll(async () => {
    await queued.close()
    await slow.close()
  })

  it('bounds each caller’s queue (429 queue_full) and serves a reserved customer before a queued free caller', async () => {
    const send = (key: string, n: number) =>
      queued.proxy(`/q/${key}/${n}`, { headers: { 'x-api-key': key } })
    const first = send('free-a', 1)
    await expect.poll(() => slow.inFlight, { timeout: 5000 }).toBe(1)
    const waiting = [send('free-a', 2), send('free-a', 3)]
    // Give the two a moment to join the lane (the assertion below holds however long this is).
    await sleep(200)
    const full = await send('free-a', 4)
    expect(full.status).toBe(429)
    expect(await problem(full)).toMatchObject({ code: 'queue_full', stage: 'queue' })
    expect(full.headers.get('retry-after')).toMatch(/^\d+$/)
    const vip = send('vip', 1)
    const statuses = await Promise.all([first, ...waiting, vip].map(async (r) => (await r).status))
    expect(statuses).toEqual([200, 200, 200, 200])
    expect(slow.requests.map((r) => r.url)).toEqual([
      '/q/free-a/1',
      '/q/vip/1',
      '/q/free-a/2',
      '/q/free-a/3',
    ])
  })

  it('verifies ES256 tokens against a JWKS file, by kid', async () => {
    const sign = (kid: string) =>
      new SignJWT({ sub: 'jwks-user', plan: 'reserved' })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setExpirationTime('1m')
        .sign(es.privateKey)
    const ok = await queued.proxy('/jwks/x', {
      headers: { authorization: `Bearer ${await sign('k1')}` },
    })
    expect(ok.status).toBe(200)
    expect(slow.requests.at(-1)?.headers['x-fairlane-tier']).toBe('reserved')
    const unknown = await queued.proxy('/jwks/x', {
      headers: { authorization: `Bearer ${await sign('k2')}` },
    })
    expect(unknown.status).toBe(401)
    expect(await problem(unknown)).toMatchObject({ code: 'caller_unauthenticated' })
  })
})
