import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Span } from '@opentelemetry/api'
import type { AdmissionLease } from '@fairlane/protocol'
import type { FairlaneConfig, TargetConfig } from '@fairlane/config'
import type { CallResult, PinnedDestination } from '@fairlane/forward'
import type { Stage, Ticket, TraceParent } from '@fairlane/protocol'
import type { LaneRecord } from '@fairlane/telemetry'
import type { Principal } from '../keys/key-index.ts'
import type { CallerId } from '../limits/callers.ts'
import type { BodyDeadline } from './body-deadline.ts'
import type { InboundRoute } from './inbound/route-table.ts'
import type { Price } from './llm/model-table.ts'
import type { PresentedKey } from './presented-key.ts'
import type { Route } from './route.ts'
import type { RouteEndpoint } from './upstreams.ts'

/**
 * One request on its way through the stages (correlate, authenticate, resolve, admit,
 * forward, respond), each filling in what it learnt. One plain object per request, so the
 * path allocates no closures to share state. Its log line is built from named fields only
 * (see request-log.ts): `presented` holds the key and never reaches a log.
 */
export interface Exchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The config snapshot the whole request is served under, even if a reload lands meanwhile. */
  readonly config: FairlaneConfig
  readonly requestId: string
  /** The request's place in its trace: its server span's when traces are on. */
  trace: TraceParent
  /** The request's server span; only while traces are on (request-tracing.ts). */
  span?: Span
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  readonly startedAt: number
  /** Aborted when the client leaves: stops the queue wait and the upstream call. */
  readonly abort: AbortController
  stage: Stage
  /** The response closed (finished or the client left). */
  closed: boolean
  /** The client went away before the response was complete. */
  clientClosed?: boolean

  presented?: PresentedKey
  principal?: Principal
  workspace?: string
  keyId?: string
  /** Inbound mode: the route the request matched, and its caller (never the credential). */
  inbound?: InboundRoute
  caller?: CallerId

  /**
   * The request came by the OpenAI-style front door (llm/): refusals answer in OpenAI's
   * error shape, and its body was read before admission to pick the target by model.
   */
  openai?: boolean
  /** The request body, read whole before admission (model routing); sent as it is. */
  body?: Buffer
  /** Cost reserved at admission when none was declared: an estimate of the tokens. */
  estimate?: number
  /** Fairlane asked for the stream's usage chunk itself: it is metered, not relayed. */
  usageAdded?: boolean
  /** The model's price on its target, when the target has one: the request is counted in cents. */
  price?: Price
  /** The price reserved at admission, in cents. */
  centsEstimate?: number
  /** The real price the response's usage came to, given back with the lease. */
  realCents?: number

  route?: Route
  target?: string
  /** The target's config; undefined for the X-Fairlane-Url form. */
  targetConfig?: TargetConfig
  /** Endpoints in the order to try for the first attempt; the first one is checked. */
  firstOrder?: readonly RouteEndpoint[]
  /** The checked destination of firstOrder[0]. */
  destination?: PinnedDestination
  /** Checked destinations of the other endpoints, once a failover needed them. */
  pins?: Map<string, PinnedDestination>

  ticket?: Ticket
  /** The lane's tier, from the config (the ticket's key or the route's caller). */
  tier?: string
  /** The lane's recent activity, looked up at the first admission. */
  activity?: LaneRecord
  lease?: AdmissionLease
  queueMs?: number
  /** RateLimit headers of the admission decision, sent with whatever answer follows. */
  limitHeaders?: Readonly<Record<string, string>>

  attempts: number
  result?: CallResult<RouteEndpoint>
  upstreamMs?: number
  upstreamStatus?: number
  /** Times the request body; stopped when the response closes. */
  bodyDeadline?: BodyDeadline
  /** The real cost the response reported, given back with the lease. */
  realCost?: number

  code?: string
  /** Detail of a failure, for the log only (never includes secrets: messages are ours). */
  error?: string
}

export function pathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?')
  return q === -1 ? rawUrl : rawUrl.slice(0, q)
}

/** The request declares a body (chunked or a non-zero Content-Length). */
export function hasBody(x: Exchange): boolean {
  const headers = x.req.headers
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
