import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

/** What the upstream saw of one request, byte for byte where it matters. */
export interface RecordedRequest {
  readonly method: string
  /** Path and query as received. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** Names and values in arrival order, duplicates kept. */
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
  /** performance.now() when the request head arrived. */
  readonly receivedAt: number
}

/** How the upstream answers one request; tests switch it to misbehave on purpose. */
export type Behavior =
  | { readonly kind: 'echo' }
  | {
      readonly kind: 'respond'
      readonly status: number
      readonly headers?: Readonly<Record<string, string>>
      readonly body?: string
    }
  | { readonly kind: 'delay'; readonly ms: number; readonly then?: Behavior }
  /** Destroys the socket without an answer (a connection reset). */
  | { readonly kind: 'reset' }
  /** Sends the response head, then never a byte of body (a stalled upstream). */
  | { readonly kind: 'stall-body' }
  /** Sends headers, then a body in chunks with a pause between them. */
  | { readonly kind: 'stream'; readonly chunks: readonly string[]; readonly intervalMs: number }

export interface LoopbackUpstream {
  readonly url: string
  readonly port: number
  /** Every request received, oldest first (bounded by maxRecorded). */
  readonly requests: RecordedRequest[]
  /** Number of requests received, including those no longer recorded. */
  readonly hits: number
  /** Requests being answered right now. */
  readonly inFlight: number
  /** Highest inFlight seen since start or the last clear(). */
  readonly maxInFlight: number
  behave(choose: (request: RecordedRequest) => Behavior): void
  clear(): void
  close(): Promise<void>
}

export interface UpstreamOptions {
  /** Keep request bodies and headers (tests); off for benchmarks. Default true. */
  readonly record?: boolean
  readonly maxRecorded?: number
  readonly host?: string
  readonly port?: number
}

function echoBody(request: RecordedRequest): string {
  return JSON.stringify({
    method: request.method,
    url: request.url,
    headers: request.headers,
    bodyBytes: request.body.length,
  })
}

/**
 * A real HTTP server on loopback that records what reaches it. It is the upstream of every
 * integration test, the demo and the benchmarks; it never stands in for Fairlane itself.
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<LoopbackUpstream> {
  const record = options.record ?? true
  const maxRecorded = options.maxRecorded ?? 10_000
  const requests: RecordedRequest[] = []
  const sockets = new Set<Socket>()
  let choose: (request: RecordedRequest) => Behavior = () => ({ kind: 'echo' })
  let hits = 0
  let inFlight = 0
  let maxInFlight = 0

  const server: Server = createServer((req: IncomingMessage, res) => {
    const receivedAt = performance.now()
    hits++
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    res.on('close', () => inFlight--)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      if (record) chunks.push(chunk)
    })
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        receivedAt,
      }
      if (record) {
        requests.push(recorded)
        if (requests.length > maxRecorded) requests.shift()
      }
      const act = (behavior: Behavior): void => {
        switch (behavior.kind) {
          case 'echo': {
            const body = echoBody(recorded)
            res.writeHead(200, {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            })
            res.end(body)
            return
          }
          case 'respond':
            res.writeHead(behavior.status, behavior.headers)
            res.end(behavior.body ?? '')
            return
          case 'delay': {
            const timer = setTimeout(() => act(behavior.then ?? { kind: 'echo' }), behavior.ms)
            res.on('close', () => clearTimeout(timer))
            return
          }
          case 'reset':
            req.socket.destroy()
            return
          case 'stall-body':
            res.writeHead(200, { 'content-type': 'text/plain' })
            res.flushHeaders()
            return
          case 'stream': {
            res.writeHead(200, { 'content-type': 'text/plain' })
            let i = 0
            const next = (): void => {
              if (res.destroyed) return
              if (i === behavior.chunks.length) {
                res.end()
                return
              }
              res.write(behavior.chunks[i++])
              setTimeout(next, behavior.intervalMs)
            }
            next()
            return
          }
        }
      }
      act(choose(recorded))
    })
  })
  server.keepAliveTimeout = 30_000
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get hits() {
      return hits
    },
    get inFlight() {
      return inFlight
    },
    get maxInFlight() {
      return maxInFlight
    },
    behave(next) {
      choose = next
    },
    clear() {
      requests.length = 0
      hits = 0
      maxInFlight = inFlight
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
