import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { getEventListeners } from 'node:events'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { text } from 'node:stream/consumers'
import { afterEach, describe, expect, it } from 'vitest'
import { FairlaneError } from '@fairlane/protocol'
import {
  DestinationPolicy,
  Forwarder,
  WHOLE_BODY_BYTES,
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

  it('sends one Host, the checked one, whichever spellings the bag carries', async () => {
    const server = await upstream((_req, res) => res.end('ok'))
    const destination = await pin('good.test', server.port)
    const checked = `good.test:${server.port}`

    // Already right: the bag goes as it is. With another spelling beside it: rebuilt.
    await text((await forwarder.forward(request(destination, { headers: { host: checked } }))).body)
    await text(
      (
        await forwarder.forward(
          request(destination, { headers: { host: checked, Host: 'evil.test' } }),
        )
      ).body,
    )

    expect(server.seen).toHaveLength(2)
    for (const seen of server.seen) {
      const hosts = seen.rawHeaders.filter(
        (_, i) => i % 2 === 0 && /^host$/i.test(seen.rawHeaders[i] ?? ''),
      )
      expect(hosts).toHaveLength(1)
      expect(seen.headers.host).toBe(checked)
    }
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

  it('hands a small body of known length over whole, or as a stream when asked', async () => {
    const server = await upstream((_req, res) => {
      res.setHeader('content-length', 6)
      res.write('one,')
      setTimeout(() => res.end('tw'), 20)
    })
    const destination = await pin('good.test', server.port)
    const signal = new AbortController().signal

    const collected = await forwarder.forward(request(destination, { signal }))
    expect((await collected.whole)?.toString()).toBe('one,tw')
    // The call is over: the client's signal holds nothing of it.
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)

    const streamed = await forwarder.forward(request(destination))
    expect(await text(streamed.body)).toBe('one,tw')
    expect(streamed.whole).toBeUndefined()
  })

  it('streams a large body, holding the upstream back while the reader is behind', async () => {
    const total = 32 * 1024 * 1024
    const chunk = Buffer.alloc(WHOLE_BODY_BYTES, 'a')
    let written = 0
    const server = await upstream((_req, res) => {
      res.setHeader('content-length', total)
      const more = () => {
        while (written < total) {
          written += chunk.length
          if (!res.write(chunk)) return void res.once('drain', more)
        }
        res.end()
      }
      more()
    })

    const response = await forwarder.forward(request(await pin('good.test', server.port)))
    expect(response.whole).toBeUndefined()
    await sleep(500)
    // Socket buffers on loopback hold a few megabytes; the rest waits for the reader.
    expect(written).toBeLessThan(total / 2)

    let read = 0
    for await (const part of response.body as AsyncIterable<Buffer>) read += part.length
    expect(read).toBe(total)
  })

  it('stops the call when the signal aborts after the head, and forgets the signal', async () => {
    const gone = Promise.withResolvers<void>()
    const server = await upstream((req, res) => {
      res.setHeader('content-length', 10)
      res.write('part')
      req.socket.once('close', () => gone.resolve())
    })
    const destination = await pin('good.test', server.port)

    const whileWhole = new AbortController()
    const collecting = await forwarder.forward(request(destination, { signal: whileWhole.signal }))
    whileWhole.abort()
    await expect(collecting.whole).rejects.toThrow()
    await gone.promise
    expect(getEventListeners(whileWhole.signal, 'abort')).toHaveLength(0)

    const large = await upstream((_req, res) => {
      res.setHeader('content-length', WHOLE_BODY_BYTES + 1)
      res.write('part')
    })
    const whileStreaming = new AbortController()
    const streaming = await forwarder.forward(
      request(await pin('good.test', large.port), { signal: whileStreaming.signal }),
    )
    const failed = new Promise((resolve) => streaming.body.once('error', resolve))
    streaming.body.resume()
    whileStreaming.abort()
    expect(await failed).toBeInstanceOf(Error)
    expect(getEventListeners(whileStreaming.signal, 'abort')).toHaveLength(0)
  })

  it('stops the call when the reader destroys a streamed body', async () => {
    const gone = Promise.withResolvers<void>()
    const server = await upstream((req, res) => {
      res.setHeader('content-length', WHOLE_BODY_BYTES + 1)
      res.write('part')
      req.socket.once('close', () => gone.resolve())
    })
    const response = await forwarder.forward(request(await pin('good.test', server.port)))

    response.body.destroy()

    await gone.promise
  })

  it('fails the body, not the call, when the upstream cuts it short', async () => {
    const cut = (length: number) =>
      upstream((_req, res) => {
        res.setHeader('content-length', length)
        res.write('part', () => res.destroy())
      })
    const small = await cut(10)
    const signal = new AbortController().signal
    const whole = await forwarder.forward(request(await pin('good.test', small.port), { signal }))
    expect(whole.status).toBe(200)
    await expect(whole.whole).rejects.toThrow()
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)

    const large = await cut(WHOLE_BODY_BYTES + 1)
    const streamed = await forwarder.forward(request(await pin('good.test', large.port)))
    expect(streamed.status).toBe(200)
    await expect(text(streamed.body)).rejects.toThrow()
  })

  it('does not call an upstream for a signal aborted before the call', async () => {
    const server = await upstream((_req, res) => res.end('ok'))
    const aborted = new AbortController()
    aborted.abort()
    const body = new PassThrough()

    const failure = await forwarder
      .forward(
        request(await pin('good.test', server.port), {
          method: 'POST',
          body,
          signal: aborted.signal,
        }),
      )
      .catch((err: unknown) => err)

    expect(failure).toMatchObject({ code: 'upstream_unavailable', stage: 'forward' })
    expect(body.destroyed).toBe(true)
    expect(server.seen).toHaveLength(0)
  })
})
