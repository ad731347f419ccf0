import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import type { ConfigStore } from '@fairlane/config'
import type { Transport } from '@fairlane/protocol'
import {
  clientResponseHeaders,
  resilientCall,
  upstreamError,
  type CallResult,
  upstreamRequestHeaders,
  type DestinationPolicy,
  type Forwarder,
  type PinnedDestination,
} from '@fairlane/forward'
import {
  FairlaneError,
  ERROR_CODES,
  PROBLEM_TYPE_BASE,
  childTraceParent,
  formatTraceParent,
  parseClientPolicies,
  parseTraceParent,
  rateLimitHeaders,
  requestIdFrom,
  retryAfterHeader,
  toProblem,
} from '@fairlane/protocol'
import type { FairlaneMetrics, Logger } from '@fairlane/telemetry'
import { keyIndexOf } from '../keys/key-index.ts'
import { BodyDeadline } from './body-deadline.ts'
import { BodyLimit, tooLarge } from './body-limit.ts'
import { presentedKey } from './presented-key.ts'
import { pathOf, type RequestContext } from './request-context.ts'
import { URL_TARGET } from '../limits/scopes.ts'
import type { TargetConfig } from '@fairlane/config'
import type { Admission, AdmissionLease } from '@fairlane/protocol'
import { costInBody, costInHeader, observeResponseCost } from './response-cost.ts'
import { resolveRoute } from './route.ts'
import type { RouteEndpoint, Upstreams } from './upstreams.ts'
import { withoutQuery } from './without-query.ts'

export interface IngressDeps {
  readonly store: ConfigStore
  readonly transport: Transport
  readonly policy: DestinationPolicy
  readonly forwarder: Forwarder
  /** Endpoint health, failover order and retry budgets. */
  readonly upstreams: Upstreams
  readonly metrics: FairlaneMetrics
  readonly logger: Logger
  /** Wall clock, for the absolute X-RateLimit-Reset. */
  readonly wallClock: () => number
}

const contexts = new WeakMap<FastifyRequest, RequestContext>()

/** Upstream bodies up to this size with a Content-Length are sent in one write. */
const SMALL_BODY_BYTES = 64 * 1024

function contextOf(request: FastifyRequest): RequestContext {
  let ctx = contexts.get(request)
  if (!ctx) {
    const raw = request.raw.url ?? '/'
    ctx = {
      requestId: request.id,
      // Fairlane's own span in the client's trace (or a new trace); the upstream call is its child.
      trace: childTraceParent(parseTraceParent(request.headers.traceparent)),
      method: request.method,
      path: pathOf(raw),
      startedAt: performance.now(),
      stage: 'correlate',
      attempts: 0,
    }
    contexts.set(request, ctx)
  }
  return ctx
}

/** The X-Fairlane-Url form: the one destination the client named. */
function urlEndpoint(url: string, destination: PinnedDestination): RouteEndpoint {
  return { id: url, url, path: destination.url.pathname + destination.url.search, weight: 1 }
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length']
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  )
}

/**
 * TRACE makes an upstream echo the request it received, injected credential included, back
 * to the client; TRACK is its IIS twin (Node's parser already refuses it as unknown).
 */
const REFUSED_METHODS = new Set(['TRACE', 'TRACK'])
/** The methods every target takes; any other the HTTP parser knows passes too, except TRACE. */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

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

/** A problem+json answer written straight to a socket, for errors Node raises before Fastify sees a request. */
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

