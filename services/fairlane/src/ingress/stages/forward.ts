import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import {
  resilientCall,
  upstreamError,
  upstreamRequestHeaders,
  type DestinationPolicy,
  type ExtraAttemptKind,
  type Forwarder,
  type Outcome,
  type PinnedDestination,
  type ResilientCallOptions,
  type RetryBudget,
  type UpstreamResponse,
} from '@fairlane/forward'
import { FairlaneError, formatTraceParent, type LaneSignals } from '@fairlane/protocol'
import type { FairlaneMetrics } from '@fairlane/telemetry'
import { BodyDeadline } from '../body-deadline.ts'
import { BodyLimit, tooLarge } from '../body-limit.ts'
import type { EndpointDestinations } from '../endpoint-destinations.ts'
import { hasBody, type Exchange } from '../exchange.ts'
import { inboundRequestHeaders } from '../inbound/inbound-headers.ts'
import { sampled, type AttemptReason } from '../request-tracing.ts'
import type { RouteEndpoint, Upstreams } from '../upstreams.ts'
import { admit, type AdmitDeps } from './admit.ts'

export interface ForwardDeps extends AdmitDeps {
  readonly policy: DestinationPolicy
  readonly destinations: EndpointDestinations
  readonly forwarder: Forwarder
  readonly upstreams: Upstreams
  readonly metrics: FairlaneMetrics
}

const now = (): number => performance.now()

/**
 * The hooks resilientCall asks for, as methods of one object per request instead of a
 * literal of closures: retries, failover and races call back into the exchange.
 */
class UpstreamCall implements ResilientCallOptions<RouteEndpoint> {
  readonly repeatable: boolean
  readonly attempts: number
  readonly maxRetryMs: number
  readonly budget?: RetryBudget
  readonly hedge: number | 'p95' | undefined
  readonly wallClock: () => number
  readonly now = now
  readonly signal: AbortSignal
  readonly #x: Exchange
  readonly #deps: ForwardDeps
  readonly #headers: Record<string, string | string[]>
  readonly #body: Readable | Buffer | null
  #firstOrder: readonly RouteEndpoint[] | undefined
  /** The endpoint of the last attempt that was not a hedge: another one now is a failover. */
  #previous: string | undefined
  readonly #extraAttempts: ReturnType<FairlaneMetrics['extraAttemptsOf']>

  constructor(
    x: Exchange,
    deps: ForwardDeps,
    headers: Record<string, string | string[]>,
    body: Readable | Buffer | null,
    repeatable: boolean,
  ) {
    this.#x = x
    this.#deps = deps
    this.#headers = headers
    this.#body = body
    this.#firstOrder = x.firstOrder
    // Looked up with the first call, which makes the target's series at 0.
    this.#extraAttempts = deps.metrics.extraAttemptsOf(x.target ?? '')
    const target = x.targetConfig
    const retry = target?.retry
    const hedgeAsked =
      target?.hedge.allowHeader === true && x.req.headers['x-fairlane-hedge'] === 'on'
    this.repeatable = repeatable
    this.attempts = repeatable ? (retry?.attempts ?? 1) : 1
    this.maxRetryMs = retry?.maxRetryMs ?? 0
    if (target && retry) this.budget = deps.upstreams.budget(x.target ?? '', retry)
    this.hedge =
      repeatable && (target?.hedge.enabled || hedgeAsked)
        ? (target?.hedge.delayMs ?? 'p95')
        : undefined
    this.wallClock = deps.wallClock
    this.signal = x.abort.signal
  }

  order(): readonly RouteEndpoint[] {
    const first = this.#firstOrder
    if (first) {
      this.#firstOrder = undefined
      return first
    }
    const x = this.#x
    return x.targetConfig && x.route
      ? this.#deps.upstreams.order(x.route.target, x.route.endpoints)
      : (x.firstOrder ?? [])
  }

  async send(
    endpoint: RouteEndpoint,
    signal: AbortSignal,
    hedge: boolean,
  ): Promise<UpstreamResponse> {
    const x = this.#x
    const deps = this.#deps
    const target = x.target ?? ''
    const destination = this.#resolved(endpoint) ?? (await this.#pin(endpoint))
    const health = deps.upstreams.health(target, endpoint.id)
    // A half-open endpoint takes trials one at a time; a trial aborted on our side (a lost
    // race, a client that left) records nothing, so it gives its slot back.
    const trial = health?.state === 'half-open' && health.tryAcquireTrial()
    x.attempts++
    const tracing = deps.tracing
    const traced =
      x.span && tracing
        ? tracing.attempt(
            x.span,
            x.method,
            endpoint,
            destination,
            x.attempts,
            this.#reason(endpoint, hedge),
            this.#headers,
          )
        : undefined
    const sentAt = now()
    try {
      const response = await deps.forwarder.forward({
        method: x.method,
        destination,
        path: endpoint.path,
        headers: traced?.headers ?? this.#headers,
        body: this.#body,
        timeouts: x.route?.timeouts ?? x.config.destinations.timeouts,
        signal,
      })
      deps.metrics
        .upstreamDurationOf(target, endpoint.region ?? '')
        .observe((now() - sentAt) / 1000, sampled(traced?.span))
      if (traced) tracing?.answered(traced.span, { status: response.status })
      return response
    } catch (err) {
      if (traced) tracing?.answered(traced.span, { error: err })
      if (trial && signal.aborted) health.releaseTrial()
      throw err
    }
  }

