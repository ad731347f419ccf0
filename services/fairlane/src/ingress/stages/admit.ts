import type { Admission, AdmissionLease, Ticket, Transport, Writable } from '@fairlane/protocol'
import type { TargetConfig } from '@fairlane/config'
import {
  FairlaneError,
  formatTraceParent,
  parseClientPolicies,
  rateLimitHeaders,
  retryAfterHeader,
} from '@fairlane/protocol'
import type { FairlaneMetrics, LaneActivity, LaneRecord } from '@fairlane/telemetry'
import { callerSettings } from '../../limits/callers.ts'
import type { Exchange } from '../exchange.ts'
import { sampled, traceParentOf, type RequestTracing } from '../request-tracing.ts'

export interface AdmitDeps {
  readonly transport: Transport
  readonly metrics: FairlaneMetrics
  /** What lanes did lately, for GET /lanes and `fairlane top`. */
  readonly activity: LaneActivity
  /** Wall clock, for the absolute X-RateLimit-Reset. */
  readonly wallClock: () => number
  /** Absent while traces are off. */
  readonly tracing?: RequestTracing
}

/** `Fairlane-Cost`, where the target accepts declared costs; 1 otherwise. */
export function declaredCost(
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

/** Stage 4a: the ticket the request queues with (declared cost, client policy), read once. */
export function ticketOf(x: Exchange): void {
  x.stage = 'limit'
  const headers = x.req.headers
  const cost = x.estimate ?? declaredCost(headers['fairlane-cost'], x.targetConfig)
  const inbound = x.inbound
  if (inbound) {
    x.tier = callerSettings(x.config, inbound.config, x.caller ?? '').tier
    // A route's callers share its workspace, so a client policy (s=global, segments) would
    // narrow every customer's limits: Fairlane-RateLimit-Policy is a key-path header only.
    const ticket: Writable<Ticket> = {
      requestId: x.requestId,
      workspace: inbound.space,
      keyId: x.caller ?? '',
      target: x.target ?? '',
      cost,
    }
    if (x.centsEstimate !== undefined) ticket.cents = x.centsEstimate
    x.ticket = ticket
    return
  }
  const principal = x.principal
  x.tier = principal?.key.tier ?? principal?.workspace.tier ?? 'free'
  const clientPolicies = parseClientPolicies(headers['fairlane-ratelimit-policy'])
  // Filled in place: spreading conditional literals cost every request a few objects.
  const ticket: Writable<Ticket> = {
    requestId: x.requestId,
    workspace: x.workspace ?? '',
    keyId: x.keyId ?? '',
    target: x.target ?? '',
    cost,
  }
  if (x.centsEstimate !== undefined) ticket.cents = x.centsEstimate
  if (clientPolicies) ticket.clientPolicies = clientPolicies
  x.ticket = ticket
}

/**
 * Stage 4b: waits in the lane until every limit allows the request. Also a retry's way back
 * in (retries spend budget). Resolves with the lease, or undefined when the client left
 * meanwhile: nothing is sent upstream then.
 */
export async function admit(x: Exchange, deps: AdmitDeps): Promise<AdmissionLease | undefined> {
  const ticket = x.ticket
  if (!ticket) throw new FairlaneError('internal', 'limit', 'admit without a ticket')
  const tier = x.tier ?? 'free'
  x.activity ??= deps.activity.lane(ticket.workspace, ticket.keyId, ticket.target, tier)
  const lane = x.activity
  lane.enter()
  const tracing = deps.tracing
  const span = x.span && tracing ? tracing.queue(x, x.span) : undefined
  let admission: Admission
  try {
    // The ticket carries the queue span's context to the lane's owner (a cluster's NATS hop).
    admission = await deps.transport.submit(
      span ? { ...ticket, trace: formatTraceParent(traceParentOf(span)) } : ticket,
      x.abort.signal,
    )
  } catch (err) {
    if (span) tracing?.failed(span, err)
    throw err
  } finally {
    lane.leave()
  }
  if (span) tracing?.queued(span, admission)
  const limitHeaders = rateLimitHeaders(admission.views, deps.wallClock())
  x.limitHeaders = limitHeaders
  if (!admission.allowed) {
    if (admission.code === 'cancelled') {
      // Only a client that left cancels its ticket; anything else must not go unanswered.
      if (x.closed) return undefined
      throw new FairlaneError('internal', 'queue', 'the ticket was cancelled')
    }
    throw refusal(deps, x, admission, limitHeaders, lane)
  }
  x.queueMs = (x.queueMs ?? 0) + admission.waitedMs
  deps.metrics.queueWaitOf(ticket.target, tier).observe(admission.waitedMs / 1000, sampled(span))
  deps.metrics.laneOutcomeOf(ticket.workspace, tier, 'admitted').inc()
  lane.admitted(admission.waitedMs)
  // The client may have left while its ticket was decided; the lease goes back at once,
  // before anything is sent upstream.
  if (x.closed) {
    admission.lease.release()
    return undefined
  }
  x.lease = admission.lease
  return admission.lease
}

/** A refused admission as the error the client sees, counted where it was refused. */
function refusal(
  deps: AdmitDeps,
  x: Exchange,
  admission: Admission & { allowed: false },
  limitHeaders: Record<string, string>,
  lane: LaneRecord,
): FairlaneError {
  const headers = { ...limitHeaders, 'retry-after': retryAfterHeader(admission.retryAfterMs) }
  const code = admission.code
  // A cancelled ticket never gets here (its client left): every other code is a refusal.
  if (code !== 'cancelled') {
    deps.metrics.laneOutcomeOf(lane.workspace, lane.tier, code).inc()
    lane.refused(code)
  }
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
    target: x.target ?? '(none)',
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
