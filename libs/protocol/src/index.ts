export { ERROR_CODES, STAGES, statusOf, type ErrorCode, type Stage } from './error-codes.ts'
export {
  FairlaneError,
  isFairlaneError,
  toProblem,
  PROBLEM_TYPE_BASE,
  type Problem,
} from './fairlane-error.ts'
export type { Ticket } from './ticket.ts'
export type { Actor, Admission, AdmissionLease, Transport } from './transport.ts'
export {
  rateLimitHeaders,
  retryAfterHeader,
  tightest,
  ceilSeconds,
  wholePolicy,
  type RateLimitView,
} from './rate-limit-headers.ts'
export {
  upstreamSignals,
  parseRetryAt,
  UPSTREAM_SIGNAL_HORIZON_MS,
  type UpstreamSignals,
  type UpstreamHeaders,
} from './upstream-signals.ts'
export {
  requestIdFrom,
  parseTraceParent,
  childTraceParent,
  formatTraceParent,
  type TraceParent,
} from './correlation.ts'
export { parseClientPolicies, CLIENT_POLICY_BOUNDS, type ClientPolicy } from './client-policy.ts'
export {
  shardOf,
  shardOfPartition,
  shardSubject,
  SHARD_SUBJECT_PREFIX,
  type AdmissionRefusal,
  type AdmissionReply,
  type TicketProgress,
  type LaneSignals,
  type TicketReply,
  type ShardMessage,
} from './wire.ts'