  /** Why this attempt is made, for its span. */
  #reason(endpoint: RouteEndpoint, hedge: boolean): AttemptReason {
    if (hedge) return 'hedge'
    const previous = this.#previous
    this.#previous = endpoint.id
    if (previous === undefined) return 'first'
    return previous === endpoint.id ? 'retry' : 'failover'
  }

  record(endpoint: RouteEndpoint, outcome: Outcome): void {
    this.#deps.upstreams.health(this.#x.target ?? '', endpoint.id)?.record(outcome)
  }

  p95Ms(endpoint: RouteEndpoint): number | undefined {
    return this.#deps.upstreams.health(this.#x.target ?? '', endpoint.id)?.p95Ms()
  }

  onExtraAttempt(kind: ExtraAttemptKind): void {
    this.#extraAttempts[kind].inc()
  }

  release(upstream: LaneSignals): void {
    this.#x.lease?.release({ upstream })
    this.#x.lease = undefined
  }

  async admit(): Promise<void> {
    if (!(await admit(this.#x, this.#deps)))
      throw new FairlaneError('internal', 'queue', 'the client left')
  }

  /** Resolve's checked destination, when the endpoint is the one it checked: no await. */
  #resolved(endpoint: RouteEndpoint): PinnedDestination | undefined {
    const x = this.#x
    const first = x.firstOrder?.[0]
    return first === endpoint || first?.url === endpoint.url ? x.destination : undefined
  }

  /** The checked destination of another endpoint, checked here once per request. */
  async #pin(endpoint: RouteEndpoint): Promise<PinnedDestination> {
    const x = this.#x
    x.pins ??= new Map()
    let pin = x.pins.get(endpoint.url)
    if (!pin) {
      if (!x.route) throw new FairlaneError('internal', 'forward', 'forward before resolve')
      pin = x.targetConfig
        ? await this.#deps.destinations.check(x.targetConfig, endpoint, x.route.rule)
        : await this.#deps.policy.check(endpoint.url, x.route.rule)
      x.pins.set(endpoint.url, pin)
    }
    return pin
  }
}

/**
 * Stage 5: the upstream call, streaming the request body (or keeping a small one to replay
 * on retries), with the proxy's credentials stripped and the target's injected; retries,
 * failover and races by the target's policy. Resolves with the upstream's response.
 */
export async function forward(x: Exchange, deps: ForwardDeps): Promise<UpstreamResponse> {
  x.stage = 'forward'
  const { req } = x
  const route = x.route
  const presented = x.presented
  const destination = x.destination
  const inbound = x.inbound
  if (!route || !destination || !(presented || inbound))
    throw new FairlaneError('internal', 'forward', 'forward before resolve')
  const retry = x.targetConfig?.retry
  const idempotent =
    retry !== undefined &&
    (retry.allowNonIdempotent ||
      retry.methods.includes(x.method) ||
      req.headers['idempotency-key'] !== undefined)
  let repeatable = idempotent && retry.attempts > 1
  const declared = req.headers['content-length']
  const maxBody = x.config.server.maxBodyBytes
  let body: Readable | Buffer | null = null
  let limiter: BodyLimit | undefined
  if (x.body) {
    // Read whole before admission (the front door routes by the body's model).
    body = x.body
    if (body.length > (retry?.replayBodyBytes ?? 0)) repeatable = false
  } else if (hasBody(x)) {
    const deadline = new BodyDeadline(req, {
      idleMs: x.config.server.bodyIdleMs,
      totalMs: x.config.server.bodyTimeoutMs,
      now,
      onExpire: () => x.abort.abort(),
    })
    x.bodyDeadline = deadline
    const watched = req.pipe(deadline)
    const length = declared === undefined ? undefined : Number(declared)
    if (repeatable && length !== undefined && length <= (retry?.replayBodyBytes ?? 0)) {
      // Small enough to keep: every attempt sends the same bytes.
      body = Buffer.concat((await watched.toArray()) as Buffer[])
    } else {
      // Streamed once, so sent once.
      repeatable = false
      if (declared === undefined) {
        limiter = new BodyLimit(maxBody, () => x.abort.abort())
        body = watched.pipe(limiter)
      } else {
        body = watched
      }
    }
  }
  let headers: Record<string, string | string[]>
  if (inbound) headers = inboundRequestHeaders(x, inbound, route, destination.hostHeader)
  else if (presented) {
    headers = upstreamRequestHeaders(req.headers, {
      presentedKey: presented.secret,
      forwardClientAuthorization:
        route.forwardClientAuthorization && presented.via === 'x-fairlane-key',
      hostHeader: destination.hostHeader,
      inject: route.inject,
      requestId: x.requestId,
    })
  } else throw new FairlaneError('internal', 'forward', 'forward before resolve')
  headers['traceparent'] = formatTraceParent(x.trace)
  if (x.body) {
    headers['content-length'] = String(x.body.length)
    // The usage chunk Fairlane asked for is taken out of the stream, which needs it plain.
    if (x.usageAdded) headers['accept-encoding'] = 'identity'
  }
  const upstreamStarted = now()
  try {
    x.result = await resilientCall(new UpstreamCall(x, deps, headers, body, repeatable))
  } catch (err) {
    if (x.bodyDeadline?.failure) throw x.bodyDeadline.failure
    if (limiter?.exceeded) throw tooLarge(maxBody, 'forward')
    throw upstreamError(err)
  }
  x.upstreamMs = now() - upstreamStarted
  x.upstreamStatus = x.result.response.status
  return x.result.response
}
