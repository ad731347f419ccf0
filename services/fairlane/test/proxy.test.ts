import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, stubResolver, type TestNode } from './node-harness.ts'

const KEY = 'fl_test_proxy_key'

let upstream: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode(
    {
      server: { maxBodyBytes: 1024, maxHeaderBytes: 4096 },
      destinations: { timeouts: { connectMs: 300 } },
      targets: {
        echo: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true },
        based: { endpoints: [{ url: `${upstream.url}/base/v1/` }], allowPrivateAddresses: true },
        slow: {
          endpoints: [{ url: upstream.url }],
          allowPrivateAddresses: true,
          timeouts: { headersMs: 200 },
        },
        down: { endpoints: [{ url: 'http://127.0.0.1:1' }], allowPrivateAddresses: true },
        stall: {
          endpoints: [{ url: upstream.url }],
          allowPrivateAddresses: true,
          timeouts: { bodyMs: 200 },
        },
        private: { endpoints: [{ url: upstream.url }] },
        other: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true },
      },
      workspaces: {
        demo: {
          targets: ['echo', 'based', 'slow', 'down', 'private', 'stall'],
          hosts: ['*.example.com', 'api.partner.io'],
          keys: [{ id: 'proxy-key', hash: hashKeySecret(KEY) }],
        },
      },
    },
    {
      resolve: stubResolver({
        'api.example.com': ['11.0.0.1'],
        'internal.example.com': ['10.1.2.3'],
        'mixed.example.com': ['11.0.0.2', '192.168.1.1'],
        'api.partner.io': ['127.0.0.1'],
      }),
    },
  )
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

afterEach(() => {
  upstream.behave(() => ({ kind: 'echo' }))
  upstream.clear()
})

