import { networkInterfaces } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_admin_test_key'

let upstream: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  upstream = await startUpstream()
  node = await startNode({
    targets: { echo: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true } },
    workspaces: { demo: { targets: ['echo'], keys: [{ id: 'admin', hash: hashKeySecret(KEY) }] } },
  })
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

/** An address of this machine other than loopback, to knock on from "outside". */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address

describe.skipIf(outside === undefined)('admin listen address', () => {
  const metricsVia = async (admin: TestNode, address: string) =>
    (await fetch(`http://${address}:${admin.adminPort}/metrics`).catch(() => undefined))?.status

  it('is loopback unless configured: /metrics is not served on other interfaces', async () => {
    const admin = await startNode({})
    try {
      expect(await metricsVia(admin, '127.0.0.1')).toBe(200)
      expect(await metricsVia(admin, outside as string)).toBeUndefined()
    } finally {
      await admin.close()
    }
  })

  it('serves other interfaces when server.adminHost says so', async () => {
    const admin = await startNode({ server: { adminHost: '0.0.0.0' } })
    try {
      expect(await metricsVia(admin, outside as string)).toBe(200)
    } finally {
      await admin.close()
    }
  })
})

describe('admin port', () => {
  it('answers liveness and readiness', async () => {
    expect(await (await fetch(`${node.adminUrl}/healthz`)).json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${node.adminUrl}/readyz`)
    expect(ready.status).toBe(200)
  })

  it('exposes request, latency and refusal metrics with bounded labels', async () => {
    await node.proxy('/t/echo/a', { headers: bearer(KEY) })
    await node.proxy('/t/echo/a')
    const response = await fetch(`${node.adminUrl}/metrics`)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    expect(text).toContain('fairlane_requests_total{target="echo",status="200",stage="respond"} 1')
    expect(text).toContain(
      'fairlane_requests_total{target="(none)",status="401",stage="authenticate"} 1',
    )
    expect(text).toMatch(/fairlane_request_duration_seconds_bucket\{le="0\.005",target="echo"\} \d/)
    expect(text).toMatch(/fairlane_upstream_duration_seconds_count\{target="echo",region=""\} 1/)
    expect(text).toMatch(/fairlane_queue_wait_seconds_count\{target="echo",tier="free"\} 1/)
    expect(text).toContain(
      'fairlane_lane_requests_total{workspace="demo",tier="free",outcome="admitted"} 1',
    )
    expect(text).toContain('# TYPE fairlane_limit_refusals_total counter')
    expect(text).toMatch(
      /fairlane_build_info\{version="\d+\.\d+\.\d+[^"]*",node="[^"]+",region="",mode="embedded",nodejs="v24\.[^"]+"\} 1/,
    )
    // Node's defaults under their standard names, for stock dashboards.
    expect(text).toMatch(/^process_cpu_seconds_total /m)
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m)
    expect(text).not.toContain('fairlane_process_')
    expect(text).not.toContain('fairlane_nodejs_')
    expect(text).not.toContain(KEY)
    expect(text).not.toContain('/t/echo/a')
  })

  it('shows the lanes it saw lately at GET /lanes, without keys', async () => {
    const response = await fetch(`${node.adminUrl}/lanes`)
    expect(response.status).toBe(200)
    const body = (await response.json()) as Record<string, unknown>
    expect(body).toMatchObject({
      region: null,
      waitBucketsMs: expect.arrayContaining([1, 1_000]) as unknown,
      refusalCodes: ['rate_limited', 'queue_full', 'queue_timeout', 'cluster_unavailable'],
      lanes: [
        {
          workspace: 'demo',
          caller: 'admin',
          target: 'echo',
          tier: 'free',
          queued: 0,
          refused: {},
        },
      ],
    })
    expect(body['windowSeconds']).toBeGreaterThan(0)
    const [lane] = body['lanes'] as { admitted: number; wait: number[] }[]
    expect(lane?.admitted).toBeGreaterThanOrEqual(1)
    expect(lane?.wait.reduce((a, b) => a + b, 0)).toBe(lane?.admitted)
    expect(JSON.stringify(body)).not.toContain(KEY)
  })

  it('is not reachable through the proxy', async () => {
    const port = new URL(node.adminUrl).port
    const response = await node.proxy('/', {
      headers: { ...bearer(KEY), 'x-fairlane-url': `https://127.0.0.1:${port}/metrics` },
    })
    expect(response.status).toBe(403)
  })

  it('turns not ready while draining', async () => {
    upstream.behave(() => ({ kind: 'delay', ms: 400 }))
    const inFlight = node.proxy('/t/echo/slow', { headers: bearer(KEY) })
    await expect.poll(() => upstream.inFlight).toBe(1)
    const closing = node.close()
    // The request in flight still completes within the grace period.
    expect((await inFlight).status).toBe(200)
    await closing
    await expect(fetch(`${node.adminUrl}/readyz`)).rejects.toThrow()
  })
})
