export {
  createLogger,
  RequestLines,
  type LineFields,
  REDACTED_PATHS,
  type Logger,
  type LoggerOptions,
} from './logger.ts'
export { stdoutLines } from './line-sink.ts'
export { FairlaneMetrics, type EndpointState } from './metrics.ts'
export type { SpanIds, TracedObserver } from './exemplar-child.ts'
export type { Exposition } from './exposition.ts'
export { startTracing, type Tracing, type TracingIdentity } from './tracing.ts'
export {
  LANE_REFUSALS,
  LaneActivity,
  WAIT_BUCKETS_MS,
  type LaneRecord,
  type LaneView,
} from './lane-activity.ts'
