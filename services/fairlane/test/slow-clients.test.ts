import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const NOISY = 'fl_test_slow_noisy_key'
const QUIET = 'fl_test_slow_quiet_key'

let upstream: LoopbackUpstream
/** Default timeouts and caps: what an operator gets without setting anything. */
let node: TestNode
/** Short body timeouts, to see them fire. */
let strict: TestNode
const clients = new Set<Socket>()

function config(server: Record<string, unknown>): Record<string, unknown> {
  // Two targets on the same upstream address: they share its connection pool.
  const target = { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true }
  return {
    server,
    targets: { bulk: target, calm: target },
    workspaces: {
      noisy: { targets: ['bulk'], keys: [{ id: 'noisy', hash: hashKeySecret(NOISY) }] },
      quiet: { targets: ['calm'], keys: [{ id: 'quiet', hash: hashKeySecret(QUIET) }] },
    },
  }
}

beforeAll(async () => {
  upstream = await startUpstream({ record: false })
  node = await startNode(config({}))
  strict = await startNode(config({ headTimeoutMs: 500, bodyIdleMs: 400, bodyTimeoutMs: 2000 }))
})

afterEach(() => {
  for (const socket of clients) socket.destroy()
  clients.clear()
})

afterAll(async () => {
  await node.close()
  await strict.close()
  await upstream.close()
})

interface RawAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** A client on a bare socket, so it can send a body as slowly as it likes. */
interface SlowClient {
  write(text: string): void
  /** The first answer on the connection. */
  readonly answer: Promise<RawAnswer>
  /** Resolves (true) when the server closes the connection. */
  readonly closed: Promise<true>
}

function slowClient(base: string, head: string): SlowClient {
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  clients.add(socket)
  socket.setEncoding('utf8')
  socket.on('error', () => undefined)
  socket.write(head)
  let text = ''
  const answer = new Promise<RawAnswer>((resolve) => {
    socket.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\r\n\r\n')
      if (end === -1) return
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const headers = Object.fromEntries(
        lines.map((line) => {
          const colon = line.indexOf(':')
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
        }),
      )
      const body = text.slice(end + 4)
      if (body.length < Number(headers['content-length'] ?? 0)) return
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body })
    })
  })
  const closed = new Promise<true>((resolve) => socket.on('close', () => resolve(true)))
  return {
    write: (chunk) => {
      if (!socket.destroyed) socket.write(chunk)
    },
    answer,
    closed,
  }
}

function chunkedPost(path: string, key: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: fairlane\r\nAuthorization: Bearer ${key}\r\n` +
    'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n'
  )
}

/** Sends one more byte of a chunked body every `everyMs` until the test ends. */
function trickle(client: SlowClient, everyMs: number): void {
  const timer = setInterval(() => client.write('1\r\nb\r\n'), everyMs)
  void client.closed.then(() => clearInterval(timer))
}

/** Within `ms`, or Infinity: a request stuck behind a full pool never answers. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms)),
  ])
}

async function quietLatencyMs(): Promise<number> {
  const started = performance.now()
  const response = await fetch(`${node.proxyUrl}/t/calm/ping`, {
    headers: bearer(QUIET),
    signal: AbortSignal.timeout(15_000),
  }).catch(() => undefined)
  if (response?.status !== 200) return Infinity
  await response.arrayBuffer()
  return performance.now() - started
}

async function slowestOf(count: number): Promise<number> {
  let slowest = 0
  for (let i = 0; i < count; i++) slowest = Math.max(slowest, await quietLatencyMs())
  return slowest
}

describe('clients that send their body slowly', () => {
  it('cannot take the upstream pool from another workspace on the same address', async () => {
    const alone = await slowestOf(5)
    // More trickling bodies than the pool has connections (128 per address), from one key.
    for (let i = 0; i < 140; i++)
      trickle(slowClient(node.proxyUrl, chunkedPost('/t/bulk/up', NOISY)), 1000)
    await expect.poll(() => upstream.inFlight, { timeout: 30_000 }).toBeGreaterThanOrEqual(64)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The key's cap on the target: the rest wait in its lane, holding no connection.
    expect(upstream.inFlight).toBe(64)
    const during = await slowestOf(5)
    expect(during).toBeLessThan(Math.max(alone * 20, 1500))
  }, 90_000)

  it('answers a body that goes silent with 408 problem+json and closes the connection', async () => {
    const chunked = slowClient(strict.proxyUrl, chunkedPost('/t/bulk/idle', NOISY))
    // Small enough to be kept for retries: read whole before the upstream call.
    const kept = slowClient(
      strict.proxyUrl,
      `PUT /t/bulk/idle HTTP/1.1\r\nHost: fairlane\r\nAuthorization: Bearer ${NOISY}\r\n` +
        'Content-Length: 10\r\n\r\nab',
    )
    for (const client of [chunked, kept]) {
      const answer = await within(client.answer, 10_000)
      expect(answer?.status).toBe(408)
      expect(answer?.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({
        code: 'request_timeout',
        stage: 'forward',
        detail: 'no byte of the request body arrived for 400 ms',
      })
      expect(await within(client.closed, 5_000)).toBe(true)
    }
    const lines = strict.logs.lines().filter((l) => l['path'] === '/t/bulk/idle')
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(line).toMatchObject({ status: 408, code: 'request_timeout', keyId: 'noisy' })
    }
    const { text: metrics } = await strict.metrics.exposition(undefined)
    expect(metrics).toContain('status="408"')
    // A slow client says nothing about the upstream: its endpoint's health is untouched.
    const health = (await (await fetch(`${strict.adminUrl}/upstreams`)).json()) as {
      target: string
      failures: number
    }[]
    expect(health.find((e) => e.target === 'bulk')?.failures).toBe(0)
  })

  it('answers a body that keeps trickling past the whole-body timeout with 408', async () => {
    const client = slowClient(strict.proxyUrl, chunkedPost('/t/bulk/drip', NOISY))
    trickle(client, 100)
    const answer = await within(client.answer, 15_000)
    expect(answer?.status).toBe(408)
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({
      code: 'request_timeout',
      detail: 'the request body did not arrive whole within 2000 ms',
    })
    expect(await within(client.closed, 5_000)).toBe(true)
  })

  it('answers a request head that does not arrive whole in time with 408 and closes', async () => {
    const client = slowClient(strict.proxyUrl, `GET /t/bulk/x HTTP/1.1\r\nHost: fairlane\r\n`)
    const timer = setInterval(() => client.write('x-slow: 1\r\n'), 100)
    const answer = await within(client.answer, 10_000)
    clearInterval(timer)
    expect(answer?.status).toBe(408)
    expect(answer?.headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({
      code: 'request_timeout',
      stage: 'correlate',
    })
    expect(await within(client.closed, 5_000)).toBe(true)
  })

  it('closes the connection after a 401 while the client still trickles its body', async () => {
    const client = slowClient(node.proxyUrl, chunkedPost('/t/bulk/x', 'fl_wrong_key'))
    trickle(client, 100)
    const answer = await within(client.answer, 5_000)
    expect(answer?.status).toBe(401)
    expect(answer?.headers['connection']).toBe('close')
    expect(await within(client.closed, 3_000)).toBe(true)
  })
})