export function buildIngress(
  deps: IngressDeps,
  options: { maxHeaderBytes: number; headTimeoutMs: number },
) {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Fastify's request logs carry the raw URL (and so any query secret); ours are built
    // from named safe fields when the response closes.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    http: {
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeout: options.headTimeoutMs,
      // Node checks the head timeout on this interval (30 s by default, which would let a
      // head take up to 30 s longer than configured).
      connectionsCheckingInterval: Math.min(1000, options.headTimeoutMs),
    },
    routerOptions: { maxParamLength: 8192, ignoreTrailingSlash: false },
    // While draining, a request on a connection still open is served like any other (its
    // answer carries the usual headers); new connections are no longer accepted, readiness
    // is already failing, and connections left at the end of the grace period are closed.
    return503OnClosing: false,
    // A request target the router cannot decode (a bad percent-escape) is the client's error.
    // Fastify's message quotes the whole target, query string included: it is not passed on.
    frameworkErrors: (_err, request, reply) => {
      const ctx = contextOf(request)
      reply.raw.once('close', () => finish(deps, ctx, reply.raw.statusCode))
      sendProblem(
        reply,
        ctx,
        new FairlaneError(
          'bad_request',
          'correlate',
          'the request path has an invalid percent-escape',
        ),
      )
    },
    forceCloseConnections: 'idle',
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      if (!socket.writable) return
      const { code, detail } = rawAnswer(err)
      socket.end(rawProblem(code, detail))
    },
  })

  // The body is streamed to the upstream as it arrives; Fastify must not read it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  const proxy = (request: FastifyRequest, reply: FastifyReply) => handle(deps, request, reply)
  app.all('/*', proxy)
  app.setNotFoundHandler(proxy)
  app.setErrorHandler((err, request, reply) => {
    const ctx = contextOf(request)
    const statusCode = (err as { statusCode?: number }).statusCode
    const code = (err as { code?: unknown }).code
    const known =
      err instanceof FairlaneError
        ? err
        : typeof code === 'string' && code.startsWith('UND_ERR')
          ? // The upstream failed while its body was being relayed (a body timeout, a reset).
            upstreamError(err)
          : statusCode !== undefined && statusCode >= 400 && statusCode < 500
            ? new FairlaneError(
                'bad_request',
                ctx.stage,
                err instanceof Error ? err.message : 'bad request',
              )
            : new FairlaneError('internal', ctx.stage, 'internal error', { cause: err })
    sendProblem(reply, ctx, known)
  })
  return app
}

function sendProblem(reply: FastifyReply, ctx: RequestContext, err: FairlaneError): FastifyReply {
  const problem = toProblem(err, ctx.requestId)
  problem.detail = withoutQuery(err.message)
  const raw = reply.request.raw
  ctx.stage = err.stage
  ctx.code = err.code
  ctx.error = withoutQuery(
    err.code === 'internal' && err.cause instanceof Error ? err.cause.message : err.message,
  )
  return reply
    .code(problem.status)
    .headers({
      ...ctx.limitHeaders,
      ...err.headers,
      'x-request-id': ctx.requestId,
      'content-type': 'application/problem+json',
      // Node would go on reading (and discarding) a body that has not fully arrived, for as
      // long as the client trickles it: the connection is closed instead.
      ...(hasBody(raw) && !raw.complete ? { connection: 'close' } : {}),
    })
    .send(JSON.stringify(problem))
}

function finish(deps: IngressDeps, ctx: RequestContext, status: number): void {
  const seconds = (performance.now() - ctx.startedAt) / 1000
  const target = ctx.target ?? '(none)'
  const stage = ctx.code || ctx.clientClosed ? ctx.stage : 'respond'
  deps.metrics.requests.inc({ target, status: String(status), stage })
  deps.metrics.requestDuration.observe({ target }, seconds)
  deps.logger.info(
    {
      requestId: ctx.requestId,
      traceId: ctx.trace.traceId,
      method: ctx.method,
      path: ctx.path,
      workspace: ctx.workspace,
      keyId: ctx.keyId,
      target: ctx.target,
      stage,
      status,
      code: ctx.code,
      durationMs: round(seconds * 1000),
      queueMs: ctx.queueMs === undefined ? undefined : round(ctx.queueMs),
      upstreamMs: ctx.upstreamMs === undefined ? undefined : round(ctx.upstreamMs),
      upstreamStatus: ctx.upstreamStatus,
      attempts: ctx.attempts,
      clientClosed: ctx.clientClosed,
      error: ctx.error,
    },
    'request',
  )
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}

