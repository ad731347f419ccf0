import { isIP } from 'node:net'
import type { Readable } from 'node:stream'
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici'
import { FairlaneError } from '@fairlane/protocol'
import type { PinnedDestination } from './destination-policy.ts'
import { abortReason, UpstreamAnswer, type UpstreamResponse } from './upstream-answer.ts'

export interface UpstreamTimeouts {
  readonly connectMs: number
  readonly headersMs: number
  readonly bodyMs: number
}

export interface UpstreamRequest {
  readonly method: string
  readonly destination: PinnedDestination
  /** Path and query sent upstream. */
  readonly path: string
  readonly headers: Record<string, string | string[]>
  /** A Buffer can be sent again (retries, hedges); a stream only once. */
  readonly body: Readable | Buffer | null
  readonly timeouts: UpstreamTimeouts
  readonly signal: AbortSignal
}

/**
 * Sends a request to the address the destination policy checked, never to a name: the
 * origin is the IP, while Host and TLS SNI carry the original host name. Redirects are
 * returned to the client as they are; undici's dispatch does not follow them.
 */
export class Forwarder {
  /** One agent per connect timeout: undici sets that per agent, and targets share few values. */
  readonly #agents = new Map<number, Agent>()
  readonly #connections: number

  constructor(options: { connectionsPerOrigin?: number } = {}) {
    this.#connections = options.connectionsPerOrigin ?? 128
  }

  forward(request: UpstreamRequest): Promise<UpstreamResponse> {
    const { destination, signal, body } = request
    if (signal.aborted) {
      const reason = abortReason(signal)
      if (body && !Buffer.isBuffer(body)) body.on('error', () => undefined).destroy(reason)
      return Promise.reject(upstreamError(reason))
    }
    // undici reads `servername` per request (lib/core/request.js) but its types omit it.
    const options: Dispatcher.DispatchOptions & { servername?: string } = {
      origin: originOf(destination),
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: withHost(request.headers, destination.hostHeader),
      body,
      headersTimeout: request.timeouts.headersMs,
      bodyTimeout: request.timeouts.bodyMs,
    }
    // SNI carries names only (RFC 6066); for an IP literal the certificate is checked against the IP.
    if (destination.url.protocol === 'https:' && isIP(destination.hostname) === 0) {
      options.servername = destination.hostname
    }
    return new Promise((resolve, reject) => {
      const answer = new UpstreamAnswer(request.method, signal, body, resolve, (err) =>
        reject(upstreamError(err)),
      )
      try {
        this.#agent(request.timeouts.connectMs).dispatch(options, answer)
      } catch (err) {
        answer.onResponseError(null, err as Error)
      }
    })
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => agent.close()))
    this.#agents.clear()
  }

  #agent(connectMs: number): Agent {
    let agent = this.#agents.get(connectMs)
    if (!agent) {
      agent = new Agent({ connect: { timeout: connectMs }, connections: this.#connections })
      this.#agents.set(connectMs, agent)
    }
    return agent
  }
}

/** The origin undici connects to, per checked destination (reused while its check holds). */
const origins = new WeakMap<PinnedDestination, string>()

/** The checked address, never the name: `scheme://address:port`. */
function originOf(destination: PinnedDestination): string {
  let origin = origins.get(destination)
  if (origin === undefined) {
    const host = destination.family === 6 ? `[${destination.address}]` : destination.address
    origin = `${destination.url.protocol}//${host}:${destination.port}`
    origins.set(destination, origin)
  }
  return origin
}

/**
 * The checked destination decides Host; a stale or forged one in the bag never travels. A bag
 * that already carries it, and no other spelling of the name, goes as it is (undici only
 * reads it): the ingress builds its bags so.
 */
function withHost(
  headers: Record<string, string | string[]>,
  hostHeader: string,
): Record<string, string | string[]> {
  if (headers['host'] === hostHeader && !otherHost(headers)) return headers
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    if (name.length === 4 && name.toLowerCase() === 'host') continue
    out[name] = headers[name] as string | string[]
  }
  out['host'] = hostHeader
  return out
}

/** A Host header spelled other than `host` (`Host`, `HOST`…). */
function otherHost(headers: Record<string, string | string[]>): boolean {
  for (const name in headers) {
    if (name.length === 4 && name !== 'host' && name.toLowerCase() === 'host') return true
  }
  return false
}

/** Maps undici and socket failures to the public codes; the cause keeps the detail for logs. */
export function upstreamError(err: unknown): FairlaneError {
  if (err instanceof FairlaneError) return err
  if (
    err instanceof undiciErrors.ConnectTimeoutError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  ) {
    return new FairlaneError('upstream_timeout', 'forward', `upstream timed out (${err.code})`, {
      cause: err,
    })
  }
  const code = (err as { code?: unknown } | null)?.code
  const detail = typeof code === 'string' ? code : 'connection failed'
  return new FairlaneError('upstream_unavailable', 'forward', `upstream unavailable (${detail})`, {
    cause: err,
  })
}
