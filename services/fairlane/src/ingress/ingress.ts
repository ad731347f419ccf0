import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { ConfigStore } from '@fairlane/config'
import type { DestinationPolicy, Forwarder } from '@fairlane/forward'
import {
  ERROR_CODES,
  PROBLEM_TYPE_BASE,
  requestIdFrom,
  type LeaseOutcome,
  type Writable,
  type Transport,
} from '@fairlane/protocol'
import {
  RequestLines,
  type FairlaneMetrics,
  type LaneActivity,
  type Logger,
} from '@fairlane/telemetry'
import { isJobsRequest, serveJobs, type JobsBackend } from '../jobs/jobs-api.ts'
import type { EndpointDestinations } from './endpoint-destinations.ts'
import type { Exchange } from './exchange.ts'
import { NewCallerGates } from './inbound/new-callers.ts'
import { admit, ticketOf } from './stages/admit.ts'
import { authenticate } from './stages/authenticate.ts'
import { ALLOW, checkRequestHead, correlate } from './stages/correlate.ts'
import { forward } from './stages/forward.ts'
import { finalStage, recordRequest } from './stages/request-log.ts'
import { identify } from './stages/identify.ts'
import { isMetered, meterTarget } from './stages/meter-target.ts'
import { isRouteRequest, matchInbound } from './stages/match-route.ts'
import { resolve, resolveInbound } from './stages/resolve.ts'
import { answerModels, frontDoorOf, resolveModel } from './stages/resolve-model.ts'
import { asFairlaneError, respond, sendProblem } from './stages/respond.ts'
import type { RequestTracing } from './request-tracing.ts'
import type { Upstreams } from './upstreams.ts'

export interface IngressDeps {
  readonly store: ConfigStore
  readonly transport: Transport
  readonly policy: DestinationPolicy
  readonly forwarder: Forwarder
  /** Endpoint health, failover order and retry budgets. */
  readonly upstreams: Upstreams
  readonly metrics: FairlaneMetrics
  /** What lanes did lately, for GET /lanes and `fairlane top`. */
  readonly activity: LaneActivity
  readonly logger: Logger
  /** Wall clock, for the absolute X-RateLimit-Reset. */
  readonly wallClock: () => number
  /** Checked target endpoints, reused within the DNS cache's lifetime. */
  readonly destinations: EndpointDestinations
  /** The request's spans; absent while traces are off (docs/observability.md#traces). */
  readonly tracing?: RequestTracing
  /** The jobs API (/v1/jobs) behind the same keys; absent on a node that serves none. */
  readonly jobs?: JobsBackend
}

/** The proxy port: a node:http server running each request through the stages. */
export interface Ingress {
  readonly server: Server
  listen(options: { host: string; port: number }): Promise<void>
  /** Stops accepting, closes idle connections, and resolves once those in use have closed. */
  close(): Promise<void>
}

type RawProblemCode = 'headers_too_large' | 'bad_request' | 'method_not_allowed' | 'request_timeout'

/** What Node's HTTP parser refused, as the answer for it. */
function rawAnswer(err: NodeJS.ErrnoException): { code: RawProblemCode; detail: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'headers_too_large', detail: 'request head is too large' }
    case 'HPE_INVALID_METHOD':
      return { code: 'method_not_allowed', detail: 'this method is not proxied' }
    // Node's headersTimeout: the request head did not arrive whole in time.
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'request_timeout', detail: 'the request head did not arrive in time' }
    default:
      return { code: 'bad_request', detail: 'malformed HTTP request' }
  }
}

