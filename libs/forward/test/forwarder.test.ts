import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import { text } from 'node:stream/consumers'
import { afterEach, describe, expect, it } from 'vitest'
import { FairlaneError } from '@fairlane/protocol'
import {
  DestinationPolicy,
  Forwarder,
  type PinnedDestination,
  type UpstreamRequest,
  type UpstreamTimeouts,
} from '../src/index.ts'

interface Upstream {
  readonly port: number
  /** Requests seen so far, in arrival order. */
  readonly seen: IncomingMessage[]
}

const servers: Server[] = []
let forwarder = new Forwarder()

afterEach(async () => {
  await forwarder.close()
  forwarder = new Forwarder()
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

async function upstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Upstream> {
  const seen: IncomingMessage[] = []
  const server = createServer((req, res) => {
    seen.push(req)
    handler(req, res)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, seen }
}

/** Pins `good.test` to loopback through the real policy, as the service would for an inbound target. */
async function pin(name: string, port: number): Promise<PinnedDestination> {
  const policy = new DestinationPolicy({
    resolve: async (hostname) => (hostname === name ? [{ address: '127.0.0.1', family: 4 }] : []),
    self: () => ({ addresses: [], ports: [] }),
  })
  return policy.check(`http://${name}:${port}/`, { allowHttp: true, allowPrivateAddresses: true })
}

const timeouts: UpstreamTimeouts = { connectMs: 10_000, headersMs: 10_000, bodyMs: 10_000 }

function request(
  destination: PinnedDestination,
  overrides: Partial<UpstreamRequest> = {},
): UpstreamRequest {
  return {
    method: 'GET',
    destination,
    path: '/v1/things?x=1',
    headers: {},
    body: null,
    timeouts,
    signal: new AbortController().signal,
    ...overrides,
  }
}

describe('Forwarder against loopback upstreams', () => {
  it('connects to the pinned address while sending the original Host', async () => {
    const server = await upstream((_req, res) => res.end('ok'))
    const destination = await pin('good.test', server.port)
    expect(destination.address).toBe('127.0.0.1')

    const response = await forwarder.forward(
      request(destination, { headers: { host: 'evil.test', 'x-trace': 'a' } }),
    )

    expect(response.status).toBe(200)
    expect(await text(response.body)).toBe('ok')
    expect(server.seen).toHaveLength(1)
    expect(server.seen[0]?.headers.host).toBe(`good.test:${server.port}`)
    expect(server.seen[0]?.headers['x-trace']).toBe('a')
    expect(server.seen[0]?.url).toBe('/v1/things?x=1')
  })

  it('returns a redirect as it is and never follows it', async () => {
    const target = await upstream((_req, res) => res.end('followed'))
    const location = `http://127.0.0.1:${target.port}/landing`
    const origin = await upstream((_req, res) => {
      res.writeHead(302, { location })
      res.end()
    })

    const response = await forwarder.forward(request(await pin('good.test', origin.port)))
    await text(response.body)

    expect(response.status).toBe(302)
    expect(response.headers['location']).toBe(location)
    expect(target.seen).toHaveLength(0)
  })

  it('streams the request body instead of buffering it', async () => {
    const firstChunk = Promise.withResolvers<void>()
    const server = await upstream((req, res) => {
      const chunks: string[] = []
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => {
        chunks.push(chunk)
        firstChunk.resolve()
      })
      req.on('end', () => res.end(chunks.join('')))
    })
    const body = new PassThrough()
    const responding = forwarder.forward(
      request(await pin('good.test', server.port), {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body,
      }),
    )

    body.write('first,')
    // The upstream sees the first chunk while the client has not finished sending.
    await firstChunk.promise
    body.end('second')

    const response = await responding
    expect(await text(response.body)).toBe('first,second')
    expect(server.seen[0]?.headers['transfer-encoding']).toBe('chunked')
  })

  it('maps a refused connection to upstream_unavailable', async () => {
    const closed = await upstream(() => undefined)
    const destination = await pin('good.test', closed.port)
    const server = servers.pop()
    await new Promise<void>((resolve) => server?.close(() => resolve()))

    const failure = await forwarder.forward(request(destination)).catch((err: unknown) => err)

    expect(failure).toBeInstanceOf(FairlaneError)
    expect(failure).toMatchObject({ code: 'upstream_unavailable', stage: 'forward' })
    expect((failure as FairlaneError).message).toContain('ECONNREFUSED')
  })

  it('maps a missing response head to upstream_timeout', async () => {
    const silent = await upstream(() => undefined)
    const started = performance.now()

    const failure = await forwarder
      .forward(
        request(await pin('good.test', silent.port), {
          timeouts: { ...timeouts, headersMs: 200 },
        }),
      )
      .catch((err: unknown) => err)

    expect(failure).toBeInstanceOf(FairlaneError)
    expect(failure).toMatchObject({ code: 'upstream_timeout', stage: 'forward' })
    // undici runs header timers on a ~1 s tick, so only "well before the default" is exact.
    expect(performance.now() - started).toBeLessThan(5_000)
    expect(silent.seen).toHaveLength(1)
  })
})
