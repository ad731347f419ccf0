import { request as httpRequest } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream, type RecordedRequest } from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_cred_KEY_d41d8cd98f00b204e980'
const UPSTREAM_SECRET = 'sk-upstream-9f86d081884c7d659a2f'

let upstream: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode(
    {
      targets: {
        api: {
          endpoints: [{ url: upstream.url }],
          allowPrivateAddresses: true,
          upstreamHeaders: { authorization: 'Bearer ${UPSTREAM_TOKEN}', 'x-api-version': '2' },
        },
        passthrough: {
          endpoints: [{ url: upstream.url }],
          allowPrivateAddresses: true,
          forwardClientAuthorization: true,
        },
      },
      workspaces: {
        demo: { targets: ['api', 'passthrough'], keys: [{ id: 'cred', hash: hashKeySecret(KEY) }] },
      },
    },
    { env: { UPSTREAM_TOKEN: UPSTREAM_SECRET } },
  )
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

afterEach(() => upstream.clear())

/** Everything the upstream could read: request line and every header, raw. */
function everything(request: RecordedRequest): string {
  return [request.method, request.url, ...request.rawHeaders, request.body.toString()].join('\n')
}

/** A raw HTTP/1.1 request, so hop-by-hop headers reach Fairlane exactly as written. */
function send(path: string, headers: Record<string, string | string[]>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${node.proxyUrl}${path}`, { headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('credentials', () => {
  it('never lets the Fairlane key reach the upstream, however it was sent', async () => {
    const statuses = [
      await send('/t/api/a', { authorization: `Bearer ${KEY}` }),
      await send('/t/api/b', { 'x-fairlane-key': KEY }),
      await send('/t/api/c', {
        authorization: `Bearer ${KEY}`,
        'x-api-key': KEY,
        'x-copy': `prefix ${KEY}`,
      }),
      await send('/t/passthrough/d', { 'x-fairlane-key': KEY, authorization: `Bearer ${KEY}` }),
      await send('/t/api/e', { authorization: `bearer   ${KEY}`, cookie: `session=${KEY}` }),
    ]
    expect(statuses).toEqual([200, 200, 200, 200, 200])
    expect(upstream.requests).toHaveLength(5)
    for (const request of upstream.requests) expect(everything(request)).not.toContain(KEY)
  })

  it('leaves a key the client writes into its URL to the client: no authentication by it, forwarded as written, its query never logged', async () => {
    expect(await send(`/t/api/q?api_key=${KEY}`, {})).toBe(401)
    expect(await send(`/t/api/${KEY}/p`, {})).toBe(401)
    expect(upstream.requests).toHaveLength(0)
    const statuses = [
      await send(`/t/api/q?api_key=${KEY}&x=1`, { 'x-fairlane-key': KEY }),
      await send(`/t/api/${KEY}/p`, { 'x-fairlane-key': KEY }),
    ]
    expect(statuses).toEqual([200, 200])
    expect(upstream.requests.map((r) => r.url)).toEqual([`/q?api_key=${KEY}&x=1`, `/${KEY}/p`])
    const queryLines = node.logs
      .lines()
      .filter((line) => String(line['path']).startsWith('/t/api/q'))
    expect(queryLines.length).toBeGreaterThan(0)
    expect(JSON.stringify(queryLines)).not.toContain(KEY)
  })

  it('injects the upstream credential from target config, replacing the client’s', async () => {
    await send('/t/api/x', { authorization: `Bearer ${KEY}`, 'x-api-version': '1' })
    const seen = upstream.requests[0]
    expect(seen?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`)
    expect(seen?.headers['x-api-version']).toBe('2')
    expect(seen?.rawHeaders.filter((h) => h.toLowerCase() === 'authorization')).toHaveLength(1)
  })

  it('forwards the client’s own Authorization only where the target allows it and the key came in X-Fairlane-Key', async () => {
    await send('/t/passthrough/own', {
      'x-fairlane-key': KEY,
      authorization: 'Bearer client-own-token',
    })
    await send('/t/api/own', { 'x-fairlane-key': KEY, authorization: 'Bearer client-own-token' })
    expect(upstream.requests[0]?.headers.authorization).toBe('Bearer client-own-token')
    expect(upstream.requests[1]?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`)
  })

  it('does not send another target’s credential', async () => {
    await send('/t/passthrough/x', { authorization: `Bearer ${KEY}` })
    expect(upstream.requests[0]?.headers.authorization).toBeUndefined()
    expect(everything(upstream.requests[0] as RecordedRequest)).not.toContain(UPSTREAM_SECRET)
  })

  it('drops hop-by-hop headers, those named in Connection, and Fairlane’s own', async () => {
    await send('/t/api/h', {
      authorization: `Bearer ${KEY}`,
      connection: 'keep-alive, x-secret-hop',
      'keep-alive': 'timeout=5',
      'x-secret-hop': 'drop me',
      'proxy-authorization': 'Basic abc',
      te: 'trailers',
      upgrade: 'websocket',
      'fairlane-ratelimit-policy': '10;w=1',
      'x-fairlane-url': 'https://example.com/',
      'x-kept': 'kept',
    })
    const headers = upstream.requests[0]?.headers ?? {}
    for (const name of [
      'keep-alive',
      'x-secret-hop',
      'proxy-authorization',
      'te',
      'upgrade',
      'fairlane-ratelimit-policy',
      'x-fairlane-url',
      'x-fairlane-key',
    ]) {
      expect(headers[name], name).toBeUndefined()
    }
    expect(headers['x-kept']).toBe('kept')
    expect(headers.host).toBe(new URL(upstream.url).host)
  })
})