/** A problem+json answer written straight to a socket, for errors Node raises before a request exists. */
function rawProblem(code: RawProblemCode, detail: string): string {
  const { status, title } = ERROR_CODES[code]
  const requestId = requestIdFrom(undefined)
  const body = JSON.stringify({
    type: PROBLEM_TYPE_BASE + code.replaceAll('_', '-'),
    title,
    status,
    code,
    stage: 'correlate',
    requestId,
    error: title,
    detail,
  })
  return (
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nX-Request-Id: ${requestId}\r\n` +
    (code === 'method_not_allowed' ? `Allow: ${ALLOW}\r\n` : '') +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  )
}

function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) return
  const { code, detail } = rawAnswer(err)
  socket.end(rawProblem(code, detail))
}

const EXCHANGE = Symbol('exchange')
const PATH = Symbol('path')

/** A response carries its exchange and path, so one shared close listener serves them all. */
interface Carrier extends ServerResponse {
  [EXCHANGE]?: Exchange
  [PATH]?: RequestPath
}

function onResponseClose(this: Carrier): void {
  const x = this[EXCHANGE]
  if (x && !x.closed) this[PATH]?.closed(x)
}

/** What a request's lease goes back with: its settled cost and price, and what the upstream said. */
function leaseOutcome(x: Exchange): LeaseOutcome {
  // Filled in place: spreading conditional literals cost every request a few objects.
  const outcome: Writable<LeaseOutcome> = {}
  if (x.realCost !== undefined) outcome.cost = x.realCost
  if (x.realCents !== undefined) outcome.cents = x.realCents
  const said = x.result?.said
  if (said) outcome.upstream = said
  return outcome
}

/** The request path in the order docs/proxying.md gives; each stage is its own module. */
class RequestPath {
  readonly #deps: IngressDeps
  readonly #lines: RequestLines
  readonly #newCallers: NewCallerGates

  constructor(deps: IngressDeps) {
    this.#deps = deps
    this.#lines = new RequestLines(deps.logger)
    this.#newCallers = new NewCallerGates(() => performance.now(), deps.metrics)
  }

  handle(req: IncomingMessage, res: Carrier): void {
    const x = correlate(req, res, this.#deps.store.current())
    this.#deps.tracing?.begin(x)
    res[EXCHANGE] = x
    res[PATH] = this
    // `on`, not `once`: a response closes once, and once would wrap the listener per request.
    res.on('close', onResponseClose)
    void this.#run(x)
  }

  async #run(x: Exchange): Promise<void> {
    const deps = this.#deps
    try {
      // Known first, so every refusal of the front door is in OpenAI's shape.
      const door = frontDoorOf(x)
      x.openai = door !== undefined
      checkRequestHead(x)
      if (deps.jobs && isJobsRequest(x)) {
        authenticate(x)
        await serveJobs(x, deps.jobs)
        return
      }
      if (door === 'workspace') {
        authenticate(x)
        if (answerModels(x)) return
        await resolveModel(x, deps)
      } else if (isRouteRequest(x)) {
        matchInbound(x)
        await identify(x)
        this.#newCallers.check(x)
        if (door !== 'route') {
          // Most requests resolve at once: an await only when a check is under way.
          const resolving = resolveInbound(x, deps)
          if (resolving) await resolving
          if (isMetered(x)) await meterTarget(x)
        } else if (answerModels(x)) return
        else await resolveModel(x, deps)
      } else {
        authenticate(x)
        const resolving = resolve(x, deps)
        if (resolving) await resolving
        if (isMetered(x)) await meterTarget(x)
      }
      ticketOf(x)
      if (!(await admit(x, deps))) return
      const upstream = await forward(x, deps)
      await respond(x, upstream)
    } catch (err) {
      if (x.abort.signal.aborted && x.res.destroyed) return
      sendProblem(x, asFairlaneError(x, err))
    }
  }

  /** Stage 6 and the log line: the lease goes back with what the upstream said. */
  closed(x: Exchange): void {
    const { res } = x
    x.closed = true
    // A response that closes before it finished means the client went away: stop the upstream call.
    const clientLeft = !res.writableFinished
    if (clientLeft) {
      x.abort.abort()
      x.clientClosed = true
    }
    x.bodyDeadline?.destroy()
    if (x.lease) {
      x.lease.release(leaseOutcome(x))
      x.lease = undefined
    }
    // 499 (nginx's "client closed request") when the client left before any answer was sent.
    const status = clientLeft && !res.headersSent ? 499 : res.statusCode
    recordRequest(x, status, this.#deps.metrics, this.#lines)
    if (x.span) this.#deps.tracing?.end(x, x.span, status, finalStage(x))
  }
}

export function buildIngress(
  deps: IngressDeps,
  options: { maxHeaderBytes: number; headTimeoutMs: number },
): Ingress {
  const path = new RequestPath(deps)
  const server = createServer(
    {
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeout: options.headTimeoutMs,
      // Node checks the head timeout on this interval (30 s by default, which would let a
      // head take up to 30 s longer than configured).
      connectionsCheckingInterval: Math.min(1000, options.headTimeoutMs),
      // What Fastify set before: long keep-alive for SDK connection pools, no total request
      // timeout (a queued request may wait as long as its tier allows).
      keepAliveTimeout: 72_000,
      requestTimeout: 0,
    },
    (req, res) => path.handle(req, res),
  )
  server.on('clientError', onClientError)
  return {
    server,
    listen: ({ host, port }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      }),
    close: () =>
      new Promise((resolve) => {
        // While draining, requests on connections still open are served like any other;
        // idle ones are closed now, and node.ts cuts the rest after the grace period.
        server.close(() => resolve())
        server.closeIdleConnections()
      }),
  }
}