async function handle(
  deps: IngressDeps,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const ctx = contextOf(request)
  const raw = request.raw
  const abort = new AbortController()
  let release: (() => void) | undefined
  let deadline: BodyDeadline | undefined
  let closed = false
  reply.raw.once('close', () => {
    closed = true
    // A response that closes before it finished means the client went away: stop the upstream call.
    const clientLeft = !reply.raw.writableFinished
    if (clientLeft) abort.abort()
    release?.()
    deadline?.destroy()
    if (clientLeft) ctx.clientClosed = true
    // 499 (nginx's "client closed request") when the client left before any answer was sent.
    finish(deps, ctx, clientLeft && !reply.raw.headersSent ? 499 : reply.raw.statusCode)
  })

  try {
    if (REFUSED_METHODS.has(request.method)) {
      throw new FairlaneError(
        'method_not_allowed',
        'correlate',
        `${request.method} is not proxied`,
        {
          headers: { allow: ALLOW },
        },
      )
    }
    const config = deps.store.current()
    const maxBody = config.server.maxBodyBytes
    const declared = raw.headers['content-length']
    if (declared !== undefined && Number(declared) > maxBody) throw tooLarge(maxBody, 'correlate')

    ctx.stage = 'authenticate'
    const presented = presentedKey(raw.headers)
    if (!presented) {
      throw new FairlaneError(
        'unauthenticated',
        'authenticate',
        'send the key as Authorization: Bearer <key> or X-Fairlane-Key',
      )
    }
    const principal = keyIndexOf(config).authenticate(presented.secret)
    if (!principal)
      throw new FairlaneError('unauthenticated', 'authenticate', 'unknown or revoked key')
    ctx.workspace = principal.workspaceName
    ctx.keyId = principal.key.id

    ctx.stage = 'resolve'
    const urlHeader = raw.headers['x-fairlane-url']
    const route = resolveRoute(
      config,
      principal,
      raw.url ?? '/',
      typeof urlHeader === 'string' ? urlHeader : undefined,
    )
    ctx.target = route.target
    const target = route.target === URL_TARGET ? undefined : config.targets[route.target]
    // The endpoints in the order to try now; the first is checked before the request
    // queues, the others only if the call fails over to them.
    let ordered = target ? deps.upstreams.order(route.target, route.endpoints) : []
    let destination: PinnedDestination | undefined
    // An endpoint whose address cannot be had (DNS fails) is a failed endpoint: the next
    // one is checked instead, and only when none passes is the request refused.
    const unresolvable: RouteEndpoint[] = []
    for (const [i, endpoint] of ordered.entries()) {
      try {
        destination = await deps.policy.check(endpoint.url, route.rule)
        // Those that failed the check go last: a race or failover tries the others first.
        const rest = ordered.filter((e) => e !== endpoint && !unresolvable.includes(e))
        ordered = [endpoint, ...rest, ...unresolvable]
        break
      } catch (err) {
        if (i === ordered.length - 1) throw err
        unresolvable.push(endpoint)
        deps.upstreams
          .health(route.target, endpoint.id)
          ?.record({ ok: false, kind: 'connect-error', latencyMs: 0 })
      }
    }
    destination ??= await deps.policy.check(route.url, route.rule)
    const pinned = new Map([[ordered[0]?.url ?? route.url, destination]])
    // The X-Fairlane-Url form has one destination, the one the client named.
    const only: RouteEndpoint[] = target ? [] : [urlEndpoint(route.url, destination)]
    let firstOrder: RouteEndpoint[] | undefined = target ? ordered : only

    ctx.stage = 'limit'
    const cost = declaredCost(raw.headers['fairlane-cost'], target)
    const clientPolicies = parseClientPolicies(raw.headers['fairlane-ratelimit-policy'])
    const ticket = {
      requestId: ctx.requestId,
      workspace: principal.workspaceName,
      keyId: principal.key.id,
      target: route.target,
      cost,
      ...(clientPolicies ? { clientPolicies } : {}),
    }
    /** Waits in the lane; undefined when the client left meanwhile (nothing is sent then). */
    const admit = async (): Promise<AdmissionLease | undefined> => {
      const admission = await deps.transport.submit(ticket, abort.signal)
      const limitHeaders = rateLimitHeaders(admission.views, deps.wallClock())
      ctx.limitHeaders = limitHeaders
      if (!admission.allowed) {
        if (admission.code === 'cancelled') {
          // Only a client that left cancels its ticket; anything else must not go unanswered.
          if (closed) return undefined
          throw new FairlaneError('internal', 'queue', 'the ticket was cancelled')
        }
        throw refusal(deps, ctx, admission, limitHeaders)
      }
      ctx.queueMs = (ctx.queueMs ?? 0) + admission.waitedMs
      deps.metrics.queueWait.observe({ target: route.target }, admission.waitedMs / 1000)
      // The client may have left while its ticket was decided; then the close handler has
      // run already and the lease is returned here, before anything is sent upstream.
      if (closed) {
        admission.lease.release()
        return undefined
      }
      return admission.lease
    }
    let lease = await admit()
    if (!lease) return reply
    let realCost: number | undefined
    // The upstream's answer, once there is one: its limit signals go back with the lease.
    let result: CallResult<RouteEndpoint> | undefined
    release = () => {
      lease?.release({
        ...(realCost !== undefined ? { cost: realCost } : {}),
        ...(result ? { upstream: result.said } : {}),
      })
      lease = undefined
    }

    ctx.stage = 'forward'
    const retry = target?.retry
    const idempotent =
      retry !== undefined &&
      (retry.allowNonIdempotent ||
        retry.methods.includes(request.method) ||
        raw.headers['idempotency-key'] !== undefined)
    let repeatable = idempotent && retry.attempts > 1
    let body: Readable | Buffer | null = null
    let limiter: BodyLimit | undefined
    if (hasBody(raw)) {
      deadline = new BodyDeadline(raw, {
        idleMs: config.server.bodyIdleMs,
        totalMs: config.server.bodyTimeoutMs,
        now: () => performance.now(),
        onExpire: () => abort.abort(),
      })
      const watched = raw.pipe(deadline)
      const length = declared === undefined ? undefined : Number(declared)
      if (repeatable && length !== undefined && length <= (retry?.replayBodyBytes ?? 0)) {
        // Small enough to keep: every attempt sends the same bytes.
        body = Buffer.concat((await watched.toArray()) as Buffer[])
      } else {
        // Streamed once, so sent once.
        repeatable = false
        if (declared === undefined) {
          limiter = new BodyLimit(maxBody, () => abort.abort())
          body = watched.pipe(limiter)
        } else {
          body = watched
        }
      }
    }
    const headers = upstreamRequestHeaders(raw.headers, {
      presentedKey: presented.secret,
      forwardClientAuthorization:
        route.forwardClientAuthorization && presented.via === 'x-fairlane-key',
      hostHeader: destination.hostHeader,
      inject: route.inject,
      requestId: ctx.requestId,
    })
    headers['traceparent'] = formatTraceParent(ctx.trace)
    const hedgeAsked =
      target?.hedge.allowHeader === true && raw.headers['x-fairlane-hedge'] === 'on'
    const upstreamStarted = performance.now()
    try {
      result = await resilientCall<RouteEndpoint>({
        order: () => {
          const order =
            firstOrder ?? (target ? deps.upstreams.order(route.target, route.endpoints) : only)
          firstOrder = undefined
          return order
        },
        send: async (endpoint, signal) => {
          let pin = pinned.get(endpoint.url)
          if (!pin) {
            pin = await deps.policy.check(endpoint.url, route.rule)
            pinned.set(endpoint.url, pin)
          }
          const health = deps.upstreams.health(route.target, endpoint.id)
          // A half-open endpoint takes trials one at a time; a trial aborted on our side
          // (a lost race, a client that left) records nothing, so it gives its slot back.
          const trial = health?.state === 'half-open' && health.tryAcquireTrial()
          ctx.attempts++
          const sentAt = performance.now()
          try {
            const response = await deps.forwarder.forward({
              method: request.method,
              destination: pin,
              path: endpoint.path,
              headers,
              body,
              timeouts: route.timeouts,
              signal,
            })
            deps.metrics.upstreamDuration.observe(
              { target: route.target },
              (performance.now() - sentAt) / 1000,
            )
            return response
          } catch (err) {
            if (trial && signal.aborted) health.releaseTrial()
            throw err
          }
        },
        record: (endpoint, outcome) =>
          deps.upstreams.health(route.target, endpoint.id)?.record(outcome),
        p95Ms: (endpoint) => deps.upstreams.health(route.target, endpoint.id)?.p95Ms(),
        release: (upstream) => {
          lease?.release({ upstream })
          lease = undefined
        },
        admit: async () => {
          lease = await admit()
          if (!lease) throw new FairlaneError('internal', 'queue', 'the client left')
        },
        repeatable,
        attempts: repeatable ? (retry?.attempts ?? 1) : 1,
        maxRetryMs: retry?.maxRetryMs ?? 0,
        ...(target && retry ? { budget: deps.upstreams.budget(route.target, retry) } : {}),
        hedge:
          repeatable && (target?.hedge.enabled || hedgeAsked)
            ? (target?.hedge.delayMs ?? 'p95')
            : undefined,
        wallClock: deps.wallClock,
        now: () => performance.now(),
        signal: abort.signal,
      })
    } catch (err) {
      if (deadline?.failure) throw deadline.failure
      if (limiter?.exceeded) throw tooLarge(maxBody, 'forward')
      throw upstreamError(err)
    }
    const response = result.response
    const region = result.endpoint.region
    ctx.upstreamMs = performance.now() - upstreamStarted
    ctx.upstreamStatus = response.status

    const responseHeaders = {
      ...clientResponseHeaders(response.headers),
      ...ctx.limitHeaders,
      'x-request-id': ctx.requestId,
      'x-fairlane-queue-ms': String(Math.round(ctx.queueMs ?? 0)),
      'x-fairlane-attempts': String(ctx.attempts),
      ...(region ? { 'x-fairlane-region': region } : {}),
    }
    const length = Number(response.headers['content-length'])
    if (request.method !== 'HEAD' && length <= SMALL_BODY_BYTES) {
      // A small body of known length is read whole and sent with the head in one write:
      // fewer syscalls than relaying a stream, the same latency, and an upstream failure
      // while reading it still gets a proper answer.
      let whole: Buffer
      try {
        whole = Buffer.concat((await response.body.toArray()) as Buffer[])
      } catch (err) {
        throw upstreamError(err)
      }
      realCost =
        costInHeader(target, response.headers) ?? costInBody(target, response.headers, whole)
      ctx.stage = 'respond'
      return reply.code(response.status).headers(responseHeaders).send(whole)
    }
    ctx.stage = 'respond'
    return reply
      .code(response.status)
      .headers(responseHeaders)
      .send(observeResponseCost(target, response.headers, response.body, (c) => (realCost = c)))
  } catch (err) {
    if (abort.signal.aborted && reply.raw.destroyed) return reply
    const failure =
      err instanceof FairlaneError
        ? err
        : new FairlaneError('internal', ctx.stage, 'internal error', { cause: err })
    return sendProblem(reply, ctx, failure)
  }
}

