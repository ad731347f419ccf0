export {
  startUpstream,
  type Behavior,
  type LoopbackUpstream,
  type RecordedRequest,
  type UpstreamOptions,
} from './loopback-upstream.ts'
export { freePort } from './free-port.ts'
export { LogCapture } from './log-capture.ts'
export { Traffic, CallerRecord, jainIndex, percentileOf, type CallerSpec } from './traffic.ts'
export { tcpAnswers } from './server-process.ts'
export { startRedis, type RedisServer } from './redis-server.ts'
export { startNats, type NatsServer } from './nats-server.ts'
export { startPrometheus, type PrometheusServer } from './prometheus-server.ts'
export {
  startNatsRegions,
  type GatewayListener,
  type NatsRegion,
  type NatsRegionServer,
  type NatsRegions,
  type NatsRegionsOptions,
} from './nats-regions.ts'
export { startTcpRelay, type TcpRelay, type TcpRelayOptions } from './tcp-relay.ts'
export { seededRandom } from './seeded-random.ts'
export { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts'
export {
  startFakeOpenAi,
  type FakeOpenAi,
  type FakeOpenAiRequest,
  type FakeUsage,
} from './fake-openai.ts'
