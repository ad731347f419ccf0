import { afterEach, describe, expect, it, vi } from 'vitest'
import { startUpstream, type Behavior, type LoopbackUpstream } from '@fairlane/testing'
import {
  DestinationPolicy,
  EndpointHealth,
  HealthProber,
  type EndpointHealthOptions,
  type ProbeSpec,
} from '../src/index.ts'

const upstreams: LoopbackUpstream[] = []
const probers: HealthProber[] = []

afterEach(async () => {
  await Promise.all(probers.splice(0).map((p) => p.stop()))
  await Promise.all(upstreams.splice(0).map((u) => u.close()))
})

async function upstream(behavior: Behavior): Promise<LoopbackUpstream> {
  const server = await startUpstream()
  server.behave(() => behavior)
  upstreams.push(server)
  return server
}

/**
 * The circuit runs on an injected clock, so open times pass when the test says; only the
 * probes themselves are real requests to a real server.
 */
function setup(
  url: string,
  probe: Partial<ProbeSpec> = {},
  circuit: Partial<EndpointHealthOptions> = {},
) {
  const clock = { t: 0 }
  const health = new EndpointHealth({ now: () => clock.t, openMs: 5_000, ...circuit })
  const prober = new HealthProber([
    { url, health, probe: { path: '/healthz', intervalMs: 1_000, ...probe } },
  ])
  probers.push(prober)
  return { clock, health, prober }
}

async function rounds(prober: HealthProber, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await prober.probeAll()
}

describe('HealthProber against a loopback upstream', () => {
  it('keeps a healthy endpoint closed and records its latency', async () => {
    const server = await upstream({ kind: 'respond', status: 200, body: 'ok' })
    const { health, prober } = setup(server.url)
    await rounds(prober, 10)

    expect(health.state).toBe('closed')
    expect(health.requests).toBe(10)
    expect(health.failures).toBe(0)
    expect(health.p95Ms()).toBeGreaterThanOrEqual(0)
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(
      Array(10).fill('GET /healthz'),
    )
    expect(server.requests[0]?.headers['user-agent']).toBe('fairlane-health-probe')
  })

  it('opens on 503s, stops probing while open, and closes after two successful trials', async () => {
    const server = await upstream({ kind: 'respond', status: 503 })
    const { clock, health, prober } = setup(server.url)

    await rounds(prober, 5)
    expect(health.state).toBe('open')
    expect(health.lastFailure?.kind).toBe('status-5xx')

    // While open nothing is sent, not even a probe.
    await rounds(prober, 3)
    expect(server.hits).toBe(5)

    server.behave(() => ({ kind: 'respond', status: 200 }))
    clock.t += 5_000
    await prober.probeAll()
    expect(server.hits).toBe(6)
    expect(health.state).toBe('half-open')
    await prober.probeAll()
    expect(health.state).toBe('closed')
  })

  it('re-opens on a failed trial and waits twice as long', async () => {
    const server = await upstream({ kind: 'respond', status: 503 })
    const { clock, health, prober } = setup(server.url)
    await rounds(prober, 5)
    clock.t += 5_000
    await prober.probeAll()
    expect(health.state).toBe('open')
    expect(health.halfOpenAt).toBe(clock.t + 10_000)
  })

  it.each<[string, Behavior, Partial<ProbeSpec>, string]>([
    ['a reset connection', { kind: 'reset' }, {}, 'reset'],
    [
      'an answer slower than the timeout',
      { kind: 'delay', ms: 10_000 },
      { timeoutMs: 100 },
      'timeout',
    ],
    [
      'a status outside the expected range',
      { kind: 'respond', status: 404 },
      {},
      'unexpected-status',
    ],
    [
      'a status outside a narrowed range',
      { kind: 'respond', status: 204 },
      { expectedStatus: { min: 200, max: 200 } },
      'unexpected-status',
    ],
  ])('counts %s as a failure', async (_name, behavior, probe, kind) => {
    const server = await upstream(behavior)
    const { health, prober } = setup(server.url, probe)
    await prober.probeAll()
    expect(health.failures).toBe(1)
    expect(health.lastFailure?.kind).toBe(kind)
  })

  it('counts a refused connection as a connect error', async () => {
    const server = await upstream({ kind: 'echo' })
    const { url } = server
    await server.close()
    const { health, prober } = setup(url)
    await prober.probeAll()
    expect(health.lastFailure?.kind).toBe('connect-error')
  })

  it('does not count a 429 against the endpoint', async () => {
    const server = await upstream({ kind: 'respond', status: 429, headers: { 'retry-after': '1' } })
    const { health, prober } = setup(server.url)
    await rounds(prober, 10)
    expect(health.state).toBe('closed')
    expect(health.failures).toBe(0)
  })

  it('probes from the origin, with the given headers', async () => {
    const server = await upstream({ kind: 'respond', status: 200 })
    const { prober } = setup(`${server.url}/v1`, {
      path: '/status?deep=1',
      headers: { authorization: 'Bearer upstream-secret' },
    })
    await prober.probeAll()
    expect(server.requests[0]?.url).toBe('/status?deep=1')
    expect(server.requests[0]?.headers['authorization']).toBe('Bearer upstream-secret')
  })

  it('connects to the address the destination policy pinned, with the name as Host', async () => {
    const server = await upstream({ kind: 'respond', status: 200 })
    const policy = new DestinationPolicy({
      resolve: async (hostname) =>
        hostname === 'probe.test' ? [{ address: '127.0.0.1', family: 4 }] : [],
      self: () => ({ addresses: [], ports: [] }),
    })
    const health = new EndpointHealth({ now: () => 0 })
    const prober = new HealthProber(
      [
        {
          url: `http://probe.test:${server.port}`,
          health,
          probe: { path: '/healthz', intervalMs: 1_000 },
        },
      ],
      { pin: (url) => policy.check(url, { allowHttp: true, allowPrivateAddresses: true }) },
    )
    probers.push(prober)
    await prober.probeAll()
    expect(health.failures).toBe(0)
    expect(server.requests[0]?.headers['host']).toBe(`probe.test:${server.port}`)
  })

  it('counts an endpoint the destination policy refuses as a connect error, without a request', async () => {
    const server = await upstream({ kind: 'respond', status: 200 })
    const policy = new DestinationPolicy({
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
      self: () => ({ addresses: [], ports: [] }),
    })
    const health = new EndpointHealth({ now: () => 0 })
    const prober = new HealthProber(
      [{ url: server.url, health, probe: { path: '/healthz', intervalMs: 1_000 } }],
      { pin: (url) => policy.check(url, { allowHttp: true, allowPrivateAddresses: false }) },
    )
    probers.push(prober)
    await prober.probeAll()
    expect(health.lastFailure?.kind).toBe('connect-error')
    expect(server.hits).toBe(0)
  })

  it('probes on its own once started, and stop() aborts a probe in flight without a verdict', async () => {
    const server = await upstream({ kind: 'respond', status: 200 })
    const { health, prober } = setup(server.url, { intervalMs: 10, timeoutMs: 30_000 })
    prober.start()
    await vi.waitFor(() => expect(health.requests).toBeGreaterThanOrEqual(3), { timeout: 10_000 })

    server.behave(() => ({ kind: 'delay', ms: 60_000 }))
    await vi.waitFor(() => expect(server.inFlight).toBe(1), { timeout: 10_000 })
    const before = health.requests
    await prober.stop()
    expect(health.requests).toBe(before)
    expect(health.failures).toBe(0)

    // Stopped for good: no more probes, on a timer or on demand.
    const hits = server.hits
    await prober.probeAll()
    expect(server.hits).toBe(hits)
  })
})