/** `Fairlane-Cost`, where the target accepts declared costs; 1 otherwise. */
function declaredCost(
  header: string | string[] | undefined,
  target: TargetConfig | undefined,
): number {
  if (header === undefined || !target?.cost.fromHeader) return 1
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined || !/^\d+$/.test(value.trim())) {
    throw new FairlaneError(
      'bad_request',
      'limit',
      'Fairlane-Cost must be a whole number of cost units',
    )
  }
  const cost = Number(value)
  if (cost < 1 || cost > target.cost.maxDeclared) {
    throw new FairlaneError(
      'bad_request',
      'limit',
      `Fairlane-Cost must be between 1 and ${target.cost.maxDeclared}`,
    )
  }
  return cost
}

/** A refused admission as the error the client sees, counted where it was refused. */
function refusal(
  deps: IngressDeps,
  ctx: RequestContext,
  admission: Admission & { allowed: false },
  limitHeaders: Record<string, string>,
): FairlaneError {
  const headers = { ...limitHeaders, 'retry-after': retryAfterHeader(admission.retryAfterMs) }
  if (admission.code === 'rate_limited') {
    deps.metrics.limitRefusals.inc({ scope: admission.refusedBy, reason: admission.reason })
    const detail =
      admission.reason === 'cost'
        ? `this request costs more than the ${admission.refusedBy} limit allows at once`
        : `${admission.refusedBy} ${admission.reason} limit reached`
    return new FairlaneError('rate_limited', 'limit', detail, { headers })
  }
  if (admission.code === 'cluster_unavailable') {
    deps.metrics.limitRefusals.inc({ scope: admission.refusedBy, reason: admission.reason })
    return new FairlaneError(
      'cluster_unavailable',
      'limit',
      `the ${admission.refusedBy} limit cannot be checked (its ledger is unreachable and its onLedgerDown policy is closed)`,
      { headers },
    )
  }
  deps.metrics.queueRefusals.inc({
    target: ctx.target ?? '(none)',
    reason: admission.code,
    bound: admission.refusedBy,
  })
  if (admission.code === 'queue_full') {
    return new FairlaneError('queue_full', 'queue', `the ${admission.refusedBy} queue is full`, {
      headers,
    })
  }
  return new FairlaneError('queue_timeout', 'queue', 'waited longer than the tier allows', {
    headers,
  })
}
