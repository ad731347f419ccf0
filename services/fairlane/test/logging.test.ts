import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_log_KEY_5eb63bbbe01eeed093cb'
const UPSTREAM_SECRET = 'sk-logtest-upstream-22e9c5d1'
const HEADER_SECRET = 'hdr-secret-6f1ed002ab5595859014'
const QUERY_SECRET = 'qry-secret-b1946ac92492d2347c62'
const BODY_SECRET = 'body-secret-591785b794601e212b26'
const COOKIE_SECRET = 'cookie-secret-0cc175b9c0f1b6a8'

let upstream: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode(
    {
      logging: { level: 'trace' },
      targets: {
        api: {
          endpoints: [{ url: upstream.url }],
          allowPrivateAddresses: true,
          upstreamHeaders: { authorization: 'Bearer ${UPSTREAM_TOKEN}' },
          timeouts: { headersMs: 100 },
        },
      },
      workspaces: {
        demo: { targets: ['api'], keys: [{ id: 'logkey', hash: hashKeySecret(KEY) }] },
      },
    },
    { env: { UPSTREAM_TOKEN: UPSTREAM_SECRET } },
  )
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

describe('request logs', () => {
  it('carry the evidence of each request and none of its secrets', async () => {
    const secretHeaders = {
      'x-api-key': HEADER_SECRET,
      cookie: `session=${COOKIE_SECRET}`,
      'content-type': 'application/json',
    }
    const body = JSON.stringify({ password: BODY_SECRET })
    const path = `/t/api/v1/items?token=${QUERY_SECRET}&x=1`
    // Success, wrong key, rate-free failure (timeout) and an unknown route: every log path.
    await node.proxy(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, ...secretHeaders },
      body,
    })
    await node.proxy(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}x`, ...secretHeaders },
      body,
    })
    upstream.behave(() => ({ kind: 'delay', ms: 1000 }))
    await node.proxy(path, {
      method: 'POST',
      headers: { 'x-fairlane-key': KEY, ...secretHeaders },
      body,
    })
    await node.proxy(`/nowhere?token=${QUERY_SECRET}`, {
      headers: { authorization: `Bearer ${KEY}` },
    })
    await node.close()

    const text = node.logs.text
    for (const secret of [
      KEY,
      UPSTREAM_SECRET,
      HEADER_SECRET,
      QUERY_SECRET,
      BODY_SECRET,
      COOKIE_SECRET,
    ]) {
      expect(text, secret).not.toContain(secret)
    }
    const requests = node.logs.lines().filter((line) => line['msg'] === 'request')
    expect(requests).toHaveLength(4)
    expect(requests[0]).toMatchObject({
      requestId: expect.any(String),
      traceId: expect.stringMatching(/^[0-9a-f]{32}$/),
      method: 'POST',
      path: '/t/api/v1/items',
      workspace: 'demo',
      keyId: 'logkey',
      target: 'api',
      stage: 'respond',
      status: 200,
      durationMs: expect.any(Number),
      queueMs: expect.any(Number),
      upstreamMs: expect.any(Number),
      attempts: 1,
    })
    expect(requests[1]).toMatchObject({
      stage: 'authenticate',
      status: 401,
      code: 'unauthenticated',
    })
    expect(requests[1]?.['keyId']).toBeUndefined()
    expect(requests[2]).toMatchObject({
      stage: 'forward',
      status: 504,
      code: 'upstream_timeout',
      keyId: 'logkey',
    })
    expect(requests[3]).toMatchObject({ stage: 'resolve', status: 404, path: '/nowhere' })
  })

  it('keep the query string out of the line of a path that cannot be decoded', async () => {
    const fresh = await startNode({
      logging: { level: 'trace' },
      targets: { api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
      workspaces: {
        demo: { targets: ['api'], keys: [{ id: 'logkey', hash: hashKeySecret(KEY) }] },
      },
    })
    const response = await fresh.proxy(`/t/api/%ff?api_key=${QUERY_SECRET}`, {
      headers: { authorization: `Bearer ${KEY}` },
    })
    const body = await response.text()
    await fresh.close()
    expect(response.status).toBe(400)
    expect(body).not.toContain(QUERY_SECRET)
    expect(fresh.logs.text).not.toContain(QUERY_SECRET)
    const line = fresh.logs.lines().find((l) => l['msg'] === 'request')
    expect(line).toMatchObject({ status: 400, code: 'bad_request', path: '/t/api/%ff' })
  })

  it('logs a client that left before any answer as 499', async () => {
    const fresh = await startNode({
      targets: { api: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
      workspaces: {
        demo: { targets: ['api'], keys: [{ id: 'logkey', hash: hashKeySecret(KEY) }] },
      },
    })
    upstream.behave(() => ({ kind: 'delay', ms: 2000 }))
    const controller = new AbortController()
    const pending = fresh.proxy('/t/api/slow', {
      headers: { authorization: `Bearer ${KEY}` },
      signal: controller.signal,
    })
    await expect.poll(() => upstream.inFlight).toBe(1)
    controller.abort()
    await pending.catch(() => undefined)
    await fresh.close()
    const line = fresh.logs.lines().find((l) => l['msg'] === 'request')
    expect(line).toMatchObject({ status: 499, stage: 'forward', clientClosed: true })
  })
})