function rawGet(base: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(base + '/', { path, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Any method, TRACK included, which fetch and http.request would refuse or rewrite. */
function rawRequest(base: string, method: string, path: string, headers: Record<string, string>) {
  const { hostname, port } = new URL(base)
  return new Promise<{ status: number; headers: Record<string, string>; body: string }>(
    (resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        const head = Object.entries({ host: 'fairlane', ...headers, connection: 'close' })
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('')
        socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`)
      })
      let text = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => (text += chunk))
      socket.on('error', reject)
      socket.on('close', () => {
        const [head = '', body = ''] = text.split('\r\n\r\n', 2)
        const [statusLine = '', ...lines] = head.split('\r\n')
        const fields = Object.fromEntries(
          lines.map((line) => {
            const colon = line.indexOf(':')
            return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
          }),
        )
        resolve({ status: Number(statusLine.split(' ')[1]), headers: fields, body })
      })
    },
  )
}

async function problem(response: Response) {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  return (await response.json()) as Record<string, unknown>
}

describe('target form /t/<target>/<path>', () => {
  it('forwards method, path, query and body byte for byte', async () => {
    const response = await node.proxy('/t/echo/v1/items%2Fx?q=a%20b&q=2', {
      method: 'PUT',
      headers: { ...bearer(KEY), 'content-type': 'application/json' },
      body: '{"hello":"world"}',
    })
    expect(response.status).toBe(200)
    const seen = upstream.requests[0]
    expect(seen?.method).toBe('PUT')
    expect(seen?.url).toBe('/v1/items%2Fx?q=a%20b&q=2')
    expect(seen?.body.toString()).toBe('{"hello":"world"}')
    expect(seen?.headers['content-type']).toBe('application/json')
  })

  it('joins the endpoint base path', async () => {
    await node.proxy('/t/based/chat/completions', { headers: bearer(KEY) })
    await node.proxy('/t/based', { headers: bearer(KEY) })
    expect(upstream.requests.map((r) => r.url)).toEqual(['/base/v1/chat/completions', '/base/v1'])
  })

  it('refuses dot segments that would climb out of the base path', async () => {
    // fetch would normalise these away; a raw request sends them as an attacker would.
    for (const path of [
      '/t/based/../admin',
      '/t/based/%2e%2e/admin',
      '/t/based/a/./b',
      '/t/based/..\\admin',
      '/t/based/..%5cadmin',
      '/t/based/.%2E/x',
      // Spellings that upstream servers commonly normalise to a dot segment.
      '/t/based/..;/admin',
      '/t/based/.;/admin',
      '/t/based/%2e%2e;/admin',
      '/t/based/..%00/admin',
      '/t/based/..%20/admin',
      '/t/based/%252e%252e/admin',
      '/t/based/%ef%bc%8e%ef%bc%8e/admin',
    ]) {
      const { status, body } = await rawGet(node.proxyUrl, path, bearer(KEY))
      expect(status, path).toBe(400)
      expect(JSON.parse(body)).toMatchObject({ code: 'bad_request', stage: 'resolve' })
    }
    expect(upstream.hits).toBe(0)
  })

  it('streams a chunked request body and a slow response body', async () => {
    upstream.behave(() => ({ kind: 'stream', chunks: ['one,', 'two,', 'three'], intervalMs: 30 }))
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('part1-'))
        controller.enqueue(new TextEncoder().encode('part2'))
        controller.close()
      },
    })
    const response = await node.proxy('/t/echo/upload', {
      method: 'POST',
      headers: bearer(KEY),
      body,
      duplex: 'half',
    } as RequestInit)
    expect(await response.text()).toBe('one,two,three')
    expect(upstream.requests[0]?.body.toString()).toBe('part1-part2')
  })

  it('sends the path exactly as written, without re-normalising it', async () => {
    const { status } = await rawGet(node.proxyUrl, "/t/echo/a\\b/{x}?q='1'", bearer(KEY))
    expect(status).toBe(200)
    expect(upstream.requests[0]?.url).toBe("/a\\b/{x}?q='1'")
  })

  it('answers a request target it cannot decode with problem+json', async () => {
    const { status, body } = await rawGet(node.proxyUrl, '/t/%zz/x', bearer(KEY))
    expect(status).toBe(400)
    expect(JSON.parse(body)).toMatchObject({ code: 'bad_request', stage: 'correlate' })
  })

  it('does not pass a query string of a path it cannot decode into the answer', async () => {
    const { status, body } = await rawGet(
      node.proxyUrl,
      '/t/echo/%ff?api_key=qs-secret-1',
      bearer(KEY),
    )
    expect(status).toBe(400)
    expect(JSON.parse(body)).toMatchObject({ code: 'bad_request', stage: 'correlate' })
    expect(body).not.toContain('qs-secret-1')
    expect(body).not.toContain('api_key')
  })

  it('refuses TRACE and TRACK with 405 before any upstream call', async () => {
    const trace = await rawRequest(node.proxyUrl, 'TRACE', '/t/echo/x', bearer(KEY))
    expect(trace.status).toBe(405)
    expect(trace.headers['allow']).toContain('GET')
    expect(JSON.parse(trace.body)).toMatchObject({ code: 'method_not_allowed', stage: 'correlate' })
    const track = await rawRequest(node.proxyUrl, 'TRACK', '/t/echo/x', bearer(KEY))
    expect(track.status).toBe(405)
    expect(track.headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(track.body)).toMatchObject({ code: 'method_not_allowed' })
    expect(upstream.hits).toBe(0)
  })

  it('passes other methods the HTTP parser knows', async () => {
    for (const method of ['PATCH', 'OPTIONS', 'PURGE', 'PROPFIND']) {
      const { status } = await rawRequest(node.proxyUrl, method, '/t/echo/m', bearer(KEY))
      expect(status, method).toBe(200)
    }
    expect(upstream.requests.map((r) => r.method)).toEqual([
      'PATCH',
      'OPTIONS',
      'PURGE',
      'PROPFIND',
    ])
  })

  it('returns redirects to the client instead of following them', async () => {
    upstream.behave((r) =>
      r.url === '/moved'
        ? { kind: 'respond', status: 302, headers: { location: `${upstream.url}/elsewhere` } }
        : { kind: 'echo' },
    )
    const response = await node.proxy('/t/echo/moved', { headers: bearer(KEY), redirect: 'manual' })
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe(`${upstream.url}/elsewhere`)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/moved'])
  })

  it('passes upstream statuses and headers through', async () => {
    upstream.behave(() => ({
      kind: 'respond',
      status: 418,
      headers: { 'x-upstream': 'yes', 'set-cookie': 'a=1' },
      body: 'teapot',
    }))
    const response = await node.proxy('/t/echo/x', { headers: bearer(KEY) })
    expect(response.status).toBe(418)
    expect(response.headers.get('x-upstream')).toBe('yes')
    expect(await response.text()).toBe('teapot')
  })

  it('refuses targets the workspace may not use, and unknown ones alike', async () => {
    for (const name of ['other', 'nope']) {
      const response = await node.proxy(`/t/${name}/x`, { headers: bearer(KEY) })
      expect(response.status).toBe(403)
      expect(await problem(response)).toMatchObject({ code: 'forbidden_target', stage: 'resolve' })
    }
  })

  it('blocks a loopback target without the operator override', async () => {
    const response = await node.proxy('/t/private/x', { headers: bearer(KEY) })
    expect(response.status).toBe(403)
    expect(await problem(response)).toMatchObject({ code: 'destination_blocked', stage: 'resolve' })
    expect(upstream.hits).toBe(0)
  })

  it('answers 404 for a path that is neither form', async () => {
    const response = await node.proxy('/v1/chat', { headers: bearer(KEY) })
    expect(response.status).toBe(404)
    expect(await problem(response)).toMatchObject({ code: 'not_found' })
  })
})

describe('X-Fairlane-Url form', () => {
  const url = (value: string) => ({ ...bearer(KEY), 'x-fairlane-url': value })

  it.each([
    ['a host outside the approved patterns', 'https://evil.com/x'],
    ['a loopback literal', 'https://127.0.0.1/x'],
    ['an approved name that resolves to loopback', 'https://api.partner.io/x'],
    ['a name that resolves to a private address', 'https://internal.example.com/x'],
    ['a name with one private record among public ones', 'https://mixed.example.com/x'],
    ['plain http', 'http://api.example.com/x'],
    ['a port that is not allowed', 'https://api.example.com:8443/x'],
    ['userinfo', 'https://user:pw@api.example.com/x'],
    ['the metadata address', 'https://169.254.169.254/latest/meta-data'],
    ['a decimal IP spelling', 'https://2130706433/'],
  ])('blocks %s', async (_name, value) => {
    const response = await node.proxy('/', { headers: url(value) })
    expect(response.status).toBe(403)
    expect(await problem(response)).toMatchObject({ code: 'destination_blocked', stage: 'resolve' })
  })

  it('lets an approved public destination through to the forward stage, at the pinned address', async () => {
    // 11.0.0.1 is public and unreachable from this sandbox: passing the policy shows up as a
    // forward-stage failure, which a blocked destination never reaches.
    const response = await node.proxy('/', { headers: url('https://api.example.com/v1/x') })
    const body = await problem(response)
    expect(body['stage']).toBe('forward')
    expect([502, 504]).toContain(response.status)
  })

  it('rejects a malformed URL as a bad request', async () => {
    const response = await node.proxy('/', { headers: url('not a url') })
    expect(response.status).toBe(400)
    expect(await problem(response)).toMatchObject({ code: 'bad_request' })
  })
})

describe('authentication', () => {
  it('accepts the key as a bearer token or in X-Fairlane-Key', async () => {
    expect((await node.proxy('/t/echo/a', { headers: bearer(KEY) })).status).toBe(200)
    expect((await node.proxy('/t/echo/a', { headers: { 'x-fairlane-key': KEY } })).status).toBe(200)
  })

  it.each([
    ['no key', {}],
    ['a wrong key', bearer('fl_wrong')],
    ['a key in the wrong scheme', { authorization: `Basic ${KEY}` }],
    ['a key with one character changed', bearer(KEY.slice(0, -1) + 'X')],
  ])('refuses %s with 401 before any upstream call', async (_name, headers) => {
    const response = await node.proxy('/t/echo/a', { headers })
    expect(response.status).toBe(401)
    expect(await problem(response)).toMatchObject({
      code: 'unauthenticated',
      stage: 'authenticate',
    })
    expect(upstream.hits).toBe(0)
  })
})

describe('correlation', () => {
  it('keeps a sane X-Request-Id, forwards it, and makes one otherwise', async () => {
    const kept = await node.proxy('/t/echo/a', {
      headers: { ...bearer(KEY), 'x-request-id': 'client-req-1' },
    })
    expect(kept.headers.get('x-request-id')).toBe('client-req-1')
    expect(upstream.requests[0]?.headers['x-request-id']).toBe('client-req-1')
    const made = await node.proxy('/t/echo/a', {
      headers: { ...bearer(KEY), 'x-request-id': 'bad id!' },
    })
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const refused = await node.proxy('/t/echo/a', { headers: { 'x-request-id': 'client-req-2' } })
    expect(refused.headers.get('x-request-id')).toBe('client-req-2')
    expect((await refused.json()) as unknown).toMatchObject({ requestId: 'client-req-2' })
  })

  it('continues the client trace upstream with a new span', async () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    await node.proxy('/t/echo/a', { headers: { ...bearer(KEY), traceparent: parent } })
    const sent = upstream.requests[0]?.headers['traceparent']
    expect(sent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/)
    expect(sent).not.toBe(parent)
  })
})

describe('size limits and upstream failures', () => {
  it('refuses a declared body over the limit with 413 before reading it', async () => {
    const response = await node.proxy('/t/echo/a', {
      method: 'POST',
      headers: bearer(KEY),
      body: 'x'.repeat(2048),
    })
    expect(response.status).toBe(413)
    expect(await problem(response)).toMatchObject({ code: 'payload_too_large' })
    expect(upstream.hits).toBe(0)
  })

  it('refuses a chunked body once it passes the limit', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${node.proxyUrl}/t/echo/a`,
        { method: 'POST', headers: bearer(KEY) },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', reject)
      for (let i = 0; i < 8; i++) req.write('y'.repeat(256))
      req.end()
    })
    expect(status).toBe(413)
    // The client's oversized body says nothing about the upstream.
    const health = (await (await fetch(`${node.adminUrl}/upstreams`)).json()) as {
      target: string
      failures: number
    }[]
    expect(health.find((e) => e.target === 'echo')?.failures).toBe(0)
  })

  it('refuses an oversized request head with 431', async () => {
    const response = await node.proxy('/t/echo/a', {
      headers: { ...bearer(KEY), 'x-big': 'z'.repeat(8192) },
    })
    expect(response.status).toBe(431)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    const id = response.headers.get('x-request-id')
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(await response.json()).toMatchObject({ code: 'headers_too_large', requestId: id })
  })

  it('maps a refused connection to 502 upstream_unavailable', async () => {
    const response = await node.proxy('/t/down/a', { headers: bearer(KEY) })
    expect(response.status).toBe(502)
    expect(await problem(response)).toMatchObject({
      code: 'upstream_unavailable',
      stage: 'forward',
    })
  })

  it('maps a slow upstream to 504 upstream_timeout', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 2000 }))
    const response = await node.proxy('/t/slow/a', { headers: bearer(KEY) })
    expect(response.status).toBe(504)
    expect(await problem(response)).toMatchObject({ code: 'upstream_timeout', stage: 'forward' })
  })

  it('maps an upstream body that stalls before its first byte to 504 upstream_timeout', async () => {
    upstream.behave(() => ({ kind: 'stall-body' }))
    const response = await node.proxy('/t/stall/a', { headers: bearer(KEY) })
    expect(response.status).toBe(504)
    expect(await problem(response)).toMatchObject({ code: 'upstream_timeout', stage: 'forward' })
  })

  it('aborts the upstream call when the client goes away', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 5000 }))
    const controller = new AbortController()
    const pending = node.proxy('/t/echo/hang', { headers: bearer(KEY), signal: controller.signal })
    await expect.poll(() => upstream.inFlight).toBe(1)
    controller.abort()
    await expect(pending).rejects.toThrow()
    await expect.poll(() => upstream.inFlight).toBe(0)
  })
})
