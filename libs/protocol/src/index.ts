export { ERROR_CODES, type Stage } from './error-codes.ts'
export { FairlaneError, toProblem, PROBLEM_TYPE_BASE } from './fairlane-error.ts'
export type { Ticket } from './ticket.ts'
export type {
  Actor,
  Admission,
  AdmissionLease,
  LeaseOutcome,
  LentAdmissions,
  PrefetchedShare,
  Transport,
} from './transport.ts'
export { rateLimitHeaders, retryAfterHeader, type RateLimitView } from './rate-limit-headers.ts'
export { upstreamSignals } from './upstream-signals.ts'
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
  v1ShardSubject,
  saysLimits,
  type AdmissionRefusal,
  type AdmissionReply,
  type TicketProgress,
  type LaneSignals,
  type TicketReply,
  type ShardMessage,
  type ShareGrant,
} from './wire.ts'
export {
  decodeReplyBatch,
  decodeShardBatch,
  encodeReplyBatch,
  encodeShardBatch,
  WIRE_VERSION,
  type ReplyItem,
  type WireRefusal,
} from './wire-batch.ts'
export type { Writable } from './writable.ts'
